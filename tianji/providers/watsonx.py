"""IBM watsonx.ai: chat, text generation, embeddings and rerank (providers.md §3.6).

Credentials: a deployment's key is either an IAM *access token* (WATSONX_TOKEN; a JWT,
sent as Bearer as it is) or an IBM Cloud *API key* (WATSONX_APIKEY), which the async
hook `prepare` exchanges at IBM IAM for an access token, cached until 60 s before it
expires. IBM API keys never contain dots and IAM tokens are three dotted JWT segments,
so the key's shape says which one it is.

Chat is nearly OpenAI's shape (`model_id` instead of `model`, `tool_choice_option` for
the string choices); the stream is SSE `event: message` frames carrying OpenAI-like
chunks, the last one usage only, without `[DONE]`.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import quote, urlencode

import msgspec

from tianji.compile.model import Deployment
from tianji.errors import InvalidRequest, TianjiError
from tianji.providers.base import Call, Send, StreamTranslator
from tianji.providers.errors import CONTEXT_LENGTH, provider_error
from tianji.providers.openai_compat import apply_params
from tianji.providers.sse import DONE, SSEEvent, SSEParser, data_frame
from tianji.providers.token_cache import TokenCache
from tianji.providers.watsonx_shapes import (
    chat_completion,
    embeddings_body,
    embeddings_list,
    generation_body,
    rerank_body,
    rerank_result,
    text_completion,
    text_finish_reason,
)
from tianji.upstream.types import Timeouts, UpstreamRequest

__all__ = ["API_VERSION", "IAM_URL", "WatsonxAdapter", "is_access_token"]

IAM_URL = "https://iam.cloud.ibm.com/identity/token"
API_VERSION = "2024-03-13"
_IAM_GRANT = "urn:ibm:params:oauth:grant-type:apikey"
_PROVIDER = "watsonx"
# `watsonx/deployment/{id}`: a deployed model (prompt template or tuned model) has its own
# endpoints and takes no model_id / project_id.
_DEPLOYMENT_PREFIX = "deployment/"
_DEPLOYMENT_PATHS = {"chat": "/text/chat", "text_completion": "/text/generation"}
_STREAMING = frozenset(_DEPLOYMENT_PATHS)

_decode = msgspec.json.decode
_encode = msgspec.json.encode


def is_access_token(key: str) -> bool:
    """An IAM access token (JWT: header.payload.signature), not an API key."""
    return key.count(".") == 2


class WatsonxAdapter:
    name = _PROVIDER

    def __init__(self, iam_url: str = IAM_URL, clock: Callable[[], float] = time.time) -> None:
        self.iam_url = iam_url
        self.tokens = TokenCache(margin=60.0, clock=clock)

    def check(self, deployment: Deployment, env: Mapping[str, str]) -> list[str]:
        """Configuration problems `tianji check` reports for this deployment."""
        params = deployment.params
        if params.project_id or params.space_id or deployment.model.startswith("deployment/"):
            return []
        return ["watsonx needs project_id or space_id in litellm_params"]

    # --- the IAM token step ------------------------------------------------------

    async def prepare(self, call: Call, send: Send) -> None:
        """Exchange the API key for an access token (cached) and attach it to the call."""
        key = call.deployment.api_key
        if key is None or is_access_token(key):
            return
        timeouts = call.deployment.timeouts

        async def fetch() -> tuple[str, float]:
            return await self._exchange(key, send, timeouts)

        token = await self.tokens.get((self.iam_url, key), fetch)
        # Replace, not add: a retried call runs prepare again.
        kept = tuple(h for h in call.extra_headers if h[0] != "authorization")
        call.extra_headers = (*kept, ("authorization", f"Bearer {token}"))

    async def _exchange(self, api_key: str, send: Send, timeouts: Timeouts) -> tuple[str, float]:
        form = urlencode({"grant_type": _IAM_GRANT, "apikey": api_key}).encode()
        headers = [
            ("content-type", "application/x-www-form-urlencoded"),
            ("accept", "application/json"),
        ]
        request = UpstreamRequest("POST", self.iam_url, headers, form)
        response = await send(request, Timeouts(timeouts.connect, min(timeouts.read, 30.0)))
        try:
            body = await response.read()
        finally:
            await response.aclose()
        if response.status >= 400:
            raise _iam_error(response.status, body)
        try:
            data = _decode(body)
            token = str(data["access_token"])
        except (msgspec.DecodeError, KeyError, TypeError):
            raise provider_error(_PROVIDER, 502, "IAM answered without an access_token") from None
        expiry = data.get("expiration")
        if not isinstance(expiry, int | float):
            expiry = self.tokens.clock() + float(data.get("expires_in") or 3600)
        return token, float(expiry)

    # --- requests ------------------------------------------------------------------

    def build_request(self, call: Call) -> UpstreamRequest:
        operation = call.operation
        body = apply_params(call)
        model = str(body.pop("model"))
        if operation == "chat":
            native = _chat_body(body)
        elif operation == "text_completion":
            native = generation_body(body)
        elif operation == "embeddings":
            native = embeddings_body(body)
        elif operation == "rerank":
            native = rerank_body(body)
        else:
            raise InvalidRequest(f"watsonx does not serve {operation}")
        if not model.startswith(_DEPLOYMENT_PREFIX):
            native = {"model_id": model, **_scope(call), **native}
        return UpstreamRequest("POST", self._url(call, model), self._headers(call), _encode(native))

    def _url(self, call: Call, model: str) -> str:
        deployment = call.deployment
        if model.startswith(_DEPLOYMENT_PREFIX):
            if call.operation not in _DEPLOYMENT_PATHS:
                raise InvalidRequest(f"watsonx deployments do not serve {call.operation}")
            deployment_id = quote(model[len(_DEPLOYMENT_PREFIX) :], safe="")
            path = f"/ml/v1/deployments/{deployment_id}{_DEPLOYMENT_PATHS[call.operation]}"
        else:
            path = deployment.provider.paths[call.operation]
        if call.stream and call.operation in _STREAMING:
            path += "_stream"
        query = [("version", deployment.api_version or API_VERSION), *deployment.query]
        return f"{deployment.api_base}{path}?{urlencode(query)}"

    def _headers(self, call: Call) -> list[tuple[str, str]]:
        key = call.deployment.api_key
        exchanged = key is not None and not is_access_token(key)
        headers = [
            (name, value)
            for name, value in call.deployment.headers
            if not (exchanged and name == "authorization")
        ]
        if exchanged and not any(name == "authorization" for name, _ in call.extra_headers):
            raise TianjiError(
                "watsonx: the API key was not exchanged for an IAM token "
                "(the gateway did not run the adapter's prepare hook)"
            )
        headers += call.extra_headers
        headers.append(("content-type", "application/json"))
        headers.append(("accept", "text/event-stream" if call.stream else "application/json"))
        return headers

    # --- responses -----------------------------------------------------------------

    def translate_response(self, call: Call, body: bytes) -> bytes | None:
        try:
            data = _decode(body)
        except msgspec.DecodeError:
            raise provider_error(_PROVIDER, 502, "invalid response from watsonx") from None
        if not isinstance(data, dict):
            raise provider_error(_PROVIDER, 502, "invalid response from watsonx")
        if call.operation == "chat":
            return _encode(chat_completion(data, call.model))
        if call.operation == "text_completion":
            return _encode(text_completion(data, call.model))
        if call.operation == "embeddings":
            encoding = (call.body or {}).get("encoding_format")
            return _encode(embeddings_list(data, call.model, encoding))
        return _encode(rerank_result(data, call.body or {}))

    def stream_translator(self, call: Call) -> StreamTranslator | None:
        options = (call.body or {}).get("stream_options") or {}
        include_usage = bool(isinstance(options, dict) and options.get("include_usage"))
        if call.operation == "text_completion":
            return _TextStream(call.model, include_usage)
        return _ChatStream(call.model, include_usage)

    def error_from_status(
        self, call: Call, status: int, headers: Mapping[str, str], body: bytes
    ) -> TianjiError:
        key = call.deployment.api_key
        if status == 401 and key is not None and not is_access_token(key):
            # A token revoked or expired early: the next attempt exchanges the key again.
            self.tokens.invalidate((self.iam_url, key))
        return watsonx_error(status, body, headers.get("retry-after"))


# --- request bodies --------------------------------------------------------------------


def _scope(call: Call) -> dict[str, str]:
    params = call.deployment.params
    if params.project_id:
        return {"project_id": params.project_id}
    if params.space_id:
        return {"space_id": params.space_id}
    raise TianjiError(
        f"watsonx deployment {call.deployment.group!r} needs project_id or space_id "
        "in litellm_params"
    )


def _chat_body(body: dict[str, Any]) -> dict[str, Any]:
    """OpenAI chat body -> watsonx chat body; provider extras (time_limit, ...) pass."""
    body.pop("stream", None)
    body.pop("stream_options", None)
    if "max_completion_tokens" in body:
        limit = body.pop("max_completion_tokens")
        body.setdefault("max_tokens", limit)
    choice = body.pop("tool_choice", None)
    if isinstance(choice, str):
        body["tool_choice_option"] = choice
    elif isinstance(choice, dict):
        body["tool_choice"] = choice
    return body


# --- errors ----------------------------------------------------------------------------


def watsonx_error(status: int, body: bytes, retry_after: str | None = None) -> TianjiError:
    """`{"errors":[{"code","message"}],"status_code"}` -> the client's error."""
    message = _error_message(body)
    context = status == 400 and "sequence length" in message.lower()
    return provider_error(
        _PROVIDER,
        status,
        message,
        code=CONTEXT_LENGTH if context else None,
        retry_after=retry_after,
    )


