"""Replicate predictions behind chat, completions and image generation (providers.md §3.8).

A call is several exchanges, so the adapter has the async hook `complete(call, send)`:
create the prediction (`Prefer: wait=60` lets Replicate answer with the finished
prediction when it is quick), then poll `urls.get` until a terminal status; or, for a
stream, open `urls.stream` (SSE `output` / `error` / `done`). Chat messages become one
prompt: the system text goes to `system_prompt`, a single user turn is the prompt as
it is (models apply their own chat template to it), longer conversations are rendered
as `User: …` / `Assistant: …` lines ending with `Assistant:`.
"""

from __future__ import annotations

import asyncio
import math
import time
import uuid
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

import msgspec

from tianji.errors import InvalidRequest, TianjiError, UpstreamError, UpstreamTimeout
from tianji.providers.base import Call, Send, StreamTranslator
from tianji.providers.errors import provider_error
from tianji.providers.openai_compat import apply_params
from tianji.providers.replicate_stream import (
    BufferedResponse,
    PredictionStream,
    PredictionTranslator,
    finish_reason,
    prediction_usage,
)
from tianji.upstream.types import Timeouts, UpstreamRequest, UpstreamResponse

__all__ = ["ReplicateAdapter", "render_prompt"]

_PROVIDER = "replicate"
TERMINAL = frozenset({"succeeded", "failed", "canceled"})
# After the stream's `done`, how long to wait for the prediction to report its metrics.
_FINAL_WAIT = 5.0
_ROLES = {"user": "User", "assistant": "Assistant", "tool": "Tool"}

_decode = msgspec.json.decode
_encode = msgspec.json.encode


