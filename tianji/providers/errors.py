"""Upstream error statuses -> the client's error, one table for every provider.

The *status* follows HTTP gateway semantics: what the provider refused (4xx) is
passed on with its status; what the provider failed at (5xx) is 502, or 503
when it said it is overloaded or unavailable (503, 529), so clients and the
router can tell "retry elsewhere" from "your request is wrong". The *type* and
*code* say what the router can act on: `context_length_exceeded` and
`content_policy_violation` are distinguishable from other 400s.
"""

from __future__ import annotations

from tianji.errors import InvalidRequest, TianjiError, UpstreamError, UpstreamStatusError

__all__ = ["CONTENT_POLICY", "CONTEXT_LENGTH", "provider_error"]

CONTEXT_LENGTH = "context_length_exceeded"
CONTENT_POLICY = "content_policy_violation"

_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_denied",
    404: "not_found_error",
    408: "timeout",
    413: "request_too_large",
    422: "unprocessable_entity",
    429: "rate_limit_error",
}

_CONTEXT_HINTS = (
    "context length",
    "context_length",
    "too many tokens",
    "prompt is too long",
    "maximum context",
    "input is too long",
)
_POLICY_HINTS = ("content filter", "content_filter", "content policy", "safety", "blocked")


def provider_error(
    provider: str,
    status: int,
    message: str,
    *,
    type: str | None = None,
    code: str | None = None,
    param: str | None = None,
    retry_after: str | None = None,
) -> TianjiError:
    """The TianjiError for an upstream error status. `type`/`code` given by the provider
    (OpenAI-style bodies) are kept for 4xx; context-length and content-policy 400s are
    recognised from the code or the message."""
    text = f"{provider}Exception - {message}"
    headers = {"retry-after": retry_after} if retry_after else None
    if status in (503, 529):
        return UpstreamStatusError(
            text, status=503, type="service_unavailable", code=code or str(status), headers=headers
        )
    if status >= 500:
        return UpstreamStatusError(
            text, status=502, type="api_error", code=code or str(status), headers=headers
        )
    if status == 400:
        lowered = f"{code or ''} {message}".lower()
        if code == CONTEXT_LENGTH or any(h in lowered for h in _CONTEXT_HINTS):
            return InvalidRequest(text, code=CONTEXT_LENGTH, param=param)
        if code == CONTENT_POLICY or any(h in lowered for h in _POLICY_HINTS):
            return InvalidRequest(text, type=CONTENT_POLICY, code=CONTENT_POLICY, param=param)
        return InvalidRequest(text, type=type or _TYPES[400], code=code or "400", param=param)
    return UpstreamError(
        text,
        status=status,
        type=type or _TYPES.get(status, "invalid_request_error"),
        code=code or str(status),
        param=param,
        headers=headers,
    )
