"""Ollama's native API: `/api/chat`, `/api/generate` (completions), `/api/embed`.

Sampling parameters travel in `options` (`max_tokens` is `num_predict`); images
are base64 strings beside the text; tool calls carry no ids and their arguments
are JSON objects, so ids are made up (`call_<32 hex>`) and arguments encoded,
and a `role: tool` reply is sent back with the function's name, found through
its `tool_call_id` in the conversation. Streams are NDJSON lines ending with
`done: true`; Ollama streams unless told `"stream": false`.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Mapping
from typing import Any

import msgspec

from tianji.errors import InvalidRequest, TianjiError, UpstreamProtocolError
from tianji.providers.base import Call, StreamTranslator
from tianji.providers.errors import provider_error
from tianji.providers.ndjson import NDJSONSplitter
from tianji.providers.openai_compat import OpenAICompatAdapter, apply_params
from tianji.providers.shapes import (
    decode_object,
    embedding_inputs,
    embedding_list,
    error_message,
    openai_tool_calls,
    tool_names_by_id,
    upstream_shape,
)
from tianji.providers.sse import DONE, ChunkWriter, data_frame
from tianji.upstream.types import UpstreamRequest

__all__ = ["OllamaAdapter"]

_encode = msgspec.json.encode
# Request fields Ollama reads at the top level; every other one is a model option.
_TOP_LEVEL = frozenset(
    {"model", "messages", "prompt", "suffix", "system", "template", "raw", "images",
     "context", "tools", "format", "options", "stream", "keep_alive", "think"}
)  # fmt: skip


def _text_and_images(content: Any) -> tuple[str, list[str]]:
    if content is None or isinstance(content, str):
        return content or "", []
    texts: list[str] = []
    images: list[str] = []
    for part in content:
        if part.get("type") == "text":
            texts.append(part.get("text", ""))
        elif part.get("type") == "image_url":
            url = part.get("image_url")
            url = url.get("url", "") if isinstance(url, dict) else str(url)
            header, comma, data = url.partition(",")
            if not (url.startswith("data:") and ";base64" in header and comma):
                raise InvalidRequest(
                    "ollama takes images as base64 data: URLs, not links.", param="messages"
                )
            images.append(data)
    return "\n".join(texts), images


def _message(message: Mapping[str, Any], names: Mapping[str, str]) -> dict[str, Any]:
    role = message.get("role")
    text, images = _text_and_images(message.get("content"))
    out: dict[str, Any] = {"role": "system" if role == "developer" else role, "content": text}
    if images:
        out["images"] = images
    if message.get("tool_calls"):
        out["tool_calls"] = [_ollama_tool_call(tc) for tc in message["tool_calls"]]
    if role in ("tool", "function"):
        out["role"] = "tool"
        name = names.get(message.get("tool_call_id") or "") or message.get("name")
        if name:
            out["tool_name"] = name
    return out


def _ollama_tool_call(tool_call: Mapping[str, Any]) -> dict[str, Any]:
    function = tool_call.get("function") or {}
    arguments = function.get("arguments") or "{}"
    if isinstance(arguments, str):
        try:
            arguments = msgspec.json.decode(arguments)
        except msgspec.DecodeError:
            raise InvalidRequest(
                "tool call arguments must be a JSON object for ollama.", param="messages"
            ) from None
    return {"function": {"name": function.get("name"), "arguments": arguments}}


def _options(body: dict[str, Any]) -> dict[str, Any]:
    """Pops every model option from `body` (OpenAI names mapped) into Ollama's `options`."""
    options = dict(body.pop("options", None) or {})
    max_tokens = body.pop("max_tokens", None)
    max_completion = body.pop("max_completion_tokens", None)
    if max_tokens is not None or max_completion is not None:
        options["num_predict"] = max_tokens if max_tokens is not None else max_completion
    stop = body.pop("stop", None)
    if stop is not None:
        options["stop"] = [stop] if isinstance(stop, str) else stop
    for key in [k for k in body if k not in _TOP_LEVEL]:
        options[key] = body.pop(key)  # temperature, top_p, top_k, seed, penalties, num_ctx, ...
    return options


