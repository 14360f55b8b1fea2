"""Endpoints for operations routed by `model`: chat, completions, embeddings, images,
audio, moderations, rerank, responses.

One factory serves them all: decode and check the body, resolve the model to a
deployment, hand a Call to the adapter and relay the answer.
"""

from __future__ import annotations

import itertools
import uuid
from typing import Any

from litestar import Request, Response
from litestar.datastructures import UploadFile
from litestar.response import Stream

from tianji.api.body import decode_object, validate
from tianji.api.llm.relay import relay
from tianji.api.llm.schemas import SCHEMAS
from tianji.api.runtime import Runtime
from tianji.compile.model import Deployment, ModelTable, Resolved, RoutePlan
from tianji.errors import InvalidRequest
from tianji.guards.auth import Identity
from tianji.providers import Call, FormPart

__all__ = ["MULTIPART_OPERATIONS", "make_model_handler", "resolve_model", "response_headers"]

MULTIPART_OPERATIONS = frozenset({"transcription", "image_edit", "image_variation"})

Handler = Any


def resolve_model(models: ModelTable, name: str | None, operation: str) -> Resolved:
    if not name:
        raise InvalidRequest("'model' is required.", param="model")
    resolved = models.resolve(name)
    if resolved is None:
        available = ", ".join(sorted(models.public_names())) or "none configured"
        raise InvalidRequest(
            f"Invalid model name passed in model={name}. Available models: {available}",
            param="model",
            code="model_not_found",
        )
    return resolved


def make_model_handler(plan: RoutePlan, runtime: Runtime) -> Handler:
    operation = plan.operation
    schema = SCHEMAS.get(operation)
    openai_params = runtime.openai_params.get(operation, frozenset())
    default_model = runtime.gateway.settings.default_models.get(operation)
    multipart = operation in MULTIPART_OPERATIONS

    async def handler(
        request: Request[Any, Any, Any], identity: Identity
    ) -> Response[bytes] | Stream:
        form: list[FormPart] | None = None
        body: dict[str, Any] | None = None
        if multipart:
            form, model_name = await _read_form(request)
        else:
            body = decode_object(await request.body())
            if schema is not None:
                validate(body, schema)
            model_name = body.get("model")
        if plan.model_param:
            model_name = request.path_params[plan.model_param]
        requested = model_name or default_model
        resolved = resolve_model(runtime.models, requested, operation)
        await runtime.guard.before_call(identity, plan, resolved.group.name, requested=requested)
        deployment = runtime.router.pick(resolved.group)
        _check_operation(deployment, operation)
        stream = bool(body.get("stream")) if body is not None else False
        call = Call(
            operation=operation,
            deployment=deployment,
            model=deployment.upstream_model(resolved.capture),
            body=body,
            form=form,
            stream=stream,
            drop_params=body.get("drop_params") if body is not None else None,
            openai_params=openai_params,
        )
        return await relay(runtime, call, response_headers(deployment))

    return handler


def _check_operation(deployment: Deployment, operation: str) -> None:
    if operation not in deployment.provider.paths:
        raise InvalidRequest(
            f"model group {deployment.group!r} ({deployment.provider.name}) does not support "
            f"{operation}",
            param="model",
        )


# Call ids: a random per-process prefix and a counter. Unique across instances like a
# uuid4, without the urandom syscall per request (5% of CPU in the benchmark profile).
_CALL_ID_PREFIX = uuid.uuid4().hex[:20]
_call_numbers = itertools.count()


def new_call_id() -> str:
    return f"{_CALL_ID_PREFIX}{next(_call_numbers):012x}"


def response_headers(deployment: Deployment) -> dict[str, str]:
    """The x-litellm-* headers of an answer served by `deployment`."""
    return {
        "x-litellm-call-id": new_call_id(),
        "x-litellm-model-id": deployment.id,
        "x-litellm-model-group": deployment.group,
        "x-litellm-model-api-base": deployment.api_base,
    }


async def _read_form(request: Request[Any, Any, Any]) -> tuple[list[FormPart], str | None]:
    content_type = request.headers.get("content-type", "")
    if not content_type.startswith("multipart/form-data"):
        raise InvalidRequest(
            "This endpoint expects multipart/form-data.", code="invalid_content_type"
        )
    form = await request.form()
    parts: list[FormPart] = []
    model: str | None = None
    for name, value in form.multi_items():
        if isinstance(value, UploadFile):
            data = await value.read()
            parts.append(FormPart(name, data, value.filename, value.content_type))
        else:
            if name == "model":
                model = str(value)
            parts.append(FormPart(name, str(value).encode()))
    return parts, model
