"""An in-process OpenAI-compatible upstream for `mock` deployments.

The quickstart and the tests need a model that answers without any provider
key or network. The mock adapter builds an ordinary UpstreamRequest to
``mock://...``; this transport answers it as OpenAI would, deterministically:
the reply is the deployment's (or the request's) `mock_response`, else an echo of
the last user message. Usage counts words (documented approximation).
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import urlsplit

import msgspec

from tianji.upstream.types import Timeouts, UpstreamRequest

__all__ = ["MOCK_LATENCY_HEADER", "MOCK_RESPONSE_HEADER", "MockTransport", "mock_reply"]

MOCK_RESPONSE_HEADER = "x-tianji-mock-response"
MOCK_LATENCY_HEADER = "x-tianji-mock-latency"
EMBEDDING_DIM = 8


class MockResponse:
    def __init__(self, status: int, content_type: str, chunks: list[bytes]) -> None:
        self.status = status
        self.headers = [("content-type", content_type)]
        self._chunks = chunks

    def header(self, name: str, default: str | None = None) -> str | None:
        return next((v for k, v in self.headers if k == name), default)

    async def read(self) -> bytes:
        return b"".join(self._chunks)

    async def iter_bytes(self) -> AsyncIterator[bytes]:
        for chunk in self._chunks:
            yield chunk
            await asyncio.sleep(0)

    async def aclose(self) -> None:
        return None


class MockTransport:
    async def send(self, request: UpstreamRequest, timeouts: Timeouts) -> MockResponse:
        headers = dict(request.headers)
        latency = float(headers.get(MOCK_LATENCY_HEADER) or 0)
        if latency:
            await asyncio.sleep(latency)
        path = urlsplit(request.url).path
        body: dict[str, Any] = {}
        if request.body and headers.get("content-type") == "application/json":
            body = msgspec.json.decode(request.body)
        fixed = body.pop("mock_response", None) or headers.get(MOCK_RESPONSE_HEADER)
        return _answer(path, body, fixed)

    async def aclose(self) -> None:
        return None


def mock_reply(body: dict[str, Any], fixed: str | None) -> str:
    if fixed is not None:
        return str(fixed)
    text = body.get("prompt")
    for message in reversed(body.get("messages") or []):
        if isinstance(message, dict) and message.get("role") == "user":
            text = message.get("content")
            break
    if isinstance(text, list):
        text = " ".join(p.get("text", "") for p in text if isinstance(p, dict))
    return f"This is a mock response from tianji. You said: {text or ''}".strip()


def _answer(op: str, body: dict[str, Any], fixed: str | None) -> MockResponse:
    model = str(body.get("model", "mock"))
    kind = _generation_kind(op)
    if kind is not None:
        reply = mock_reply(body, fixed)
        if body.get("stream") and kind == "chat":
            return _chat_stream(model, reply, body)
        return _json(_completion(kind, model, reply, body))
    if op.endswith("embeddings"):
        return _json(_embeddings(model, body.get("input")))
    if op.endswith("speech"):
        return MockResponse(200, "audio/mpeg", [b"ID3mock:" + str(body.get("input", "")).encode()])
    if op.endswith("transcriptions"):
        return _json({"text": fixed or "mock transcription"})
    if op.endswith("generations"):
        return _json(
            {"created": int(time.time()), "data": [{"url": "https://example.invalid/mock.png"}]}
        )
    if op.endswith("moderations"):
        return _json({"id": "modr-mock", "model": model, "results": [{"flagged": False}]})
    if op.endswith("rerank"):
        docs = body.get("documents") or []
        results = [{"index": i, "relevance_score": 1.0 / (i + 1)} for i in range(len(docs))]
        return _json({"id": "rerank-mock", "results": results, "meta": {}})
    return MockResponse(
        404,
        "application/json",
        [b'{"error":{"message":"mock: unsupported operation","type":"not_found_error"}}'],
    )


def _generation_kind(path: str) -> str | None:
    for suffix, kind in (
        ("/chat/completions", "chat"),
        ("/completions", "text"),
        ("/responses", "responses"),
    ):
        if path.endswith(suffix):
            return kind
    return None


def _json(data: dict[str, Any]) -> MockResponse:
    return MockResponse(200, "application/json", [msgspec.json.encode(data)])


def _usage(body: dict[str, Any], reply: str) -> dict[str, int]:
    prompt = len(msgspec.json.encode(body.get("messages") or body.get("prompt") or "").split())
    completion = len(reply.split())
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
    }


def _completion(kind: str, model: str, reply: str, body: dict[str, Any]) -> dict[str, Any]:
    created = int(time.time())
    usage = _usage(body, reply)
    if kind == "text":
        return {
            "id": "cmpl-mock",
            "object": "text_completion",
            "created": created,
            "model": model,
            "choices": [{"index": 0, "text": reply, "finish_reason": "stop", "logprobs": None}],
            "usage": usage,
        }
    if kind == "responses":
        return {
            "id": "resp_mock",
            "object": "response",
            "created_at": created,
            "model": model,
            "status": "completed",
            "output": [
                {
                    "type": "message",
                    "role": "assistant",
                    "id": "msg_mock",
                    "status": "completed",
                    "content": [{"type": "output_text", "text": reply, "annotations": []}],
                }
            ],
            "usage": {
                "input_tokens": usage["prompt_tokens"],
                "output_tokens": usage["completion_tokens"],
                "total_tokens": usage["total_tokens"],
            },
        }
    return {
        "id": "chatcmpl-mock",
        "object": "chat.completion",
        "created": created,
        "model": model,
        "choices": [
            {
                "index": 0,
                "finish_reason": "stop",
                "message": {"role": "assistant", "content": reply},
            }
        ],
        "usage": usage,
    }


def _chat_stream(model: str, reply: str, body: dict[str, Any]) -> MockResponse:
    created = int(time.time())

    def frame(delta: dict[str, Any], finish: str | None = None, **extra: Any) -> bytes:
        choice = {"index": 0, "delta": delta, "finish_reason": finish}
        chunk = {
            "id": "chatcmpl-mock",
            "object": "chat.completion.chunk",
            "created": created,
            "model": model,
            "choices": [choice],
            **extra,
        }
        return b"data: " + msgspec.json.encode(chunk) + b"\n\n"

    words = reply.split(" ")
    chunks = [frame({"role": "assistant", "content": ""})]
    chunks += [frame({"content": w if i == 0 else " " + w}) for i, w in enumerate(words)]
    chunks.append(frame({}, "stop"))
    if (body.get("stream_options") or {}).get("include_usage"):
        usage = {
            "id": "chatcmpl-mock",
            "object": "chat.completion.chunk",
            "created": created,
            "model": model,
            "choices": [],
            "usage": _usage(body, reply),
        }
        chunks.append(b"data: " + msgspec.json.encode(usage) + b"\n\n")
    chunks.append(b"data: [DONE]\n\n")
    return MockResponse(200, "text/event-stream", chunks)


def _embeddings(model: str, given: Any) -> dict[str, Any]:
    inputs = given if isinstance(given, list) else [given]
    data = []
    for i, item in enumerate(inputs):
        digest = hashlib.sha256(str(item).encode()).digest()
        vector = [round(b / 255, 6) for b in digest[:EMBEDDING_DIM]]
        data.append({"object": "embedding", "index": i, "embedding": vector})
    tokens = sum(len(str(x).split()) for x in inputs)
    return {
        "object": "list",
        "model": model,
        "data": data,
        "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
    }
