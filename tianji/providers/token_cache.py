"""Short-lived bearer tokens for adapters whose key must be exchanged first (IBM IAM, ...).

An adapter's optional async hook ``prepare(call, send)`` runs before ``build_request``
(tianji/providers/base.py) and fetches its token through `send`. Token exchanges are
slow (hundreds of milliseconds) and rate-limited, so the token is cached until shortly
before it expires, and concurrent requests that find it missing or stale share one
refresh ("single flight") instead of each starting their own.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Hashable
from dataclasses import dataclass
from typing import TypeAlias

__all__ = ["Fetch", "TokenCache"]

# A fetcher returns (token, expiry as seconds since the epoch).
Fetch: TypeAlias = Callable[[], Awaitable[tuple[str, float]]]


@dataclass(frozen=True, slots=True)
class _Entry:
    token: str
    refresh_at: float


class TokenCache:
    """Tokens by credential key, refreshed `margin` seconds before they expire.

    `clock` returns seconds since the epoch (token expiries are absolute); tests pass
    their own to step past an expiry without waiting.
    """

    def __init__(self, *, margin: float = 60.0, clock: Callable[[], float] = time.time) -> None:
        self.margin = margin
        self.clock = clock
        self._tokens: dict[Hashable, _Entry] = {}
        self._pending: dict[Hashable, asyncio.Future[str]] = {}

    async def get(self, key: Hashable, fetch: Fetch) -> str:
        """The cached token for `key`, or the result of one shared `fetch()`."""
        entry = self._tokens.get(key)
        if entry is not None and self.clock() < entry.refresh_at:
            return entry.token
        pending = self._pending.get(key)
        if pending is None:
            pending = asyncio.ensure_future(self._refresh(key, fetch))
            self._pending[key] = pending
            pending.add_done_callback(lambda done: self._settled(key, done))
        # shield: a caller that gives up (client disconnect) must not cancel the
        # refresh the other callers are waiting for.
        return await asyncio.shield(pending)

    def invalidate(self, key: Hashable) -> None:
        """Forget a token the upstream refused (revoked or expired early)."""
        self._tokens.pop(key, None)

    async def _refresh(self, key: Hashable, fetch: Fetch) -> str:
        token, expires_at = await fetch()
        self._tokens[key] = _Entry(token, expires_at - self.margin)
        return token

    def _settled(self, key: Hashable, done: asyncio.Future[str]) -> None:
        if self._pending.get(key) is done:
            del self._pending[key]
        if not done.cancelled():
            done.exception()  # mark retrieved: every waiter may have gone away
