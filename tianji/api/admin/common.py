"""What every management endpoint shares: body decoding (422 with a JSON path),
JSON responses (ISO-8601 UTC times with `Z`), the store, the audit actor,
query parameters, and key references shown without their secret.

Management errors (management-api.md §0): 400 `bad_request_error`, 403
`permission_denied`, 404 `not_found_error`, 409 `conflict`, 422
`validation_error`, 503 `no_db_connection`.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any, TypeVar

import msgspec
from litestar import Request, Response

from tianji.api.runtime import Runtime
from tianji.errors import TianjiError
from tianji.guards.auth import Identity
from tianji.store import Actor, Store, Unavailable

__all__ = [
    "BadRequest",
    "ValidationFailed",
    "actor",
    "convert",
    "displayed",
    "endpoint",
    "iso",
    "json_response",
    "query_bool",
    "query_int",
    "read_body",
    "require_store",
]

S = TypeVar("S", bound=msgspec.Struct)

_decoder = msgspec.json.Decoder()
_encoder = msgspec.json.Encoder()
_PATH = re.compile(r" - at `\$(?P<path>[^`]*)`$")


class BadRequest(TianjiError):
    status = 400
    type = "bad_request_error"


class ValidationFailed(TianjiError):
    status = 422
    type = "validation_error"


async def read_body(request: Request[Any, Any, Any], *, optional: bool = False) -> dict[str, Any]:
    raw = await request.body()
    if not raw.strip():
        if optional:
            return {}
        raise ValidationFailed("Request body is empty; expected a JSON object.")
    try:
        data = _decoder.decode(raw)
    except msgspec.DecodeError as exc:
        raise ValidationFailed(f"Malformed JSON in request body: {exc}") from None
    if not isinstance(data, dict):
        raise ValidationFailed(
            f"Request body must be a JSON object, got {type(data).__name__}.", param="$"
        )
    return data


def convert(data: Mapping[str, Any], schema: type[S]) -> S:
    """Unknown fields are ignored (newer LiteLLM clients keep working); a type error
    is 422 naming its JSON path, e.g. `$.max_budget`."""
    try:
        return msgspec.convert(data, schema)
    except msgspec.ValidationError as exc:
        message = str(exc)
        match = _PATH.search(message)
        path = "$" + match.group("path") if match else "$"
        if match:
            message = message[: match.start()]
        raise ValidationFailed(f"Invalid request body at {path}: {message}", param=path) from None


def endpoint(runtime: Runtime, work: Any, *, body: bool = True, optional: bool = False) -> Any:
    """A management handler around `work(store, request, identity, body, actor)`:
    the store (503 without one), the decoded JSON body (when `body`; `optional`
    lets it be empty) and the audit actor; `work`'s result is the JSON answer."""

    async def handler(request: Request[Any, Any, Any], identity: Identity) -> Response[bytes]:
        store = require_store(runtime)
        data = await read_body(request, optional=optional) if body else {}
        result = await work(store, request, identity, data, actor(request, identity))
        return json_response(result)

    return handler


def json_response(data: Any) -> Response[bytes]:
    return Response(_encoder.encode(data), status_code=200, media_type="application/json")


def require_store(runtime: Runtime) -> Store:
    if runtime.store is None or not runtime.store.is_open:
        raise Unavailable(
            "No database: virtual keys need general_settings.master_key "
            "(and general_settings.database_url, default ./tianji.db)."
        )
    return runtime.store


def actor(request: Request[Any, Any, Any], identity: Identity) -> Actor:
    """The audit log's `changed_by`: the litellm-changed-by header, else the caller."""
    return Actor(
        changed_by=request.headers.get("litellm-changed-by") or identity.actor_name,
        api_key=identity.actor_key,
    )


def _query(
    request: Request[Any, Any, Any], name: str, default: Any, parse: Callable[[str], Any]
) -> Any:
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return default
    try:
        return parse(raw)
    except ValueError:
        raise ValidationFailed(f"Invalid query parameter {name}={raw!r}", param=name) from None


def query_int(
    request: Request[Any, Any, Any], name: str, default: int, *, low: int, high: int
) -> int:
    value: int = _query(request, name, default, int)
    if not low <= value <= high:
        raise ValidationFailed(f"{name} must be between {low} and {high}, got {value}", param=name)
    return value


def _boolean(raw: str) -> bool:
    lowered = raw.lower()
    if lowered in ("true", "1", "yes"):
        return True
    if lowered in ("false", "0", "no"):
        return False
    raise ValueError(raw)


def query_bool(request: Request[Any, Any, Any], name: str, default: bool = False) -> bool:
    value: bool = _query(request, name, default, _boolean)
    return value


def displayed(reference: str) -> str:
    """A key reference for messages: a plaintext key is never echoed whole."""
    if reference.startswith("sk-"):
        return f"sk-...{reference[-4:]}"
    return reference


def iso(value: datetime | None) -> str | None:
    """Times in answers: ISO-8601 in UTC with a `Z` (management-api.md §0)."""
    if value is None:
        return None
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")
