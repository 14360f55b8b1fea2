"""`POST /v1/messages` and `/v1/messages/count_tokens`: Anthropic's format in front of any model.

The model is resolved and routed as on `/v1/chat/completions`. An `anthropic`
deployment gets the client's request natively: body unchanged except `model`,
`anthropic-version`/`anthropic-beta` kept, answer and SSE relayed byte for byte.
Any other deployment gets the request translated to OpenAI chat
(anthropic_in.py), through its adapter, and the answer translated back
(anthropic_out.py). Errors use Anthropic's envelope on these routes.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, Literal

import msgspec
from litestar import Request, Response
from litestar.exceptions import HTTPException
from litestar.response import Stream

from tianji import tokens
from tianji.api.body import decode_object, validate
from tianji.api.llm.proxy import resolve_model, response_headers
from tianji.api.llm.relay import SSE_HEADERS
from tianji.api.native import anthropic_native as native
from tianji.api.native.anthropic_in import (
    keeps_native_extras,
    openai_messages,
    openai_tools,
    to_openai_request,
)
from tianji.api.native.anthropic_out import AnthropicStreamWriter, to_anthropic_message
from tianji.api.native.errors import anthropic_error_response
from tianji.api.native.upstream import exchange, llm_plan, read_whole
from tianji.api.runtime import Runtime
from tianji.compile.model import Deployment, Resolved, RoutePlan
from tianji.errors import InvalidRequest, TianjiError, UpstreamProtocolError
from tianji.guards.auth import Identity
from tianji.providers import Adapter, Call, StreamTranslator, adapter_for
from tianji.upstream.types import UpstreamResponse

__all__ = ["make_count_tokens_handler", "make_messages_handler"]

Handler = Any
# Serves one validated request on the deployment the router chose.
Serve = Callable[
    [Runtime, Request[Any, Any, Any], bytes, dict[str, Any], Resolved, Deployment],
    Awaitable[Response[bytes] | Stream],
]
_decode = msgspec.json.decode


class _Message(msgspec.Struct):
    role: Literal["user", "assistant"]
    content: str | list[dict[str, Any]]


class CountTokensRequest(msgspec.Struct, kw_only=True):
    model: str
    messages: list[_Message]
    system: str | list[dict[str, Any]] | None = None
    tools: list[dict[str, Any]] | None = None
    tool_choice: dict[str, Any] | None = None
    thinking: dict[str, Any] | None = None


class MessagesRequest(CountTokensRequest, kw_only=True):
    max_tokens: int
    stream: bool | None = None
    stop_sequences: list[str] | None = None
    temperature: float | None = None
    top_p: float | None = None
    top_k: int | None = None
    metadata: dict[str, Any] | None = None


def make_messages_handler(plan: RoutePlan, runtime: Runtime) -> Handler:
    return _handler(plan, runtime, MessagesRequest, _messages)


def make_count_tokens_handler(plan: RoutePlan, runtime: Runtime) -> Handler:
    return _handler(plan, runtime, CountTokensRequest, _count_tokens)


def _handler(
    plan: RoutePlan, runtime: Runtime, schema: type[msgspec.Struct], serve: Serve
) -> Handler:
    guarded = llm_plan(plan)

    async def handler(
        request: Request[Any, Any, Any], identity: Identity
    ) -> Response[bytes] | Stream:
        try:
            raw = await request.body()
            body = decode_object(raw)
            validate(body, schema)
            resolved = resolve_model(runtime.models, body["model"], "chat")
            await runtime.guard.before_call(
                identity, guarded, resolved.group.name, requested=body["model"]
            )
            deployment = runtime.router.pick(resolved.group)
            return await serve(runtime, request, raw, body, resolved, deployment)
        except TianjiError as exc:
            return anthropic_error_response(exc)
        except HTTPException as exc:  # the framework's own (e.g. body too large)
            error = TianjiError(str(exc.detail), status=exc.status_code)
            return anthropic_error_response(error)

    return handler


async def _messages(
    runtime: Runtime,
    request: Request[Any, Any, Any],
    raw: bytes,
    body: dict[str, Any],
    resolved: Resolved,
    deployment: Deployment,
) -> Response[bytes] | Stream:
    model = deployment.upstream_model(resolved.capture)
    headers = response_headers(deployment)
    if native.is_native(deployment):
        stream = body.get("stream") is True
        return await native.relay(
            runtime, request, deployment, native.with_model(raw, body, model), headers, stream
        )
    _check_chat(deployment)
    openai_body = to_openai_request(body, deployment.provider)
    call = Call(
        operation="chat",
        deployment=deployment,
        model=model,
        body=openai_body,
        stream=bool(openai_body.get("stream")),
        openai_params=runtime.openai_params.get("chat", frozenset()),
    )
    adapter = adapter_for(deployment.provider.adapter)
    upstream = await exchange(runtime, adapter, call)
    if upstream.status >= 400:
        error_body = await read_whole(upstream)
        error = adapter.error_from_status(call, upstream.status, dict(upstream.headers), error_body)
        raise _redacted(error, deployment.api_key)
    if not call.stream:
        return _whole_message(adapter, call, await read_whole(upstream), body["model"], headers)
    estimate = tokens.count_messages(openai_body["messages"], model, openai_body.get("tools"))
    writer = AnthropicStreamWriter(body["model"], estimate)
    events = _events(upstream, adapter.stream_translator(call), writer)
    return Stream(events, media_type="text/event-stream", headers={**SSE_HEADERS, **headers})


def _check_chat(deployment: Deployment) -> None:
    if "chat" not in deployment.provider.paths:
        raise InvalidRequest(
            f"model group {deployment.group!r} ({deployment.provider.name}) does not support chat",
            param="model",
        )


def _redacted(error: TianjiError, secret: str | None) -> TianjiError:
    if secret and secret in error.message:
        error.message = error.message.replace(secret, "***")
    return error


def _whole_message(
    adapter: Adapter, call: Call, body: bytes, model: str, headers: dict[str, str]
) -> Response[bytes]:
    translated = adapter.translate_response(call, body)
    try:
        data = _decode(translated if translated is not None else body)
    except msgspec.DecodeError:
        raise UpstreamProtocolError(
            "invalid response from upstream: the body is not valid JSON"
        ) from None
    if not isinstance(data, dict):
        raise UpstreamProtocolError("invalid response from upstream: not a JSON object")
    message = to_anthropic_message(data, model)
    return Response(msgspec.json.encode(message), media_type="application/json", headers=headers)


async def _events(
    upstream: UpstreamResponse,
    translator: StreamTranslator | None,
    writer: AnthropicStreamWriter,
) -> AsyncIterator[bytes]:
    """Upstream bytes -> (adapter) OpenAI SSE -> Anthropic events, chunk by chunk."""
    try:
        try:
            async for chunk in upstream.iter_bytes():
                openai_sse = translator.feed(chunk) if translator is not None else chunk
                out = writer.feed(openai_sse)
                if out:
                    yield out
                if writer.done:
                    return
            if translator is not None:
                yield writer.feed(translator.close())
            yield writer.close()
        except TianjiError as exc:
            if not writer.done:
                yield writer.fail(exc)
    finally:
        await asyncio.shield(upstream.aclose())


async def _count_tokens(
    runtime: Runtime,
    request: Request[Any, Any, Any],
    raw: bytes,
    body: dict[str, Any],
    resolved: Resolved,
    deployment: Deployment,
) -> Response[bytes] | Stream:
    model = deployment.upstream_model(resolved.capture)
    if native.is_native(deployment):
        payload = native.with_model(raw, body, model)
        return await native.relay(
            runtime,
            request,
            deployment,
            payload,
            response_headers(deployment),
            False,
            "/count_tokens",
        )
    extras = keeps_native_extras(deployment.provider)
    messages = openai_messages(body, extras)
    count = tokens.count_messages(messages, model, openai_tools(body) or None)
    return Response(
        msgspec.json.encode({"input_tokens": count}),
        media_type="application/json",
        headers=response_headers(deployment),
    )
