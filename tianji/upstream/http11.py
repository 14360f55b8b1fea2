"""A small, fast asyncio HTTP/1.1 client: the transport of every upstream call.

Why not httpx: its per-request overhead caps a sequential client near 1k req/s and
it degrades under concurrency, while the gateway needs the transport to cost tens of
microseconds per request. This module keeps the hot path to: split the URL (cached),
format the request head, take an idle connection, one ``transport.write``, one
future for the response head, and (for small bodies) nothing more.

Design
------
Pool
    One :class:`_Pool` per origin (scheme, host, port), holding at most
    ``max_connections_per_origin`` connections (open, opening or in use). Idle
    connections are a LIFO stack, so the hottest connection is reused and the
    cold ones age out. When the pool is full, ``send`` queues for a free
    connection; that wait is bounded by ``Timeouts.connect`` (→ UpstreamTimeout).

Connections
    Each connection is an :class:`asyncio.Protocol` feeding an
    ``httptools.HttpResponseParser``. Its callbacks fill the per-response state
    (status, headers, a deque of body pieces) and one future wakes the reader.

Keep-alive
    A connection goes back to the pool only if the response was received to its
    end, the response is HTTP/1.1 and did not say ``Connection: close``, and
    nothing went wrong. Idle connections older than ``keepalive_expiry`` are
    closed instead of reused. Bytes arriving on an idle connection mean the
    stream is out of sync, so such a connection is closed.

Stale-connection retry
    A server may close an idle keep-alive connection just as we reuse it. If a
    *reused* connection is closed or reset before a single byte of the response
    arrived, the request is sent once more on a fresh connection. Nothing else is
    ever retried (a timeout, a fresh connection failing, a partial response).

Flow control
    Body pieces queue on the connection; above ~1 MiB queued the socket stops
    being read (``pause_reading``) until the reader drains the queue, so a slow
    client cannot make the gateway buffer an unbounded upstream response.

Cancellation
    Every await that can be interrupted (pool wait, connect, response head, body
    chunk) closes the connection on any exception, ``CancelledError`` included:
    a half-read connection is never returned to the pool. A response dropped
    without ``aclose()`` is tidied up by its finaliser.

Limits: no proxies, no HTTP/2, no request pipelining, no ``Expect: 100-continue``,
no decompression (``accept-encoding: identity`` is sent unless the caller sets one).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import os
import re
import socket
import ssl
from collections import deque
from collections.abc import Coroutine
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final, cast

import httptools

from tianji.errors import (
    UpstreamConnectError,
    UpstreamError,
    UpstreamProtocolError,
    UpstreamTimeout,
)
from tianji.upstream.types import Timeouts, Transport, UpstreamRequest

__all__ = ["HttpTransport"]

# Pause reading the socket above this many queued body bytes; resume once drained.
_HIGH_WATER: Final = 1 << 20
# Bodies up to this size are copied into the head's buffer for one write() call.
_SINGLE_WRITE_LIMIT: Final = 256 * 1024
_DEFAULT_PORTS: Final = {"http": 80, "https": 443}
# Sent by us, so a caller's copy would be a duplicate (or would break the framing).
_SKIPPED_HEADERS: Final = frozenset({"host", "content-length", "transfer-encoding", "connection"})
# Methods without a body get no "Content-Length: 0" (RFC 9110 §8.6).
_BODYLESS_METHODS: Final = frozenset({"GET", "HEAD", "DELETE", "OPTIONS", "TRACE"})
_AUTHORITY_END: Final = re.compile(r"[/?#]")


# --------------------------------------------------------------------------- URLs


@dataclass(frozen=True, slots=True)
class _Origin:
    key: str  # "scheme://host:port", the pool key
    host: str  # for connect(): no IPv6 brackets
    port: int
    tls: bool
    host_header: str  # with the port only when it is not the scheme's default
    label: str  # "host:port", safe for error messages


@functools.lru_cache(maxsize=512)
def _parse_origin(prefix: str) -> _Origin:
    """Parse "scheme://authority" (cached: a gateway talks to a handful of origins)."""
    scheme, sep, authority = prefix.partition("://")
    scheme = scheme.lower()
    if not sep or scheme not in _DEFAULT_PORTS:
        raise UpstreamConnectError("upstream URL must start with http:// or https://")
    if "@" in authority:
        raise UpstreamConnectError("upstream URL must not contain credentials (user@host)")
    if authority.startswith("["):  # IPv6 literal: [::1]:8080
        host, bracket, port_text = authority[1:].partition("]")
        if not bracket or (port_text and not port_text.startswith(":")):
            raise UpstreamConnectError("upstream URL has a malformed IPv6 host")
        port_text = port_text[1:]
        shown = f"[{host}]"
    else:
        host, _, port_text = authority.partition(":")
        shown = host
    if not host:
        raise UpstreamConnectError("upstream URL has no host")
    default_port = _DEFAULT_PORTS[scheme]
    if not port_text:
        port = default_port
    elif port_text.isdigit() and 0 < int(port_text) < 65536:
        port = int(port_text)
    else:
        raise UpstreamConnectError("upstream URL has an invalid port")
    host = host.lower()
    host_header = shown if port == default_port else f"{shown}:{port}"
    return _Origin(
        key=f"{scheme}://{shown.lower()}:{port}",
        host=host,
        port=port,
        tls=scheme == "https",
        host_header=host_header,
        label=f"{shown}:{port}",
    )


def _split_url(url: str) -> tuple[_Origin, str]:
    """(origin, request target "path?query") of an absolute URL; the fragment is dropped."""
    start = url.find("://") + 3
    match = _AUTHORITY_END.search(url, start)
    if match is None:
        return _parse_origin(url), "/"
    cut = match.start()
    target = url[cut:]
    if "#" in target:
        target = target.partition("#")[0]
    if not target.startswith("/"):
        target = "/" + target
    return _parse_origin(url[:cut]), target


def _encode_head(
    method: str, target: str, origin: _Origin, headers: list[tuple[str, str]], body_len: int
) -> bytes:
    lines = [f"{method} {target} HTTP/1.1\r\nHost: {origin.host_header}\r\n"]
    if body_len or method not in _BODYLESS_METHODS:
        lines.append(f"Content-Length: {body_len}\r\n")
    caller_sets_encoding = False
    for name, value in headers:
        lowered = name.lower()
        if lowered in _SKIPPED_HEADERS:
            continue
        if lowered == "accept-encoding":
            caller_sets_encoding = True
        lines.append(f"{name}: {value}\r\n")
    if not caller_sets_encoding:
        # We relay bodies as they are and never decompress.
        lines.append("accept-encoding: identity\r\n")
    lines.append("\r\n")
    text = "".join(lines)
    # Exactly one CR and one LF per line (the first item holds two lines). Any other
    # would let a header value or the path inject headers or a second request.
    expected = len(lines) + 1
    if text.count("\n") != expected or text.count("\r") != expected:
        raise UpstreamProtocolError(
            "refusing to send a request whose path or headers contain CR/LF"
        )
    try:
        return text.encode("latin-1")
    except UnicodeEncodeError:
        raise UpstreamProtocolError(
            "request path and headers must be latin-1 (percent-encode the URL)"
        ) from None


# --------------------------------------------------------------------- connection


def _expire(waiter: asyncio.Future[bool]) -> None:
    if not waiter.done():
        waiter.set_result(False)


class _ExtraResponse(Exception):
    """Raised inside the parser when bytes follow a complete response."""


class _Conn(asyncio.Protocol):
    """One TCP (or TLS) connection and the state of the response it is reading."""

    __slots__ = (
        "_buffered",
        "_chunks",
        "_got_bytes",
        "_head_done",
        "_head_request",
        "_informational",
        "_label",
        "_loop",
        "_parser",
        "_paused",
        "_transport",
        "_waiter",
        "active",
        "body_done",
        "closed",
        "error",
        "headers",
        "idle_since",
        "keep_alive",
        "stale",
        "status",
    )

    def __init__(self, loop: asyncio.AbstractEventLoop, label: str) -> None:
        self._loop = loop
        self._label = label
        self._transport: asyncio.Transport | None = None
        self._parser = httptools.HttpResponseParser(self)
        self._chunks: deque[bytes] = deque()
        self._waiter: asyncio.Future[bool] | None = None
        self.closed = False
        self.idle_since = 0.0
        self._reset()

    def _reset(self) -> None:
        self.active = False
        self._got_bytes = False
        self._head_done = False
        self._head_request = False
        self._informational = False
        self._buffered = 0
        self._paused = False
        self._chunks.clear()
        self.body_done = False
        self.keep_alive = False
        self.stale = False
        self.status = 0
        self.headers: list[tuple[str, str]] = []
        self.error: UpstreamError | None = None

    # ---- asyncio.Protocol -----------------------------------------------------
    # TCP_NODELAY: both asyncio's selector loop and uvloop already set it on TCP
    # sockets (tests/upstream/test_http11.py checks), so nothing to do here.

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports do not subclass asyncio.Transport; they implement it.
        self._transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        if not self.active:
            # Nobody asked: a misbehaving server. The stream is out of sync.
            self.abort()
            return
        self._got_bytes = True
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self._fail(UpstreamProtocolError("upstream switched protocols (HTTP upgrade)"))
        except httptools.HttpParserError as exc:
            if self.body_done:
                # Extra bytes after a complete response: keep the response, not the socket.
                self.keep_alive = False
                self.abort()
            else:
                self._fail(UpstreamProtocolError(f"malformed HTTP response from upstream: {exc}"))
        self._wake()

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self.active and self.error is None:
            if not self._head_done:
                if self._got_bytes:
                    self.error = UpstreamProtocolError(
                        f"upstream {self._label} closed the connection inside the response head"
                    )
                else:
                    self.stale = True
                    how = "reset" if exc is not None else "closed"
                    self.error = UpstreamConnectError(
                        f"upstream {self._label} {how} the connection before responding"
                    )
            elif not self.body_done:
                if self._delimited_by_close():
                    self.body_done = True
                else:
                    self.error = UpstreamProtocolError(
                        f"upstream {self._label} closed the connection before the body ended"
                    )
        self._wake()

    # ---- httptools callbacks --------------------------------------------------

    def on_message_begin(self) -> None:
        if self._head_done:
            raise _ExtraResponse

    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers.append((name.decode("latin-1").lower(), value.decode("latin-1")))

    def on_headers_complete(self) -> None:
        parser = self._parser
        status = parser.get_status_code()
        if status < 200:
            # 1xx (e.g. 103 Early Hints): the real response follows on the same stream.
            self._informational = True
            self.headers = []
            return
        self.status = status
        self.keep_alive = parser.should_keep_alive() and parser.get_http_version() == "1.1"
        self._head_done = True
        if self._head_request:
            # A HEAD response has no body even if it declares a length; this parser
            # cannot be told so, so later bytes go to a fresh one.
            self.body_done = True
            self._parser = httptools.HttpResponseParser(self)

    def on_body(self, data: bytes) -> None:
        if self.body_done:  # HEAD: the old parser thinks a body follows
            return
        self._chunks.append(data)
        self._buffered += len(data)
        if self._buffered > _HIGH_WATER and not self._paused and self._transport is not None:
            self._paused = True
            self._transport.pause_reading()

    def on_message_complete(self) -> None:
        if self._informational:
            self._informational = False
            return
        self.body_done = True

    # ---- used by the pool and the response -------------------------------------

    def start(self, payload: bytes, extra: bytes | None, head_request: bool) -> None:
        """Begin one exchange: write the request (normally in a single write())."""
        assert self._transport is not None
        self._reset()
        self.active = True
        self._head_request = head_request
        self._transport.write(payload)
        if extra:
            self._transport.write(extra)

    async def wait_head(self, seconds: float) -> None:
        while not self._head_done:
            if self.error is not None:
                raise self.error
            if not await self._wait(seconds):
                raise UpstreamTimeout(
                    f"upstream {self._label} did not answer within {seconds}s (read timeout)"
                )

    def take(self) -> bytes:
        """All body bytes queued so far, as one piece (b"" if none)."""
        chunks = self._chunks
        if not chunks:
            return b""
        data = chunks.popleft() if len(chunks) == 1 else b"".join(chunks)
        chunks.clear()
        self._buffered = 0
        if self._paused:
            self._paused = False
            if self._transport is not None and not self.closed:
                self._transport.resume_reading()
        return data

    async def wait_body(self, seconds: float) -> None:
        """Return once more body bytes, the end of the body or an error is there."""
        if self._chunks or self.body_done:
            return
        if self.error is not None:
            raise self.error
        if not await self._wait(seconds):
            raise UpstreamTimeout(
                f"upstream {self._label} sent no body bytes for {seconds}s (read timeout)"
            )

    @property
    def reusable(self) -> bool:
        return (
            self.body_done
            and self.keep_alive
            and self.error is None
            and not self.closed
            and self._transport is not None
            and not self._transport.is_closing()
        )

    def usable_when_idle(self) -> bool:
        # is_closing() catches an EOF whose connection_lost() has not run yet.
        return not self.closed and self._transport is not None and not self._transport.is_closing()

    def to_idle(self, now: float) -> None:
        self.active = False
        self.idle_since = now
        self._chunks.clear()
        if self._paused and self._transport is not None:
            self._paused = False
            self._transport.resume_reading()

    def abort(self) -> None:
        """Close the socket now, discarding anything buffered either way."""
        self.active = False
        self.closed = True
        if self._transport is not None:
            self._transport.abort()

    def fail(self, error: UpstreamError) -> None:
        """Abort, making a reader that waits on this connection raise `error`."""
        if self.error is None and not self.body_done:
            self.error = error
        self._wake()
        self.abort()

    # ---- internals -------------------------------------------------------------

    def _fail(self, error: UpstreamError) -> None:
        if self.error is None:
            self.error = error
        self.keep_alive = False
        if self._transport is not None:
            self._transport.abort()

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(True)

    async def _wait(self, seconds: float) -> bool:
        """Wait for the next event on this connection; False if `seconds` passed first."""
        waiter: asyncio.Future[bool] = self._loop.create_future()
        self._waiter = waiter
        timer = self._loop.call_later(seconds, _expire, waiter)
        try:
            return await waiter
        finally:
            timer.cancel()
            self._waiter = None

    def _delimited_by_close(self) -> bool:
        """True if the body has neither a length nor chunked framing (ends at EOF)."""
        for name, value in self.headers:
            if name == "content-length":
                return False
            if name == "transfer-encoding" and "chunked" in value.lower():
                return False
        return True


# --------------------------------------------------------------------------- pool


class _Pool:
    """The connections to one origin."""

    __slots__ = (
        "_closed",
        "_conns",
        "_count",
        "_expiry",
        "_idle",
        "_loop",
        "_max",
        "_owner",
        "_waiters",
        "origin",
    )

    def __init__(self, owner: HttpTransport, origin: _Origin) -> None:
        self._owner = owner
        self._loop = asyncio.get_running_loop()
        self.origin = origin
        self._max = owner.max_connections_per_origin
        self._expiry = owner.keepalive_expiry
        self._idle: deque[_Conn] = deque()  # right end = most recently used
        self._waiters: deque[asyncio.Future[bool]] = deque()
        self._conns: set[_Conn] = set()
        self._count = 0  # open + opening connections, never above _max
        self._closed = False

    def take_idle(self, now: float) -> _Conn | None:
        idle = self._idle
        while idle:
            conn = idle.pop()
            if conn.usable_when_idle() and now - conn.idle_since < self._expiry:
                return conn
            self._discard(conn)
        return None

    async def acquire(self, timeouts: Timeouts, fresh: bool = False) -> tuple[_Conn, bool]:
        """A connection and whether it was reused; `fresh` forces a new one."""
        loop = self._loop
        while True:
            if self._closed:
                raise UpstreamConnectError("the upstream transport is closed")
            if not fresh:
                conn = self.take_idle(loop.time())
                if conn is not None:
                    return conn, True
            elif self._count >= self._max and self._idle:
                self._discard(self._idle.popleft())  # make room for the fresh one
            if self._count < self._max:
                self._count += 1
                try:
                    conn = await self._connect(loop, timeouts.connect)
                except BaseException:
                    self._count -= 1
                    self._wake_one()
                    raise
                self._conns.add(conn)
                return conn, False
            await self._wait_for_slot(loop, timeouts.connect)

    def release(self, conn: _Conn) -> None:
        """Back to the idle stack if it can carry another request, else closed."""
        if conn.reusable and not self._closed:
            now = self._loop.time()
            conn.to_idle(now)
            idle = self._idle
            idle.append(conn)
            # LIFO reuse leaves the coldest connection at the left end: age it out here.
            oldest = idle[0]
            if now - oldest.idle_since >= self._expiry:
                idle.popleft()
                self._discard(oldest)
        else:
            self._discard(conn)
        self._wake_one()

    def close(self) -> None:
        self._closed = True
        for conn in list(self._conns):
            conn.fail(UpstreamConnectError("the upstream transport was closed"))
        self._conns.clear()
        self._idle.clear()
        self._count = 0
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(True)  # wakes it to see _closed

    # ---- internals -------------------------------------------------------------

    def _discard(self, conn: _Conn) -> None:
        conn.abort()
        if conn in self._conns:
            self._conns.discard(conn)
            self._count -= 1

    def _wake_one(self) -> None:
        waiters = self._waiters
        while waiters:
            waiter = waiters.popleft()
            if not waiter.done():
                waiter.set_result(True)
                return

    async def _wait_for_slot(self, loop: asyncio.AbstractEventLoop, seconds: float) -> None:
        waiter: asyncio.Future[bool] = loop.create_future()
        self._waiters.append(waiter)
        timer = loop.call_later(seconds, _expire, waiter)
        try:
            woken = await waiter
        except BaseException:
            # Cancelled right after being woken: hand the free slot to the next waiter.
            if waiter.done() and not waiter.cancelled() and waiter.result():
                self._wake_one()
            raise
        finally:
            timer.cancel()
            with contextlib.suppress(ValueError):
                self._waiters.remove(waiter)
        if not woken:
            raise UpstreamTimeout(
                f"no free connection to {self.origin.label} within {seconds}s "
                f"(pool limit {self._max}, connect timeout)"
            )

    async def _connect(self, loop: asyncio.AbstractEventLoop, seconds: float) -> _Conn:
        origin = self.origin

        def factory() -> _Conn:
            return _Conn(loop, origin.label)

        try:
            async with asyncio.timeout(seconds):
                if origin.tls:
                    _, conn = await loop.create_connection(
                        factory,
                        origin.host,
                        origin.port,
                        ssl=self._owner.ssl_context,
                        server_hostname=origin.host,
                    )
                else:
                    _, conn = await loop.create_connection(factory, origin.host, origin.port)
        except TimeoutError as exc:  # before OSError: TimeoutError is one
            raise UpstreamTimeout(
                f"could not connect to {origin.label} within {seconds}s (connect timeout)"
            ) from exc
        except ssl.SSLError as exc:  # includes certificate verification failures
            reason = getattr(exc, "verify_message", None) or exc.reason or type(exc).__name__
            raise UpstreamConnectError(
                f"TLS handshake with {origin.label} failed: {reason}"
            ) from exc
        except OSError as exc:  # refused, unreachable, DNS (socket.gaierror)
            raise UpstreamConnectError(
                f"could not connect to {origin.label}: {_describe(exc)}"
            ) from exc
        return conn


def _describe(exc: OSError) -> str:
    """The OS reason ("Connection refused"), not asyncio's "Connect call failed (addr)"."""
    if isinstance(exc, socket.gaierror) or not exc.errno:
        return exc.strerror or str(exc) or type(exc).__name__
    return os.strerror(exc.errno)


