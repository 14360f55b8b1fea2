"""Shared fixtures: a real gateway on 127.0.0.1 (uvicorn in a thread), fake upstreams,
and databases: SQLite by default, Postgres with TIANJI_TEST_DB=postgres (a database
created for the session on TIANJI_TEST_POSTGRES_URL's server and dropped after it).
Postgres or Redis unreachable: the tests that need them skip, or fail when CI=true."""

from __future__ import annotations

import asyncio
import os
import socket
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from concurrent.futures import Future
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import pytest
import uvicorn

from tests.support.fake_upstream import FakeUpstream
from tianji.compile.pipeline import Built, build
from tianji.store import Store

MASTER_KEY = "sk-test-master"

T = TypeVar("T")


@dataclass
class Gateway:
    url: str
    built: Built
    # The event loop the server runs on (its store and caches live there).
    loop: asyncio.AbstractEventLoop | None = None

    @property
    def v1(self) -> str:
        return self.url + "/v1"

    @property
    def store(self) -> Store:
        store = self.built.runtime.store
        assert store is not None, "this gateway has no store (no master_key)"
        return store

    def call(self, make: Callable[[], Awaitable[T]], timeout: float = 10) -> T:
        """Run a coroutine on the gateway's loop (e.g. a repository write through
        the gateway's own store, so its caches see the change) and return its result."""
        assert self.loop is not None

        async def run() -> T:
            return await make()

        future: Future[T] = asyncio.run_coroutine_threadsafe(run(), self.loop)
        return future.result(timeout)