def _error_message(body: bytes) -> str:
    try:
        data = _decode(body)
    except msgspec.DecodeError:
        return body.decode("utf-8", "replace").strip()[:500] or "empty error response"
    errors = data.get("errors") if isinstance(data, dict) else None
    if isinstance(errors, list) and errors and all(isinstance(e, dict) for e in errors):
        return "; ".join(str(e.get("message") or e.get("code")) for e in errors)
    return str(data)[:500]


def _iam_error(status: int, body: bytes) -> TianjiError:
    """IAM refuses a wrong or deleted API key with 400; to the client that is a 401."""
    try:
        data = _decode(body)
        detail = str(data.get("errorMessage") or data.get("errorCode") or data)
    except (msgspec.DecodeError, AttributeError):
        detail = body.decode("utf-8", "replace").strip()[:300]
    mapped = 401 if status in (400, 401, 403) else status
    return provider_error(_PROVIDER, mapped, f"IAM token exchange failed: {detail}")


def _stream_error(event: SSEEvent) -> TianjiError:
    try:
        data = _decode(event.data)
        status = int(data.get("status_code") or 500)
    except (msgspec.DecodeError, AttributeError, TypeError, ValueError):
        status = 500
    return watsonx_error(status, event.data.encode())


def _event_object(event: SSEEvent) -> dict[str, Any]:
    try:
        data = _decode(event.data)
    except msgspec.DecodeError:
        data = None
    if not isinstance(data, dict):
        raise provider_error(_PROVIDER, 502, "invalid stream event from watsonx")
    return data


