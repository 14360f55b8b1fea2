"""What the rest of tianji sees of an upstream call: a request, a response, a transport.

Adapters build an :class:`UpstreamRequest` (pure data). A :class:`Transport` sends it
and returns an :class:`UpstreamResponse` as soon as the status line and headers
have arrived, so a stream can be relayed chunk by chunk and an error status can
still become a normal JSON error before anything was sent to the client.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Protocol

__all__ = ["Timeouts", "Transport", "UpstreamRequest", "UpstreamResponse"]


@dataclass(frozen=True, slots=True)
class Timeouts:
    """Seconds. `read` bounds every wait for bytes: the headers and each later chunk."""

    connect: float = 5.0
    read: float = 600.0


@dataclass(slots=True)
class UpstreamRequest:
    method: str
    url: str
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b""


class UpstreamResponse(Protocol):
    status: int
    # Header names are lower-case; order and repeats are kept.
    headers: list[tuple[str, str]]

    def header(self, name: str, default: str | None = None) -> str | None:
        """First value of a header (name in lower case)."""
        ...

    async def read(self) -> bytes:
        """The whole (de-chunked) body; releases the connection to the pool."""
        ...

    def iter_bytes(self) -> AsyncIterator[bytes]:
        """Body chunks as they arrive (de-chunked). Each wait is bounded by `Timeouts.read`."""
        ...

    async def aclose(self) -> None:
        """Release the connection: back to the pool if the body was read to its end,
        else the socket is closed so the upstream sees the disconnect. Idempotent."""
        ...


class Transport(Protocol):
    async def send(self, request: UpstreamRequest, timeouts: Timeouts) -> UpstreamResponse: ...

    async def aclose(self) -> None: ...
