"""Which database, and binding Piccolo's tables to it.

`general_settings.database_url`: `postgres://` or `postgresql://` selects
Postgres (an asyncpg pool per event loop, opened in the app's startup hook);
anything else is a SQLite file (`sqlite:///relative.db`, `sqlite:////abs.db`
or a bare path; default `./tianji.db`) opened with a 30 s busy timeout in WAL
mode, which is what concurrent writers need (STACK-NOTES: Piccolo).

Piccolo binds tables to one engine per process (`Table._meta.db`, and its
migration manager asks `PICCOLO_CONF`), so one database URL can be open per
process at a time; several Stores of the same URL share its engine.
"""

from __future__ import annotations

import asyncio
import os
import weakref
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from piccolo.apps.migrations.tables import Migration
from piccolo.engine.base import Engine
from piccolo.engine.postgres import PostgresEngine
from piccolo.engine.sqlite import SQLiteEngine
from piccolo.table import Table

from tianji.store import piccolo_conf
from tianji.store.tables import ALL_TABLES

__all__ = [
    "DEFAULT_SQLITE_PATH",
    "Target",
    "acquire_engine",
    "parse_database_url",
    "release_engine",
]

DEFAULT_SQLITE_PATH = "tianji.db"
SQLITE_BUSY_TIMEOUT_S = 30.0


@dataclass(frozen=True)
class Target:
    kind: str  # "sqlite" | "postgres"
    # SQLite: the file path; Postgres: the DSN.
    location: str

    @property
    def redacted(self) -> str:
        """For logs: the URL without a password."""
        if self.kind == "sqlite":
            return f"sqlite:///{self.location}"
        head, at, tail = self.location.rpartition("@")
        if not at:
            return self.location
        scheme, _, userinfo = head.partition("://")
        return f"{scheme}://{userinfo.split(':')[0]}@{tail}"


def parse_database_url(url: str | None) -> Target:
    """Raises ValueError for a scheme tianji cannot open (reported by `tianji check`)."""
    if not url:
        return Target("sqlite", DEFAULT_SQLITE_PATH)
    if url.startswith(("postgres://", "postgresql://")):
        return Target("postgres", url)
    if url.startswith("sqlite://"):
        path = url.removeprefix("sqlite://")
        if not path.startswith("/") or path in ("/", "/:memory:"):
            raise ValueError(
                f"database_url {url!r}: use sqlite:///relative/path.db or sqlite:////abs/path.db "
                "(an in-memory database does not survive between connections)"
            )
        return Target("sqlite", path[1:])
    if "://" in url:
        scheme = url.split("://", 1)[0]
        raise ValueError(
            f"database_url scheme {scheme!r} is not supported "
            "(postgresql://... or sqlite:///path, or a file path)"
        )
    return Target("sqlite", url)


class LoopPostgresEngine(PostgresEngine):
    """A PostgresEngine with one asyncpg pool per event loop.

    An asyncpg pool belongs to the loop that created it. Keeping `pool` per loop
    lets several servers (or a server and a test) in one process share the
    engine that Piccolo's tables are bound to."""

    def __init__(self, config: dict[str, Any]) -> None:
        self._pools: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Any] = (
            weakref.WeakKeyDictionary()
        )
        super().__init__(config=config, extensions=())

    async def check_version(self) -> None:
        """Piccolo connects at construction to check the server version, blocking
        the event loop (up to the connect timeout when the server is down). Skipped:
        the first real connection (migrations, at startup) reports an unreachable
        server, and any supported Postgres (>= 10) has what tianji uses."""

    @property
    def pool(self) -> Any:
        try:
            return self._pools.get(asyncio.get_running_loop())
        except RuntimeError:
            return None

    @pool.setter
    def pool(self, value: Any) -> None:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return  # PostgresEngine.__init__ sets None outside any loop
        if value is None:
            self._pools.pop(loop, None)
        else:
            self._pools[loop] = value


def _make_engine(target: Target) -> Engine:  # type: ignore[type-arg]
    if target.kind == "postgres":
        return LoopPostgresEngine(config={"dsn": target.location})
    return SQLiteEngine(path=target.location, timeout=SQLITE_BUSY_TIMEOUT_S)


# target -> [engine, number of open Stores]
_open: dict[Target, list[Any]] = {}


def acquire_engine(target: Target) -> Engine:  # type: ignore[type-arg]
    """The engine of `target`, bound to every table. Refuses a second database."""
    entry = _open.get(target)
    if entry is None:
        if _open:
            other = next(iter(_open))
            raise RuntimeError(
                f"a store for {other.redacted} is already open in this process; "
                f"cannot also open {target.redacted}"
            )
        if target.kind == "sqlite":
            parent = Path(target.location).parent
            if not parent.is_dir():
                raise FileNotFoundError(f"directory of the SQLite database missing: {parent}")
        entry = _open[target] = [_make_engine(target), 0]
        _bind(entry[0])
    entry[1] += 1
    engine: Engine = entry[0]  # type: ignore[type-arg]
    return engine


def release_engine(target: Target) -> bool:
    """True when this was the last Store of `target` (the engine is then unbound)."""
    entry = _open.get(target)
    if entry is None:
        return False
    entry[1] -= 1
    if entry[1] > 0:
        return False
    del _open[target]
    return True


def _bind(engine: Engine) -> None:  # type: ignore[type-arg]
    # Piccolo's migration manager resolves its engine through PICCOLO_CONF.
    os.environ["PICCOLO_CONF"] = piccolo_conf.__name__
    piccolo_conf.DB = engine
    tables: tuple[type[Table], ...] = (*ALL_TABLES, Migration)
    for table in tables:
        table._meta.db = engine
