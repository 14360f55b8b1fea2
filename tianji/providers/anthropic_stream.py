"""Anthropic Messages SSE -> OpenAI SSE (providers.md §3.1, the event table).

Anthropic numbers content blocks across text, thinking and tool blocks; OpenAI
numbers tool calls among themselves, so each tool block gets the next tool
ordinal when it starts. Usage arrives in two halves (input side in
`message_start`, cumulative output in `message_delta`) and is written once,
after the finish chunk, when the client asked for it.
"""

from __future__ import annotations

import contextlib
from typing import Any

import msgspec

from tianji.errors import TianjiError, UpstreamProtocolError
from tianji.providers.anthropic_request import JSON_TOOL
from tianji.providers.anthropic_response import error_from_event, finish_reason, openai_usage
from tianji.providers.sse import DONE, ChunkWriter, SSEEvent, SSEParser, data_frame

__all__ = ["AnthropicStream"]


class _ChatFrames:
    """`chat.completion.chunk` frames."""

    def __init__(self, message_id: str, model: str) -> None:
        self._writer = ChunkWriter(model, message_id)

    def start(self) -> bytes:
        return self._writer.chunk({"role": "assistant", "content": ""})

    def text(self, text: str) -> bytes:
        return self._writer.chunk({"content": text})

    def reasoning(self, text: str) -> bytes:
        block = {"type": "thinking", "thinking": text}
        return self._writer.chunk({"reasoning_content": text, "thinking_blocks": [block]})

    def thinking_block(self, block: dict[str, Any]) -> bytes:
        return self._writer.chunk({"thinking_blocks": [block]})

    def tool_start(self, ordinal: int, call_id: str, name: str) -> bytes:
        call = {
            "index": ordinal,
            "id": call_id,
            "type": "function",
            "function": {"name": name, "arguments": ""},
        }
        return self._writer.chunk({"tool_calls": [call]})

    def tool_arguments(self, ordinal: int, fragment: str) -> bytes:
        call = {"index": ordinal, "function": {"arguments": fragment}}
        return self._writer.chunk({"tool_calls": [call]})

    def finish(self, reason: str) -> bytes:
        return self._writer.chunk({}, reason)

    def usage(self, usage: dict[str, Any]) -> bytes:
        return self._writer.usage(usage)


class _CompletionFrames(_ChatFrames):
    """`text_completion` frames (the /completions emulation): text only."""

    def __init__(self, message_id: str, model: str) -> None:
        super().__init__(message_id, model)
        self._base = {
            "id": self._writer.id,
            "object": "text_completion",
            "created": self._writer.created,
            "model": model,
        }

    def _frame(self, text: str, finish: str | None = None) -> bytes:
        choice = {"text": text, "index": 0, "logprobs": None, "finish_reason": finish}
        return data_frame({**self._base, "choices": [choice]})

    def start(self) -> bytes:
        return b""

    def text(self, text: str) -> bytes:
        return self._frame(text)

    def reasoning(self, text: str) -> bytes:
        return b""

    def thinking_block(self, block: dict[str, Any]) -> bytes:
        return b""

    def finish(self, reason: str) -> bytes:
        return self._frame("", reason)

    def usage(self, usage: dict[str, Any]) -> bytes:
        return data_frame({**self._base, "choices": [], "usage": usage})


