"""Cohere v2: chat (`/v2/chat`), embeddings (`/v2/embed`) and rerank (`/v2/rerank`).

Chat messages keep OpenAI's roles and tool shapes; the differences are parameter
names (`p`, `k`, `stop_sequences`), upper-case `tool_choice`, content returned as a
list of typed parts, and the stream: SSE events named by `type`
(message-start, content-delta, tool-call-start/delta, message-end, ...), not
OpenAI chunks.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import msgspec

from tianji.errors import InvalidRequest, TianjiError, UnsupportedParams, UpstreamProtocolError
from tianji.providers.base import Call, StreamTranslator
from tianji.providers.errors import provider_error
from tianji.providers.openai_compat import OpenAICompatAdapter, apply_params
from tianji.providers.shapes import (
    decode_object,
    document_texts,
    embedding_inputs,
    embedding_list,
    error_message,
    rerank_response,
    upstream_shape,
)
from tianji.providers.sse import DONE, ChunkWriter, SSEParser
from tianji.upstream.types import UpstreamRequest

__all__ = ["CohereAdapter"]

_encode = msgspec.json.encode

FINISH_REASONS = {
    "COMPLETE": "stop",
    "STOP_SEQUENCE": "stop",
    "MAX_TOKENS": "length",
    "TOOL_CALL": "tool_calls",
    "ERROR_TOXIC": "content_filter",
}
# Finish reasons that mean the generation failed: an error, not a reply.
_FAILED = frozenset({"ERROR", "TIMEOUT"})
_TOOL_CHOICES = {"required": "REQUIRED", "none": "NONE"}


def _drop_allowed(call: Call) -> bool:
    return call.drop_params if call.drop_params is not None else call.deployment.drop_params


def _message(message: Mapping[str, Any]) -> dict[str, Any]:
    """An OpenAI message as Cohere v2 takes it: same roles (developer is system),
    same tool shapes; no `name`, no null fields."""
    out = {k: v for k, v in message.items() if v is not None and k != "name"}
    if out.get("role") == "developer":
        out["role"] = "system"
    return out


def _response_format(value: Any) -> dict[str, Any] | None:
    if not isinstance(value, dict) or value.get("type") not in ("json_object", "json_schema"):
        return None
    out: dict[str, Any] = {"type": "json_object"}
    schema = (value.get("json_schema") or {}).get("schema")
    if schema is not None:
        out["json_schema"] = schema
    return out


def _chat_body(call: Call, body: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {
        "model": body.pop("model"),
        "messages": [_message(m) for m in body.pop("messages", [])],
    }
    body.pop("stream_options", None)  # usage always comes in message-end
    if body.pop("stream", False):
        out["stream"] = True
    for openai_name, cohere_name in (("top_p", "p"), ("top_k", "k")):
        if openai_name in body:
            out[cohere_name] = body.pop(openai_name)
    stop = body.pop("stop", None)
    if stop is not None:
        out["stop_sequences"] = [stop] if isinstance(stop, str) else stop
    max_completion = body.pop("max_completion_tokens", None)
    if max_completion is not None:
        body.setdefault("max_tokens", max_completion)
    if "tool_choice" in body:
        choice = body.pop("tool_choice")
        if isinstance(choice, str) and choice in _TOOL_CHOICES:
            out["tool_choice"] = _TOOL_CHOICES[choice]
        elif choice not in ("auto", None) and not _drop_allowed(call):
            raise UnsupportedParams(
                "cohere does not support tool_choice naming a function (only auto, required, "
                "none). To drop it, set drop_params=true.",
                param="tool_choice",
            )
    response_format = _response_format(body.pop("response_format", None))
    if response_format is not None:
        out["response_format"] = response_format
    out.update(body)  # temperature, max_tokens, penalties, seed, tools, Cohere extras
    return out


def _embed_body(body: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {
        "model": body.pop("model"),
        "texts": embedding_inputs("cohere", body.pop("input", None)),
        "input_type": body.pop("input_type", None) or "search_document",
        "embedding_types": ["float"],
    }
    if body.get("dimensions") is not None:
        out["output_dimension"] = body.pop("dimensions")
    for answered_by_tianji in ("dimensions", "encoding_format", "user"):
        body.pop(answered_by_tianji, None)
    out.update(body)
    return out


def _rerank_body(body: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {
        "model": body.pop("model"),
        "query": body.pop("query", ""),
        "documents": document_texts(body.pop("documents", None)),
    }
    # v2 never returns documents (tianji adds them) and has no v1 rank_fields / chunking.
    for v1_only in ("return_documents", "rank_fields", "max_chunks_per_doc"):
        body.pop(v1_only, None)
    out.update(body)  # top_n, max_tokens_per_doc
    return out


def _usage(usage: Any) -> dict[str, int]:
    usage = usage if isinstance(usage, dict) else {}
    tokens = usage.get("tokens") or usage.get("billed_units") or {}
    prompt = int(tokens.get("input_tokens") or 0)
    completion = int(tokens.get("output_tokens") or 0)
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
    }


def _finish(reason: Any) -> str:
    if reason in _FAILED:
        raise provider_error("cohere", 500, f"generation ended with finish_reason {reason}")
    return FINISH_REASONS.get(str(reason), "stop")


def _chat_response(call: Call, data: dict[str, Any]) -> bytes:
    message = data.get("message") or {}
    parts = message.get("content") or []
    text = "".join(p.get("text", "") for p in parts if p.get("type") == "text")
    thinking = "".join(p.get("thinking", "") for p in parts if p.get("type") == "thinking")
    reply: dict[str, Any] = {"role": "assistant", "content": text or None}
    if thinking:
        reply["reasoning_content"] = thinking
    tool_calls = message.get("tool_calls")
    if tool_calls:
        reply["tool_calls"] = [
            {
                "id": tc.get("id"),
                "type": "function",
                "function": {
                    "name": tc["function"]["name"],
                    "arguments": tc["function"].get("arguments") or "{}",
                },
            }
            for tc in tool_calls
        ]
    finish = _finish(data.get("finish_reason"))
    choice = {"index": 0, "message": reply, "logprobs": None, "finish_reason": finish}
    writer = ChunkWriter(call.model, data.get("id"))
    return _encode(
        {
            "id": writer.id,
            "object": "chat.completion",
            "created": writer.created,
            "model": call.model,
            "choices": [choice],
            "usage": _usage(data.get("usage")),
        }
    )


class _CohereStream:
    """Cohere's named SSE events -> OpenAI chunks. Tool calls get OpenAI indexes in
    the order they start; `message-end` closes the stream with finish (+ usage)."""

    def __init__(self, call: Call) -> None:
        self._parser = SSEParser()
        self._writer = ChunkWriter(call.model)
        options = (call.body or {}).get("stream_options") or {}
        self._include_usage = bool(options.get("include_usage"))
        self._tool_index = -1
        self._ended = False

    def feed(self, chunk: bytes) -> bytes:
        with upstream_shape("cohere"):
            return b"".join(self._event(e.event, e.data) for e in self._parser.feed(chunk))

    def close(self) -> bytes:
        with upstream_shape("cohere"):
            out = b"".join(self._event(e.event, e.data) for e in self._parser.close())
        if not self._ended:
            raise UpstreamProtocolError("cohere stream ended before message-end")
        return out

    def _event(self, name: str, raw: str) -> bytes:
        if self._ended or not raw.strip():
            return b""
        data = decode_object("cohere", raw.encode())
        kind = data.get("type") or name
        delta = data.get("delta") or {}
        message = delta.get("message") or {}
        if kind == "message-start":
            if data.get("id"):
                self._writer.id = data["id"]
            return self._writer.chunk({"role": "assistant", "content": ""})
        if kind == "content-delta":
            content = message.get("content") or {}
            if content.get("thinking"):
                return self._writer.chunk({"reasoning_content": content["thinking"]})
            return self._writer.chunk({"content": content.get("text", "")})
        if kind == "tool-call-start":
            return self._tool_start(message.get("tool_calls") or {})
        if kind == "tool-call-delta":
            function = (message.get("tool_calls") or {}).get("function") or {}
            call = {
                "index": self._tool_index,
                "function": {"arguments": function.get("arguments", "")},
            }
            return self._writer.chunk({"tool_calls": [call]})
        if kind == "message-end":
            return self._end(delta)
        return b""  # tool-plan-delta, content-start/end, tool-call-end, citation-*: nothing

    def _tool_start(self, tool_call: dict[str, Any]) -> bytes:
        self._tool_index += 1
        function = tool_call.get("function") or {}
        call = {
            "index": self._tool_index,
            "id": tool_call.get("id"),
            "type": "function",
            "function": {"name": function.get("name"), "arguments": function.get("arguments", "")},
        }
        return self._writer.chunk({"tool_calls": [call]})

    def _end(self, delta: dict[str, Any]) -> bytes:
        self._ended = True
        out = self._writer.chunk({}, _finish(delta.get("finish_reason")))
        if self._include_usage:
            out += self._writer.usage(_usage(delta.get("usage")))
        return out + DONE


class CohereAdapter(OpenAICompatAdapter):
    name = "cohere"

    def build_request(self, call: Call) -> UpstreamRequest:
        body = apply_params(call)
        if call.operation == "chat":
            native = _chat_body(call, body)
        elif call.operation == "embeddings":
            native = _embed_body(body)
        elif call.operation == "rerank":
            native = _rerank_body(body)
        else:
            raise InvalidRequest(f"cohere does not support {call.operation}")
        headers = self.headers(call, "application/json")
        return UpstreamRequest("POST", self.url(call), headers, _encode(native))

    def translate_response(self, call: Call, body: bytes) -> bytes | None:
        data = decode_object("cohere", body)
        with upstream_shape("cohere"):
            return self._translate(call, data)

    @staticmethod
    def _translate(call: Call, data: dict[str, Any]) -> bytes:
        request = call.body or {}
        if call.operation == "embeddings":
            vectors = (data.get("embeddings") or {}).get("float") or []
            billed = (data.get("meta") or {}).get("billed_units") or {}
            tokens = int(billed.get("input_tokens") or 0)
            return embedding_list(call.model, vectors, tokens, request.get("encoding_format"))
        if call.operation == "rerank":
            scored = [(int(r["index"]), float(r["relevance_score"])) for r in data["results"]]
            return rerank_response(
                scored,
                document_texts(request.get("documents", [])),
                return_documents=bool(request.get("return_documents")),
                meta=data.get("meta") or {},
                rerank_id=data.get("id"),
            )
        return _chat_response(call, data)

    def stream_translator(self, call: Call) -> StreamTranslator | None:
        return _CohereStream(call) if call.operation == "chat" else None

    def error_from_status(
        self, call: Call, status: int, headers: Mapping[str, str], body: bytes
    ) -> TianjiError:
        message = error_message(body, "message", "error")
        return provider_error("cohere", status, message, retry_after=headers.get("retry-after"))
