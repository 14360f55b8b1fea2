"""Send one upstream call and relay its answer: JSON whole, streams chunk by chunk.

The upstream stream is opened before the client's response starts, so an
upstream error status still becomes a normal JSON error with its status. Once
the 200 is sent, a failure becomes one `data: {"error": ...}` frame and the
stream ends. A client disconnect cancels the relay; the upstream response is
then closed, so the provider sees the disconnect too.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import msgspec
from litestar import Response
from litestar.response import Stream

from tianji.api.runtime import Runtime
from tianji.errors import TianjiError, UpstreamProtocolError
from tianji.providers import Adapter, Call, Send, StreamTranslator, adapter_for
from tianji.upstream.types import Timeouts, UpstreamRequest, UpstreamResponse

__all__ = ["SSE_HEADERS", "exchange", "relay", "sender"]

SSE_HEADERS = {"cache-control": "no-cache", "x-accel-buffering": "no"}
_DONE = b"data: [DONE]"


class _Probe(msgspec.Struct):
    """Decoding into a Struct with no required fields validates the JSON cheaply."""


_probe = msgspec.json.Decoder(_Probe)


async def relay(runtime: Runtime, call: Call, headers: dict[str, str]) -> Response[bytes] | Stream:
    adapter = adapter_for(call.deployment.provider.adapter)
    deployment = call.deployment
    timeouts = deployment.stream_timeouts if call.stream else deployment.timeouts
    upstream = await exchange(runtime, adapter, call, timeouts)
    if upstream.status >= 400 or not call.stream:
        try:
            body = await upstream.read()
        finally:
            await upstream.aclose()
        if upstream.status >= 400:
            error = adapter.error_from_status(call, upstream.status, dict(upstream.headers), body)
            raise _redacted(error, deployment.api_key)
        return _whole(adapter.translate_response(call, body), body, upstream, headers)
    translator = adapter.stream_translator(call)
    # A translator always writes OpenAI SSE, whatever the upstream streamed (e.g. NDJSON).
    content_type = (
        "text/event-stream"
        if translator is not None
        else (upstream.header("content-type") or "text/event-stream")
    )
    is_sse = content_type.startswith("text/event-stream")
    chunks = _relay_stream(upstream, translator, check_done=is_sse)
    return Stream(chunks, media_type=content_type, headers={**SSE_HEADERS, **headers})


def sender(runtime: Runtime) -> Send:
    """What adapter hooks are given to reach the network: the runtime's transports."""

    async def send(request: UpstreamRequest, timeouts: Timeouts) -> UpstreamResponse:
        return await runtime.transport_for(request.url).send(request, timeouts)

    return send


async def exchange(
    runtime: Runtime, adapter: Adapter, call: Call, timeouts: Timeouts | None = None
) -> UpstreamResponse:
    """One send, or the adapter's own steps (`prepare`, `complete`) when it has them.
    Shared by every route that calls an adapter (LLM, native formats, passthrough)."""
    if timeouts is None:
        deployment = call.deployment
        timeouts = deployment.stream_timeouts if call.stream else deployment.timeouts
    send = sender(runtime)
    prepare = getattr(adapter, "prepare", None)
    if prepare is not None:
        await prepare(call, send)
    complete = getattr(adapter, "complete", None)
    if complete is not None:
        response: UpstreamResponse = await complete(call, send)
        return response
    return await send(adapter.build_request(call), timeouts)


def _redacted(error: TianjiError, secret: str | None) -> TianjiError:
    """Providers echo the key they were given in auth errors; never pass it on."""
    if secret and secret in error.message:
        error.message = error.message.replace(secret, "***")
    return error


def _whole(
    translated: bytes | None, body: bytes, upstream: UpstreamResponse, headers: dict[str, str]
) -> Response[bytes]:
    content_type = upstream.header("content-type") or "application/json"
    if translated is None and content_type.startswith("application/json"):
        try:
            _probe.decode(body)
        except msgspec.DecodeError:
            raise UpstreamProtocolError(
                "invalid response from upstream: the body is not valid JSON"
            ) from None
    content = body if translated is None else translated
    return Response(content, status_code=200, media_type=content_type, headers=headers)


async def _relay_stream(
    upstream: UpstreamResponse, translator: StreamTranslator | None, *, check_done: bool
) -> AsyncIterator[bytes]:
    tail = b""
    try:
        try:
            async for chunk in upstream.iter_bytes():
                out = translator.feed(chunk) if translator is not None else chunk
                if out:
                    tail = (tail + out)[-64:]
                    yield out
            if translator is not None:
                out = translator.close()
                tail = (tail + out)[-64:]
                yield out
            if check_done and _DONE not in tail:
                raise UpstreamProtocolError("upstream stream ended before [DONE]")
        except TianjiError as exc:
            yield (b"" if not tail or tail.endswith(b"\n\n") else b"\n\n") + exc.sse_frame()
    finally:
        await asyncio.shield(upstream.aclose())