def _format(response_format: Any) -> Any:
    if not isinstance(response_format, dict):
        return None
    if response_format.get("type") == "json_object":
        return "json"
    if response_format.get("type") == "json_schema":
        return (response_format.get("json_schema") or {}).get("schema") or "json"
    return None


def _chat_body(body: dict[str, Any]) -> dict[str, Any]:
    messages = body.pop("messages", [])
    names = tool_names_by_id(messages)
    body["messages"] = [_message(m, names) for m in messages]
    tool_choice = body.pop("tool_choice", None)
    if tool_choice == "none":
        body.pop("tools", None)  # Ollama cannot be told not to call; hide the tools instead
    fmt = _format(body.pop("response_format", None))
    if fmt is not None:
        body["format"] = fmt
    effort = body.pop("reasoning_effort", None)
    if effort is not None:
        body["think"] = effort != "none"
    return body


def _generate_body(body: dict[str, Any]) -> dict[str, Any]:
    prompt = body.get("prompt")
    if isinstance(prompt, list) and len(prompt) == 1 and isinstance(prompt[0], str):
        body["prompt"] = prompt[0]
    elif not isinstance(prompt, str):
        raise InvalidRequest("ollama completions take one text prompt.", param="prompt")
    return body


def _embed_body(body: dict[str, Any]) -> dict[str, Any]:
    out = {"model": body.pop("model"), "input": embedding_inputs("ollama", body.pop("input", None))}
    body.pop("encoding_format", None)  # applied by tianji to the answer
    body.pop("user", None)
    return {**out, **body}  # dimensions, truncate, keep_alive, options


def _usage(data: Mapping[str, Any]) -> dict[str, int]:
    prompt = int(data.get("prompt_eval_count") or 0)
    completion = int(data.get("eval_count") or 0)
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
    }


def _finish(data: Mapping[str, Any], saw_tool_calls: bool) -> str:
    if data.get("done_reason") == "length":
        return "length"
    return "tool_calls" if saw_tool_calls else "stop"


def _line_error(data: Any) -> None:
    """Ollama reports failures inside a 200 answer as `{"error": "..."}`."""
    if isinstance(data, dict) and data.get("error"):
        raise provider_error("ollama", 500, str(data["error"]))


def _chat_response(data: dict[str, Any]) -> dict[str, Any]:
    message = data.get("message") or {}
    reply: dict[str, Any] = {"role": "assistant", "content": message.get("content") or None}
    if message.get("thinking"):
        reply["reasoning_content"] = message["thinking"]
    tool_calls = openai_tool_calls(message.get("tool_calls") or ())
    if tool_calls:
        reply["tool_calls"] = [{k: v for k, v in tc.items() if k != "index"} for tc in tool_calls]
    finish = _finish(data, bool(tool_calls))
    choice = {"index": 0, "message": reply, "logprobs": None, "finish_reason": finish}
    return {"id": f"chatcmpl-{uuid.uuid4().hex}", "object": "chat.completion", "choices": [choice]}


def _completion_response(data: dict[str, Any]) -> dict[str, Any]:
    choice = {
        "text": data.get("response", ""),
        "index": 0,
        "logprobs": None,
        "finish_reason": _finish(data, False),
    }
    return {"id": f"cmpl-{uuid.uuid4().hex}", "object": "text_completion", "choices": [choice]}


