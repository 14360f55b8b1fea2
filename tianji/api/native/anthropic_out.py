"""OpenAI chat response -> Anthropic `message`, and OpenAI chunk stream -> Anthropic events.

The stream writer is incremental: every OpenAI chunk becomes its Anthropic
events at once (`message_start` on the first chunk, then `content_block_start`
/ `content_block_delta` / `content_block_stop` per text, thinking or tool_use
block, tool arguments as `input_json_delta`), and `message_delta` (stop reason,
usage) + `message_stop` when the OpenAI stream ends. OpenAI sends usage last,
so `message_start` carries a local estimate of the input tokens and
`message_delta` the provider's counts (the anthropic SDK takes the later ones).
"""

from __future__ import annotations

import uuid
from typing import Any

import msgspec

from tianji import tokens
from tianji.api.native.errors import anthropic_error_event
from tianji.errors import TianjiError, UpstreamError, UpstreamProtocolError
from tianji.providers.sse import SSEEvent, SSEParser

__all__ = ["AnthropicStreamWriter", "anthropic_usage", "stop_reason", "to_anthropic_message"]

_STOP = {
    "stop": "end_turn",
    "length": "max_tokens",
    "tool_calls": "tool_use",
    "function_call": "tool_use",
    "content_filter": "refusal",
}
_decode = msgspec.json.decode
_encode = msgspec.json.encode


def stop_reason(finish_reason: Any, has_tool_calls: bool) -> str:
    """OpenAI finish_reason -> Anthropic stop_reason (some providers say `stop` even
    when the turn ends with tool calls)."""
    if has_tool_calls and finish_reason in (None, "stop", "tool_calls", "function_call"):
        return "tool_use"
    return _STOP.get(finish_reason, "end_turn") if isinstance(finish_reason, str) else "end_turn"


def anthropic_usage(usage: Any) -> dict[str, int]:
    """Anthropic counts cache reads and writes apart from `input_tokens`; OpenAI's
    `prompt_tokens` includes them."""
    usage = usage if isinstance(usage, dict) else {}
    prompt = _int(usage.get("prompt_tokens"))
    details = usage.get("prompt_tokens_details")
    cached = _int(details.get("cached_tokens")) if isinstance(details, dict) else 0
    cached = cached or _int(usage.get("cache_read_input_tokens"))
    created = _int(usage.get("cache_creation_input_tokens"))
    return {
        "input_tokens": max(prompt - cached - created, 0),
        "output_tokens": _int(usage.get("completion_tokens")),
        "cache_read_input_tokens": cached,
        "cache_creation_input_tokens": created,
    }


def _int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def message_id(upstream_id: Any) -> str:
    if isinstance(upstream_id, str) and upstream_id:
        return upstream_id if upstream_id.startswith("msg_") else "msg_" + upstream_id
    return f"msg_{uuid.uuid4().hex}"


def to_anthropic_message(response: dict[str, Any], model: str) -> dict[str, Any]:
    choices = response.get("choices") or [{}]
    choice = choices[0] if isinstance(choices[0], dict) else {}
    message = choice.get("message") or {}
    content: list[dict[str, Any]] = []
    thinking_blocks = message.get("thinking_blocks")
    if isinstance(thinking_blocks, list) and thinking_blocks:
        content += [b for b in thinking_blocks if isinstance(b, dict)]
    elif isinstance(message.get("reasoning_content"), str) and message["reasoning_content"]:
        content.append(
            {"type": "thinking", "thinking": message["reasoning_content"], "signature": ""}
        )
    text = message.get("content")
    if isinstance(text, str) and text:
        content.append({"type": "text", "text": text})
    calls = message.get("tool_calls") or []
    for call in calls:
        function = call.get("function") or {}
        content.append(
            {
                "type": "tool_use",
                "id": call.get("id") or f"toolu_{uuid.uuid4().hex}",
                "name": function.get("name") or "",
                "input": _arguments(function.get("arguments")),
            }
        )
    return {
        "id": message_id(response.get("id")),
        "type": "message",
        "role": "assistant",
        "model": response.get("model") or model,
        "content": content,
        "stop_reason": stop_reason(choice.get("finish_reason"), bool(calls)),
        "stop_sequence": None,
        "usage": anthropic_usage(response.get("usage")),
    }


def _arguments(raw: Any) -> dict[str, Any]:
    if isinstance(raw, dict):
        return raw
    if not raw:
        return {}
    try:
        value = _decode(raw)
    except (msgspec.DecodeError, TypeError):
        value = None
    if not isinstance(value, dict):
        raise UpstreamProtocolError(
            "invalid response from upstream: tool call arguments are not a JSON object"
        )
    return value


def _error_status(code: Any) -> int:
    """An error frame's `code` as a status: an int, or digits (tianji and LiteLLM send
    `"429"`); anything else (`"context_length_exceeded"`) is an upstream failure."""
    if isinstance(code, str) and code.isdigit():
        code = int(code)
    return code if isinstance(code, int) and 400 <= code <= 599 else 502


def _event(kind: str, payload: dict[str, Any]) -> bytes:
    return b"event: " + kind.encode() + b"\ndata: " + _encode({"type": kind, **payload}) + b"\n\n"


