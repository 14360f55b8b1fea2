"""`Store`: the open database, its transactions, and the repositories on it.

One Store per runtime. `open()` (in the app's startup hook) binds the engine,
applies pending migrations and starts the Postgres pool and the change bus;
`close()` undoes it. Every query goes through `run()` or `transaction()`,
which turn driver errors into 409/404/503 tianji errors. Writes announce what
they changed with `changed()`; inside a transaction the announcement waits for
the commit, so no cache can reload a row between the write and the commit
and then keep the old version.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import weakref
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from piccolo.engine.base import Engine
from piccolo.engine.sqlite import TransactionType

from tianji.store.engine import Target, acquire_engine, parse_database_url, release_engine
from tianji.store.errors import Unavailable, translating_db_errors
from tianji.store.events import Change, ChangeBus

__all__ = ["Store"]


class Store:
    def __init__(
        self,
        url: str | None,
        *,
        redis_url: str | None = None,
        pool_size: int = 20,
        connect_timeout: float = 10.0,
    ) -> None:
        self.target: Target = parse_database_url(url)
        self.bus = ChangeBus(redis_url)
        self._pool_size = pool_size
        self._connect_timeout = connect_timeout
        self._engine: Engine | None = None  # type: ignore[type-arg]
        self._owns_pool = False
        self._pending: contextvars.ContextVar[list[Change] | None] = contextvars.ContextVar(
            f"tianji_store_pending_{id(self)}", default=None
        )
        # SQLite writers queue per event loop (see _writer).
        self._write_locks: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Lock] = (
            weakref.WeakKeyDictionary()
        )
        self._make_repositories()

    def _make_repositories(self) -> None:
        from tianji.store import tables as t
        from tianji.store.audit import AuditRepository
        from tianji.store.keys import KeyRepository
        from tianji.store.memberships import MembershipRepository
        from tianji.store.repo import Repository

        self.audit = AuditRepository(self)
        self.budgets = Repository(self, t.Budget, kind="budget", label="budget")
        self.users = Repository(self, t.User, kind="user", label="user")
        self.organizations = Repository(
            self, t.Organization, kind="organization", label="organization"
        )
        self.teams = Repository(self, t.Team, kind="team", label="team")
        self.keys = KeyRepository(self)
        self.team_members = MembershipRepository(
            self, t.TeamMembership, group=self.teams, group_column="team_id", role_column="role"
        )
        self.org_members = MembershipRepository(
            self,
            t.OrganizationMembership,
            group=self.organizations,
            group_column="organization_id",
            role_column="user_role",
        )
        self.customers = Repository(self, t.EndUser, kind="end_user", label="customer")
        self.tags = Repository(self, t.Tag, kind="tag", label="tag")
        self.models = Repository(self, t.ProxyModel, kind="model", label="model")
        self.spend_logs = Repository(self, t.SpendLog, kind="spend_log", label="spend log")
        self.daily_spend = Repository(self, t.DailySpend, kind="daily_spend", label="daily spend")
        self.managed_objects = Repository(
            self, t.ManagedObject, kind="managed_object", label="object"
        )

    # ------------------------------------------------------------------ lifecycle

    @property
    def engine(self) -> Engine:  # type: ignore[type-arg]
        if self._engine is None:
            raise Unavailable("The database is not open.")
        return self._engine

    @property
    def is_open(self) -> bool:
        return self._engine is not None

    async def open(self, *, migrate: bool = True) -> list[str]:
        """Open the database; returns the migrations applied. With `migrate=False`
        a schema that is behind is an error instead."""
        from tianji.store.migrate import apply_migrations, pending_migrations, startup_lock

        engine = acquire_engine(self.target)
        self._engine = engine
        try:
            async with translating_db_errors():
                if self.target.kind == "sqlite":
                    # Switching to WAL needs the file to itself: an instance starting
                    # while another migrates would get "database is locked".
                    async with startup_lock(self.target):
                        await engine.run_ddl("PRAGMA journal_mode=WAL")
                if migrate:
                    applied = await apply_migrations(self.target)
                else:
                    applied = []
                    pending = await pending_migrations()
                    if pending:
                        raise Unavailable(
                            f"The database schema is behind ({len(pending)} pending "
                            f"migrations): run `tianji migrate`."
                        )
                postgres: Any = engine
                if self.target.kind == "postgres" and postgres.pool is None:
                    self._owns_pool = True
                    await postgres.start_connection_pool(
                        min_size=1, max_size=self._pool_size, timeout=self._connect_timeout
                    )
            await self.bus.start()
        except BaseException:
            await self._release()
            raise
        return applied

    async def close(self) -> None:
        await self.bus.stop()
        await self._release()

    async def _release(self) -> None:
        engine = self._engine
        if engine is None:
            return
        self._engine = None
        if self._owns_pool:
            # Another Store of this URL on this loop shares the pool; it falls back
            # to one connection per query if it outlives the owner.
            self._owns_pool = False
            postgres: Any = engine
            await postgres.close_connection_pool()
        release_engine(self.target)

    # ------------------------------------------------------------------ queries

    @property
    def query_count(self) -> int:
        """Statements sent to the database by this process (Piccolo's query counter)."""
        return int(self.engine.query_id)

    async def ping(self) -> bool:
        """True when the database answers (for readiness probes); never raises."""
        from tianji.store.tables import Budget

        try:
            await self.run(Budget.raw("SELECT 1"))
        except Exception:
            return False
        return True

    async def run(self, query: Any) -> Any:
        """Run one Piccolo query; driver errors become tianji errors."""
        self.engine  # noqa: B018 - raises Unavailable when closed
        async with translating_db_errors():
            return await query.run()

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[None]:
        """All-or-nothing; nested calls join the outer transaction. Changes are
        announced after the outermost commit, and not at all on rollback."""
        if self._pending.get() is not None:
            yield
            return
        engine = self.engine
        changes: list[Change] = []
        token = self._pending.set(changes)
        try:
            async with self._writer(), translating_db_errors():
                if self.target.kind == "sqlite":
                    # IMMEDIATE takes the write lock up front: a deferred transaction
                    # that later upgrades fails at once instead of waiting its turn.
                    transaction = engine.transaction(transaction_type=TransactionType.immediate)
                else:
                    transaction = engine.transaction()
                async with transaction:
                    yield
        finally:
            self._pending.reset(token)
        for change in changes:
            await self.bus.publish(change)

    def _writer(self) -> asyncio.Lock | contextlib.nullcontext[None]:
        """SQLite has one writer at a time. Queuing this process's writers on an
        asyncio lock avoids SQLite's busy handler, which polls with sleeps
        (200 concurrent writers: ~12 s polling vs ~1 s queued). Other processes
        still wait through the busy timeout."""
        if self.target.kind != "sqlite":
            return contextlib.nullcontext()
        loop = asyncio.get_running_loop()
        lock = self._write_locks.get(loop)
        if lock is None:
            lock = self._write_locks[loop] = asyncio.Lock()
        return lock

    async def changed(self, kind: str, *ids: str) -> None:
        """Announce that rows changed (after commit when inside a transaction)."""
        change = Change(kind, tuple(ids))
        pending = self._pending.get()
        if pending is not None:
            pending.append(change)
        else:
            await self.bus.publish(change)