class _OllamaStream:
    """NDJSON lines -> OpenAI SSE: chat chunks for /api/chat, completion chunks for
    /api/generate; the `done: true` line brings finish reason and usage."""

    def __init__(self, call: Call) -> None:
        self._lines = NDJSONSplitter("ollama")
        self._writer = ChunkWriter(call.model)
        self._completion = call.operation == "text_completion"
        if self._completion:
            self._writer.id = f"cmpl-{uuid.uuid4().hex}"
        options = (call.body or {}).get("stream_options") or {}
        self._include_usage = bool(options.get("include_usage"))
        self._started = False
        self._tool_calls = 0
        self._ended = False

    def feed(self, chunk: bytes) -> bytes:
        with upstream_shape("ollama"):
            return b"".join(self._line(data) for data in self._lines.feed(chunk))

    def close(self) -> bytes:
        with upstream_shape("ollama"):
            out = b"".join(self._line(data) for data in self._lines.close())
        if not self._ended:
            raise UpstreamProtocolError("ollama stream ended before done")
        return out

    def _line(self, data: Any) -> bytes:
        _line_error(data)
        if self._ended or not isinstance(data, dict):
            return b""
        out = self._completion_delta(data) if self._completion else self._chat_delta(data)
        if data.get("done"):
            self._ended = True
            out += self._end(data)
        return out

    def _chat_delta(self, data: dict[str, Any]) -> bytes:
        message = data.get("message") or {}
        out = b""
        if not self._started:
            self._started = True
            out += self._writer.chunk({"role": "assistant", "content": ""})
        if message.get("thinking"):
            out += self._writer.chunk({"reasoning_content": message["thinking"]})
        if message.get("content"):
            out += self._writer.chunk({"content": message["content"]})
        if message.get("tool_calls"):
            calls = openai_tool_calls(message["tool_calls"], self._tool_calls)
            self._tool_calls += len(calls)
            out += self._writer.chunk({"tool_calls": calls})
        return out

    def _completion_delta(self, data: dict[str, Any]) -> bytes:
        text = data.get("response")
        return self._completion_frame(text, None) if text else b""

    def _completion_frame(self, text: str, finish: str | None) -> bytes:
        choice = {"text": text, "index": 0, "logprobs": None, "finish_reason": finish}
        return self._completion_chunk(choices=[choice])

    def _completion_chunk(self, **fields: Any) -> bytes:
        w = self._writer
        head = {"id": w.id, "object": "text_completion", "created": w.created, "model": w.model}
        return data_frame({**head, **fields})

    def _end(self, data: dict[str, Any]) -> bytes:
        finish = _finish(data, self._tool_calls > 0)
        if self._completion:
            out = self._completion_frame("", finish)
            if self._include_usage:
                out += self._completion_chunk(choices=[], usage=_usage(data))
        else:
            out = self._writer.chunk({}, finish)
            if self._include_usage:
                out += self._writer.usage(_usage(data))
        return out + DONE


class OllamaAdapter(OpenAICompatAdapter):
    name = "ollama"

    def build_request(self, call: Call) -> UpstreamRequest:
        body = apply_params(call)
        body.pop("stream_options", None)  # usage is always on the done line
        if call.operation == "embeddings":
            native = _embed_body(body)
        else:
            if call.operation == "chat":
                body = _chat_body(body)
            elif call.operation == "text_completion":
                body = _generate_body(body)
            else:
                raise InvalidRequest(f"ollama does not support {call.operation}")
            body["stream"] = bool(body.get("stream"))
            options = _options(body)
            native = {**body, "options": options} if options else body
        headers = self.headers(call, "application/json")
        return UpstreamRequest("POST", self.url(call), headers, _encode(native))

    def translate_response(self, call: Call, body: bytes) -> bytes | None:
        data = decode_object("ollama", body)
        _line_error(data)
        with upstream_shape("ollama"):
            return self._translate(call, data)

    @staticmethod
    def _translate(call: Call, data: dict[str, Any]) -> bytes:
        if call.operation == "embeddings":
            return embedding_list(
                call.model,
                data.get("embeddings") or [],
                int(data.get("prompt_eval_count") or 0),
                (call.body or {}).get("encoding_format"),
            )
        if call.operation == "text_completion":
            answer = _completion_response(data)
        else:
            answer = _chat_response(data)
        answer.update(created=int(time.time()), model=call.model, usage=_usage(data))
        return _encode(answer)

    def stream_translator(self, call: Call) -> StreamTranslator | None:
        return _OllamaStream(call) if call.operation != "embeddings" else None

    def error_from_status(
        self, call: Call, status: int, headers: Mapping[str, str], body: bytes
    ) -> TianjiError:
        message = error_message(body, "error", "message")
        return provider_error("ollama", status, message, retry_after=headers.get("retry-after"))
