"""Micro-benchmark of upstream HTTP clients: tianji's HttpTransport vs httpx vs aiohttp.

Not a test. Run:  .venv/bin/python bench/transport_bench.py [--requests 5000]

A tiny keep-alive HTTP/1.1 server (asyncio Protocol on uvloop) runs in a separate
process and answers every request with the same ~600-byte JSON body and a
Content-Length. The client side, also on uvloop, POSTs a small JSON body the way
the gateway calls a provider, reads the whole response, and reports requests/s at
concurrency 1 (one task, sequential) and 32 (32 tasks sharing one client).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import time
from collections.abc import Awaitable, Callable
from multiprocessing.connection import Connection

import uvloop

_RESPONSE_BODY = json.dumps(
    {
        "id": "chatcmpl-bench0000000000000000000000",
        "object": "chat.completion",
        "created": 1700000000,
        "model": "bench-model",
        "choices": [
            {
                "index": 0,
                "message": {
                    "role": "assistant",
                    "content": "The quick brown fox jumps over the lazy dog. " * 7,
                },
                "finish_reason": "stop",
            }
        ],
        "usage": {"prompt_tokens": 12, "completion_tokens": 64, "total_tokens": 76},
    }
).encode()
_RESPONSE = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s" % (
    len(_RESPONSE_BODY),
    _RESPONSE_BODY,
)
_REQUEST_BODY = json.dumps(
    {"model": "bench-model", "messages": [{"role": "user", "content": "Say hello " * 10}]}
).encode()
_REQUEST_HEADERS = [
    ("authorization", "Bearer sk-bench"),
    ("content-type", "application/json"),
]


# ------------------------------------------------------------------- server


class _ServerProtocol(asyncio.Protocol):
    """Just enough HTTP/1.1: find the head, skip Content-Length bytes, answer."""

    def __init__(self) -> None:
        self._buffer = bytearray()
        self._transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        buffer = self._buffer
        buffer += data
        while True:
            end = buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            head = bytes(buffer[:end]).lower()
            length = 0
            at = head.find(b"\r\ncontent-length:")
            if at >= 0:
                stop = head.find(b"\r\n", at + 2)
                length = int(head[at + 17 : stop if stop >= 0 else None])
            total = end + 4 + length
            if len(buffer) < total:
                return
            del buffer[:total]
            assert self._transport is not None
            self._transport.write(_RESPONSE)


def _serve(conn: Connection) -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        server = await loop.create_server(_ServerProtocol, "127.0.0.1", 0, backlog=1024)
        conn.send(server.sockets[0].getsockname()[1])
        await asyncio.Event().wait()

    uvloop.run(main())


# ------------------------------------------------------------------- clients

Call = Callable[[], Awaitable[int]]


async def _tianji(url: str) -> tuple[Call, Callable[[], Awaitable[None]]]:
    from tianji.upstream import HttpTransport, Timeouts, UpstreamRequest

    transport = HttpTransport()
    timeouts = Timeouts(connect=5.0, read=30.0)

    async def call() -> int:
        request = UpstreamRequest("POST", url, _REQUEST_HEADERS, _REQUEST_BODY)
        response = await transport.send(request, timeouts)
        return len(await response.read())

    return call, transport.aclose


async def _httpx(url: str) -> tuple[Call, Callable[[], Awaitable[None]]]:
    import httpx

    limits = httpx.Limits(max_connections=64, max_keepalive_connections=64)
    client = httpx.AsyncClient(limits=limits, timeout=30.0)
    headers = dict(_REQUEST_HEADERS)

    async def call() -> int:
        response = await client.post(url, content=_REQUEST_BODY, headers=headers)
        return len(response.content)

    return call, client.aclose


async def _aiohttp(url: str) -> tuple[Call, Callable[[], Awaitable[None]]]:
    import aiohttp

    session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=64))
    headers = dict(_REQUEST_HEADERS)

    async def call() -> int:
        async with session.post(url, data=_REQUEST_BODY, headers=headers) as response:
            return len(await response.read())

    return call, session.close


_CLIENTS = {"tianji HttpTransport": _tianji, "httpx.AsyncClient": _httpx, "aiohttp": _aiohttp}


async def _measure(call: Call, requests: int, concurrency: int) -> float:
    """Requests per second for `requests` calls spread over `concurrency` tasks."""

    async def worker(count: int) -> None:
        for _ in range(count):
            if await call() != len(_RESPONSE_BODY):
                raise RuntimeError("short body")

    # Warm-up: open the connections, fill caches.
    await asyncio.gather(*(worker(5) for _ in range(concurrency)))
    per_task, extra = divmod(requests, concurrency)
    counts = [per_task + (1 if i < extra else 0) for i in range(concurrency)]
    started = time.perf_counter()
    await asyncio.gather(*(worker(n) for n in counts))
    return requests / (time.perf_counter() - started)


async def _run(port: int, requests: int, concurrencies: list[int]) -> list[tuple[str, int, float]]:
    url = f"http://127.0.0.1:{port}/v1/chat/completions"
    rows = []
    for name, factory in _CLIENTS.items():
        call, close = await factory(url)
        try:
            for concurrency in concurrencies:
                rows.append((name, concurrency, await _measure(call, requests, concurrency)))
        finally:
            await close()
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=5000, help="per case (default 5000)")
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 32])
    args = parser.parse_args()

    context = multiprocessing.get_context("spawn")
    parent_end, child_end = context.Pipe()
    server = context.Process(target=_serve, args=(child_end,), daemon=True)
    server.start()
    try:
        port = parent_end.recv()
        rows = uvloop.run(_run(port, args.requests, args.concurrency))
    finally:
        server.terminate()
        server.join()

    print(f"\nresponse body {len(_RESPONSE_BODY)} bytes, {args.requests} requests per case, uvloop")
    print(f"{'client':<22} {'concurrency':>11} {'req/s':>9} {'us/req':>8}")
    for name, concurrency, rate in rows:
        print(f"{name:<22} {concurrency:>11} {rate:>9,.0f} {1e6 / rate:>8.1f}")


if __name__ == "__main__":
    main()
