"""Replicate's answers as upstream responses, and its output stream as OpenAI chunks.

`complete` (tianji/providers/replicate.py) hands the relay either a finished
prediction (`BufferedResponse`) or the prediction's SSE stream wrapped in
`PredictionStream`, which stops reading at `event: done`, fetches the finished
prediction once (for token counts) and appends it as one more event,
`event: tianji-prediction`. So the translator stays a pure function of the bytes.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import msgspec

from tianji.errors import TianjiError, UpstreamProtocolError
from tianji.providers.errors import provider_error
from tianji.providers.sse import DONE, ChunkWriter, SSEEvent, SSEParser, data_frame
from tianji.upstream.types import UpstreamResponse

__all__ = [
    "PREDICTION_EVENT",
    "BufferedResponse",
    "PredictionStream",
    "PredictionTranslator",
    "finish_reason",
    "prediction_usage",
]

PREDICTION_EVENT = "tianji-prediction"
_PROVIDER = "replicate"
_decode = msgspec.json.decode
_encode = msgspec.json.encode


class BufferedResponse:
    """An upstream response whose body is already in memory."""

    def __init__(
        self, status: int, body: bytes, headers: list[tuple[str, str]] | None = None
    ) -> None:
        self.status = status
        self.headers = headers or [("content-type", "application/json")]
        self._body = body

    def header(self, name: str, default: str | None = None) -> str | None:
        return next((v for k, v in self.headers if k == name), default)

    async def read(self) -> bytes:
        return self._body

    async def iter_bytes(self) -> AsyncIterator[bytes]:
        if self._body:
            yield self._body

    async def aclose(self) -> None:
        return None


class PredictionStream:
    """The stream response, cut at `event: done`, then the finished prediction."""

    def __init__(
        self, stream: UpstreamResponse, finished: Callable[[], Awaitable[dict[str, Any] | None]]
    ) -> None:
        self.status = stream.status
        self.headers = stream.headers
        self._stream = stream
        self._finished = finished

    def header(self, name: str, default: str | None = None) -> str | None:
        return self._stream.header(name, default)

    async def read(self) -> bytes:
        return b"".join([chunk async for chunk in self.iter_bytes()])

    async def iter_bytes(self) -> AsyncIterator[bytes]:
        watcher = SSEParser()
        done = False
        async for chunk in self._stream.iter_bytes():
            yield chunk
            if any(event.event == "done" for event in watcher.feed(chunk)):
                done = True
                break  # Replicate may hold the connection open after `done`
        await self._stream.aclose()
        if not done:
            return  # truncated: the translator reports it
        prediction = await self._finished()
        if prediction is not None:
            yield f"\n\nevent: {PREDICTION_EVENT}\ndata: ".encode() + _encode(prediction) + b"\n\n"

    async def aclose(self) -> None:
        await self._stream.aclose()


def prediction_usage(prediction: dict[str, Any]) -> dict[str, int] | None:
    metrics = prediction.get("metrics") or {}
    prompt = metrics.get("input_token_count")
    completion = metrics.get("output_token_count")
    if not isinstance(prompt, int) and not isinstance(completion, int):
        return None
    prompt, completion = int(prompt or 0), int(completion or 0)
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
    }


def finish_reason(usage: dict[str, int] | None, max_tokens: Any) -> str:
    """Replicate does not say why generation stopped; reaching the limit means `length`."""
    if usage and isinstance(max_tokens, int) and usage["completion_tokens"] >= max_tokens:
        return "length"
    return "stop"


def stream_error(data: str) -> TianjiError:
    """`event: error` data: JSON `{"detail": ...}` or plain text."""
    try:
        parsed = _decode(data)
        message = parsed.get("detail") or parsed.get("error") or parsed
    except (msgspec.DecodeError, AttributeError):
        message = data
    return provider_error(_PROVIDER, 500, str(message) or "prediction failed")


class PredictionTranslator:
    """`event: output` text -> content deltas; the finish chunk and usage come at the end,
    once the finished prediction (token counts) has been seen."""

    def __init__(self, model: str, *, chat: bool, include_usage: bool, max_tokens: Any) -> None:
        self._parser = SSEParser()
        self._chat = chat
        self._writer = ChunkWriter(model)
        self._text_id = f"cmpl-{uuid.uuid4().hex}"
        self._include_usage = include_usage
        self._max_tokens = max_tokens
        self._started = False
        self._done = False
        self._usage: dict[str, int] | None = None

    def feed(self, chunk: bytes) -> bytes:
        return b"".join(self._event(event) for event in self._parser.feed(chunk))

    def close(self) -> bytes:
        out = b"".join(self._event(event) for event in self._parser.close())
        if not self._done:
            raise UpstreamProtocolError("replicate stream ended before its done event")
        out += self._frame({}, "", finish_reason(self._usage, self._max_tokens))
        if self._include_usage and self._usage is not None:
            out += self._usage_frame(self._usage)
        return out + DONE

    def _event(self, event: SSEEvent) -> bytes:
        if event.event == "output":
            delta = {"content": event.data}
            if not self._started:
                delta["role"] = "assistant"
                self._started = True
            return self._frame(delta, event.data, None)
        if event.event == "error":
            raise stream_error(event.data)
        if event.event == "done":
            self._done = True
            reason = _done_reason(event.data)
            if reason in ("canceled", "error"):
                raise provider_error(_PROVIDER, 500, f"prediction ended: {reason}")
        elif event.event == PREDICTION_EVENT:
            final = _decode(event.data)  # tianji's own event: the finished prediction
            self._usage = prediction_usage(final) if isinstance(final, dict) else None
        return b""  # logs, done, keep-alives

    def _frame(self, delta: dict[str, str], text: str, reason: str | None) -> bytes:
        if self._chat:
            return self._writer.chunk(delta, reason)
        choice = {"text": text, "index": 0, "logprobs": None, "finish_reason": reason}
        return data_frame({**self._text_base(), "choices": [choice]})

    def _usage_frame(self, usage: dict[str, int]) -> bytes:
        if self._chat:
            return self._writer.usage(usage)
        return data_frame({**self._text_base(), "choices": [], "usage": usage})

    def _text_base(self) -> dict[str, Any]:
        return {
            "id": self._text_id,
            "object": "text_completion",
            "created": self._writer.created,
            "model": self._writer.model,
        }


def _done_reason(data: str) -> str | None:
    try:
        parsed = _decode(data) if data.strip() else {}
    except msgspec.DecodeError:
        return None
    reason = parsed.get("reason") if isinstance(parsed, dict) else None
    return reason if isinstance(reason, str) and reason else None
