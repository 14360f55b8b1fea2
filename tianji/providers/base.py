"""The adapter seam: what an adapter is given, and what it must answer.

An adapter is plain functions of data (no Litestar, no sockets):

* ``build_request(call)`` -> the :class:`UpstreamRequest` to send;
* ``translate_response(call, body)`` -> OpenAI-shaped bytes, or ``None`` to relay
  the upstream bytes untouched (the OpenAI-compatible family);
* ``stream_translator(call)`` -> an object turning upstream stream bytes into
  OpenAI SSE bytes, or ``None`` to relay the stream untouched;
* ``error_from_status(call, status, headers, body)`` -> the TianjiError a client sees.

Translating providers (Anthropic, Gemini, Bedrock, ...) implement the same four.
Two optional async hooks cover providers that need more than one exchange; the
gateway passes them `send`, the only way out to the network:

* ``prepare(call, send)`` runs before ``build_request`` (e.g. mint or refresh an
  OAuth/IAM token, cached by the adapter);
* ``complete(call, send)`` replaces the single send for multi-step flows (e.g.
  create a prediction, then poll or open its stream) and returns the response
  to relay.

And one optional plain method, run at link time: ``check(deployment, env)`` returns
the deployment's configuration problems (missing credentials, region, project),
so `tianji check` reports them instead of the first request failing.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from tianji.compile.model import Deployment
from tianji.errors import TianjiError
from tianji.upstream.types import Timeouts, UpstreamRequest, UpstreamResponse

__all__ = ["Adapter", "Call", "FormPart", "Send", "StreamTranslator"]

# How an adapter hook reaches the network: the gateway's transport for that URL.
Send = Callable[[UpstreamRequest, Timeouts], Awaitable[UpstreamResponse]]


@dataclass(slots=True)
class FormPart:
    """One field of a multipart/form-data request."""

    name: str
    value: bytes
    filename: str | None = None
    content_type: str | None = None


@dataclass(slots=True)
class Call:
    operation: str
    deployment: Deployment
    # Upstream model name for this call (wildcard capture applied).
    model: str
    body: dict[str, Any] | None = None
    form: list[FormPart] | None = None
    stream: bool = False
    # Request-level drop_params (None = the deployment's setting).
    drop_params: bool | None = None
    # forward operation: method, upstream path (params filled) and raw query/body.
    method: str = "POST"
    path: str = ""
    query: str = ""
    raw_body: bytes = b""
    content_type: str | None = None
    extra_headers: tuple[tuple[str, str], ...] = ()
    # The OpenAI params of this operation (for the unsupported-param rule).
    openai_params: frozenset[str] = field(default_factory=frozenset)


class StreamTranslator(Protocol):
    def feed(self, chunk: bytes) -> bytes:
        """Translate upstream bytes; returns OpenAI SSE bytes (possibly empty)."""
        ...

    def close(self) -> bytes:
        """End of upstream stream; returns the final frames (e.g. `data: [DONE]`)."""
        ...


class Adapter(Protocol):
    name: str

    def build_request(self, call: Call) -> UpstreamRequest: ...

    def translate_response(self, call: Call, body: bytes) -> bytes | None: ...

    def stream_translator(self, call: Call) -> StreamTranslator | None: ...

    def error_from_status(
        self, call: Call, status: int, headers: Mapping[str, str], body: bytes
    ) -> TianjiError: ...
