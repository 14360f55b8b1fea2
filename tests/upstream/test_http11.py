"""HttpTransport against real HTTP servers on 127.0.0.1 (asyncio servers started per test).

Every async test runs twice: on the default asyncio loop (pytest-asyncio) and on uvloop
(`test_on_uvloop`, at the end), because the gateway runs on uvloop and the two loops
differ in transports, TLS and flow control.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import inspect
import json
import shutil
import socket
import ssl
import subprocess
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import uvloop

from tianji.errors import UpstreamConnectError, UpstreamProtocolError, UpstreamTimeout
from tianji.upstream import HttpTransport, Timeouts, UpstreamRequest

FAST = Timeouts(connect=2.0, read=2.0)


# ----------------------------------------------------------------- test server


@dataclass
class Request:
    method: str
    target: str
    headers: list[tuple[str, str]]
    body: bytes

    def header_values(self, name: str) -> list[str]:
        return [v for k, v in self.headers if k == name]


async def read_request(reader: asyncio.StreamReader) -> Request | None:
    """One request off the stream; None at a clean EOF."""
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except asyncio.IncompleteReadError:
        return None
    lines = head.decode("latin-1").split("\r\n")
    method, target, _ = lines[0].split(" ")
    headers = []
    for line in lines[1:]:
        if line:
            name, _, value = line.partition(":")
            headers.append((name.strip().lower(), value.strip()))
    length = int(dict(headers).get("content-length", "0"))
    body = await reader.readexactly(length) if length else b""
    return Request(method, target, headers, body)


def response(body: bytes = b"", status: str = "200 OK", headers: tuple[str, ...] = ()) -> bytes:
    head = [f"HTTP/1.1 {status}", f"Content-Length: {len(body)}", *headers]
    return ("\r\n".join(head) + "\r\n\r\n").encode() + body


Reader = asyncio.StreamReader
Writer = asyncio.StreamWriter
Handler = Callable[["Server", Reader, Writer], Awaitable[None]]


@dataclass
class Server:
    handler: Handler
    ssl_context: ssl.SSLContext | None = None
    connections: int = 0  # accepted so far
    open: int = 0
    max_open: int = 0
    requests: list[Request] = field(default_factory=list)
    eof_seen: asyncio.Event = field(default_factory=asyncio.Event)
    port: int = 0
    _tasks: set[asyncio.Task[Any]] = field(default_factory=set)
    _server: asyncio.Server | None = None

    def url(self, path: str = "/") -> str:
        scheme = "https" if self.ssl_context else "http"
        return f"{scheme}://127.0.0.1:{self.port}{path}"

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0, ssl=self.ssl_context)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        assert self._server is not None
        self._server.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        self.connections += 1
        self.open += 1
        self.max_open = max(self.max_open, self.open)
        try:
            await self.handler(self, reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.CancelledError, ssl.SSLError):
            pass
        finally:
            self.open -= 1
            self._tasks.discard(task)
            writer.transport.abort()


@contextlib.asynccontextmanager
async def serve(
    handler: Handler, ssl_context: ssl.SSLContext | None = None
) -> AsyncIterator[Server]:
    server = Server(handler, ssl_context)
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


@contextlib.asynccontextmanager
async def client(**options: Any) -> AsyncIterator[HttpTransport]:
    transport = HttpTransport(**options)
    try:
        yield transport
    finally:
        await transport.aclose()


async def echo_json(server: Server, reader: Reader, w: Writer) -> None:
    """Keep-alive server answering every request with a JSON description of it."""
    while (req := await read_request(reader)) is not None:
        server.requests.append(req)
        body = json.dumps(
            {"method": req.method, "target": req.target, "body": req.body.decode()}
        ).encode()
        w.write(response(body, headers=("Content-Type: application/json",)))
        await w.drain()


async def wait_for_eof(server: Server, reader: asyncio.StreamReader) -> None:
    """Block until the client closes (EOF or reset), then flag it on the server."""
    with contextlib.suppress(ConnectionError):
        while await reader.read(65536):
            pass
    server.eof_seen.set()


def get(url: str, headers: list[tuple[str, str]] | None = None) -> UpstreamRequest:
    return UpstreamRequest("GET", url, headers or [])


# ------------------------------------------------------------- basic requests


async def test_post_json_request_and_response() -> None:
    async with serve(echo_json) as server, client() as http:
        request = UpstreamRequest(
            "POST",
            server.url("/v1/chat/completions"),
            [
                ("Authorization", "Bearer sk-test"),
                ("Content-Type", "application/json"),
                ("Host", "evil.example"),  # ours wins, no duplicate
                ("Content-Length", "999"),
                ("Connection", "keep-alive"),
                ("Transfer-Encoding", "chunked"),
            ],
            b'{"model":"m"}',
        )
        resp = await http.send(request, FAST)
        assert resp.status == 200
        assert resp.header("content-type") == "application/json"
        assert resp.header("x-missing") is None
        assert resp.header("x-missing", "d") == "d"
        assert json.loads(await resp.read()) == {
            "method": "POST",
            "target": "/v1/chat/completions",
            "body": '{"model":"m"}',
        }
        await resp.aclose()  # idempotent after read()

    sent = server.requests[0]
    assert sent.header_values("host") == [f"127.0.0.1:{server.port}"]
    assert sent.header_values("content-length") == ["13"]
    assert sent.header_values("transfer-encoding") == []
    assert sent.header_values("connection") == []
    assert sent.header_values("authorization") == ["Bearer sk-test"]
    assert sent.header_values("accept-encoding") == ["identity"]


async def test_get_with_query_and_empty_post() -> None:
    async with serve(echo_json) as server, client() as http:
        resp = await http.send(get(server.url("/v1/models?limit=2&x=%20#frag")), FAST)
        assert json.loads(await resp.read())["target"] == "/v1/models?limit=2&x=%20"
        resp = await http.send(get(server.url(), [("Accept-Encoding", "gzip")]), FAST)
        await resp.read()
        resp = await http.send(UpstreamRequest("POST", server.url("/p")), FAST)
        await resp.read()
    get_req, gzip_req, post_req = server.requests
    assert get_req.header_values("content-length") == []  # no body, no length for GET
    assert gzip_req.header_values("accept-encoding") == ["gzip"]
    assert post_req.header_values("content-length") == ["0"]


async def test_url_without_path_and_bad_urls() -> None:
    async with serve(echo_json) as server, client() as http:
        resp = await http.send(get(f"http://127.0.0.1:{server.port}"), FAST)
        assert json.loads(await resp.read())["target"] == "/"
        for bad in ("ftp://127.0.0.1/", "127.0.0.1:80/x", "http://user:pw@127.0.0.1/"):
            with pytest.raises(UpstreamConnectError) as info:
                await http.send(get(bad), FAST)
            assert "pw" not in str(info.value)


async def test_header_injection_is_refused() -> None:
    async with serve(echo_json) as server, client() as http:
        with pytest.raises(UpstreamProtocolError, match="CR/LF"):
            await http.send(get(server.url(), [("X-A", "v\r\nX-Evil: 1")]), FAST)
        with pytest.raises(UpstreamProtocolError, match="CR/LF"):
            await http.send(get(server.url("/a\r\nX-Evil: 1")), FAST)
    assert server.connections == 0


# ---------------------------------------------------------------- keep-alive


async def test_keepalive_reuses_one_connection() -> None:
    async with serve(echo_json) as server, client() as http:
        for i in range(20):
            resp = await http.send(UpstreamRequest("POST", server.url(), body=b"%d" % i), FAST)
            assert json.loads(await resp.read())["body"] == str(i)
    assert server.connections == 1
    assert len(server.requests) == 20


async def test_fifty_concurrent_requests() -> None:
    async with serve(echo_json) as server, client() as http:

        async def one(i: int) -> str:
            resp = await http.send(UpstreamRequest("POST", server.url(), body=b"%d" % i), FAST)
            return str(json.loads(await resp.read())["body"])

        results = await asyncio.gather(*(one(i) for i in range(50)))
    assert results == [str(i) for i in range(50)]
    assert 1 <= server.connections <= 50


async def test_tcp_nodelay_is_on() -> None:
    async with serve(echo_json) as server, client() as http:
        resp = await http.send(get(server.url()), FAST)
        assert resp.status == 200
        (pool,) = http._pools.values()
        (conn,) = pool._idle
        assert conn._transport is not None
        sock = conn._transport.get_extra_info("socket")
        assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) != 0


async def test_connection_close_from_server_is_not_reused() -> None:
    async def handler(server: Server, reader: Reader, w: Writer) -> None:
        # Says "close" but keeps the socket open: the client must not reuse it anyway.
        while (req := await read_request(reader)) is not None:
            server.requests.append(req)
            w.write(response(b"ok", headers=("Connection: close",)))

    async with serve(handler) as server, client() as http:
        for _ in range(2):
            resp = await http.send(get(server.url()), FAST)
            assert await resp.read() == b"ok"
    assert server.connections == 2


async def test_http10_response_is_not_reused() -> None:
    async def handler(server: Server, reader: Reader, w: Writer) -> None:
        while await read_request(reader) is not None:
            w.write(b"HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok")

    async with serve(handler) as server, client() as http:
        for _ in range(2):
            assert await (await http.send(get(server.url()), FAST)).read() == b"ok"
    assert server.connections == 2


async def test_bodyless_responses_complete_and_keep_the_connection() -> None:
    async def handler(server: Server, reader: Reader, w: Writer) -> None:
        answers = [
            b"HTTP/1.1 200 OK\r\nContent-Length: 1234\r\n\r\n",  # HEAD: a length, no body
            b"HTTP/1.1 204 No Content\r\n\r\n",
            b"HTTP/1.1 304 Not Modified\r\nETag: x\r\n\r\n",
            response(b"after"),
        ]
        for answer in answers:
            assert await read_request(reader) is not None
            w.write(answer)
        await wait_for_eof(server, reader)

    async with serve(handler) as server, client() as http:
        head = await http.send(UpstreamRequest("HEAD", server.url()), FAST)
        assert (head.status, head.header("content-length")) == (200, "1234")
        assert await head.read() == b""
        no_content = await http.send(get(server.url()), FAST)
        assert no_content.status == 204
        assert [chunk async for chunk in no_content.iter_bytes()] == []
        not_modified = await http.send(get(server.url()), FAST)
        assert (not_modified.status, await not_modified.read()) == (304, b"")
        after = await http.send(get(server.url()), FAST)
        assert await after.read() == b"after"
    assert server.connections == 1


async def test_informational_response_is_skipped() -> None:
    async def handler(server: Server, reader: Reader, w: Writer) -> None:
        await read_request(reader)
        w.write(b"HTTP/1.1 103 Early Hints\r\nLink: </a.css>; rel=preload\r\n\r\n")
        w.write(response(b"final", headers=("X-Final: 1",)))
        await wait_for_eof(server, reader)

    async with serve(handler) as server, client() as http:
        resp = await http.send(get(server.url()), FAST)
        assert resp.status == 200
        assert resp.headers == [("content-length", "5"), ("x-final", "1")]
        assert await resp.read() == b"final"


async def test_bytes_after_a_complete_response_drop_the_connection() -> None:
    async def handler(server: Server, reader: Reader, w: Writer) -> None:
        while await read_request(reader) is not None:
            w.write(response(b"ok") + b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nbad")

    async with serve(handler) as server, client() as http:
        for _ in range(2):
            assert await (await http.send(get(server.url()), FAST)).read() == b"ok"
    assert server.connections == 2


# ------------------------------------------------------------- body framing


async def test_chunked_response_is_dechunked() -> None:
    async def handler(server: Server, reader: Reader, w: Writer) -> None:
        while await read_request(reader) is not None:
            w.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
            for piece in (b"hello ", b"chunked ", b"world"):
                w.write(b"%x\r\n%s\r\n" % (len(piece), piece))
                await w.drain()
            w.write(b"0\r\n\r\n")

    async with serve(handler) as server, client() as http:
        resp = await http.send(get(server.url()), FAST)
        assert await resp.read() == b"hello chunked world"
        resp = await http.send(get(server.url()), FAST)
        assert b"".join([c async for c in resp.iter_bytes()]) == b"hello chunked world"
    assert server.connections == 1


async def test_large_content_length_body() -> None:
    payload = bytes(range(256)) * 12_000  # ~3 MB: several reads, pause/resume on the way

    async def handler(server: Server, reader: Reader, w: Writer) -> None:
        while await read_request(reader) is not None:
            w.write(response(payload))
            await w.drain()

    async with serve(handler) as server, client() as http:
        resp = await http.send(get(server.url()), FAST)
        assert await resp.read() == payload
        resp = await http.send(get(server.url()), FAST)
        assert b"".join([c async for c in resp.iter_bytes()]) == payload
    assert server.connections == 1


async def test_close_delimited_body() -> None:
    async def handler(server: Server, reader: Reader, w: Writer) -> None:
        await read_request(reader)
        w.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\n")
        w.write(b"until ")
        await w.drain()
        await asyncio.sleep(0.05)
        w.write(b"the end")
        await w.drain()
        w.close()

    async with serve(handler) as server, client() as http:
        resp = await http.send(get(server.url()), FAST)
        assert await resp.read() == b"until the end"
        resp = await http.send(get(server.url()), FAST)  # needs a new connection
        assert await resp.read() == b"until the end"
    assert server.connections == 2


# ------------------------------------------------------------------ streaming


async def test_chunks_are_delivered_as_they_arrive() -> None:
    sent_second_at: list[float] = []

    async def handler(server: Server, reader: Reader, w: Writer) -> None:
        await read_request(reader)
        w.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
        w.write(b"7\r\nchunk 1\r\n")
        await w.drain()
        await asyncio.sleep(0.2)
        sent_second_at.append(time.monotonic())
        w.write(b"7\r\nchunk 2\r\n0\r\n\r\n")
        await wait_for_eof(server, reader)

    async with serve(handler) as server, client() as http:
        resp = await http.send(get(server.url()), FAST)
        received: list[tuple[bytes, float]] = []
        async for chunk in resp.iter_bytes():
            received.append((chunk, time.monotonic()))
    assert [chunk for chunk, _ in received] == [b"chunk 1", b"chunk 2"]
    assert received[0][1] < sent_second_at[0]


async def test_slow_reader_pauses_the_socket() -> None:
    size = 32 << 20
    backlog: list[int] = []

    async def handler(server: Server, reader: Reader, w: Writer) -> None:
        await read_request(reader)
        w.write(response(b"x" * size))
        await asyncio.sleep(0.5)  # the client reads nothing meanwhile
        backlog.append(w.transport.get_write_buffer_size())
        await w.drain()
        await wait_for_eof(server, reader)

    async with serve(handler) as server, client() as http:
        resp = await http.send(get(server.url()), FAST)
        while not backlog:
            await asyncio.sleep(0.05)
        # Kernel buffers plus ~1 MiB queued in the client absorb well under 16 MiB;
        # without pause_reading the client would have swallowed all 32 MiB.
        assert backlog[0] > 16 << 20
        total = 0
        async for chunk in resp.iter_bytes():
            total += len(chunk)
        assert total == size
    assert server.connections == 1


# ------------------------------------------------------ stale keep-alive retry


async def test_idle_connection_closed_by_server_is_replaced() -> None:
    async def handler(server: Server, reader: Reader, w: Writer) -> None:
        await read_request(reader)
        w.write(response(b"ok"))
        await w.drain()
        await asyncio.sleep(0.05)
        w.close()  # keep-alive timeout on the server side

    async with serve(handler) as server, client() as http:
        assert await (await http.send(get(server.url()), FAST)).read() == b"ok"
        await asyncio.sleep(0.2)
        assert await (await http.send(get(server.url()), FAST)).read() == b"ok"
    assert server.connections == 2


async def test_stale_connection_race_is_retried_once() -> None:
    async def handler(server: Server, reader: Reader, w: Writer) -> None:
        first_connection = server.connections == 1
        while (req := await read_request(reader)) is not None:
            server.requests.append(req)
            if first_connection and len(server.requests) == 2:
                return  # closes without answering: the keep-alive race
            w.write(response(req.body))

    async with serve(handler) as server, client() as http:
        first = await http.send(UpstreamRequest("POST", server.url(), body=b"one"), FAST)
        assert await first.read() == b"one"
        second = await http.send(UpstreamRequest("POST", server.url(), body=b"two"), FAST)
        assert await second.read() == b"two"
    assert server.connections == 2
    assert [r.body for r in server.requests] == [b"one", b"two", b"two"]


async def test_fresh_connection_closed_before_response_is_not_retried() -> None:
    async def handler(server: Server, reader: Reader, w: Writer) -> None:
        await read_request(reader)  # then close without a word

    async with serve(handler) as server, client() as http:
        with pytest.raises(UpstreamConnectError, match="before responding"):
            await http.send(get(server.url()), FAST)
    assert server.connections == 1


async def test_reused_connection_failing_mid_response_is_not_retried() -> None:
    async def handler(server: Server, reader: Reader, w: Writer) -> None:
        await read_request(reader)
        w.write(response(b"ok"))
        await read_request(reader)
        w.write(b"HTTP/1.1 200 OK\r\nContent-Le")
        await w.drain()

    async with serve(handler) as server, client() as http:
        assert await (await http.send(get(server.url()), FAST)).read() == b"ok"
        with pytest.raises(UpstreamProtocolError):
            await http.send(get(server.url()), FAST)
    assert server.connections == 1


# ------------------------------------------------------------------- failures


async def test_connection_refused() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    async with client() as http:
        with pytest.raises(
            UpstreamConnectError, match=r"could not connect to 127\.0\.0\.1:\d+: Connection refused"
        ):
            await http.send(get(f"http://127.0.0.1:{port}/"), FAST)


async def test_dns_failure() -> None:
    async with client() as http:
        with pytest.raises((UpstreamConnectError, UpstreamTimeout)):
            await http.send(get("http://no-such-host.invalid/"), Timeouts(connect=2.0, read=2.0))


async def test_server_never_answers_times_out() -> None:
    async def handler(server: Server, reader: Reader, w: Writer) -> None:
        await wait_for_eof(server, reader)

    async with serve(handler) as server, client() as http:
        started = time.monotonic()
        with pytest.raises(UpstreamTimeout, match=r"within 0.3s \(read timeout\)"):
            await http.send(get(server.url()), Timeouts(connect=2.0, read=0.3))
        assert 0.25 <= time.monotonic() - started < 1.5
        await asyncio.wait_for(server.eof_seen.wait(), 1.0)  # and the socket is closed


async def test_stall_mid_body_times_out_in_iter_bytes() -> None:
    async def handler(server: Server, reader: Reader, w: Writer) -> None:
        await read_request(reader)
        w.write(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nfirst")
        await wait_for_eof(server, reader)

    async with serve(handler) as server, client() as http:
        resp = await http.send(get(server.url()), Timeouts(connect=2.0, read=0.3))
        chunks = []
        started = time.monotonic()
        with pytest.raises(UpstreamTimeout, match="read timeout"):
            async for chunk in resp.iter_bytes():
                chunks.append(chunk)
        assert chunks == [b"first"]
        assert time.monotonic() - started < 1.5
        await asyncio.wait_for(server.eof_seen.wait(), 1.0)


async def test_close_mid_body_is_a_protocol_error() -> None:
    async def handler(server: Server, reader: Reader, w: Writer) -> None:
        await read_request(reader)
        w.write(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly ten b")
        await w.drain()

    async def chunked_handler(server: Server, reader: Reader, w: Writer) -> None:
        await read_request(reader)
        w.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n")
        await w.drain()

    for h in (handler, chunked_handler):
        async with serve(h) as server, client() as http:
            resp = await http.send(get(server.url()), FAST)
            with pytest.raises(UpstreamProtocolError, match="before the body ended"):
                await resp.read()


async def test_garbage_response_is_a_protocol_error() -> None:
    async def handler(server: Server, reader: Reader, w: Writer) -> None:
        await read_request(reader)
        w.write(b"SSH-2.0-OpenSSH_9.6\r\nthis is not http\r\n\r\n")
        await wait_for_eof(server, reader)

    async with serve(handler) as server, client() as http:
        with pytest.raises(UpstreamProtocolError, match="malformed HTTP response"):
            await http.send(get(server.url()), FAST)
        await asyncio.wait_for(server.eof_seen.wait(), 1.0)


# ---------------------------------------------------- closing and cancellation


async def stream_forever(server: Server, reader: Reader, w: Writer) -> None:
    """First request: a long body that stalls after 10 bytes. Later ones: "ok"."""
    first = server.connections == 1
    await read_request(reader)
    if first:
        w.write(b"HTTP/1.1 200 OK\r\nContent-Length: 1000000\r\n\r\n0123456789")
        await wait_for_eof(server, reader)
        return
    w.write(response(b"ok"))
    while await read_request(reader) is not None:
        w.write(response(b"ok"))


async def test_aclose_mid_stream_closes_the_socket() -> None:
    async with serve(stream_forever) as server, client() as http:
        resp = await http.send(get(server.url()), FAST)
        async for chunk in resp.iter_bytes():
            assert chunk == b"0123456789"
            break
        await resp.aclose()
        await resp.aclose()
        await asyncio.wait_for(server.eof_seen.wait(), 1.0)
        with pytest.raises(RuntimeError):
            await resp.read()
        assert await (await http.send(get(server.url()), FAST)).read() == b"ok"
    assert server.connections == 2


async def test_cancelling_a_reader_closes_the_connection() -> None:
    async with serve(stream_forever) as server, client() as http:
        resp = await http.send(get(server.url()), FAST)
        got: list[bytes] = []

        async def consume() -> None:
            async for chunk in resp.iter_bytes():
                got.append(chunk)

        task = asyncio.create_task(consume())
        while not got:
            await asyncio.sleep(0.01)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        await asyncio.wait_for(server.eof_seen.wait(), 1.0)
        # The half-read connection was not pooled: the next request gets a new one.
        assert await (await http.send(get(server.url()), FAST)).read() == b"ok"
    assert server.connections == 2


async def test_cancelling_send_while_waiting_for_headers() -> None:
    async def handler(server: Server, reader: Reader, w: Writer) -> None:
        await wait_for_eof(server, reader)

    async with serve(handler) as server, client() as http:
        task = asyncio.create_task(http.send(get(server.url()), FAST))
        while server.connections == 0:
            await asyncio.sleep(0.01)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        await asyncio.wait_for(server.eof_seen.wait(), 1.0)


async def test_dropped_response_frees_its_pool_slot() -> None:
    async with serve(stream_forever) as server, client(max_connections_per_origin=1) as http:
        resp = await http.send(get(server.url()), FAST)
        del resp
        gc.collect()
        assert await (await http.send(get(server.url()), FAST)).read() == b"ok"
        await asyncio.wait_for(server.eof_seen.wait(), 1.0)


async def test_transport_aclose() -> None:
    async with serve(stream_forever) as server:
        http = HttpTransport()
        resp = await http.send(get(server.url()), FAST)
        await http.aclose()
        with pytest.raises(UpstreamConnectError):
            await resp.read()
        await asyncio.wait_for(server.eof_seen.wait(), 1.0)
        with pytest.raises(UpstreamConnectError, match="closed"):
            await http.send(get(server.url()), FAST)


# ------------------------------------------------------------------------ pool


async def test_pool_limit_is_honoured() -> None:
    async def handler(server: Server, reader: Reader, w: Writer) -> None:
        while await read_request(reader) is not None:
            await asyncio.sleep(0.05)
            w.write(response(b"ok"))

    async with serve(handler) as server, client(max_connections_per_origin=2) as http:

        async def one() -> bytes:
            return await (await http.send(get(server.url()), FAST)).read()

        assert await asyncio.gather(*(one() for _ in range(8))) == [b"ok"] * 8
    assert server.connections == 2
    assert server.max_open == 2


async def test_waiting_for_a_full_pool_times_out() -> None:
    async with serve(stream_forever) as server, client(max_connections_per_origin=1) as http:
        held = await http.send(get(server.url()), FAST)
        started = time.monotonic()
        with pytest.raises(UpstreamTimeout, match="no free connection"):
            await http.send(get(server.url()), Timeouts(connect=0.2, read=2.0))
        assert time.monotonic() - started < 1.0
        await held.aclose()
        assert await (await http.send(get(server.url()), FAST)).read() == b"ok"


# ------------------------------------------------------------------------- TLS


def self_signed_cert(directory: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1/localhost, made with `cryptography` or the openssl CLI."""
    cert, key = directory / "cert.pem", directory / "key.pem"
    try:
        import datetime
        import ipaddress

        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.x509.oid import NameOID
    except ImportError:
        openssl = shutil.which("openssl")
        if openssl is None:
            pytest.skip("neither the `cryptography` package nor the openssl CLI is available")
        subprocess.run(
            [openssl, "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
             "-keyout", str(key), "-out", str(cert), "-days", "1", "-nodes",
             "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"],
            check=True, capture_output=True, timeout=10,
        )  # fmt: skip
        return cert, key
    private_key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(private_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .sign(private_key, hashes.SHA256())
    )
    cert.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key.write_bytes(
        private_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert, key


async def test_https_with_a_trusted_self_signed_cert() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        cert, key = self_signed_cert(Path(tmp))
        server_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        server_ctx.load_cert_chain(cert, key)
        client_ctx = ssl.create_default_context(cafile=str(cert))

    async with serve(echo_json, server_ctx) as server:
        async with client(ssl_context=client_ctx) as http:
            for path in ("/a", "/b"):
                resp = await http.send(get(server.url(path)), FAST)
                assert json.loads(await resp.read())["target"] == path
        assert server.connections == 1  # keep-alive over TLS
        assert server.requests[0].header_values("host") == [f"127.0.0.1:{server.port}"]

        async with client() as http:  # system CAs do not trust it
            with pytest.raises(UpstreamConnectError, match="TLS handshake"):
                await http.send(get(server.url()), FAST)


# --------------------------------------------------------- the same on uvloop

_ASYNC_TESTS = [
    func
    for name, func in list(globals().items())
    if name.startswith("test_") and inspect.iscoroutinefunction(func)
]


@pytest.mark.parametrize("case", _ASYNC_TESTS, ids=lambda func: func.__name__[5:])
def test_on_uvloop(case: Callable[[], Coroutine[Any, Any, None]]) -> None:
    uvloop.run(case())
