"""Anthropic's error envelope, used on the Anthropic-format routes only.

`/v1/messages` clients (the anthropic SDK, Claude Code) read
`{"type": "error", "error": {"type", "message"}}`; every other route answers
with the OpenAI envelope. The Anthropic `type` follows from the HTTP status,
as Anthropic's own table does.
"""

from __future__ import annotations

import msgspec
from litestar import Response

from tianji.errors import TianjiError

__all__ = ["anthropic_error_event", "anthropic_error_json", "anthropic_error_response"]

_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    402: "billing_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    503: "overloaded_error",
    504: "timeout_error",
    529: "overloaded_error",
}


def anthropic_error_type(status: int) -> str:
    return _TYPES.get(status, "api_error" if status >= 500 else "invalid_request_error")


def anthropic_error_json(exc: TianjiError) -> bytes:
    error = {"type": anthropic_error_type(exc.status), "message": exc.message}
    return msgspec.json.encode({"type": "error", "error": error})


def anthropic_error_response(exc: TianjiError) -> Response[bytes]:
    headers = {**exc.headers, "content-type": "application/json"}
    return Response(
        anthropic_error_json(exc),
        status_code=exc.status,
        headers=headers,
        media_type="application/json",
    )


def anthropic_error_event(exc: TianjiError) -> bytes:
    """The error as an SSE `error` event, for failures after a stream started."""
    return b"event: error\ndata: " + anthropic_error_json(exc) + b"\n\n"