class AnthropicStreamWriter:
    """OpenAI `chat.completion.chunk` SSE bytes in (cut anywhere), Anthropic events out."""

    def __init__(self, model: str, input_tokens: int = 0) -> None:
        self._parser = SSEParser()
        self._model = model
        self._input_tokens = input_tokens
        self._started = False
        self.done = False
        self._blocks = 0
        self._open: str | None = None  # "text", "thinking" or "tool:<openai index>"
        self._tools: dict[int, int] = {}  # OpenAI tool index -> Anthropic block index
        self._finish: Any = None
        self._usage: Any = None
        self._text: list[str] = []

    def feed(self, chunk: bytes) -> bytes:
        return b"".join(self._handle(event) for event in self._parser.feed(chunk))

    def close(self) -> bytes:
        """End of the OpenAI stream: the final events, or an error event when the
        stream stopped before it finished. An event cut off by the end of the stream
        is discarded (as the SSE spec says), not parsed."""
        out = b""
        if self.done:
            return out
        if self._finish is None:
            return out + self.fail(
                UpstreamProtocolError("upstream stream ended before it finished")
            )
        return out + self._finish_message()

    def fail(self, exc: TianjiError) -> bytes:
        self.done = True
        return anthropic_error_event(exc)

    def _handle(self, event: SSEEvent) -> bytes:
        if self.done or not event.data:
            return b""
        if event.data == "[DONE]":
            return self._finish_message()
        try:
            chunk = _decode(event.data)
        except msgspec.DecodeError:
            return self.fail(UpstreamProtocolError("invalid response from upstream: bad chunk"))
        if not isinstance(chunk, dict):
            return b""
        if isinstance(chunk.get("error"), dict):
            error = chunk["error"]
            message = str(error.get("message") or error)
            return self.fail(UpstreamError(message, status=_error_status(error.get("code"))))
        out = [self._start(chunk)]
        if chunk.get("usage"):
            self._usage = chunk["usage"]
        for choice in chunk.get("choices") or []:
            if isinstance(choice, dict) and choice.get("index", 0) == 0:
                out.append(self._delta(choice.get("delta") or {}))
                if choice.get("finish_reason"):
                    self._finish = choice["finish_reason"]
        return b"".join(out)

    def _start(self, chunk: dict[str, Any]) -> bytes:
        if self._started:
            return b""
        self._started = True
        message: dict[str, Any] = {
            "id": message_id(chunk.get("id")),
            "type": "message",
            "role": "assistant",
            "model": chunk.get("model") or self._model,
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
            "usage": {"input_tokens": self._input_tokens, "output_tokens": 0},
        }
        return _event("message_start", {"message": message})

    def _delta(self, delta: dict[str, Any]) -> bytes:
        out: list[bytes] = []
        reasoning = delta.get("reasoning_content")
        if isinstance(reasoning, str) and reasoning:
            out.append(
                self._switch("thinking", {"type": "thinking", "thinking": "", "signature": ""})
            )
            out.append(self._block_delta({"type": "thinking_delta", "thinking": reasoning}))
        text = delta.get("content")
        if isinstance(text, str) and text:
            self._text.append(text)
            out.append(self._switch("text", {"type": "text", "text": ""}))
            out.append(self._block_delta({"type": "text_delta", "text": text}))
        for call in delta.get("tool_calls") or []:
            out.append(self._tool_delta(call))
        return b"".join(out)

    def _tool_delta(self, call: dict[str, Any]) -> bytes:
        index = call.get("index", 0)
        function = call.get("function") or {}
        out = b""
        if index not in self._tools:
            block: dict[str, Any] = {
                "type": "tool_use",
                "id": call.get("id") or f"toolu_{uuid.uuid4().hex}",
                "name": function.get("name") or "",
                "input": {},
            }
            out += self._switch(f"tool:{index}", block)
            self._tools[index] = self._blocks - 1
        arguments = function.get("arguments")
        if isinstance(arguments, str) and arguments:
            self._text.append(arguments)
            delta = {"type": "input_json_delta", "partial_json": arguments}
            out += _event("content_block_delta", {"index": self._tools[index], "delta": delta})
        return out

    def _switch(self, kind: str, block: dict[str, Any]) -> bytes:
        """Open a block of `kind` unless it is the open one (closing the previous)."""
        if self._open == kind:
            return b""
        out = self._close_block()
        self._open = kind
        self._blocks += 1
        return out + _event(
            "content_block_start", {"index": self._blocks - 1, "content_block": block}
        )

    def _block_delta(self, delta: dict[str, Any]) -> bytes:
        return _event("content_block_delta", {"index": self._blocks - 1, "delta": delta})

    def _close_block(self) -> bytes:
        if self._open is None:
            return b""
        self._open = None
        return _event("content_block_stop", {"index": self._blocks - 1})

    def _finish_message(self) -> bytes:
        self.done = True
        out = self._start({}) + self._close_block()
        if self._usage:
            usage = anthropic_usage(self._usage)
        else:  # the provider sent no usage: count what was streamed
            output = tokens.count_text("".join(self._text), self._model)
            usage = {"input_tokens": self._input_tokens, "output_tokens": output}
        delta = {"stop_reason": stop_reason(self._finish, bool(self._tools)), "stop_sequence": None}
        out += _event("message_delta", {"delta": delta, "usage": usage})
        return out + _event("message_stop", {})