class ReplicateAdapter:
    name = _PROVIDER

    def __init__(self, poll_interval: float = 0.5) -> None:
        self.poll_interval = poll_interval

    # --- the create request (pure) ---------------------------------------------------

    def build_request(self, call: Call) -> UpstreamRequest:
        body = apply_params(call)
        model = str(body.pop("model"))
        if call.operation == "chat":
            model_input = _chat_input(body)
        elif call.operation == "text_completion":
            model_input = _text_input(body)
        elif call.operation == "image_generation":
            model_input = _image_input(body)
        else:
            raise InvalidRequest(f"replicate does not serve {call.operation}")
        native: dict[str, Any] = {"input": model_input}
        if call.stream:
            native["stream"] = True
        deployment = call.deployment
        path = deployment.provider.paths[call.operation]
        name, _, version = model.partition(":")
        if version:
            native["version"] = version
            url = deployment.api_base + path
        else:
            url = f"{deployment.api_base}/models/{quote(name, safe='/')}{path}"
        headers = [*self._auth(call), ("content-type", "application/json")]
        if not call.stream:
            wait = max(1, min(60, math.floor(deployment.timeouts.read)))
            headers.append(("prefer", f"wait={wait}"))
        return UpstreamRequest("POST", url, headers, _encode(native))

    def _auth(self, call: Call) -> list[tuple[str, str]]:
        return [*call.deployment.headers, *call.extra_headers]

    # --- the whole exchange -------------------------------------------------------------

    async def complete(self, call: Call, send: Send) -> UpstreamResponse:
        deployment = call.deployment
        timeouts = deployment.stream_timeouts if call.stream else deployment.timeouts
        created = await send(self.build_request(call), timeouts)
        if created.status >= 400:
            return created
        prediction = await _read_prediction(created)
        if call.stream:
            return await self._open_stream(call, send, prediction)
        deadline = time.monotonic() + deployment.timeouts.read
        return await self._wait(call, send, prediction, deadline, cancel_late=True)

    async def _wait(
        self,
        call: Call,
        send: Send,
        prediction: dict[str, Any],
        deadline: float,
        *,
        cancel_late: bool,
    ) -> UpstreamResponse:
        """Poll `urls.get` until the prediction is terminal; its JSON, or the error answer."""
        while prediction.get("status") not in TERMINAL:
            if time.monotonic() >= deadline:
                if cancel_late:
                    await self._cancel(call, send, prediction)
                raise UpstreamTimeout(
                    f"replicate prediction {prediction.get('id')} did not finish in time"
                )
            await asyncio.sleep(self.poll_interval)
            response = await send(self._get(call, prediction, "get"), call.deployment.timeouts)
            if response.status >= 400:
                body = await _read(response)
                return BufferedResponse(response.status, body, list(response.headers))
            prediction = await _read_prediction(response)
        return BufferedResponse(200, _encode(prediction))

    async def _open_stream(
        self, call: Call, send: Send, prediction: dict[str, Any]
    ) -> UpstreamResponse:
        if not _urls(prediction).get("stream"):
            await self._cancel(call, send, prediction)
            raise InvalidRequest(f"replicate model {call.model} does not support streaming")
        request = self._get(call, prediction, "stream")
        request.headers += [("accept", "text/event-stream"), ("cache-control", "no-store")]
        stream = await send(request, call.deployment.stream_timeouts)
        if stream.status >= 400:
            return stream

        async def finished() -> dict[str, Any] | None:
            # Token counts for usage and finish_reason; the stream is complete without them.
            try:
                final = await self._wait(
                    call, send, prediction, time.monotonic() + _FINAL_WAIT, cancel_late=False
                )
                return _decode(await final.read()) if final.status == 200 else None
            except (TianjiError, msgspec.DecodeError):
                return None

        return PredictionStream(stream, finished)

    def _get(self, call: Call, prediction: dict[str, Any], which: str) -> UpstreamRequest:
        url = _urls(prediction).get(which)
        if not isinstance(url, str) or not url:
            raise provider_error(_PROVIDER, 502, f"prediction answer without urls.{which}")
        return UpstreamRequest("GET", url, self._auth(call))

    async def _cancel(self, call: Call, send: Send, prediction: dict[str, Any]) -> None:
        """Best effort: a prediction nobody waits for any more should stop costing."""
        url = _urls(prediction).get("cancel")
        if not isinstance(url, str):
            return
        try:
            response = await send(UpstreamRequest("POST", url, self._auth(call)), Timeouts(5, 5))
            await _read(response)
        except UpstreamError:
            pass

    # --- answers ------------------------------------------------------------------------

    def translate_response(self, call: Call, body: bytes) -> bytes | None:
        try:
            prediction = _decode(body)
        except msgspec.DecodeError:
            raise provider_error(_PROVIDER, 502, "invalid response from replicate") from None
        status = prediction.get("status")
        if status != "succeeded":
            detail = prediction.get("error") or f"prediction {status}"
            raise provider_error(_PROVIDER, 500, str(detail))
        output = prediction.get("output")
        created = int(time.time())
        if call.operation == "image_generation":
            urls = output if isinstance(output, list) else [output]
            return _encode({"created": created, "data": [{"url": str(u)} for u in urls if u]})
        text = "".join(str(p) for p in output) if isinstance(output, list) else str(output or "")
        usage = prediction_usage(prediction) or _zero_usage()
        reason = finish_reason(usage, _max_tokens(call))
        if call.operation == "text_completion":
            choice: dict[str, Any] = {"text": text, "index": 0, "logprobs": None}
            kind, prefix = "text_completion", "cmpl"
        else:
            choice = {"index": 0, "message": {"role": "assistant", "content": text}}
            kind, prefix = "chat.completion", "chatcmpl"
        choice["finish_reason"] = reason
        return _encode(
            {
                "id": f"{prefix}-{prediction.get('id') or uuid.uuid4().hex}",
                "object": kind,
                "created": created,
                "model": call.model,
                "choices": [choice],
                "usage": usage,
            }
        )

    def stream_translator(self, call: Call) -> StreamTranslator | None:
        options = (call.body or {}).get("stream_options") or {}
        return PredictionTranslator(
            call.model,
            chat=call.operation == "chat",
            include_usage=bool(isinstance(options, dict) and options.get("include_usage")),
            max_tokens=_max_tokens(call),
        )

    def error_from_status(
        self, call: Call, status: int, headers: Mapping[str, str], body: bytes
    ) -> TianjiError:
        """`{"title", "detail", "status"}` (RFC 7807 problem details)."""
        try:
            data = _decode(body)
            message = str(data.get("detail") or data.get("title") or data)
        except (msgspec.DecodeError, AttributeError):
            message = body.decode("utf-8", "replace").strip()[:500] or "empty error response"
        return provider_error(_PROVIDER, status, message, retry_after=headers.get("retry-after"))


