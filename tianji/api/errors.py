"""Every error as the OpenAI envelope: tianji's own, Litestar's (404, 405, 413, ...)
and unexpected ones (logged with their traceback, answered with a generic 500)."""

from __future__ import annotations

import logging
from typing import Any

from litestar import Request, Response
from litestar.exceptions import HTTPException

from tianji.errors import (
    InternalError,
    InvalidRequest,
    MethodNotAllowed,
    NotFound,
    RequestTooLarge,
    TianjiError,
)

__all__ = ["EXCEPTION_HANDLERS", "error_response"]

log = logging.getLogger("tianji")


def error_response(exc: TianjiError) -> Response[bytes]:
    headers = {**exc.headers, "content-type": "application/json"}
    return Response(
        exc.to_json(), status_code=exc.status, headers=headers, media_type="application/json"
    )


def _tianji(request: Request[Any, Any, Any], exc: Exception) -> Response[bytes]:
    assert isinstance(exc, TianjiError)
    return error_response(exc)


def _litestar(request: Request[Any, Any, Any], exc: Exception) -> Response[bytes]:
    assert isinstance(exc, HTTPException)
    status = exc.status_code
    mapped: TianjiError
    if status == 404:
        mapped = NotFound(f"Route not found: {request.method} {request.url.path}")
    elif status == 405:
        mapped = MethodNotAllowed(f"Method {request.method} is not allowed on {request.url.path}")
    elif status == 413:
        mapped = RequestTooLarge("Request body is larger than this route allows.")
    elif 400 <= status < 500:
        mapped = InvalidRequest(str(exc.detail), status=status)
    else:
        log.error("HTTP %s from the framework: %s", status, exc.detail)
        mapped = InternalError("Internal server error.")
    return error_response(mapped)


def _unexpected(request: Request[Any, Any, Any], exc: Exception) -> Response[bytes]:
    log.exception("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    return error_response(InternalError("Internal server error."))


EXCEPTION_HANDLERS: dict[int | type[Exception], Any] = {
    TianjiError: _tianji,
    HTTPException: _litestar,
    Exception: _unexpected,
}
