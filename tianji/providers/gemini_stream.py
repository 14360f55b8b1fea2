"""Gemini `:streamGenerateContent?alt=sse` -> OpenAI `chat.completion.chunk` frames.

Each `data:` frame is a complete response fragment: its text and thought parts
are deltas, its function calls arrive whole (one tool-call delta each, with the
full JSON arguments), `finishReason` comes on the last fragment, and
`usageMetadata` is cumulative, so the last one seen is the usage chunk sent
before `[DONE]` when the client asked for it.
"""

from __future__ import annotations

from typing import Any

from tianji.errors import UpstreamProtocolError
from tianji.providers.base import Call
from tianji.providers.gemini_response import (
    blocked_prompt_error,
    decode_json,
    error_from_body,
    finish_reason,
    logprobs,
    message_fields,
    usage,
)
from tianji.providers.sse import DONE, ChunkWriter, SSEEvent, SSEParser, data_frame

__all__ = ["GeminiStreamTranslator"]


class GeminiStreamTranslator:
    def __init__(self, call: Call) -> None:
        self._provider = call.deployment.provider.name
        self._model = call.model
        options = (call.body or {}).get("stream_options")
        self._include_usage = isinstance(options, dict) and bool(options.get("include_usage"))
        self._parser = SSEParser()
        self._writer: ChunkWriter | None = None
        self._usage_meta: Any = None
        # Per candidate index: whether the role was sent, and tool calls so far.
        self._started: set[int] = set()
        self._tool_calls: dict[int, int] = {}
        self._finished = False

    def feed(self, chunk: bytes) -> bytes:
        return b"".join(self._event(event) for event in self._parser.feed(chunk))

    def close(self) -> bytes:
        out = b"".join(self._event(event) for event in self._parser.close())
        if not self._finished:
            raise UpstreamProtocolError(
                f"{self._provider} stream ended before a finishReason (truncated upstream stream)"
            )
        if self._include_usage:
            out += self._chunk_writer({}).usage(usage(self._usage_meta))
        return out + DONE

    def _event(self, event: SSEEvent) -> bytes:
        if not event.data.strip():
            return b""
        data = decode_json(self._provider, event.data.encode())
        if isinstance(data, list) and data and isinstance(data[0], dict) and "error" in data[0]:
            data = data[0]
        if not isinstance(data, dict):
            raise UpstreamProtocolError(f"invalid stream frame from {self._provider}")
        if "error" in data:
            status = (data["error"] or {}).get("code")
            raise error_from_body(
                self._provider, status if isinstance(status, int) else 500, {}, event.data.encode()
            )
        blocked = blocked_prompt_error(self._provider, data)
        if blocked is not None:
            raise blocked
        if data.get("usageMetadata"):
            self._usage_meta = data["usageMetadata"]
        writer = self._chunk_writer(data)
        frames = [self._candidate(writer, c, i) for i, c in enumerate(data.get("candidates") or ())]
        return b"".join(frames)

    def _chunk_writer(self, data: dict[str, Any]) -> ChunkWriter:
        if self._writer is None:
            response_id = data.get("responseId")
            self._writer = ChunkWriter(
                str(data.get("modelVersion") or self._model),
                str(response_id) if response_id else None,
            )
        return self._writer

    def _candidate(self, writer: ChunkWriter, candidate: dict[str, Any], position: int) -> bytes:
        index = int(candidate.get("index", position))
        parts = (candidate.get("content") or {}).get("parts") or []
        delta = message_fields(parts, self._tool_calls.get(index, 0))
        if "tool_calls" in delta:
            self._tool_calls[index] = self._tool_calls.get(index, 0) + len(delta["tool_calls"])
        if index not in self._started:
            self._started.add(index)
            delta = {"role": "assistant", **delta}
        out = b""
        probs = logprobs(candidate)
        if delta or probs:
            out += _frame(writer, index, delta, None, probs)
        reason = candidate.get("finishReason")
        if reason:
            self._finished = True
            mapped = finish_reason(reason, index in self._tool_calls)
            out += _frame(writer, index, {}, mapped, None)
        return out


def _frame(
    writer: ChunkWriter,
    index: int,
    delta: dict[str, Any],
    finish: str | None,
    probs: dict[str, Any] | None,
) -> bytes:
    choice: dict[str, Any] = {"index": index, "delta": delta, "finish_reason": finish}
    if probs is not None:
        choice["logprobs"] = probs
    return data_frame(
        {
            "id": writer.id,
            "object": "chat.completion.chunk",
            "created": writer.created,
            "model": writer.model,
            "choices": [choice],
        }
    )
