"""Cloudflare Workers AI: `{api_base}/accounts/{account_id}/ai/run/{model}`.

One URL per model serves chat and embeddings. The account id comes from the
model (`cloudflare/{account_id}/@cf/...`, the Go form) or `CLOUDFLARE_ACCOUNT_ID`;
an api_base that already ends in `/ai/run` is used as is. Answers are wrapped
in `{"result", "success", "errors"}`; the stream is SSE `data: {"response"}`
frames (not OpenAI chunks) ending with `[DONE]`, usage in the last frame when the
model reports it, else counted by tianji.
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Mapping
from typing import Any

import msgspec

from tianji.compile.model import Deployment
from tianji.errors import InvalidRequest, TianjiError, UpstreamProtocolError
from tianji.providers.base import Call, StreamTranslator
from tianji.providers.errors import provider_error
from tianji.providers.openai_compat import OpenAICompatAdapter, apply_params
from tianji.providers.shapes import (
    decode_object,
    embedding_inputs,
    embedding_list,
    openai_tool_calls,
    tool_names_by_id,
    upstream_shape,
)
from tianji.providers.sse import DONE, ChunkWriter, SSEParser
from tianji.tokens import count_messages, count_text
from tianji.upstream.types import UpstreamRequest

__all__ = ["ACCOUNT_ENV", "CloudflareAdapter"]

ACCOUNT_ENV = "CLOUDFLARE_ACCOUNT_ID"
_encode = msgspec.json.encode


def account_and_model(model: str) -> tuple[str | None, str]:
    """`{account_id}/@cf/meta/x` -> (account_id, `@cf/meta/x`); `@cf/meta/x` -> (None, same)."""
    head, sep, rest = model.partition("/")
    if sep and not head.startswith("@") and rest.startswith("@"):
        return head, rest
    return None, model


def _url(call: Call) -> str:
    account, model = account_and_model(call.model)
    base = call.deployment.api_base
    if base.endswith("/ai/run"):
        return f"{base}/{model}"
    account = account or os.environ.get(ACCOUNT_ENV)
    if not account:
        raise TianjiError(
            f"cloudflare deployment {call.deployment.group!r} has no account id: set "
            f"{ACCOUNT_ENV} or use the model form cloudflare/<account_id>/@cf/...",
            status=500,
            code="cloudflare_account_id_missing",
        )
    return f"{base}/accounts/{account}/ai/run/{model}"


def _message(message: Mapping[str, Any], names: Mapping[str, str]) -> dict[str, Any]:
    """Workers AI messages carry text content; a tool reply names its function."""
    content = message.get("content")
    if isinstance(content, list):
        if any(part.get("type") != "text" for part in content):
            raise InvalidRequest("cloudflare chat takes text content only.", param="messages")
        content = "\n".join(part.get("text", "") for part in content)
    role = message.get("role")
    out: dict[str, Any] = {"role": "system" if role == "developer" else role}
    out["content"] = content or ""
    if message.get("tool_calls"):
        out["tool_calls"] = [
            {"name": tc["function"]["name"], "arguments": tc["function"].get("arguments")}
            for tc in message["tool_calls"]
        ]
    if role == "tool":
        name = names.get(message.get("tool_call_id") or "") or message.get("name")
        if name:
            out["name"] = name
    return out


def _chat_body(body: dict[str, Any]) -> dict[str, Any]:
    body.pop("model")  # the model is in the URL
    body.pop("stream_options", None)
    messages = body.pop("messages", [])
    names = tool_names_by_id(messages)
    max_completion = body.pop("max_completion_tokens", None)
    if max_completion is not None:
        body.setdefault("max_tokens", max_completion)
    if not body.get("stream"):
        body.pop("stream", None)
    return {"messages": [_message(m, names) for m in messages], **body}


def _usage(prompt: int, completion: int) -> dict[str, int]:
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
    }


def _counted_usage(call: Call, text: str) -> dict[str, int]:
    """Usage estimated with tianji's tokenizer when the model reports none."""
    messages = (call.body or {}).get("messages") or []
    return _usage(count_messages(messages, call.model), count_text(text, call.model))


def _reported_usage(usage: Any) -> dict[str, int] | None:
    if not isinstance(usage, dict) or "prompt_tokens" not in usage:
        return None
    return _usage(int(usage.get("prompt_tokens") or 0), int(usage.get("completion_tokens") or 0))


def _result(data: dict[str, Any]) -> Any:
    if data.get("success") is False:
        raise provider_error("cloudflare", 500, _first_error(data))
    return data.get("result") or {}


def _first_error(data: Mapping[str, Any]) -> str:
    errors = data.get("errors") or []
    first = errors[0] if errors and isinstance(errors[0], dict) else {}
    return str(first.get("message") or "request failed")