class AnthropicStream:
    """A StreamTranslator: feed Anthropic SSE bytes (cut anywhere), get OpenAI SSE bytes."""

    def __init__(
        self,
        provider: str,
        model: str,
        *,
        include_usage: bool,
        json_mode: bool = False,
        text_completion: bool = False,
    ) -> None:
        self._provider = provider
        self._model = model
        self._include_usage = include_usage
        self._json_mode = json_mode
        self._frames_class = _CompletionFrames if text_completion else _ChatFrames
        self._frames: _ChatFrames | None = None
        self._parser = SSEParser()
        self._usage: dict[str, Any] = {}
        # Anthropic block index -> tool ordinal, or None for the JSON-mode tool.
        self._tools: dict[int, int | None] = {}
        self._tool_count = 0
        self._json_answer = False
        self._done = False
        self._pending: TianjiError | None = None

    def feed(self, chunk: bytes) -> bytes:
        self._raise_pending()
        out = b""
        for event in self._parser.feed(chunk):
            try:
                out += self._event(event)
            except TianjiError as exc:
                if not out:
                    raise
                # What came before the failure is sent first; the error follows at the
                # next call (the upstream ends the stream right after an error event).
                self._pending = exc
                break
        return out

    def close(self) -> bytes:
        self._raise_pending()
        out = b""
        # A last event without its blank line is still an event, unless it was cut
        # short (invalid JSON): then the stream was cut short too, as reported below.
        with contextlib.suppress(UpstreamProtocolError):
            out = b"".join(self._event(e) for e in self._parser.close())
        if not self._done:
            raise UpstreamProtocolError(f"{self._provider} stream ended before message_stop")
        return out

    def _raise_pending(self) -> None:
        if self._pending is not None:
            raise self._pending

    def _event(self, event: SSEEvent) -> bytes:
        if self._done:
            return b""
        try:
            data = msgspec.json.decode(event.data)
        except msgspec.DecodeError:
            raise UpstreamProtocolError(
                f"invalid event from {self._provider}: {event.data[:200]!r}"
            ) from None
        if not isinstance(data, dict):
            raise UpstreamProtocolError(f"invalid event from {self._provider}: not an object")
        kind = data.get("type") or event.event
        if kind == "error":
            raise error_from_event(self._provider, data)
        handler = _HANDLERS.get(kind)
        return handler(self, data) if handler is not None else b""  # ping, content_block_stop

    def _writer(self) -> _ChatFrames:
        if self._frames is None:  # a stream without message_start: still answer sensibly
            self._frames = self._frames_class("", self._model)
        return self._frames

    def _message_start(self, data: dict[str, Any]) -> bytes:
        message = data.get("message") or {}
        self._usage.update(message.get("usage") or {})
        self._frames = self._frames_class(
            message.get("id") or "", message.get("model") or self._model
        )
        return self._frames.start()

    def _block_start(self, data: dict[str, Any]) -> bytes:
        block = data.get("content_block") or {}
        kind = block.get("type")
        index = int(data.get("index", 0))
        writer = self._writer()
        if kind == "tool_use" and self._json_mode and block.get("name") == JSON_TOOL:
            self._tools[index] = None
            self._json_answer = True
            return b""
        if kind == "tool_use":
            ordinal = self._tools[index] = self._tool_count
            self._tool_count += 1
            return writer.tool_start(ordinal, str(block.get("id")), str(block.get("name")))
        if kind == "text" and block.get("text"):
            return writer.text(block["text"])
        if kind == "redacted_thinking":
            return writer.thinking_block({"type": "redacted_thinking", "data": block.get("data")})
        return b""

    def _block_delta(self, data: dict[str, Any]) -> bytes:
        delta = data.get("delta") or {}
        kind = delta.get("type")
        writer = self._writer()
        if kind == "text_delta":
            return writer.text(delta.get("text", ""))
        if kind == "input_json_delta":
            fragment = delta.get("partial_json", "")
            ordinal = self._tools.get(int(data.get("index", 0)))
            if ordinal is None:  # the JSON-mode tool: its input is the answer text
                return writer.text(fragment) if fragment else b""
            return writer.tool_arguments(ordinal, fragment)
        if kind == "thinking_delta":
            return writer.reasoning(delta.get("thinking", ""))
        if kind == "signature_delta":
            block = {"type": "thinking", "thinking": "", "signature": delta.get("signature", "")}
            return writer.thinking_block(block)
        return b""  # citations_delta and future delta types carry nothing OpenAI can show

    def _message_delta(self, data: dict[str, Any]) -> bytes:
        self._usage.update({k: v for k, v in (data.get("usage") or {}).items() if v is not None})
        stop_reason = (data.get("delta") or {}).get("stop_reason")
        json_answer = self._json_answer and self._tool_count == 0
        return self._writer().finish(finish_reason(stop_reason, json_answer=json_answer))

    def _message_stop(self, data: dict[str, Any]) -> bytes:
        self._done = True
        usage = self._writer().usage(openai_usage(self._usage)) if self._include_usage else b""
        return usage + DONE


_HANDLERS = {
    "message_start": AnthropicStream._message_start,
    "content_block_start": AnthropicStream._block_start,
    "content_block_delta": AnthropicStream._block_delta,
    "message_delta": AnthropicStream._message_delta,
    "message_stop": AnthropicStream._message_stop,
}
