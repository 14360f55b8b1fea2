"""Who belongs to which team and organization, kept consistent in one transaction.

A team member appears in three places: its `team_memberships` row (the source
of truth, unique per (user, team) by index), the team's `members_with_roles`
list (LiteLLM's view) and the user's `teams` list. Every change here updates
all three together (joining a team is tianji.store.people.join_team). The team
row, then the user row, are locked first (`SELECT ... FOR UPDATE` on Postgres;
a SQLite transaction already holds the database's write lock), so two
concurrent changes of one roster cannot both read the old list and lose the
other's write.

A team keeps at least one admin once it has one: removing or demoting the last
admin is a 409. Deleting teams and organizations removes what hangs off them
(team keys, memberships, and the budget rows nothing else uses any more) in the
same transaction.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from tianji.store.budget_refs import budget_users
from tianji.store.errors import Conflict
from tianji.store.repo import Actor, Repository, Row
from tianji.store.tables import ProxyModel

if TYPE_CHECKING:
    from tianji.store.store import Store

__all__ = [
    "change_team_member",
    "delete_organizations",
    "delete_teams",
    "insert_budget",
    "locked",
    "own_budget",
    "remove_team_member",
]


async def locked(store: Store, repository: Repository, row_id: Any) -> Row:
    """The row (404 if absent), locked until the surrounding transaction ends."""
    if store.target.kind != "postgres":
        return await repository.require(row_id)
    query = repository.table.select().where(repository.pk == row_id).output(load_json=True)
    rows = await store.run(query.lock_rows())
    return dict(rows[0]) if rows else await repository.require(row_id)


def _roster_entry(user: Mapping[str, Any], role: str) -> dict[str, Any]:
    return {"user_id": user["user_id"], "user_email": user["user_email"], "role": role}


def _without(roster: Sequence[Mapping[str, Any]], user_id: str) -> list[dict[str, Any]]:
    return [dict(m) for m in roster if m.get("user_id") != user_id]


async def _set_user_teams(
    store: Store, user_id: str, team_id: str, *, member: bool, actor: Actor
) -> None:
    user = await locked(store, store.users, user_id)
    teams = [t for t in user["teams"] or [] if t != team_id]
    if member:
        teams.append(team_id)
    if teams != list(user["teams"] or []):
        await store.users.update(user_id, {"teams": teams}, actor=actor)


async def _admins(store: Store, team_id: str) -> list[str]:
    rows = await store.team_members.find(team_id=team_id, role="admin")
    return [row["user_id"] for row in rows]


async def _keep_an_admin(store: Store, team_id: str, user_id: str) -> None:
    """409 when `user_id` is the team's only admin (and is about to stop being one)."""
    if await _admins(store, team_id) == [user_id]:
        raise Conflict(
            f"User {user_id} is the last admin of team {team_id}: make another member "
            "admin first (or delete the team).",
            param="user_id",
        )


async def remove_team_member(store: Store, team_id: str, user_id: str, *, actor: Actor) -> Row:
    """The removed membership. 404 if not a member; 409 for the last admin."""
    async with store.transaction():
        team = await locked(store, store.teams, team_id)
        membership = await store.team_members.require_member(user_id, team_id)
        if membership["role"] == "admin":
            await _keep_an_admin(store, team_id, user_id)
        await store.team_members.remove(user_id, team_id, actor=actor)
        roster = _without(team["members_with_roles"] or [], user_id)
        await store.teams.update(team_id, {"members_with_roles": roster}, actor=actor)
        await _set_user_teams(store, user_id, team_id, member=False, actor=actor)
        return membership


async def change_team_member(
    store: Store, team_id: str, user_id: str, changes: Mapping[str, Any], *, actor: Actor
) -> Row:
    """Update a membership (`role`, `budget_id`); 409 when it demotes the last admin."""
    async with store.transaction():
        team = await locked(store, store.teams, team_id)
        membership = await store.team_members.require_member(user_id, team_id)
        role = changes.get("role", membership["role"])
        if membership["role"] == "admin" and role != "admin":
            await _keep_an_admin(store, team_id, user_id)
        updated = await store.team_members.set(user_id, team_id, changes, actor=actor)
        if role != membership["role"]:
            user = await store.users.require(user_id)
            roster = [
                _roster_entry(user, role) if m.get("user_id") == user_id else dict(m)
                for m in team["members_with_roles"] or []
            ]
            if not any(m.get("user_id") == user_id for m in roster):
                roster.append(_roster_entry(user, role))
            await store.teams.update(team_id, {"members_with_roles": roster}, actor=actor)
        return updated


