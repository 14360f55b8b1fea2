"""The native relay of `/v1/messages` to an `anthropic` deployment.

The client's body goes upstream unchanged except `model` (spliced into the raw
bytes), with the deployment's credentials instead of the caller's key and the
client's `anthropic-version` / `anthropic-beta`. Answers, SSE and upstream
errors come back as Anthropic sent them; only failures of tianji's own
(connection, timeout, a stream cut short) are written by tianji.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

import msgspec
from litestar import Request, Response
from litestar.response import Stream

from tianji.api.llm.relay import SSE_HEADERS
from tianji.api.native.errors import anthropic_error_event, anthropic_error_response
from tianji.api.native.rawjson import replace_string_field
from tianji.api.native.upstream import client_query, read_whole, redact, relay_chunks, send
from tianji.api.runtime import Runtime
from tianji.compile.model import Deployment
from tianji.providers.anthropic import anthropic_headers
from tianji.providers.errors import provider_error
from tianji.upstream.types import UpstreamRequest, UpstreamResponse

__all__ = ["DEFAULT_VERSION", "is_native", "messages_url", "relay", "with_model"]

NATIVE_PROVIDERS = frozenset({"anthropic"})
DEFAULT_VERSION = "2023-06-01"


def is_native(deployment: Deployment) -> bool:
    return deployment.provider.name in NATIVE_PROVIDERS


def with_model(raw: bytes, body: dict[str, Any], model: str) -> bytes:
    return raw if body.get("model") == model else replace_string_field(raw, "model", model)


def messages_url(deployment: Deployment, suffix: str = "") -> str:
    """`{api_base}/v1/messages` (+ `/count_tokens`), whether api_base was given with or
    without `/v1` (LiteLLM's convention is without) or as the full endpoint."""
    base = deployment.api_base
    if base.endswith("/v1/messages"):
        return base + suffix
    path = deployment.provider.paths.get("chat", "")
    if not path.endswith("/messages"):
        path = "/v1/messages"
    if base.endswith("/v1") and path.startswith("/v1/"):
        base = base[: -len("/v1")]
    return base + path + suffix


def request_headers(deployment: Deployment, client: Any) -> list[tuple[str, str]]:
    """The deployment's headers as the anthropic adapter sends them (an OAuth token as
    Bearer with its beta), the client's anthropic-beta flags merged in, and the
    client's anthropic-version instead of the configured one."""
    beta = client.get("anthropic-beta")
    headers = anthropic_headers(deployment, [("anthropic-beta", beta)] if beta else [])
    version = client.get("anthropic-version")
    if version:
        headers = [(n, v) for n, v in headers if n != "anthropic-version"]
        headers.append(("anthropic-version", version))
    elif not any(name == "anthropic-version" for name, _ in headers):
        headers.append(("anthropic-version", DEFAULT_VERSION))
    headers.append(("content-type", "application/json"))
    return headers


async def relay(
    runtime: Runtime,
    request: Request[Any, Any, Any],
    deployment: Deployment,
    payload: bytes,
    headers: dict[str, str],
    stream: bool,
    suffix: str = "",
) -> Response[bytes] | Stream:
    url = messages_url(deployment, suffix)
    query = "&".join(q for q in (urlencode(deployment.query), client_query(request)) if q)
    if query:
        url = f"{url}?{query}"
    upstream_request = UpstreamRequest(
        "POST", url, request_headers(deployment, request.headers), payload
    )
    timeouts = deployment.stream_timeouts if stream else deployment.timeouts
    upstream = await send(runtime, upstream_request, timeouts)
    relayed = {**headers, **_response_headers(upstream)}
    if upstream.status >= 400:
        body = redact(await read_whole(upstream), deployment.api_key)
        return _error(upstream, body, relayed)
    content_type = upstream.header("content-type") or "application/json"
    if not stream:
        body = await read_whole(upstream)
        return Response(body, status_code=upstream.status, media_type=content_type, headers=relayed)
    chunks = relay_chunks(upstream, anthropic_error_event)
    return Stream(chunks, media_type=content_type, headers={**SSE_HEADERS, **relayed})


def _response_headers(upstream: UpstreamResponse) -> dict[str, str]:
    """Anthropic's request id, retry hints and rate-limit headers (Claude Code reads
    `anthropic-ratelimit-unified-*`)."""
    return {
        name: value
        for name, value in upstream.headers
        if name in ("request-id", "retry-after") or name.startswith("anthropic-")
    }


def _error(upstream: UpstreamResponse, body: bytes, headers: dict[str, str]) -> Response[bytes]:
    """Anthropic's own error body as it is; anything else (a proxy's HTML page, an
    empty body) in Anthropic's envelope with tianji's status mapping."""
    try:
        data = msgspec.json.decode(body)
    except msgspec.DecodeError:
        data = None
    if isinstance(data, dict) and data.get("type") == "error":
        return Response(
            body, status_code=upstream.status, media_type="application/json", headers=headers
        )
    text = body.decode("utf-8", "replace").strip()[:500] or "empty error response"
    error = provider_error(
        "anthropic", upstream.status, text, retry_after=headers.get("retry-after")
    )
    response = anthropic_error_response(error)
    response.headers.update(headers)
    return response