@contextmanager
def running_gateway(
    config_text: str,
    tmp_path: Path,
    *,
    routes: Path | None = None,
    providers: Path | None = None,
    env: dict[str, str] | None = None,
) -> Iterator[Gateway]:
    """Compile `config_text` and serve it on a free loopback port until the block ends."""
    config = tmp_path / "config.yaml"
    config.write_text(config_text)
    built, problems = build(
        config, routes=routes, providers=providers, env={**os.environ, **(env or {})}
    )
    assert built is not None, "\n".join(p.render() for p in problems)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(built.app, log_level="warning", lifespan="on"))
    loops: list[asyncio.AbstractEventLoop] = []

    async def serve() -> None:
        loops.append(asyncio.get_running_loop())
        await server.serve(sockets=[sock])

    thread = threading.Thread(target=lambda: asyncio.run(serve()), daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert thread.is_alive(), "gateway failed to start (see the log above)"
        assert time.monotonic() < deadline, "gateway did not start"
        time.sleep(0.01)
    try:
        yield Gateway(f"http://127.0.0.1:{port}", built, loops[0])
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()


def openai_config(upstream: FakeUpstream, *, extra: str = "", general: str = "") -> str:
    """A config whose `gpt-4o-mini` (and `openai/*` wildcard) go to the fake upstream."""
    return f"""
model_list:
  - model_name: gpt-4o-mini
    litellm_params:
      model: openai/gpt-4o-mini-upstream
      api_base: {upstream.base_url}
      api_key: sk-upstream-secret
      timeout: 2
      stream_timeout: 1
  - model_name: openai/*
    litellm_params:
      model: openai/*
      api_base: {upstream.base_url}
      api_key: sk-upstream-secret
  - model_name: rerank-model
    litellm_params:
      model: hosted_vllm/bge-reranker
      api_base: {upstream.base_url}
{extra}
general_settings:
  master_key: {MASTER_KEY}
{general}
"""


@pytest.fixture
def upstream() -> Iterator[FakeUpstream]:
    with FakeUpstream() as up:
        yield up


@pytest.fixture
def gateway(upstream: FakeUpstream, tmp_path: Path) -> Iterator[Gateway]:
    with running_gateway(openai_config(upstream), tmp_path) as gw:
        yield gw


# --------------------------------------------------------------------------- databases

IN_CI = os.environ.get("CI", "").lower() == "true"
TEST_DB = os.environ.get("TIANJI_TEST_DB", "sqlite")
POSTGRES_SERVER = os.environ.get(
    "TIANJI_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"
)
REDIS_URL = os.environ.get("TIANJI_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


@dataclass
class _Session:
    tmp: Path | None = None
    url: str = ""
    postgres_database: str | None = None
    # Why database tests skip (Postgres asked for but unreachable, outside CI).
    skip: str | None = None
    migrated: bool = False


_session = _Session()


def _unavailable(what: str, exc: BaseException) -> str:
    reason = f"{what} unreachable ({type(exc).__name__}: {exc})"
    if IN_CI:
        raise pytest.UsageError(f"CI=true and {reason}: refusing to skip")
    return reason


async def _postgres_admin(statement: str) -> None:
    import asyncpg

    connection = await asyncpg.connect(POSTGRES_SERVER, timeout=3)
    try:
        await connection.execute(statement)
    finally:
        await connection.close()


def _with_database(server_url: str, name: str) -> str:
    base, _, _ = server_url.rpartition("/")
    return f"{base}/{name}"


def pytest_configure(config: pytest.Config) -> None:
    import tempfile

    _session.tmp = Path(tempfile.mkdtemp(prefix="tianji-tests-"))
    _session.url = f"sqlite:///{_session.tmp / 'session.db'}"
    if TEST_DB == "postgres":
        name = f"tianji_test_{os.getpid()}_{int(time.time())}"
        try:
            asyncio.run(_postgres_admin(f'CREATE DATABASE "{name}"'))
        except Exception as exc:  # unreachable, refused, bad credentials: no Postgres
            _session.skip = _unavailable("Postgres (TIANJI_TEST_DB=postgres)", exc)
        else:
            _session.postgres_database = name
            _session.url = _with_database(POSTGRES_SERVER, name)
    # Every gateway with a master key opens a database: the default (env
    # DATABASE_URL) is the session's, never ./tianji.db in the repository.
    os.environ["DATABASE_URL"] = _session.url


def pytest_unconfigure(config: pytest.Config) -> None:
    import shutil

    if _session.postgres_database is not None:
        name, _session.postgres_database = _session.postgres_database, None
        asyncio.run(_postgres_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    if _session.tmp is not None:
        shutil.rmtree(_session.tmp, ignore_errors=True)


async def _truncate_postgres(url: str) -> None:
    import asyncpg

    from tianji.store.tables import ALL_TABLES

    if not _session.migrated:
        migrating = Store(url)
        await migrating.open()
        await migrating.close()
        _session.migrated = True
    names = ", ".join(t._meta.tablename for t in ALL_TABLES)
    connection = await asyncpg.connect(url, timeout=3)
    try:
        await connection.execute(f"TRUNCATE {names} RESTART IDENTITY CASCADE")
    finally:
        await connection.close()


@pytest.fixture
def db_url(tmp_path: Path) -> str:
    """An empty database for one test (migrated when a Store opens it): a fresh SQLite
    file, or the session's Postgres database with every tianji table truncated."""
    if _session.skip is not None:
        pytest.skip(_session.skip)
    if TEST_DB != "postgres":
        return f"sqlite:///{tmp_path / 'tianji.db'}"
    asyncio.run(_truncate_postgres(_session.url))
    return _session.url


@pytest.fixture
def redis_url() -> str:
    """A reachable Redis: the tests that need it skip when it is down (fail under CI=true)."""
    import redis

    client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2)
    try:
        client.ping()
    except redis.RedisError as exc:
        pytest.skip(_unavailable("Redis", exc))
    finally:
        client.close()
    return REDIS_URL


@pytest.fixture
async def store(db_url: str) -> AsyncIterator[Store]:
    opened = Store(db_url)
    await opened.open()
    try:
        yield opened
    finally:
        await opened.close()


def keyed_config(upstream: FakeUpstream, db_url: str, *, extra: str = "", general: str = "") -> str:
    """openai_config with a database of its own: virtual keys work."""
    settings = f"  database_url: {db_url}" + (f"\n{general}" if general else "")
    return openai_config(upstream, extra=extra, general=settings)
