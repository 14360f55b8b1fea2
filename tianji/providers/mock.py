"""The `mock` adapter: OpenAI-compatible requests to the in-process mock transport.

The deployment's `mock_response` and `mock_latency` travel as headers, so the
transport stays a plain upstream that knows nothing of deployments.
"""

from __future__ import annotations

from tianji.providers.base import Call
from tianji.providers.openai_compat import OpenAICompatAdapter
from tianji.upstream.mock import MOCK_LATENCY_HEADER, MOCK_RESPONSE_HEADER

__all__ = ["MockAdapter"]


class MockAdapter(OpenAICompatAdapter):
    name = "mock"

    def headers(self, call: Call, content_type: str | None) -> list[tuple[str, str]]:
        headers = super().headers(call, content_type)
        params = call.deployment.params
        if params.mock_response is not None:
            headers.append((MOCK_RESPONSE_HEADER, params.mock_response))
        if params.mock_latency:
            headers.append((MOCK_LATENCY_HEADER, str(params.mock_latency)))
        return headers
