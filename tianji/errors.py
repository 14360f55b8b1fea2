"""The one exception tree of tianji, and the OpenAI error envelope.

Every failure a client can see is a :class:`TianjiError`; the app turns it into
``{"error": {"message", "type", "param", "code"}}`` with ``error.status``. Nothing
else (no traceback, no secret) reaches a client: unexpected exceptions become a
generic 500 envelope.

    TianjiError                       any error with an HTTP status and an OpenAI `type`
    ├── InvalidRequest            400  invalid_request_error (bad JSON, wrong types, unknown model)
    │   └── UnsupportedParams     400  an OpenAI param the provider cannot express
    ├── AuthenticationFailed      401  authentication_error (no key, wrong key)
    ├── PermissionDenied          403  permission_denied
    ├── NotFound                  404  not_found_error (route, model id)
    ├── MethodNotAllowed          405  invalid_request_error
    ├── RequestTooLarge           413  request_too_large
    ├── InternalError             500  internal_server_error (a bug; the message is generic)
    └── UpstreamError             5xx  raised by tianji/upstream and the adapters
        ├── UpstreamStatusError   the upstream answered with an error status (relayed or mapped)
        ├── UpstreamConnectError  502  api_connection_error: refused, DNS, TLS, reset early
        ├── UpstreamTimeout       504  timeout: connect or read exceeded the deployment's timeout
        └── UpstreamProtocolError 502  api_error: malformed response, invalid JSON, closed mid-body

The transport (tianji/upstream) raises only the Upstream* errors, so callers can
tell "the provider said no" from "we could not talk to the provider".
"""

from __future__ import annotations

import msgspec

__all__ = [
    "AuthenticationFailed",
    "ErrorBody",
    "ErrorEnvelope",
    "InternalError",
    "InvalidRequest",
    "MethodNotAllowed",
    "NotFound",
    "PermissionDenied",
    "RequestTooLarge",
    "TianjiError",
    "UnsupportedParams",
    "UpstreamConnectError",
    "UpstreamError",
    "UpstreamProtocolError",
    "UpstreamStatusError",
    "UpstreamTimeout",
]


class ErrorBody(msgspec.Struct, omit_defaults=False):
    message: str
    type: str
    param: str | None
    code: str


class ErrorEnvelope(msgspec.Struct):
    error: ErrorBody


_encoder = msgspec.json.Encoder()


class TianjiError(Exception):
    """An error with an HTTP status, shown to the client as the OpenAI envelope."""

    status: int = 500
    type: str = "api_error"

    def __init__(
        self,
        message: str,
        *,
        param: str | None = None,
        code: str | None = None,
        status: int | None = None,
        type: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.param = param
        if status is not None:
            self.status = status
        if type is not None:
            self.type = type
        self.code = code if code is not None else str(self.status)
        self.headers = headers or {}

    def envelope(self) -> ErrorEnvelope:
        return ErrorEnvelope(ErrorBody(self.message, self.type, self.param, self.code))

    def to_json(self) -> bytes:
        return _encoder.encode(self.envelope())

    def sse_frame(self) -> bytes:
        """The error as one SSE `data:` frame, for failures after a stream started."""
        return b"data: " + self.to_json() + b"\n\n"


class InvalidRequest(TianjiError):
    status = 400
    type = "invalid_request_error"


class UnsupportedParams(InvalidRequest):
    pass


class AuthenticationFailed(TianjiError):
    status = 401
    type = "authentication_error"


class PermissionDenied(TianjiError):
    status = 403
    type = "permission_denied"


class NotFound(TianjiError):
    status = 404
    type = "not_found_error"


class MethodNotAllowed(TianjiError):
    status = 405
    type = "invalid_request_error"


class RequestTooLarge(TianjiError):
    status = 413
    type = "request_too_large"


class InternalError(TianjiError):
    status = 500
    type = "internal_server_error"


class UpstreamError(TianjiError):
    status = 502
    type = "api_error"


class UpstreamStatusError(UpstreamError):
    """The upstream answered with a status >= 400; `status` is what the client gets."""


class UpstreamConnectError(UpstreamError):
    status = 502
    type = "api_connection_error"


class UpstreamTimeout(UpstreamError):
    status = 504
    type = "timeout"


class UpstreamProtocolError(UpstreamError):
    status = 502
    type = "api_error"
