"""The shared SSE parser (fed byte by byte) and the provider error table."""

from __future__ import annotations

import pytest

from tianji.providers.errors import provider_error
from tianji.providers.sse import SSEEvent, SSEParser

STREAM = (
    b": comment\r\n"
    b'event: message_start\r\ndata: {"a": 1}\r\n\r\n'
    b"data: line one\ndata: line two\n\n"
    b"event: ping\rdata: \xc3\xa9t\xc3\xa9\r\r"
    b"data: tail-without-blank-line"
)
EXPECTED = [
    SSEEvent("message_start", '{"a": 1}'),
    SSEEvent("message", "line one\nline two"),
    SSEEvent("ping", "été"),
    SSEEvent("message", "tail-without-blank-line"),
]


@pytest.mark.parametrize("size", [1, 2, 3, 7, len(STREAM)])
def test_sse_parser_any_split(size: int) -> None:
    parser = SSEParser()
    events = []
    for i in range(0, len(STREAM), size):
        events += parser.feed(STREAM[i : i + size])
    events += parser.close()
    assert events == EXPECTED


@pytest.mark.parametrize(
    ("status", "message", "code", "want_status", "want_type", "want_code"),
    [
        (400, "bad field", None, 400, "invalid_request_error", "400"),
        (
            400,
            "This model's maximum context length is 8192",
            None,
            400,
            "invalid_request_error",
            "context_length_exceeded",
        ),
        (
            400,
            "prompt is too long: 300000 tokens",
            None,
            400,
            "invalid_request_error",
            "context_length_exceeded",
        ),
        (
            400,
            "Output blocked by content filter",
            None,
            400,
            "content_policy_violation",
            "content_policy_violation",
        ),
        (401, "bad key", None, 401, "authentication_error", "401"),
        (403, "nope", None, 403, "permission_denied", "403"),
        (404, "no model", None, 404, "not_found_error", "404"),
        (413, "big", None, 413, "request_too_large", "413"),
        (429, "slow down", "rate_limit_exceeded", 429, "rate_limit_error", "rate_limit_exceeded"),
        (500, "boom", None, 502, "api_error", "500"),
        (503, "down", None, 503, "service_unavailable", "503"),
        (529, "Overloaded", None, 503, "service_unavailable", "529"),
    ],
)
def test_error_table(
    status: int, message: str, code: str | None, want_status: int, want_type: str, want_code: str
) -> None:
    error = provider_error("acme", status, message, code=code, retry_after="3")
    assert (error.status, error.type, error.code) == (want_status, want_type, want_code)
    assert error.message == f"acmeException - {message}"
    if status in (429, 503, 529):
        assert error.headers == {"retry-after": "3"}
