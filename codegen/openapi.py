"""OpenAPI 3.1 document of the app, built from its compiled route plans.

One operation per served (path, method): the plans are what `build_app` mounts,
so the document cannot list a route the app does not serve or miss one it does.
Request bodies are the Structs the handlers validate with (``SCHEMAS``), errors
are the ``ErrorEnvelope`` every failure is rendered as.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

import msgspec

import tianji
from tianji.api import MULTIPART_OPERATIONS
from tianji.api.llm.schemas import SCHEMAS
from tianji.compile.model import RoutePlan
from tianji.errors import ErrorEnvelope

__all__ = ["OPENAPI_VERSION", "openapi_document", "operation_ids", "path_parameters"]

OPENAPI_VERSION = "3.1.0"
_REF_TEMPLATE = "#/components/schemas/{name}"
_BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})
# `{name}` or a typed `{name:path}` (the type is Litestar's, not OpenAPI's).
_PARAM = re.compile(r"\{([^{}/:]+)(?::[^{}/]+)?\}")

Doc = dict[str, Any]


def openapi_document(plans: Iterable[RoutePlan]) -> Doc:
    served = list(_served(plans))
    ids = operation_ids(served)
    components, bodies, error = _components()
    paths: dict[str, dict[str, Doc]] = {}
    for plan, method in served:
        operation = _operation(plan, method, ids[plan.path, method], bodies, error)
        paths.setdefault(openapi_path(plan.path), {})[method.lower()] = operation
    return {
        "openapi": OPENAPI_VERSION,
        "info": {"title": "tianji", "version": tianji.__version__, "summary": _summary()},
        "paths": paths,
        "components": {
            "schemas": components,
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
    }


def operation_ids(served: Sequence[tuple[RoutePlan, str]]) -> dict[tuple[str, str], str]:
    """(path, method) -> a unique operationId named after the route.

    The first path of a route gets the route id (plus the method when the route
    serves several); further paths (other mount prefixes, aliases) add their path.
    """
    multi_method = {plan.route_id for plan, _ in served if len(plan.methods) > 1}
    taken: set[str] = set()
    ids: dict[tuple[str, str], str] = {}
    for plan, method in served:
        base = plan.route_id
        if plan.route_id in multi_method:
            base += "_" + method.lower()
        candidates = _candidates(base, plan.path)
        chosen = next(c for c in candidates if c not in taken)
        taken.add(chosen)
        ids[plan.path, method] = chosen
    return ids


def openapi_path(path: str) -> str:
    """`/anthropic/{path:path}` -> `/anthropic/{path}`."""
    return _PARAM.sub(lambda m: "{" + m[1] + "}", path)


def path_parameters(path: str) -> list[str]:
    """`/threads/{thread_id}/runs/{run_id}` -> ["thread_id", "run_id"]."""
    return _PARAM.findall(path)


def _served(plans: Iterable[RoutePlan]) -> Iterator[tuple[RoutePlan, str]]:
    for plan in plans:
        for method in plan.methods:
            yield plan, method


def _candidates(base: str, path: str) -> Iterator[str]:
    yield base
    slug = re.sub(r"[^A-Za-z0-9]+", "_", path).strip("_")
    yield f"{base}__{slug}"
    n = 2
    while True:
        yield f"{base}__{slug}_{n}"
        n += 1


def _components() -> tuple[dict[str, Doc], dict[str, Doc], Doc]:
    """Component schemas of the request Structs and the error envelope;
    operation -> $ref of its request body; the envelope's $ref."""
    operations = sorted(SCHEMAS)
    types = [SCHEMAS[op] for op in operations] + [ErrorEnvelope]
    refs, components = msgspec.json.schema_components(types, ref_template=_REF_TEMPLATE)
    *bodies, error = refs
    return components, dict(zip(operations, bodies, strict=True)), error


def _operation(
    plan: RoutePlan, method: str, operation_id: str, bodies: dict[str, Doc], error: Doc
) -> Doc:
    op: Doc = {
        "operationId": operation_id,
        "tags": [plan.operation],
        "x-tianji-route-id": plan.route_id,
        "x-tianji-operation": plan.operation,
        "responses": {
            "200": {"description": "Success."},
            "default": {
                "description": "An error, as the OpenAI error envelope.",
                "content": {"application/json": {"schema": error}},
            },
        },
    }
    if plan.summary:
        op["summary"] = plan.summary
    if plan.alias_of is not None:
        op["x-tianji-alias-of"] = plan.alias_of
    if plan.operation == "forward":
        op["description"] = f"Relayed to the upstream's `{plan.upstream_path}`."
    params = [
        {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
        for name in path_parameters(plan.path)
    ]
    if params:
        op["parameters"] = params
    body = _request_body(plan.operation, bodies) if method in _BODY_METHODS else None
    if body is not None:
        op["requestBody"] = body
    if plan.auth != "public":
        op["security"] = [{"bearer": []}]
    return op


# The binary form field per multipart operation (OpenAI's names).
_FILE_FIELD = {"transcription": "file", "image_edit": "image", "image_variation": "image"}


def _request_body(operation: str, bodies: dict[str, Doc]) -> Doc | None:
    if operation in MULTIPART_OPERATIONS:
        field = _FILE_FIELD.get(operation, "file")
        form = {
            "type": "object",
            "properties": {
                field: {
                    "type": "string",
                    "format": "binary",
                    "contentMediaType": "application/octet-stream",
                },
                "model": {"type": "string"},
            },
            "required": [field],
        }
        return {"required": True, "content": {"multipart/form-data": {"schema": form}}}
    if operation in bodies:
        return {"required": True, "content": {"application/json": {"schema": bodies[operation]}}}
    return None


def _summary() -> str:
    return (tianji.__doc__ or "").strip().splitlines()[0]
