"""Virtual keys: only the sha256 of a key is stored (guards.md §1.2).

A key is referred to by its plaintext (`sk-...`) or by its sha256 hex; `token_of`
turns either into the stored token. Deleting or re-keying copies the old row
into `deleted_virtual_keys` in the same transaction; a regenerate with a grace
period leaves the old hash in `deprecated_keys` until `revoke_at`.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from tianji.store.errors import Conflict
from tianji.store.repo import Actor, Page, Repository, Row
from tianji.store.tables import DeletedVirtualKey, DeprecatedKey, VirtualKey

if TYPE_CHECKING:
    from tianji.store.store import Store

__all__ = ["KeyRepository", "hash_key", "key_name", "token_of"]

_HASH = re.compile(r"[0-9a-f]{64}")


def hash_key(plaintext: str) -> str:
    return hashlib.sha256(plaintext.encode()).hexdigest()


def key_name(plaintext: str) -> str:
    """The displayable abbreviation stored with a key: `sk-...` + its last 4 characters."""
    return f"sk-...{plaintext[-4:]}"


def token_of(reference: str) -> str:
    """A key reference (plaintext or sha256 hex) -> the stored token."""
    return reference if _HASH.fullmatch(reference) else hash_key(reference)


class KeyRepository(Repository):
    def __init__(self, store: Store) -> None:
        super().__init__(store, VirtualKey, kind="key", label="key")
        self.deleted = Repository(store, DeletedVirtualKey, kind="deleted_key", label="deleted key")

    async def check_references(self, row: Mapping[str, Any]) -> None:
        """404 for a user, team, organization or budget that does not exist."""
        store = self.store
        for column, repository in (
            ("user_id", store.users),
            ("team_id", store.teams),
            ("organization_id", store.organizations),
            ("budget_id", store.budgets),
        ):
            if row.get(column) is not None:
                await repository.require(row[column])

    async def check_alias(self, alias: str | None, token: str | None = None) -> None:
        if alias is None:
            return
        rows = await self.find(key_alias=alias)
        if any(r["token"] != token for r in rows):
            raise Conflict(f"Key with alias '{alias}' already exists.", param="key_alias")

    async def create(self, row: Mapping[str, Any], *, actor: Actor) -> Row:
        """409 for a taken alias or key; 404 for a missing reference."""
        async with self.store.transaction():
            await self.check_references(row)
            await self.check_alias(row.get("key_alias"))
            if await self.exists(row["token"]):
                raise Conflict("This key is already in use; choose another.", param="key")
            return await self.insert(row, actor=actor)

    async def change(
        self, token: str, changes: Mapping[str, Any], *, actor: Actor, action: str = "updated"
    ) -> Row:
        async with self.store.transaction():
            await self.check_references(changes)
            if changes.get("key_alias") is not None:
                await self.check_alias(changes["key_alias"], token)
            return await self.update(token, changes, actor=actor, action=action)

    async def _bury(self, rows: Sequence[Row], actor: Actor) -> None:
        for row in rows:
            await self.store.run(
                DeletedVirtualKey.insert(
                    DeletedVirtualKey(
                        **row, deleted_by=actor.changed_by, deleted_by_api_key=actor.api_key
                    )
                )
            )

    async def delete_keys(self, tokens: Sequence[str], *, actor: Actor) -> list[Row]:
        """All or nothing; the rows are kept in deleted_virtual_keys."""
        async with self.store.transaction():
            rows = await self.require_all(tokens)
            await self._bury(rows, actor)
            await self.store.run(
                DeprecatedKey.delete().where(DeprecatedKey.active_token_id.is_in(list(tokens)))
            )
            return await self.delete(tokens, actor=actor)

    async def rekey(
        self,
        token: str,
        new_token: str,
        new_key_name: str,
        changes: Mapping[str, Any],
        *,
        revoke_old_at: datetime | None,
        actor: Actor,
    ) -> Row:
        """Give the key a new secret; spend, limits and ownership stay. With
        `revoke_old_at` the old secret keeps working until then."""
        async with self.store.transaction():
            old = await self.require(token)
            if await self.exists(new_token):
                raise Conflict("This key is already in use; choose another.", param="new_key")
            await self._bury([old], actor)
            await self.store.run(
                DeprecatedKey.update({DeprecatedKey.active_token_id: new_token}).where(
                    DeprecatedKey.active_token_id == token
                )
            )
            if revoke_old_at is not None:
                await self.store.run(
                    DeprecatedKey.insert(
                        DeprecatedKey(
                            token=token, active_token_id=new_token, revoke_at=revoke_old_at
                        )
                    )
                )
            values = {**changes, "token": new_token, "key_name": new_key_name}
            row = await self.change(token, values, actor=actor, action="rotated")
            await self.store.changed(self.kind, new_token)
            return row

    async def deprecated(self, token: str) -> Row | None:
        rows = await self.store.run(DeprecatedKey.select().where(DeprecatedKey.token == token))
        return dict(rows[0]) if rows else None

    async def search(
        self,
        *,
        filters: Mapping[str, Any],
        any_of: Mapping[str, Any] | None = None,
        page: int,
        size: int,
        order_by: str,
        descending: bool,
        deleted: bool = False,
    ) -> Page:
        """Keys matching every filter and, when `any_of` is given, at least one of
        its conditions (how a non-admin sees own keys plus team keys)."""
        repository = self.deleted if deleted else self
        return await repository.paginate(
            filters=filters,
            any_of=any_of,
            page=page,
            size=size,
            order_by=order_by,
            descending=descending,
        )

    async def aliases(self, **filters: Any) -> list[str]:
        query = VirtualKey.select(VirtualKey.key_alias).where(VirtualKey.key_alias.is_not_null())
        for condition in self._conditions(filters):
            query = query.where(condition)
        rows = await self.store.run(query.order_by(VirtualKey.key_alias))
        return [r["key_alias"] for r in rows]