# ----------------------------------------------------------------------- response


class _Response:
    """What `send` returns; the connection stays attached until the body is done."""

    __slots__ = ("_body", "_conn", "_pool", "_timeout", "_truncated", "headers", "status")

    def __init__(self, pool: _Pool, conn: _Conn, timeout: float) -> None:
        self.status = conn.status
        self.headers = conn.headers
        self._pool = pool
        self._timeout = timeout
        self._truncated = False
        if conn.body_done:
            # The whole body came with the head (small JSON answers, HEAD, 204, 304):
            # keep the bytes and hand the connection back at once.
            self._body = conn.take()
            self._conn: _Conn | None = None
            pool.release(conn)
        else:
            self._body = b""
            self._conn = conn

    def header(self, name: str, default: str | None = None) -> str | None:
        for key, value in self.headers:
            if key == name:
                return value
        return default

    async def read(self) -> bytes:
        conn = self._conn
        if conn is None:
            return self._take_stored()
        parts: list[bytes] = []
        try:
            while True:
                data = conn.take()
                if data:
                    parts.append(data)
                elif conn.body_done:
                    break
                else:
                    await conn.wait_body(self._timeout)
        finally:
            self._finish()
        return b"".join(parts)

    def iter_bytes(self) -> _BodyIterator:
        return _BodyIterator(self)

    async def aclose(self) -> None:
        self._finish()

    async def next_chunk(self) -> bytes:
        conn = self._conn
        if conn is None:
            data = self._take_stored()
            if data:
                return data
            raise StopAsyncIteration
        try:
            while True:
                data = conn.take()
                if data:
                    return data
                if conn.body_done:
                    break
                await conn.wait_body(self._timeout)
        except BaseException:
            self._finish()  # timeout, broken body or cancellation: close the socket
            raise
        self._finish()
        raise StopAsyncIteration

    def _take_stored(self) -> bytes:
        if self._truncated:
            # A caller bug, not an upstream failure.
            raise RuntimeError("the response was closed before its body was read")
        data, self._body = self._body, b""
        return data

    def _finish(self) -> None:
        conn = self._conn
        if conn is None:
            return
        self._conn = None
        if not conn.body_done or conn.error is not None:
            self._truncated = True
        self._pool.release(conn)  # reuses it only if the body ended cleanly

    def __del__(self) -> None:
        # Dropped without aclose(): free the pool slot. The loop may be gone already.
        if getattr(self, "_conn", None) is not None:
            with contextlib.suppress(Exception):
                self._finish()


