"""/utils/supported_openai_params and /utils/token_counter."""

from __future__ import annotations

from typing import Any

import msgspec
from litestar import Request, Response

from tianji import tokens
from tianji.api.body import decode_object, validate
from tianji.api.llm.proxy import resolve_model
from tianji.api.runtime import Runtime
from tianji.compile.model import RoutePlan
from tianji.errors import InvalidRequest
from tianji.guards.auth import Identity
from tianji.providers import supported_params

__all__ = ["make_supported_params", "make_token_counter"]


class TokenCounterRequest(msgspec.Struct, kw_only=True):
    model: str
    messages: list[dict[str, Any]] | None = None
    prompt: str | list[str] | None = None
    tools: list[dict[str, Any]] | None = None


def make_supported_params(plan: RoutePlan, runtime: Runtime) -> Any:
    async def handler(request: Request[Any, Any, Any], identity: Identity) -> Response[bytes]:
        model = request.query_params.get("model")
        if not model:
            raise InvalidRequest("Query parameter 'model' is required.", param="model")
        resolved = resolve_model(runtime.models, model, "chat")
        params = sorted(supported_params(resolved.group.deployments[0], "chat"))
        return Response(msgspec.json.encode(params), media_type="application/json")

    return handler


def make_token_counter(plan: RoutePlan, runtime: Runtime) -> Any:
    async def handler(request: Request[Any, Any, Any], identity: Identity) -> Response[bytes]:
        body = decode_object(await request.body())
        validate(body, TokenCounterRequest)
        if body.get("messages") is None and body.get("prompt") is None:
            raise InvalidRequest("Pass 'messages' or 'prompt'.", param="messages")
        model = body["model"]
        resolved = runtime.models.resolve(model)
        upstream = (
            resolved.group.deployments[0].upstream_model(resolved.capture) if resolved else model
        )
        count = tokens.token_counter(
            upstream,
            messages=body.get("messages"),
            prompt=body.get("prompt"),
            tools=body.get("tools"),
        )
        result = {
            "total_tokens": count.total_tokens,
            "request_model": model,
            "model_used": count.model_used,
            "tokenizer_type": count.tokenizer_type,
        }
        return Response(msgspec.json.encode(result), media_type="application/json")

    return handler