def _chat_response(call: Call, result: Mapping[str, Any]) -> bytes:
    text = result.get("response")
    if text is not None and not isinstance(text, str):
        text = _encode(text).decode()  # JSON-mode models answer an object
    reply: dict[str, Any] = {"role": "assistant", "content": text or None}
    tool_calls = openai_tool_calls(result.get("tool_calls") or ())
    if tool_calls:
        reply["tool_calls"] = [{k: v for k, v in tc.items() if k != "index"} for tc in tool_calls]
    finish = "tool_calls" if tool_calls else "stop"
    choice = {"index": 0, "message": reply, "logprobs": None, "finish_reason": finish}
    usage = _reported_usage(result.get("usage")) or _counted_usage(call, text or "")
    return _encode(
        {
            "id": f"chatcmpl-{uuid.uuid4().hex}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": call.model,
            "choices": [choice],
            "usage": usage,
        }
    )


class _CloudflareStream:
    """`data: {"response": "..."}` frames -> OpenAI chunks; `[DONE]` ends the stream."""

    def __init__(self, call: Call) -> None:
        self._call = call
        self._parser = SSEParser()
        self._writer = ChunkWriter(call.model)
        options = (call.body or {}).get("stream_options") or {}
        self._include_usage = bool(options.get("include_usage"))
        self._text: list[str] = []
        self._usage: dict[str, int] | None = None
        self._tool_calls = 0
        self._role_sent = False
        self._ended = False

    def feed(self, chunk: bytes) -> bytes:
        with upstream_shape("cloudflare"):
            return b"".join(self._frame(event.data) for event in self._parser.feed(chunk))

    def close(self) -> bytes:
        with upstream_shape("cloudflare"):
            out = b"".join(self._frame(event.data) for event in self._parser.close())
        if not self._ended:
            raise UpstreamProtocolError("cloudflare stream ended before [DONE]")
        return out

    def _frame(self, raw: str) -> bytes:
        if self._ended or not raw.strip():
            return b""
        if raw.strip() == "[DONE]":
            return self._end()
        data = decode_object("cloudflare", raw.encode())
        if data.get("success") is False:
            raise provider_error("cloudflare", 500, _first_error(data))
        out = self._role_chunk()
        text = data.get("response")
        if text:
            self._text.append(text)
            out += self._writer.chunk({"content": text})
        if data.get("tool_calls"):
            calls = openai_tool_calls(data["tool_calls"], self._tool_calls)
            self._tool_calls += len(calls)
            out += self._writer.chunk({"tool_calls": calls})
        self._usage = _reported_usage(data.get("usage")) or self._usage
        return out

    def _role_chunk(self) -> bytes:
        if self._role_sent:
            return b""
        self._role_sent = True
        return self._writer.chunk({"role": "assistant", "content": ""})

    def _end(self) -> bytes:
        self._ended = True
        out = self._role_chunk()
        out += self._writer.chunk({}, "tool_calls" if self._tool_calls else "stop")
        if self._include_usage:
            usage = self._usage or _counted_usage(self._call, "".join(self._text))
            out += self._writer.usage(usage)
        return out + DONE


class CloudflareAdapter(OpenAICompatAdapter):
    name = "cloudflare"

    def check(self, deployment: Deployment, env: Mapping[str, str]) -> list[str]:
        """Configuration problems `tianji check` reports for this deployment."""
        account, _ = account_and_model(deployment.model)
        if account or env.get(ACCOUNT_ENV) or deployment.api_base.endswith("/ai/run"):
            return []
        return [
            f"no Cloudflare account id: set {ACCOUNT_ENV} or use the model form "
            "cloudflare/<account_id>/@cf/..."
        ]

    def build_request(self, call: Call) -> UpstreamRequest:
        body = apply_params(call)
        if call.operation == "chat":
            native = _chat_body(body)
        elif call.operation == "embeddings":
            native = {"text": embedding_inputs("cloudflare", body.get("input"))}
        else:
            raise InvalidRequest(f"cloudflare does not support {call.operation}")
        headers = self.headers(call, "application/json")
        return UpstreamRequest("POST", _url(call), headers, _encode(native))

    def translate_response(self, call: Call, body: bytes) -> bytes | None:
        result = _result(decode_object("cloudflare", body))
        with upstream_shape("cloudflare"):
            return self._translate(call, result)

    @staticmethod
    def _translate(call: Call, result: Mapping[str, Any]) -> bytes:
        if call.operation == "embeddings":
            request = call.body or {}
            texts = embedding_inputs("cloudflare", request.get("input"))
            tokens = sum(count_text(text, call.model) for text in texts)
            vectors = result.get("data") or []
            return embedding_list(call.model, vectors, tokens, request.get("encoding_format"))
        return _chat_response(call, result)

    def stream_translator(self, call: Call) -> StreamTranslator | None:
        return _CloudflareStream(call) if call.operation == "chat" else None

    def error_from_status(
        self, call: Call, status: int, headers: Mapping[str, str], body: bytes
    ) -> TianjiError:
        try:
            message = _first_error(msgspec.json.decode(body))
        except (msgspec.DecodeError, AttributeError):
            message = body.decode("utf-8", "replace").strip()[:500] or "empty error response"
        return provider_error("cloudflare", status, message, retry_after=headers.get("retry-after"))