class _BodyIterator:
    __slots__ = ("_response",)

    def __init__(self, response: _Response) -> None:
        self._response = response

    def __aiter__(self) -> _BodyIterator:
        return self

    def __anext__(self) -> Coroutine[Any, Any, bytes]:
        return self._response.next_chunk()


# --------------------------------------------------------------------- transport


class HttpTransport:
    """HTTP/1.1 client with a keep-alive pool per origin (see the module docstring)."""

    def __init__(
        self,
        *,
        max_connections_per_origin: int = 256,
        keepalive_expiry: float = 60.0,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        if max_connections_per_origin < 1:
            raise ValueError("max_connections_per_origin must be at least 1")
        self.max_connections_per_origin = max_connections_per_origin
        self.keepalive_expiry = keepalive_expiry
        self._ssl_context = ssl_context
        self._pools: dict[str, _Pool] = {}
        self._closed = False

    @property
    def ssl_context(self) -> ssl.SSLContext:
        # Created on first https use: loading the CA bundle takes milliseconds.
        if self._ssl_context is None:
            self._ssl_context = ssl.create_default_context()
        return self._ssl_context

    async def send(self, request: UpstreamRequest, timeouts: Timeouts) -> _Response:
        if self._closed:
            raise UpstreamConnectError("the upstream transport is closed")
        origin, target = _split_url(request.url)
        pool = self._pools.get(origin.key)
        if pool is None:
            pool = self._pools[origin.key] = _Pool(self, origin)
        method = request.method
        body = request.body
        head = _encode_head(method, target, origin, request.headers, len(body))
        if len(body) <= _SINGLE_WRITE_LIMIT:
            payload, extra = head + body, None
        else:
            payload, extra = head, body
        is_head = method == "HEAD"

        conn, reused = await pool.acquire(timeouts)
        try:
            return await self._exchange(pool, conn, payload, extra, is_head, timeouts.read)
        except UpstreamConnectError:
            if not (reused and conn.stale):
                raise
        # The reused connection had been closed by the server while idle: once more, fresh.
        conn, _ = await pool.acquire(timeouts, fresh=True)
        return await self._exchange(pool, conn, payload, extra, is_head, timeouts.read)

    async def aclose(self) -> None:
        self._closed = True
        for pool in self._pools.values():
            pool.close()
        self._pools.clear()

    @staticmethod
    async def _exchange(
        pool: _Pool,
        conn: _Conn,
        payload: bytes,
        extra: bytes | None,
        is_head: bool,
        read_timeout: float,
    ) -> _Response:
        try:
            conn.start(payload, extra, is_head)
            await conn.wait_head(read_timeout)
        except BaseException:
            pool.release(conn)  # not reusable here: closes it
            raise
        return _Response(pool, conn, read_timeout)


if TYPE_CHECKING:  # mypy proves HttpTransport (and _Response) satisfy the contract
    _transport_check: Transport = HttpTransport()
