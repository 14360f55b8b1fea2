"""Team and organization memberships: (user, group) pairs with a role.

The pair is unique by a database index (migrations/m0002_indexes.py), so two
concurrent adds of the same pair cannot both succeed on either engine: the
loser gets 409. A membership change is announced as a change of the user,
whose cached identities carry their team and organization roles.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from piccolo.table import Table

from tianji.errors import NotFound
from tianji.store.errors import Conflict
from tianji.store.repo import Actor, Repository, Row

if TYPE_CHECKING:
    from tianji.store.store import Store

__all__ = ["MembershipRepository"]


class MembershipRepository(Repository):
    def __init__(
        self,
        store: Store,
        table: type[Table],
        *,
        group: Repository,
        group_column: str,
        role_column: str,
    ) -> None:
        super().__init__(store, table, kind="membership", label=f"{group.label} membership")
        self.group = group
        self.group_column = group_column
        self.role_column = role_column

    async def add(
        self,
        user_id: str,
        group_id: str,
        *,
        role: str,
        actor: Actor,
        budget_id: str | None = None,
    ) -> Row:
        """404 for an unknown user, group or budget; 409 if already a member."""
        async with self.store.transaction():
            await self.store.users.require(user_id)
            await self.group.require(group_id)
            if budget_id is not None:
                await self.store.budgets.require(budget_id)
            row = {
                "user_id": user_id,
                self.group_column: group_id,
                self.role_column: role,
                "budget_id": budget_id,
            }
            try:
                created = await self.insert(row, actor=actor)
            except Conflict:
                raise Conflict(
                    f"User {user_id} is already a member of {self.group.label} {group_id}.",
                    param="user_id",
                ) from None
            await self.store.changed("user", user_id)
            return created

    async def member(self, user_id: str, group_id: str) -> Row | None:
        rows = await self.find(user_id=user_id, **{self.group_column: group_id})
        return rows[0] if rows else None

    async def require_member(self, user_id: str, group_id: str) -> Row:
        row = await self.member(user_id, group_id)
        if row is None:
            raise NotFound(
                f"User {user_id} is not a member of {self.group.label} {group_id}.",
                param="user_id",
            )
        return row

    async def of_user(self, user_id: str) -> list[Row]:
        return await self.find(user_id=user_id)

    async def of_group(self, group_id: str) -> list[Row]:
        return await self.find(**{self.group_column: group_id})

    async def set(
        self, user_id: str, group_id: str, changes: Mapping[str, Any], *, actor: Actor
    ) -> Row:
        async with self.store.transaction():
            row = await self.require_member(user_id, group_id)
            updated = await self.update(row["id"], changes, actor=actor)
            await self.store.changed("user", user_id)
            return updated

    async def remove(self, user_id: str, group_id: str, *, actor: Actor) -> Row:
        async with self.store.transaction():
            row = await self.require_member(user_id, group_id)
            await self.delete([row["id"]], actor=actor)
            await self.store.changed("user", user_id)
            return row
