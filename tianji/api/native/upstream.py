"""What the native-format and passthrough endpoints share: self-authentication,
the upstream exchange, and relaying upstream bytes.

Relaying follows tianji/api/llm/relay.py: the upstream response is opened
before the client's response starts (so an upstream error status can still be
answered as such), a failure after the start becomes one error frame in the
client's format, and the upstream response is closed whatever happens, so a
client disconnect reaches the provider.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator, Callable, Iterable
from typing import Any
from urllib.parse import unquote_plus

from litestar import Request

from tianji.api.llm.relay import exchange, sender
from tianji.api.runtime import Runtime
from tianji.compile.model import RoutePlan
from tianji.errors import TianjiError
from tianji.guards.auth import Identity
from tianji.providers import Adapter, Call
from tianji.upstream.types import Timeouts, UpstreamRequest, UpstreamResponse

__all__ = [
    "HOP_BY_HOP",
    "adapter_token_headers",
    "authenticate",
    "client_query",
    "exchange",
    "llm_plan",
    "read_whole",
    "redact",
    "relay_chunks",
    "send",
    "sender",
]

# Never relayed in either direction: they describe one connection, not the message.
HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
        "host",
        "content-length",
    }
)


def llm_plan(plan: RoutePlan) -> RoutePlan:
    """The plan as guards must see it: these routes are LLM routes even when the YAML
    says `auth: public` (which only means the handler authenticates by itself)."""
    return plan if plan.auth == "llm" else dataclasses.replace(plan, auth="llm")


async def authenticate(
    runtime: Runtime,
    request: Request[Any, Any, Any],
    plan: RoutePlan,
    identity: Identity,
    *,
    query_key: bool = False,
) -> Identity:
    """The caller's identity. Routes declared `auth: public` reach the handler
    unauthenticated; the handler then authenticates here, where it can also accept
    Gemini's `?key=` (passed to the authenticator as the lowest-preference header)."""
    if plan.auth != "public":
        return identity
    headers: list[tuple[str, str]] = list(request.headers.items())
    if query_key:
        key = _query_value(request, "key")
        if key:
            headers.append(("x-goog-api-key", key))
    return await runtime.auth.authenticate(headers, llm_plan(plan))


def _query_value(request: Request[Any, Any, Any], name: str) -> str | None:
    for item in _raw_query(request).split("&"):
        key, _, value = item.partition("=")
        if unquote_plus(key) == name:
            return unquote_plus(value)
    return None


def _raw_query(request: Request[Any, Any, Any]) -> str:
    raw = request.scope.get("query_string", b"")
    return raw.decode("latin-1") if isinstance(raw, bytes) else str(raw)


def client_query(request: Request[Any, Any, Any], drop: Iterable[str] = ()) -> str:
    """The client's query string as it was sent (encoding kept), minus `drop` names."""
    dropped = set(drop)
    items = [i for i in _raw_query(request).split("&") if i]
    if dropped:
        items = [i for i in items if unquote_plus(i.partition("=")[0]) not in dropped]
    return "&".join(items)


async def send(runtime: Runtime, request: UpstreamRequest, timeouts: Timeouts) -> UpstreamResponse:
    return await runtime.transport_for(request.url).send(request, timeouts)


async def adapter_token_headers(
    runtime: Runtime, adapter: Adapter, call: Call
) -> tuple[tuple[str, str], ...]:
    """Runs the adapter's `prepare` hook (if any) and returns `call.extra_headers`:
    where token adapters (Vertex AI, watsonx) put the credentials they mint, from the
    same cache the chat path uses."""
    prepare = getattr(adapter, "prepare", None)
    if prepare is not None:
        await prepare(call, sender(runtime))
    return tuple(call.extra_headers)


async def read_whole(upstream: UpstreamResponse) -> bytes:
    try:
        return await upstream.read()
    finally:
        await upstream.aclose()


def redact(body: bytes, secret: str | None) -> bytes:
    """Providers echo the key they were given in auth errors; never pass it on."""
    if secret and secret.encode() in body:
        return body.replace(secret.encode(), b"***")
    return body


async def relay_chunks(
    upstream: UpstreamResponse, on_error: Callable[[TianjiError], bytes] | None
) -> AsyncIterator[bytes]:
    """Upstream bytes as they arrive. A failure mid-body ends the stream with
    `on_error(exc)` (nothing when None: a body that is not a stream of frames
    cannot carry an error). The upstream is closed in every case."""
    try:
        try:
            async for chunk in upstream.iter_bytes():
                yield chunk
        except TianjiError as exc:
            if on_error is not None:
                yield b"\n\n" + on_error(exc)
    finally:
        await asyncio.shield(upstream.aclose())
