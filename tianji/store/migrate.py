"""Apply the Piccolo migrations of tianji/store/migrations, once, under a lock.

Migrations are Piccolo's own files (each `forwards()` returns a MigrationManager)
and are recorded in Piccolo's `migration` table, so Piccolo's CLI sees the same
history. tianji runs them itself: imported as package modules (Piccolo's
runner puts the folder on sys.path) and with their progress prints kept off
stdout. Instances starting together apply each migration once: Postgres takes
an advisory lock, SQLite an exclusive flock on the database file (SQLite's own
locks are fcntl locks, which flock does not disturb).
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import importlib
import io
import logging
import pkgutil
from collections.abc import AsyncIterator
from types import ModuleType
from typing import Any

from piccolo.apps.migrations.tables import Migration

from tianji.store import migrations as migrations_package
from tianji.store.engine import Target
from tianji.store.piccolo_app import APP_NAME

__all__ = ["apply_migrations", "migration_ids", "pending_migrations", "startup_lock"]

log = logging.getLogger("tianji.store")

# pg_advisory_lock key: any constant shared by every tianji instance.
_PG_LOCK_KEY = 0x7469616E6A69


def _modules() -> dict[str, ModuleType]:
    found: dict[str, ModuleType] = {}
    for info in pkgutil.iter_modules(migrations_package.__path__):
        module = importlib.import_module(f"{migrations_package.__name__}.{info.name}")
        migration_id = getattr(module, "ID", None)
        if isinstance(migration_id, str):
            found[migration_id] = module
    return dict(sorted(found.items()))


def migration_ids() -> list[str]:
    return list(_modules())


async def _applied() -> set[str]:
    if not await Migration.table_exists().run():
        return set()
    ran: list[str] = await Migration.get_migrations_which_ran(app_name=APP_NAME)
    return set(ran)


async def pending_migrations() -> list[str]:
    applied = await _applied()
    return [i for i in _modules() if i not in applied]


async def apply_migrations(target: Target) -> list[str]:
    """Apply what is pending; returns the ids applied (empty when up to date)."""
    async with _exclusive(target):
        create_history: Any = Migration.create_table(if_not_exists=True)
        await create_history.run()
        applied = await _applied()
        done: list[str] = []
        for migration_id, module in _modules().items():
            if migration_id in applied:
                continue
            manager: Any = await module.forwards()
            with contextlib.redirect_stdout(io.StringIO()):
                await manager.run()
            await Migration.insert(Migration(name=migration_id, app_name=APP_NAME)).run()
            log.info("applied migration %s (%s)", migration_id, getattr(module, "DESCRIPTION", ""))
            done.append(migration_id)
        return done


@contextlib.asynccontextmanager
async def startup_lock(target: Target) -> AsyncIterator[None]:
    """The lock instances take for one-time startup work on a database (migrations,
    SQLite's switch to WAL, which needs the file to itself)."""
    async with _exclusive(target):
        yield


@contextlib.asynccontextmanager
async def _exclusive(target: Target) -> AsyncIterator[None]:
    if target.kind == "postgres":
        async with _pg_lock(target.location):
            yield
    else:
        async with _file_lock(target.location):
            yield


@contextlib.asynccontextmanager
async def _pg_lock(dsn: str) -> AsyncIterator[None]:
    import asyncpg  # type: ignore[import-untyped]

    connection: Any = await asyncpg.connect(dsn)
    try:
        await connection.execute("SELECT pg_advisory_lock($1)", _PG_LOCK_KEY)
        yield
    finally:
        with contextlib.suppress(Exception):
            await connection.execute("SELECT pg_advisory_unlock($1)", _PG_LOCK_KEY)
        await connection.close()


@contextlib.asynccontextmanager
async def _file_lock(path: str) -> AsyncIterator[None]:
    # Opening with "a" creates the database file if needed and never truncates it.
    with open(path, "a") as handle:  # noqa: ASYNC230 - opening a local file is instant
        await asyncio.to_thread(fcntl.flock, handle.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)
