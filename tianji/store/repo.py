"""A repository per entity: rows in and out as plain dicts, every write audited.

Rows are dicts of column name -> stored value (nano-USD ints, aware datetimes,
lists, dicts); the API layer converts at the edge. Writes run in a transaction,
record an `audit_log` row in it, and announce the change (`Store.changed`) so
caches drop the row on every instance. Filters are column names, never SQL.
"""

from __future__ import annotations

import functools
import operator
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from piccolo.columns import Column
from piccolo.table import Table

from tianji.errors import NotFound
from tianji.store.errors import Conflict

if TYPE_CHECKING:
    from tianji.store.store import Store

__all__ = ["Actor", "Page", "Repository", "Row", "now"]

Row = dict[str, Any]


def now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class Actor:
    """Who writes, for the audit log (management-api.md §0)."""

    changed_by: str = "tianji_proxy_admin"
    # The caller's key hash, or "master_key".
    api_key: str = ""


@dataclass(frozen=True, slots=True)
class Page:
    rows: list[Row]
    total: int


class Repository:
    """Reads and audited writes of one table. `kind` names the entity in change
    announcements ("key", "user", "team", ...); `label` in error messages."""

    def __init__(self, store: Store, table: type[Table], *, kind: str, label: str) -> None:
        self.store = store
        self.table = table
        self.kind = kind
        self.label = label
        self.pk: Column = table._meta.primary_key
        self.pk_name: str = self.pk._meta.name
        self._stamped = "updated_at" in {c._meta.name for c in table._meta.columns}

    def column(self, name: str) -> Column:
        column = self.table._meta.get_column_by_name(name)
        if column is None:  # pragma: no cover - a programming error
            raise KeyError(f"{self.table._meta.tablename} has no column {name!r}")
        return column

    # ------------------------------------------------------------------ reads

    async def get(self, row_id: Any) -> Row | None:
        rows = await self.store.run(
            self.table.select().where(self.pk == row_id).output(load_json=True)
        )
        return dict(rows[0]) if rows else None

    async def require(self, row_id: Any) -> Row:
        row = await self.get(row_id)
        if row is None:
            raise NotFound(f"{self.label} not found: {row_id}", param=self.pk_name)
        return row

    async def get_many(self, row_ids: Iterable[Any]) -> list[Row]:
        ids = list(dict.fromkeys(row_ids))
        if not ids:
            return []
        rows = await self.store.run(
            self.table.select().where(self.pk.is_in(ids)).output(load_json=True)
        )
        return [dict(r) for r in rows]

    async def require_all(self, row_ids: Iterable[Any]) -> list[Row]:
        """All of them, in the order asked, or 404 naming the missing ones."""
        ids = list(dict.fromkeys(row_ids))
        found = {row[self.pk_name]: row for row in await self.get_many(ids)}
        missing = [i for i in ids if i not in found]
        if missing:
            raise NotFound(f"{self.label} not found: {', '.join(map(str, missing))}")
        return [found[i] for i in ids]

    async def exists(self, row_id: Any) -> bool:
        return bool(await self.store.run(self.table.exists().where(self.pk == row_id)))

    async def find(self, **equals: Any) -> list[Row]:
        """Rows whose columns equal the given values (a list value means IN)."""
        query = self.table.select().output(load_json=True)
        for condition in self._conditions(equals):
            query = query.where(condition)
        return [dict(r) for r in await self.store.run(query)]

    async def paginate(
        self,
        *,
        filters: Mapping[str, Any] | None = None,
        any_of: Mapping[str, Any] | None = None,
        page: int = 1,
        size: int = 25,
        order_by: str | None = None,
        descending: bool = True,
    ) -> Page:
        """One page (1-based) of rows matching `filters` (as `find`) and, when given,
        at least one condition of `any_of`; and the total count."""
        conditions = self._conditions(filters or {})
        if any_of is not None:
            alternatives = self._conditions(any_of)
            if not alternatives:
                return Page([], 0)
            conditions.append(functools.reduce(operator.or_, alternatives))
        query = self.table.select().output(load_json=True)
        count = self.table.count()
        for condition in conditions:
            query = query.where(condition)
            count = count.where(condition)
        order = self.column(order_by) if order_by else self.pk
        query = (
            query.order_by(order, ascending=not descending).limit(size).offset((page - 1) * size)
        )
        rows = await self.store.run(query)
        total = await self.store.run(count)
        return Page([dict(r) for r in rows], int(total))

    def _conditions(self, equals: Mapping[str, Any]) -> list[Any]:
        conditions = []
        for name, value in equals.items():
            column = self.column(name)
            if value is None:
                conditions.append(column.is_null())
            elif isinstance(value, list | tuple | set | frozenset):
                conditions.append(column.is_in(list(value)))
            else:
                conditions.append(column == value)
        return conditions

    # ------------------------------------------------------------------ writes

    async def insert(self, row: Mapping[str, Any], *, actor: Actor) -> Row:
        """409 if the primary key (or another unique column) is taken."""
        async with self.store.transaction():
            row_id = row.get(self.pk_name)
            if row_id is not None and await self.exists(row_id):
                raise Conflict(f"{self.label} already exists: {row_id}", param=self.pk_name)
            inserted = await self.store.run(self.table.insert(self.table(**row)).returning(self.pk))
            created = await self.require(inserted[0][self.pk_name])
            await self.store.audit.record(
                actor, "created", self.table, created[self.pk_name], None, created
            )
            await self.store.changed(self.kind, str(created[self.pk_name]))
        return created

    async def update(
        self,
        row_id: Any,
        changes: Mapping[str, Any],
        *,
        actor: Actor,
        action: str = "updated",
    ) -> Row:
        """404 if absent. Returns the row as updated."""
        async with self.store.transaction():
            before = await self.require(row_id)
            values: dict[Any, Any] = {self.column(k): v for k, v in changes.items()}
            if self._stamped:
                values[self.column("updated_at")] = now()
            if "updated_by" in {c._meta.name for c in self.table._meta.columns}:
                values[self.column("updated_by")] = actor.changed_by
            await self.store.run(self.table.update(values).where(self.pk == row_id))
            after = await self.require(changes.get(self.pk_name, row_id))
            await self.store.audit.record(actor, action, self.table, row_id, before, changes)
            await self.store.changed(self.kind, str(row_id))
        return after

    async def delete(self, row_ids: Sequence[Any], *, actor: Actor) -> list[Row]:
        """All or nothing: 404 naming any missing id, 409 if one is still referenced."""
        async with self.store.transaction():
            rows = await self.require_all(row_ids)
            ids = [row[self.pk_name] for row in rows]
            await self.store.run(self.table.delete().where(self.pk.is_in(ids)))
            for row in rows:
                await self.store.audit.record(
                    actor, "deleted", self.table, row[self.pk_name], row, None
                )
            await self.store.changed(self.kind, *map(str, ids))
        return rows
