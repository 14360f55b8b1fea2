"""Users and what hangs off them: look-ups the generic repository cannot express
(case-insensitive email, substring search, key counts) and the writes that keep
a user's links consistent.

A team membership lives in three places (management-api.md §3, §12): the
`team_memberships` row, the team's `members_with_roles` list (LiteLLM's view)
and the user's `teams` list. `join_team`, `unlink_user` and `rename_in_teams`
change all three in one transaction, with the team and user rows locked as
tianji.store.rosters does (leaving a team is rosters.remove_team_member), so
two concurrent writers cannot lose each other's entry.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from piccolo.query import WhereRaw
from piccolo.query.functions.aggregate import Count

from tianji.store.repo import Actor, Page, Row
from tianji.store.rosters import locked, remove_team_member
from tianji.store.store import Store
from tianji.store.tables import User, VirtualKey

__all__ = [
    "UserSearch",
    "join_team",
    "key_counts",
    "rename_in_teams",
    "search_users",
    "unlink_user",
    "users_by_email",
]


def _like_pattern(text: str) -> str:
    """A LIKE pattern matching `text` anywhere, its own % and _ taken literally."""
    escaped = text.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


async def users_by_email(store: Store, email: str) -> list[Row]:
    """Users whose email equals `email` ignoring case (the unique index is on lower())."""
    query = (
        User.select()
        .where(WhereRaw("lower(user_email) = {}", email.lower()))
        .output(load_json=True)
    )
    return [dict(row) for row in await store.run(query)]


class UserSearch:
    """Filters of GET /user/list; each None = no condition."""

    def __init__(
        self,
        *,
        role: str | None = None,
        user_ids: Sequence[str] | None = None,
        email_contains: str | None = None,
        sso_user_ids: Sequence[str] | None = None,
    ) -> None:
        self.role = role
        self.user_ids = user_ids
        self.email_contains = email_contains
        self.sso_user_ids = sso_user_ids

    def conditions(self) -> list[Any]:
        found: list[Any] = []
        if self.role is not None:
            found.append(User.user_role == self.role)
        if self.user_ids is not None:
            found.append(User.user_id.is_in(list(self.user_ids) or [""]))
        if self.sso_user_ids is not None:
            found.append(User.sso_user_id.is_in(list(self.sso_user_ids) or [""]))
        if self.email_contains:
            pattern = _like_pattern(self.email_contains)
            found.append(WhereRaw("lower(user_email) LIKE {} ESCAPE '\\'", pattern))
        return found


async def search_users(
    store: Store, search: UserSearch, *, page: int, size: int, order_by: str, descending: bool
) -> Page:
    query = User.select().output(load_json=True)
    count = User.count()
    for condition in search.conditions():
        query = query.where(condition)
        count = count.where(condition)
    column = User._meta.get_column_by_name(order_by)
    # The primary key breaks ties, so pages never overlap.
    query = (
        query.order_by(column, ascending=not descending)
        .order_by(User.user_id, ascending=True)
        .limit(size)
        .offset((page - 1) * size)
    )
    rows = await store.run(query)
    total = await store.run(count)
    return Page([dict(r) for r in rows], int(total))


async def key_counts(store: Store, user_ids: Iterable[str]) -> dict[str, int]:
    ids = list(dict.fromkeys(user_ids))
    if not ids:
        return {}
    query = (
        VirtualKey.select(VirtualKey.user_id, Count(alias="n"))
        .where(VirtualKey.user_id.is_in(ids))
        .group_by(VirtualKey.user_id)
    )
    return {row["user_id"]: int(row["n"]) for row in await store.run(query)}


async def _set_members(
    store: Store, team: Row, members: list[dict[str, Any]], actor: Actor
) -> None:
    if members != list(team["members_with_roles"] or []):
        await store.teams.update(team["team_id"], {"members_with_roles": members}, actor=actor)


async def join_team(
    store: Store,
    user: Mapping[str, Any],
    team_id: str,
    *,
    role: str,
    actor: Actor,
    budget_id: str | None = None,
) -> Row:
    """Make `user` a member of the team (404 team, 409 already a member); returns
    the membership row."""
    user_id = user["user_id"]
    async with store.transaction():
        team = await locked(store, store.teams, team_id)
        membership = await store.team_members.add(
            user_id, team_id, role=role, actor=actor, budget_id=budget_id
        )
        members = [m for m in team["members_with_roles"] or [] if m.get("user_id") != user_id]
        members.append({"user_id": user_id, "user_email": user.get("user_email"), "role": role})
        await _set_members(store, team, members, actor)
        current = await locked(store, store.users, user_id)
        if team_id not in (current["teams"] or []):
            teams = [*(current["teams"] or []), team_id]
            await store.users.update(user_id, {"teams": teams}, actor=actor)
    return membership


async def rename_in_teams(store: Store, user_id: str, email: str | None, actor: Actor) -> None:
    """A user's new email, in the `members_with_roles` of their teams."""
    async with store.transaction():
        for membership in await store.team_members.of_user(user_id):
            team = await locked(store, store.teams, membership["team_id"])
            members = [
                {**m, "user_email": email} if m.get("user_id") == user_id else m
                for m in team["members_with_roles"] or []
            ]
            await _set_members(store, team, members, actor)


async def unlink_user(store: Store, user_id: str, actor: Actor) -> list[str]:
    """Before a user is deleted: their keys (kept in deleted_virtual_keys), team and
    organization memberships, and their `members_with_roles` entries. 409 when they
    are the last admin of a team (tianji.store.rosters). Returns the deleted key hashes."""
    async with store.transaction():
        for membership in await store.team_members.of_user(user_id):
            await remove_team_member(store, membership["team_id"], user_id, actor=actor)
        for membership in await store.org_members.of_user(user_id):
            await store.org_members.remove(user_id, membership["organization_id"], actor=actor)
        tokens = [row["token"] for row in await store.keys.find(user_id=user_id)]
        if tokens:
            await store.keys.delete_keys(tokens, actor=actor)
    return tokens
