"""`ANY /{provider}/{path...}`: the client's request relayed to the provider's own API.

Method, path tail, query and body go upstream as they came; the client's key
headers (and cookies, `x-litellm-*` headers) never do: the provider's
credentials replace them. Headers prefixed `x-pass-` are forwarded without the
prefix. The answer, error statuses and streams included, comes back as the
provider sent it.

The path tail is cut from the raw request path, so percent-encoding survives
(a Bedrock model id's `%3A`). An alias whose path extends the route's own
prefix keeps the extension in the tail: `/openai/v1/{path:path}` exists only
because Litestar's router does not fall back from the static `/openai/v1/...`
routes to `/openai/{path:path}`, and `v1` is part of the upstream path there.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from typing import Any
from urllib.parse import quote, urlencode

from litestar import Request, Response
from litestar.response import Stream

from tianji.api.native.upstream import (
    HOP_BY_HOP,
    authenticate,
    client_query,
    read_whole,
    redact,
    relay_chunks,
    send,
)
from tianji.api.passthrough.cloud import bedrock_request, token_credentials
from tianji.api.passthrough.targets import TARGETS, Credentials, Target, static_credentials
from tianji.api.runtime import Runtime
from tianji.compile.model import RoutePlan
from tianji.errors import TianjiError
from tianji.guards.auth import DEFAULT_KEY_HEADERS, Identity
from tianji.upstream.types import Timeouts, UpstreamRequest, UpstreamResponse

__all__ = ["forwarded_headers", "make_passthrough_factory", "merge_headers"]

_NEVER_FORWARDED = HOP_BY_HOP | {"cookie", "accept-encoding"}
_NOT_RELAYED = HOP_BY_HOP | {"content-type", "date", "server"}
_BODYLESS_STATUSES = frozenset({204, 304})
# Comma-separated flag headers whose client and credential values are both needed.
_FLAG_LISTS = frozenset({"anthropic-beta"})


def make_passthrough_factory(name: str) -> Any:
    target = TARGETS[name]

    def factory(plan: RoutePlan, runtime: Runtime) -> Any:
        return _make_handler(name, target, plan, runtime)

    return factory


def _make_handler(name: str, target: Target, plan: RoutePlan, runtime: Runtime) -> Any:
    served_prefix = plan.path.split("{", 1)[0]
    own_prefix = plan.upstream_path.split("{", 1)[0]
    kept = served_prefix[len(own_prefix) - 1 :] if served_prefix.startswith(own_prefix) else "/"
    key_headers = frozenset(DEFAULT_KEY_HEADERS) | set(runtime.gateway.settings.key_headers)

    async def handler(
        request: Request[Any, Any, Any], identity: Identity
    ) -> Response[bytes] | Stream:
        await authenticate(runtime, request, plan, identity, query_key=target.query_key)
        tail = kept + _rest(request, served_prefix)
        query = client_query(request, drop=target.drop_query)
        headers = forwarded_headers(request.headers.items(), key_headers)
        body = await request.body()
        method = request.method
        if target.kind == "sigv4":
            upstream_request, timeouts, secret = bedrock_request(
                runtime, method, tail, query, headers, body
            )
        else:
            if target.kind == "token":
                credentials = await token_credentials(name, target, runtime, tail)
            else:
                credentials = static_credentials(
                    name, target, runtime.models, runtime.gateway.providers
                )
            upstream_request = _request(credentials, method, tail, query, headers, body)
            timeouts, secret = credentials.timeouts, credentials.secret
        return await _respond(await _send(runtime, upstream_request, timeouts), secret)

    return handler


def _rest(request: Request[Any, Any, Any], prefix: str) -> str:
    """The raw (still percent-encoded) path after `prefix`."""
    raw = request.scope.get("raw_path")
    path = raw.decode("latin-1") if isinstance(raw, bytes) else ""
    if path.startswith(prefix):
        return path[len(prefix) :]
    # A client that percent-encoded the prefix itself: re-encode the decoded tail.
    tail = str(request.path_params.get("path", "")).lstrip("/")
    return quote(tail, safe="/:@!$&'()*+,;=-._~")


def forwarded_headers(
    items: Iterable[tuple[str, str]], key_headers: Iterable[str]
) -> list[tuple[str, str]]:
    """The client's headers minus its credentials, cookies and connection headers;
    `x-pass-<name>` is sent as `<name>`."""
    dropped = _NEVER_FORWARDED | set(key_headers)
    out = []
    for name, value in items:
        if name.startswith("x-pass-") and len(name) > len("x-pass-"):
            out.append((name[len("x-pass-") :], value))
        elif name not in dropped and not name.startswith("x-litellm-"):
            out.append((name, value))
    return out


def merge_headers(client: list[tuple[str, str]], credentials: Credentials) -> list[tuple[str, str]]:
    """Credential headers replace the client's; soft defaults only fill in; flag
    lists (`anthropic-beta`: the OAuth beta and the client's own) are joined."""
    hard = {n for n, _ in credentials.headers if n not in credentials.soft}
    out = [(n, v) for n, v in client if n not in hard or n in _FLAG_LISTS]
    present = {n for n, _ in out}
    for name, value in credentials.headers:
        if name in _FLAG_LISTS and name in present:
            out = [(n, _join_flags(v, value) if n == name else v) for n, v in out]
        elif name in hard or name not in present:
            out.append((name, value))
    return out


def _join_flags(first: str, second: str) -> str:
    flags = (f.strip() for f in f"{first},{second}".split(","))
    return ",".join(dict.fromkeys(f for f in flags if f))


def _request(
    credentials: Credentials,
    method: str,
    tail: str,
    query: str,
    headers: list[tuple[str, str]],
    body: bytes,
) -> UpstreamRequest:
    query = "&".join(q for q in (query, urlencode(credentials.query)) if q)
    url = credentials.base + tail + (f"?{query}" if query else "")
    return UpstreamRequest(method, url, merge_headers(headers, credentials), body)


async def _send(runtime: Runtime, request: UpstreamRequest, timeouts: Timeouts) -> UpstreamResponse:
    return await send(runtime, request, timeouts)


async def _respond(upstream: UpstreamResponse, secret: str | None) -> Response[bytes] | Stream:
    """The provider's answer as it is: status, headers, body or stream."""
    headers = {n: v for n, v in upstream.headers if n not in _NOT_RELAYED}
    headers["x-litellm-call-id"] = str(uuid.uuid4())
    content_type = upstream.header("content-type") or "application/octet-stream"
    is_sse = content_type.startswith("text/event-stream")
    whole = upstream.header("content-length") is not None and not is_sse
    if whole or upstream.status in _BODYLESS_STATUSES:
        body = await read_whole(upstream)
        if upstream.status >= 400:
            body = redact(body, secret)
        return Response(body, status_code=upstream.status, media_type=content_type, headers=headers)
    chunks = relay_chunks(upstream, TianjiError.sse_frame if is_sse else None)
    return Stream(chunks, status_code=upstream.status, media_type=content_type, headers=headers)
