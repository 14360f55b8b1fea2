"""Bedrock Converse response -> OpenAI chat completion; ConverseStream -> OpenAI SSE.

Tables in providers.md §3.3. A JSON-mode request was sent as a forced tool
(`bedrock_request.JSON_TOOL`): that tool's input comes back as the message
content, with `finish_reason: stop`.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from typing import Any

import msgspec

from tianji.errors import TianjiError, UpstreamProtocolError
from tianji.providers.base import Call
from tianji.providers.eventstream import EventStreamDecoder, Frame
from tianji.providers.shapes import cached_usage
from tianji.providers.sse import DONE, ChunkWriter

__all__ = ["ConverseStreamTranslator", "chat_response", "finish_reason", "openai_usage"]

_FINISH = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "max_tokens": "length",
    "model_context_window_exceeded": "length",
    "tool_use": "tool_calls",
    "guardrail_intervened": "content_filter",
    "content_filtered": "content_filter",
}
_encode = msgspec.json.encode


def finish_reason(stop_reason: Any, answered_as_json: bool) -> str:
    reason = _FINISH.get(str(stop_reason), "stop")
    return "stop" if answered_as_json and reason == "tool_calls" else reason


def openai_usage(usage: Any) -> dict[str, Any]:
    """Converse usage -> OpenAI usage. Bedrock's inputTokens excludes cached tokens,
    so the prompt is input + cache reads + cache writes."""
    usage = usage if isinstance(usage, dict) else {}
    return cached_usage(
        int(usage.get("inputTokens") or 0),
        int(usage.get("cacheReadInputTokens") or 0),
        int(usage.get("cacheWriteInputTokens") or 0),
        int(usage.get("outputTokens") or 0),
    )


def chat_response(model: str, data: dict[str, Any], json_tool: str | None) -> dict[str, Any]:
    output = data.get("output")
    message = output.get("message") if isinstance(output, dict) else None
    if not isinstance(message, dict) or not isinstance(message.get("content"), list):
        raise UpstreamProtocolError("invalid response from bedrock: no output.message.content")
    texts: list[str] = []
    tool_calls: list[dict[str, Any]] = []
    reasoning: list[str] = []
    thinking_blocks: list[dict[str, Any]] = []
    answered_as_json = False
    for block in message["content"]:
        if "text" in block:
            texts.append(block["text"])
        elif "toolUse" in block:
            use = block["toolUse"]
            arguments = _encode(use.get("input", {})).decode()
            if json_tool is not None and use.get("name") == json_tool:
                texts.append(arguments)
                answered_as_json = True
                continue
            function = {"name": use.get("name"), "arguments": arguments}
            tool_calls.append(
                {"id": use.get("toolUseId"), "type": "function", "function": function}
            )
        elif "reasoningContent" in block:
            thinking_blocks.append(_thinking_block(block["reasoningContent"], reasoning))
    reply: dict[str, Any] = {"role": "assistant", "content": "".join(texts) or None}
    if tool_calls:
        reply["tool_calls"] = tool_calls
    if thinking_blocks:
        reply["reasoning_content"] = "".join(reasoning)
        reply["thinking_blocks"] = thinking_blocks
    choice = {
        "index": 0,
        "message": reply,
        "finish_reason": finish_reason(data.get("stopReason"), answered_as_json),
    }
    return {
        "id": f"chatcmpl-{uuid.uuid4().hex}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [choice],
        "usage": openai_usage(data.get("usage")),
    }


def _thinking_block(content: dict[str, Any], reasoning: list[str]) -> dict[str, Any]:
    if "redactedContent" in content:
        return {"type": "redacted_thinking", "data": content["redactedContent"]}
    text = content.get("reasoningText") or {}
    reasoning.append(text.get("text", ""))
    block = {"type": "thinking", "thinking": text.get("text", "")}
    if text.get("signature"):
        block["signature"] = text["signature"]
    return block


class ConverseStreamTranslator:
    """ConverseStream event-stream bytes -> OpenAI `chat.completion.chunk` frames."""

    def __init__(
        self,
        call: Call,
        model: str,
        json_tool: str | None,
        on_exception: Callable[[Frame], TianjiError],
    ) -> None:
        self._decoder = EventStreamDecoder()
        self._writer = ChunkWriter(model)
        self._json_tool = json_tool
        self._on_exception = on_exception
        options = (call.body or {}).get("stream_options")
        self._include_usage = isinstance(options, dict) and bool(options.get("include_usage"))
        # contentBlockIndex -> OpenAI tool index; blocks of the JSON tool map to None.
        self._tools: dict[int, int | None] = {}
        self._tool_count = 0
        self._answered_as_json = False
        self._finished = False
        self._done = False
        self._error: TianjiError | None = None

    def feed(self, chunk: bytes) -> bytes:
        if self._error is not None:
            raise self._error
        out = b""
        for frame in self._decoder.feed(chunk):
            try:
                out += self._frame(frame)
            except TianjiError as exc:
                if not out:
                    raise
                # Deliver what came before the failure; the error ends the stream next.
                self._error = exc
                break
        return out

    def close(self) -> bytes:
        if self._error is not None:
            raise self._error
        if self._done:
            return b""
        if self._decoder.pending or not self._finished:
            raise UpstreamProtocolError("bedrock stream ended before messageStop")
        self._done = True
        return DONE

    def _frame(self, frame: Frame) -> bytes:
        if frame.message_type != "event":
            raise self._on_exception(frame)
        try:
            event = msgspec.json.decode(frame.payload) if frame.payload else {}
        except msgspec.DecodeError:
            raise UpstreamProtocolError("invalid event from bedrock: not JSON") from None
        handler = _HANDLERS.get(frame.event_type)
        return handler(self, event) if handler is not None and not self._done else b""

    def _message_start(self, event: dict[str, Any]) -> bytes:
        return self._writer.chunk({"role": "assistant", "content": ""})

    def _block_start(self, event: dict[str, Any]) -> bytes:
        use = (event.get("start") or {}).get("toolUse")
        if not isinstance(use, dict):
            return b""
        block = int(event.get("contentBlockIndex", 0))
        if self._json_tool is not None and use.get("name") == self._json_tool:
            self._tools[block] = None
            self._answered_as_json = True
            return b""
        index = self._tools[block] = self._tool_count
        self._tool_count += 1
        function = {"name": use.get("name"), "arguments": ""}
        call = {
            "index": index,
            "id": use.get("toolUseId"),
            "type": "function",
            "function": function,
        }
        return self._writer.chunk({"tool_calls": [call]})

    def _block_delta(self, event: dict[str, Any]) -> bytes:
        delta = event.get("delta") or {}
        if "text" in delta:
            return self._writer.chunk({"content": delta["text"]})
        if "toolUse" in delta:
            fragment = (delta["toolUse"] or {}).get("input", "")
            index = self._tools.get(int(event.get("contentBlockIndex", 0)))
            if index is None:  # the JSON-mode tool: its input is the answer
                return self._writer.chunk({"content": fragment})
            return self._writer.chunk(
                {"tool_calls": [{"index": index, "function": {"arguments": fragment}}]}
            )
        reasoning = delta.get("reasoningContent")
        if isinstance(reasoning, dict):
            if "text" in reasoning:
                return self._writer.chunk({"reasoning_content": reasoning["text"]})
            if "signature" in reasoning:
                block = {"type": "thinking", "thinking": "", "signature": reasoning["signature"]}
                return self._writer.chunk({"thinking_blocks": [block]})
            if "redactedContent" in reasoning:
                block = {"type": "redacted_thinking", "data": reasoning["redactedContent"]}
                return self._writer.chunk({"thinking_blocks": [block]})
        return b""

    def _message_stop(self, event: dict[str, Any]) -> bytes:
        self._finished = True
        reason = finish_reason(event.get("stopReason"), self._answered_as_json)
        return self._writer.chunk({}, reason)

    def _metadata(self, event: dict[str, Any]) -> bytes:
        self._done = self._finished
        usage = self._writer.usage(openai_usage(event.get("usage"))) if self._include_usage else b""
        return usage + DONE if self._done else usage


_Handler = Callable[[ConverseStreamTranslator, dict[str, Any]], bytes]
_HANDLERS: dict[str, _Handler] = {
    "messageStart": ConverseStreamTranslator._message_start,
    "contentBlockStart": ConverseStreamTranslator._block_start,
    "contentBlockDelta": ConverseStreamTranslator._block_delta,
    "messageStop": ConverseStreamTranslator._message_stop,
    "metadata": ConverseStreamTranslator._metadata,
}