# --- helpers -----------------------------------------------------------------------------


async def _read(response: UpstreamResponse) -> bytes:
    try:
        return await response.read()
    finally:
        await response.aclose()


async def _read_prediction(response: UpstreamResponse) -> dict[str, Any]:
    try:
        prediction = _decode(await _read(response))
    except msgspec.DecodeError:
        raise provider_error(_PROVIDER, 502, "invalid response from replicate") from None
    if not isinstance(prediction, dict):
        raise provider_error(_PROVIDER, 502, "invalid response from replicate")
    return prediction


def _urls(prediction: dict[str, Any]) -> dict[str, Any]:
    urls = prediction.get("urls")
    return urls if isinstance(urls, dict) else {}


def _zero_usage() -> dict[str, int]:
    return {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0}


def _max_tokens(call: Call) -> Any:
    body = call.body or {}
    limit = body.get("max_completion_tokens") or body.get("max_tokens")
    if limit is None:
        limit = call.deployment.request_defaults.get("max_tokens")
    return limit


def _text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = []
        for part in content:
            if not isinstance(part, dict) or part.get("type") != "text":
                raise InvalidRequest("replicate takes text content only", param="messages")
            parts.append(str(part.get("text", "")))
        return "".join(parts)
    return ""


def render_prompt(messages: list[dict[str, Any]]) -> tuple[str, str]:
    """(system_prompt, prompt) for a chat conversation."""
    system = [_text(m.get("content")) for m in messages if m.get("role") in ("system", "developer")]
    turns = [m for m in messages if m.get("role") not in ("system", "developer")]
    if len(turns) == 1 and turns[0].get("role") == "user":
        return "\n".join(system), _text(turns[0].get("content"))
    lines = [f"{_ROLES.get(str(m.get('role')), 'User')}: {_text(m.get('content'))}" for m in turns]
    lines.append("Assistant:")
    return "\n".join(system), "\n".join(lines)


def _sampling(body: dict[str, Any], model_input: dict[str, Any]) -> dict[str, Any]:
    """max_tokens (also as max_new_tokens, for older models), stop -> stop_sequences;
    the other fields (temperature, top_p, seed and model extras) go as they are."""
    body.pop("stream", None)
    body.pop("stream_options", None)
    limit = body.pop("max_completion_tokens", None)
    limit = body.pop("max_tokens", None) if limit is None else limit
    if limit is not None:
        model_input["max_tokens"] = model_input["max_new_tokens"] = limit
    stop = body.pop("stop", None)
    if stop:
        model_input["stop_sequences"] = stop if isinstance(stop, str) else ",".join(stop)
    model_input.update(body)
    return model_input


def _chat_input(body: dict[str, Any]) -> dict[str, Any]:
    messages = body.pop("messages", None)
    if not isinstance(messages, list) or not messages:
        raise InvalidRequest("'messages' is required.", param="messages")
    system, prompt = render_prompt(messages)
    model_input: dict[str, Any] = {"prompt": prompt}
    if system:
        model_input["system_prompt"] = system
    return _sampling(body, model_input)


def _text_input(body: dict[str, Any]) -> dict[str, Any]:
    prompt = body.pop("prompt", "")
    if isinstance(prompt, list):
        if len(prompt) != 1 or not isinstance(prompt[0], str):
            raise InvalidRequest("replicate takes one prompt string", param="prompt")
        prompt = prompt[0]
    return _sampling(body, {"prompt": prompt})


def _image_input(body: dict[str, Any]) -> dict[str, Any]:
    if body.pop("response_format", "url") not in ("url", None):
        raise InvalidRequest("replicate answers image URLs only", param="response_format")
    model_input: dict[str, Any] = {"prompt": body.pop("prompt", "")}
    n = body.pop("n", None)
    if n is not None:
        model_input["num_outputs"] = n
    size = body.pop("size", None)
    if isinstance(size, str) and "x" in size:
        width, _, height = size.partition("x")
        if width.isdigit() and height.isdigit():
            divisor = math.gcd(int(width), int(height)) or 1
            model_input["aspect_ratio"] = f"{int(width) // divisor}:{int(height) // divisor}"
    model_input.update(body)
    return model_input
