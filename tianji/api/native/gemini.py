"""Gemini's native routes: `POST /v1beta/models/{model}:{action}` (and without `v1beta`).

Litestar path parameters are whole segments, so the route declares one
parameter for `{model}:{action}` and the handler splits it on the last colon
(model names may contain colons, actions do not). The model is resolved and
routed like any other; a `gemini` deployment (or a `vertex_ai` one serving a
Gemini model) gets the body unchanged with the deployment's credentials, and
the answer (SSE with `?alt=sse`) is relayed as Google sent it. Vertex AI gets the
same body on its project/location URL, with the token its adapter mints.

The route is declared `auth: public` and the handler authenticates itself,
which is how it also accepts the key as `?key=` (Gemini SDKs and curl examples
send it there); the key is never forwarded upstream.
"""

from __future__ import annotations

import re
import uuid
from typing import Any
from urllib.parse import quote, urlencode

from litestar import Request, Response
from litestar.response import Stream

from tianji.api.llm.proxy import resolve_model
from tianji.api.llm.relay import SSE_HEADERS
from tianji.api.native.upstream import (
    adapter_token_headers,
    authenticate,
    client_query,
    llm_plan,
    read_whole,
    redact,
    relay_chunks,
    send,
)
from tianji.api.runtime import Runtime
from tianji.compile.model import Deployment, RoutePlan
from tianji.errors import InvalidRequest, NotFound, TianjiError
from tianji.guards.auth import Identity
from tianji.providers import Call, adapter_for
from tianji.providers.gemini import GeminiAdapter
from tianji.upstream.types import UpstreamRequest

__all__ = ["ACTIONS", "PATH_PARAM", "gemini_url", "make_gemini_handler", "split_model_action"]

ACTIONS = frozenset({"generateContent", "streamGenerateContent", "countTokens"})
# The one path parameter of the route and its alias (routes.yaml): `{model}:{action}`.
PATH_PARAM = "model_action"
_VERSIONED = re.compile(r"/v\d+(beta\d*)?$")


def split_model_action(segment: str) -> tuple[str, str]:
    model, colon, action = segment.rpartition(":")
    if not colon or not model or action not in ACTIONS:
        raise NotFound(
            f"Unknown Gemini method {segment!r}: expected models/{{model}}:"
            + "|".join(sorted(ACTIONS))
        )
    return model, action


def is_gemini(deployment: Deployment, upstream_model: str) -> bool:
    provider = deployment.provider.name
    return provider == "gemini" or (provider == "vertex_ai" and upstream_model.startswith("gemini"))


def gemini_url(deployment: Deployment, model: str, action: str) -> str:
    """`{api_base}/v1beta/models/{model}:{action}`; an api_base that already ends in
    a version (`/v1beta`, `/v1`) keeps it."""
    base = deployment.api_base
    if not _VERSIONED.search(base):
        base += "/v1beta"
    return f"{base}/models/{quote(model, safe='')}:{action}"


def make_gemini_handler(plan: RoutePlan, runtime: Runtime) -> Any:
    guarded = llm_plan(plan)

    async def handler(
        request: Request[Any, Any, Any], identity: Identity
    ) -> Response[bytes] | Stream:
        identity = await authenticate(runtime, request, plan, identity, query_key=True)
        name, action = split_model_action(request.path_params[PATH_PARAM])
        resolved = resolve_model(runtime.models, name, "chat")
        await runtime.guard.before_call(identity, guarded, resolved.group.name, requested=name)
        deployment = runtime.router.pick(resolved.group)
        model = deployment.upstream_model(resolved.capture)
        if not is_gemini(deployment, model):
            raise InvalidRequest(f"model {name} is not a Gemini model", param="model")
        return await _relay(runtime, request, deployment, model, action)

    return handler


async def upstream_target(
    runtime: Runtime, deployment: Deployment, model: str, action: str
) -> tuple[str, list[tuple[str, str]]]:
    """URL (with the deployment's query, not yet the client's) and headers of the
    upstream call. The Gemini and Vertex adapters know their URLs and credentials
    (Vertex mints an OAuth2 token in `prepare`), so they are asked; any other adapter
    (a Gemini-compatible server under openai_compat) gets `{api_base}/v1beta/models/...`."""
    adapter = adapter_for(deployment.provider.adapter)
    if not isinstance(adapter, GeminiAdapter) or "chat" not in deployment.provider.paths:
        url = gemini_url(deployment, model, action)
        query = urlencode(deployment.query)
        return url + (f"?{query}" if query else ""), [
            *deployment.headers,
            ("content-type", "application/json"),
        ]
    call = Call(operation="chat", deployment=deployment, model=model)
    await adapter_token_headers(runtime, adapter, call)  # Vertex: the Bearer token
    head, _, query = adapter.url(call).partition("?")
    url = head.rpartition(":")[0] + ":" + action
    return url + (f"?{query}" if query else ""), adapter.headers(call)


async def _relay(
    runtime: Runtime,
    request: Request[Any, Any, Any],
    deployment: Deployment,
    model: str,
    action: str,
) -> Response[bytes] | Stream:
    stream = action == "streamGenerateContent"
    url, headers = await upstream_target(runtime, deployment, model, action)
    query = client_query(request, drop=("key",))
    if query:
        url += ("&" if "?" in url else "?") + query
    upstream_request = UpstreamRequest("POST", url, headers, await request.body())
    timeouts = deployment.stream_timeouts if stream else deployment.timeouts
    upstream = await send(runtime, upstream_request, timeouts)
    relayed = {
        "x-litellm-call-id": str(uuid.uuid4()),
        "x-litellm-model-id": deployment.id,
        "x-litellm-model-group": deployment.group,
    }
    content_type = upstream.header("content-type") or "application/json"
    if upstream.status >= 400 or not stream:
        body = redact(await read_whole(upstream), deployment.api_key)
        return Response(body, status_code=upstream.status, media_type=content_type, headers=relayed)
    # Only an SSE stream can carry an error frame; a JSON-array stream just ends.
    is_sse = content_type.startswith("text/event-stream")
    chunks = relay_chunks(upstream, TianjiError.sse_frame if is_sse else None)
    return Stream(chunks, media_type=content_type, headers={**SSE_HEADERS, **relayed})