# --- streams ---------------------------------------------------------------------------


class _ChatStream:
    """`event: message` chunks -> OpenAI chunks; the usage-only chunk only if asked."""

    def __init__(self, model: str, include_usage: bool) -> None:
        self._parser = SSEParser()
        self._model = model
        self._include_usage = include_usage
        self._base: dict[str, Any] = {}
        self._usage: Any = None

    def feed(self, chunk: bytes) -> bytes:
        return b"".join(self._event(event) for event in self._parser.feed(chunk))

    def close(self) -> bytes:
        out = b"".join(self._event(event) for event in self._parser.close())
        if self._include_usage and self._usage is not None:
            out += data_frame({**self._frame_base(), "choices": [], "usage": self._usage})
        return out + DONE

    def _event(self, event: SSEEvent) -> bytes:
        if event.event == "error":
            raise _stream_error(event)
        if event.event != "message" or not event.data.strip():
            return b""  # `event: close` and keep-alives
        data = _event_object(event)
        if isinstance(data.get("errors"), list):
            raise _stream_error(event)
        if data.get("usage") is not None:
            self._usage = data["usage"]
        for key in ("id", "created"):
            if data.get(key) is not None:
                self._base[key] = data[key]
        self._base["model"] = data.get("model") or data.get("model_id") or self._model
        choices = [
            {"index": c.get("index", 0), "delta": c.get("delta") or {},
             "finish_reason": c.get("finish_reason")}
            for c in data.get("choices") or ()
        ]  # fmt: skip
        if not choices:
            return b""
        return data_frame({**self._frame_base(), "choices": choices})

    def _frame_base(self) -> dict[str, Any]:
        return {
            "id": self._base.get("id") or f"chatcmpl-{uuid.uuid4().hex}",
            "object": "chat.completion.chunk",
            "created": self._base.get("created") or int(time.time()),
            "model": self._base.get("model") or self._model,
        }


class _TextStream:
    """generation_stream `event: message` results -> OpenAI text_completion chunks."""

    def __init__(self, model: str, include_usage: bool) -> None:
        self._parser = SSEParser()
        self._model = model
        self._include_usage = include_usage
        self._id = f"cmpl-{uuid.uuid4().hex}"
        self._created = int(time.time())
        self._usage: dict[str, int] | None = None

    def feed(self, chunk: bytes) -> bytes:
        return b"".join(self._event(event) for event in self._parser.feed(chunk))

    def close(self) -> bytes:
        out = b"".join(self._event(event) for event in self._parser.close())
        if self._include_usage and self._usage is not None:
            out += data_frame({**self._base(), "choices": [], "usage": self._usage})
        return out + DONE

    def _event(self, event: SSEEvent) -> bytes:
        if event.event == "error":
            raise _stream_error(event)
        if event.event != "message" or not event.data.strip():
            return b""
        data = _event_object(event)
        if isinstance(data.get("errors"), list):
            raise _stream_error(event)
        self._model = data.get("model_id") or self._model
        out = b""
        for index, result in enumerate(data.get("results") or ()):
            prompt = int(result.get("input_token_count") or 0)
            completion = int(result.get("generated_token_count") or 0)
            if prompt or completion:
                self._usage = {
                    "prompt_tokens": prompt,
                    "completion_tokens": completion,
                    "total_tokens": prompt + completion,
                }
            choice = {
                "text": result.get("generated_text") or "",
                "index": index,
                "logprobs": None,
                "finish_reason": text_finish_reason(result.get("stop_reason")),
            }
            out += data_frame({**self._base(), "choices": [choice]})
        return out

    def _base(self) -> dict[str, Any]:
        return {
            "id": self._id,
            "object": "text_completion",
            "created": self._created,
            "model": self._model,
        }
