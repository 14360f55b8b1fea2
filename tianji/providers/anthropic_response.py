"""Anthropic Messages responses and errors -> OpenAI shapes (providers.md §3.1).

Shared by the whole-body path (`chat_completion`, `text_completion`) and the
stream translator (finish reasons, usage, error events).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Mapping
from typing import Any

import msgspec

from tianji.errors import TianjiError, UpstreamProtocolError
from tianji.providers.anthropic_request import JSON_TOOL
from tianji.providers.errors import provider_error
from tianji.providers.shapes import cached_usage

__all__ = [
    "chat_completion",
    "decode_message",
    "error_from_body",
    "error_from_event",
    "finish_reason",
    "json_text",
    "openai_usage",
    "text_completion",
]

_FINISH = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "pause_turn": "stop",
    "max_tokens": "length",
    "model_context_window_exceeded": "length",
    "tool_use": "tool_calls",
    "refusal": "content_filter",
}
# Anthropic error type -> HTTP status, for errors that arrive inside a 200 stream.
_ERROR_STATUS = {
    "invalid_request_error": 400,
    "authentication_error": 401,
    "billing_error": 402,
    "permission_error": 403,
    "not_found_error": 404,
    "request_too_large": 413,
    "rate_limit_error": 429,
    "api_error": 500,
    "timeout_error": 504,
    "overloaded_error": 529,
}


def finish_reason(stop_reason: str | None, *, json_answer: bool = False) -> str:
    """OpenAI finish_reason; a forced JSON-tool answer is a normal `stop` for the client."""
    mapped = _FINISH.get(stop_reason or "", "stop")
    return "stop" if json_answer and mapped == "tool_calls" else mapped


def openai_usage(usage: Mapping[str, Any]) -> dict[str, Any]:
    """Cached prompt tokens are prompt tokens too: Anthropic counts them separately."""
    return cached_usage(
        int(usage.get("input_tokens") or 0),
        int(usage.get("cache_read_input_tokens") or 0),
        int(usage.get("cache_creation_input_tokens") or 0),
        int(usage.get("output_tokens") or 0),
    )


def json_text(value: Any) -> str:
    return msgspec.json.encode(value).decode()


def decode_message(provider: str, body: bytes) -> dict[str, Any]:
    try:
        message = msgspec.json.decode(body)
    except msgspec.DecodeError:
        message = None
    if not isinstance(message, dict) or not isinstance(message.get("content"), list):
        raise UpstreamProtocolError(f"invalid response from {provider}: not a Messages object")
    return message


def chat_completion(message: Mapping[str, Any], *, model: str, json_mode: bool) -> dict[str, Any]:
    texts: list[str] = []
    reasoning: list[str] = []
    thinking_blocks: list[dict[str, Any]] = []
    tool_calls: list[dict[str, Any]] = []
    json_answer = False
    for block in message["content"]:
        kind = block.get("type")
        if kind == "text":
            texts.append(block.get("text", ""))
        elif kind == "thinking":
            reasoning.append(block.get("thinking", ""))
            thinking_blocks.append(_thinking(block))
        elif kind == "redacted_thinking":
            thinking_blocks.append({"type": "redacted_thinking", "data": block.get("data")})
        elif kind == "tool_use" and json_mode and block.get("name") == JSON_TOOL:
            texts.append(json_text(block.get("input", {})))
            json_answer = True
        elif kind == "tool_use":
            tool_calls.append(_tool_call(block))
    reply: dict[str, Any] = {"role": "assistant", "content": "".join(texts) or None}
    if tool_calls:
        reply["tool_calls"] = tool_calls
    if thinking_blocks:
        reply["reasoning_content"] = "".join(reasoning)
        reply["thinking_blocks"] = thinking_blocks
    finish = finish_reason(message.get("stop_reason"), json_answer=json_answer and not tool_calls)
    return {
        "id": message.get("id") or f"chatcmpl-{uuid.uuid4().hex}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": message.get("model") or model,
        "choices": [{"index": 0, "message": reply, "finish_reason": finish, "logprobs": None}],
        "usage": openai_usage(message.get("usage") or {}),
    }


def text_completion(message: Mapping[str, Any], *, model: str) -> dict[str, Any]:
    text = "".join(b.get("text", "") for b in message["content"] if b.get("type") == "text")
    choice = {
        "text": text,
        "index": 0,
        "logprobs": None,
        "finish_reason": finish_reason(message.get("stop_reason")),
    }
    return {
        "id": message.get("id") or f"cmpl-{uuid.uuid4().hex}",
        "object": "text_completion",
        "created": int(time.time()),
        "model": message.get("model") or model,
        "choices": [choice],
        "usage": openai_usage(message.get("usage") or {}),
    }


def _thinking(block: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "type": "thinking",
        "thinking": block.get("thinking", ""),
        "signature": block.get("signature", ""),
    }


def _tool_call(block: Mapping[str, Any]) -> dict[str, Any]:
    function = {"name": block.get("name"), "arguments": json_text(block.get("input", {}))}
    return {"id": block.get("id"), "type": "function", "function": function}


# --------------------------------------------------------------------------- errors


def error_from_body(
    provider: str, status: int, body: bytes, retry_after: str | None = None
) -> TianjiError:
    """An Anthropic error response (`{"type":"error","error":{"type","message"}}`). The
    HTTP status decides the client's status; "prompt is too long" becomes
    context_length_exceeded in provider_error."""
    return provider_error(provider, status, _error_message(body), retry_after=retry_after)


def error_from_event(provider: str, data: Mapping[str, Any]) -> TianjiError:
    """An `error` event inside a stream: no HTTP status, so the type says what it was."""
    error = data.get("error")
    error = error if isinstance(error, dict) else {}
    kind = str(error.get("type") or "api_error")
    message = str(error.get("message") or kind)
    return provider_error(provider, _ERROR_STATUS.get(kind, 500), message)


def _error_message(body: bytes) -> str:
    try:
        data = msgspec.json.decode(body)
    except msgspec.DecodeError:
        return body.decode("utf-8", "replace").strip()[:500] or "empty error response"
    error = data.get("error") if isinstance(data, dict) else None
    if isinstance(error, dict) and error.get("message"):
        return str(error["message"])
    return str(data)[:500]