async def delete_teams(store: Store, team_ids: Sequence[str], *, actor: Actor) -> list[Row]:
    """All or nothing: 404 naming any missing team; 409 while proxy models are scoped
    to one (delete those first). The teams' keys and memberships go with them."""
    async with store.transaction():
        rows = await store.teams.require_all(team_ids)
        ids = [row["team_id"] for row in rows]
        for team_id in sorted(ids):
            await locked(store, store.teams, team_id)
        models = await store.run(
            ProxyModel.select(ProxyModel.model_id, ProxyModel.team_id).where(
                ProxyModel.team_id.is_in(ids)
            )
        )
        if models:
            used = sorted({m["team_id"] for m in models})
            raise Conflict(
                f"Teams {used} still have team-scoped models "
                f"{sorted(m['model_id'] for m in models)}: delete those models first.",
                param="team_ids",
            )
        keys = await store.keys.find(team_id=ids)
        if keys:
            await store.keys.delete_keys([k["token"] for k in keys], actor=actor)
        budgets = {r["team_member_budget_id"] for r in rows if r["team_member_budget_id"]}
        for membership in await store.team_members.find(team_id=ids):
            user_id, team_id = membership["user_id"], membership["team_id"]
            if membership["budget_id"] is not None:
                budgets.add(membership["budget_id"])
            await store.team_members.remove(user_id, team_id, actor=actor)
            await _set_user_teams(store, user_id, team_id, member=False, actor=actor)
        deleted = await store.teams.delete(ids, actor=actor)
        await _drop_unused_budgets(store, budgets, actor)
        return deleted


async def insert_budget(store: Store, values: Mapping[str, Any], *, actor: Actor) -> str:
    """A new budget row (stored values) with a fresh id: a member's or an
    organization's own budget. Returns its id."""
    row = {"budget_id": str(uuid.uuid4()), **values, "created_by": actor.changed_by}
    created = await store.budgets.insert({**row, "updated_by": actor.changed_by}, actor=actor)
    return str(created["budget_id"])


# The values of a budget row, without its id and stamps.
_BUDGET_VALUES = (
    "max_budget",
    "soft_budget",
    "max_parallel_requests",
    "tpm_limit",
    "rpm_limit",
    "model_max_budget",
    "budget_duration",
    "budget_reset_at",
    "allowed_models",
)


async def own_budget(
    store: Store, budget_id: str | None, values: Mapping[str, Any], *, owner: str, actor: Actor
) -> str:
    """`values` applied to an owner's budget: in place when the row is used by that
    one owner only (`owner` is a tianji.store.budget_refs kind, e.g.
    "organizations"); else a new row starting from the shared one, so nobody
    else's limits change. Returns the id the owner should point at."""
    if budget_id is not None and await budget_users(store, budget_id) == {owner: 1}:
        await store.budgets.update(budget_id, values, actor=actor)
        return budget_id
    shared = await store.budgets.get(budget_id) if budget_id is not None else None
    start = {name: shared[name] for name in _BUDGET_VALUES} if shared else {}
    return await insert_budget(store, {**start, **values}, actor=actor)


async def _drop_unused_budgets(store: Store, budget_ids: set[str], actor: Actor) -> None:
    """Member budgets that nothing points at any more."""
    unused = [b for b in sorted(budget_ids) if not await budget_users(store, b)]
    if unused:
        await store.budgets.delete(unused, actor=actor)


async def delete_organizations(
    store: Store, organization_ids: Sequence[str], *, actor: Actor
) -> list[Row]:
    """All or nothing: 404 naming any missing id; 409 while teams or keys still
    reference one. Memberships go with them, and so do their budget rows when
    nothing else uses those."""
    async with store.transaction():
        rows = await store.organizations.require_all(organization_ids)
        ids = [row["organization_id"] for row in rows]
        for organization_id in sorted(ids):
            await locked(store, store.organizations, organization_id)
        teams = await store.teams.find(organization_id=ids)
        keys = await store.keys.find(organization_id=ids)
        if teams or keys:
            raise Conflict(
                f"Organizations {ids} are still referenced by teams "
                f"{sorted(t['team_id'] for t in teams)} and keys "
                f"{sorted(k['key_name'] for k in keys)}: delete or move those first.",
                param="organization_ids",
            )
        budgets = {row["budget_id"] for row in rows}
        for membership in await store.org_members.find(organization_id=ids):
            if membership["budget_id"] is not None:
                budgets.add(membership["budget_id"])
            await store.org_members.remove(
                membership["user_id"], membership["organization_id"], actor=actor
            )
        deleted = await store.organizations.delete(ids, actor=actor)
        await _drop_unused_budgets(store, budgets, actor)
        return deleted
