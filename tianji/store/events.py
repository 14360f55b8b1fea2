"""Change notifications: "these rows changed", to every cache that holds them.

Repositories publish a `Change` after each committed write. Listeners in this
process (the identity cache) hear it at once; with `general_settings.redis_url`
it is also published on the Redis channel `tianji:invalidate`, and every other
instance's bus hands it to its own listeners (guards.md §1.3: evicted within
~1 s everywhere). If the subscription drops, listeners get a `Change("*")`
(forget everything) and the bus resubscribes, so a lost message never leaves
a stale entry behind for a whole TTL.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import msgspec

__all__ = ["CHANNEL", "Change", "ChangeBus"]

log = logging.getLogger("tianji.store")

CHANNEL = "tianji:invalidate"
EVERYTHING = "*"


@dataclass(frozen=True, slots=True)
class Change:
    # "key", "user", "team", "organization", "end_user", "budget", "model", or "*".
    kind: str
    ids: tuple[str, ...] = ()


Listener = Callable[[Change], None]


class _Message(msgspec.Struct):
    origin: str
    kind: str
    ids: list[str]


class ChangeBus:
    def __init__(self, redis_url: str | None = None, *, channel: str = CHANNEL) -> None:
        self._redis_url = redis_url
        self._channel = channel
        self._origin = uuid.uuid4().hex
        self._listeners: list[Listener] = []
        self._publisher: Any = None
        self._reader: asyncio.Task[None] | None = None

    @property
    def distributed(self) -> bool:
        return self._redis_url is not None

    def subscribe(self, listener: Listener) -> None:
        self._listeners.append(listener)

    def _notify(self, change: Change) -> None:
        for listener in self._listeners:
            listener(change)

    async def publish(self, change: Change) -> None:
        self._notify(change)
        if self._publisher is None:
            return
        message = msgspec.json.encode(_Message(self._origin, change.kind, list(change.ids)))
        try:
            await self._publisher.publish(self._channel, message)
        except Exception as exc:  # the write is committed; other instances expire by TTL
            log.warning("could not publish an invalidation on Redis: %s", exc)

    async def start(self) -> None:
        if self._redis_url is None or self._reader is not None:
            return
        from redis.asyncio import BlockingConnectionPool, Redis

        pool = BlockingConnectionPool.from_url(
            self._redis_url, max_connections=8, timeout=2, socket_connect_timeout=2
        )
        self._publisher = Redis(connection_pool=pool)
        try:
            pubsub = await self._subscribe()
        except Exception as exc:
            # Serve anyway (keys still work); the reader keeps trying, and forgets
            # every cached entry once it is subscribed.
            log.warning("Redis invalidation channel unavailable at startup: %s", exc)
            pubsub = None
        self._reader = asyncio.create_task(self._read(pubsub), name="tianji-invalidation")

    async def _subscribe(self) -> Any:
        from redis.asyncio import Redis

        client = Redis.from_url(self._redis_url or "", socket_connect_timeout=2)
        pubsub = client.pubsub(ignore_subscribe_messages=True)
        try:
            # Subscribed before start() returns: no write after startup is missed.
            await pubsub.subscribe(self._channel)
        except BaseException:
            await _close(pubsub)
            raise
        return pubsub

    async def _read(self, pubsub: Any) -> None:
        if pubsub is None:
            pubsub = await self._resubscribe()
        while True:
            try:
                async for item in pubsub.listen():
                    if item.get("type") == "message":
                        self._deliver(item["data"])
            except asyncio.CancelledError:
                await _close(pubsub)
                raise
            except Exception as exc:
                log.warning("Redis invalidation channel lost (%s); resubscribing", exc)
            await _close(pubsub)
            # Messages may have been lost meanwhile: forget every cached entry.
            self._notify(Change(EVERYTHING))
            pubsub = await self._resubscribe()

    async def _resubscribe(self) -> Any:
        delay = 0.1
        while True:
            await asyncio.sleep(delay)
            try:
                pubsub = await self._subscribe()
            except Exception as exc:
                log.warning("Redis invalidation channel still down: %s", exc)
                delay = min(delay * 2, 5.0)
                continue
            self._notify(Change(EVERYTHING))
            return pubsub

    def _deliver(self, data: bytes) -> None:
        try:
            message = msgspec.json.decode(data, type=_Message)
        except msgspec.DecodeError:
            log.warning("ignored a malformed message on %s", self._channel)
            return
        if message.origin != self._origin:
            self._notify(Change(message.kind, tuple(message.ids)))

    async def stop(self) -> None:
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._reader
            self._reader = None
        if self._publisher is not None:
            with contextlib.suppress(Exception):
                await self._publisher.aclose()
            self._publisher = None


async def _close(pubsub: Any) -> None:
    with contextlib.suppress(Exception):
        await pubsub.aclose()
