"""Database URLs, money, audit masking, and migrations applied once under a lock."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tianji.store import Store, nano_to_usd, parse_database_url, usd_to_nano
from tianji.store.audit import MASK, masked
from tianji.store.engine import LoopPostgresEngine


@pytest.mark.parametrize(
    ("url", "kind", "location"),
    [
        (None, "sqlite", "tianji.db"),
        ("", "sqlite", "tianji.db"),
        ("sqlite:///data/t.db", "sqlite", "data/t.db"),
        ("sqlite:////var/lib/t.db", "sqlite", "/var/lib/t.db"),
        ("./t.db", "sqlite", "./t.db"),
        ("postgres://u:p@db:5432/x", "postgres", "postgres://u:p@db:5432/x"),
        ("postgresql://u@db/x", "postgres", "postgresql://u@db/x"),
    ],
)
def test_database_urls(url: str | None, kind: str, location: str) -> None:
    target = parse_database_url(url)
    assert (target.kind, target.location) == (kind, location)


@pytest.mark.parametrize("url", ["mysql://db/x", "sqlite://", "sqlite:///:memory:", "sqlite://rel"])
def test_unsupported_database_urls(url: str) -> None:
    with pytest.raises(ValueError, match=r"sqlite|supported"):
        parse_database_url(url)


def test_redacted_url_has_no_password() -> None:
    assert (
        parse_database_url("postgresql://u:secret@db:5432/x").redacted == "postgresql://u@db:5432/x"
    )


@pytest.mark.parametrize(
    ("usd", "nano"),
    [(0.1, 100_000_000), (1, 1_000_000_000), (0.000000001, 1), (12.345678912, 12_345_678_912)],
)
def test_money_is_exact(usd: float, nano: int) -> None:
    assert usd_to_nano(usd) == nano
    assert nano_to_usd(nano) == pytest.approx(usd)


def test_audit_values_hide_secrets() -> None:
    row = {
        "token": "abc",
        "key_alias": "ci",
        "litellm_params": {"api_key": "sk-up", "aws_secret_access_key": "x", "model": "m"},
        "prompt_tokens": 3,
        "cache_key": "h",
    }
    assert masked(row) == {
        "token": MASK,
        "key_alias": "ci",
        "litellm_params": {"api_key": MASK, "aws_secret_access_key": MASK, "model": "m"},
        "prompt_tokens": 3,
        "cache_key": "h",
    }


@pytest.fixture
async def empty_database_url(tmp_path: Path) -> AsyncIterator[str]:
    """A database nobody migrated yet, on the engine under test."""
    if os.environ.get("TIANJI_TEST_DB") != "postgres":
        yield f"sqlite:///{tmp_path / 'fresh.db'}"
        return
    import asyncpg

    server = os.environ.get("DATABASE_URL", "")
    base, _, _ = server.rpartition("/")
    name = f"tianji_fresh_{os.getpid()}"
    admin = await asyncpg.connect(server)
    await admin.execute(f'DROP DATABASE IF EXISTS "{name}"')
    await admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"{base}/{name}"
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


async def test_instances_starting_together_migrate_once(empty_database_url: str) -> None:
    first, second = Store(empty_database_url), Store(empty_database_url)
    applied = await asyncio.gather(first.open(), second.open())
    try:
        assert sorted(len(a) for a in applied) == [0, 2]
        assert await first.users.get("nobody") is None
    finally:
        await first.close()
        await second.close()


async def test_refuses_a_schema_behind_without_migrating(empty_database_url: str) -> None:
    store = Store(empty_database_url)
    with pytest.raises(Exception, match="tianji migrate"):
        await store.open(migrate=False)
    assert not store.is_open


async def test_postgres_engine_keeps_one_pool_per_event_loop() -> None:
    engine = LoopPostgresEngine({"dsn": "postgresql://nowhere/x"})
    assert engine.pool is None
    engine.pool = "pool-of-this-loop"
    assert engine.pool == "pool-of-this-loop"
    other: list[object] = []
    await asyncio.to_thread(lambda: other.append(asyncio.run(_pool_of(engine))))
    assert other == [None]


async def _pool_of(engine: LoopPostgresEngine) -> object:
    return engine.pool
