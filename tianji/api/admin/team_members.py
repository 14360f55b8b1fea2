"""Team membership endpoints (management-api.md §3): member add (/team/member/add and
LiteLLM's /team/member_add), member delete (both spellings), member update.

Member add takes LiteLLM's body (`member`: one entry or a list) and the Go form
(`{"team_id", "user_id"}` = one member with role `user`); unknown users are
created. A member budget (`max_budget_in_team`, `budget_duration`,
`allowed_models`) is a budget row of that membership; without one, the team's
default member budget (`team_member_budget`) is linked. Each request is one
transaction: a duplicate member (409) adds nobody.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import msgspec

from tianji.api.admin.budget_rows import BudgetFields, budget_values, money, usd
from tianji.api.admin.common import BadRequest, ValidationFailed, convert, endpoint
from tianji.api.admin.group_access import check_manage_team
from tianji.api.admin.member_users import member_user_id, resolve_user, users_shown
from tianji.api.admin.team_reads import shown_team
from tianji.api.admin.team_rows import Member, TeamRole, team_membership_out
from tianji.api.runtime import Runtime
from tianji.compile.model import RoutePlan
from tianji.guards.auth import Identity
from tianji.store import Actor, Row, Store, nano_to_usd
from tianji.store.budget_refs import budget_users
from tianji.store.people import join_team
from tianji.store.rosters import (
    change_team_member,
    insert_budget,
    own_budget,
    remove_team_member,
)

__all__ = ["MEMBER_OPERATIONS"]

Handler = Any


class _MemberAdd(msgspec.Struct, kw_only=True):
    team_id: str
    member: Member | list[Member] | None = None
    # Go form: one member by id (or email), role `user`.
    user_id: str | None = None
    user_email: str | None = None
    role: TeamRole = "user"
    max_budget_in_team: float | None = None
    budget_duration: str | None = None
    allowed_models: list[str] | None = None


class _MemberRef(msgspec.Struct, kw_only=True):
    team_id: str
    user_id: str | None = None
    user_email: str | None = None


class _MemberUpdate(_MemberRef, kw_only=True):
    role: TeamRole | None = None
    max_budget_in_team: float | None = None
    tpm_limit: int | None = None
    rpm_limit: int | None = None
    budget_duration: str | None = None
    allowed_models: list[str] | None = None


def _now() -> datetime:
    return datetime.now(UTC)


def _members(body: _MemberAdd) -> list[Member]:
    if isinstance(body.member, Member):
        return [body.member]
    if body.member is not None:
        if not body.member:
            raise ValidationFailed("member is an empty list.", param="$.member")
        return body.member
    if body.user_id is None and body.user_email is None:
        raise ValidationFailed(
            "Pass member ({user_id|user_email, role}) or user_id.", param="$.member"
        )
    return [Member(user_id=body.user_id, user_email=body.user_email, role=body.role)]


def _within_team(team: Row, max_budget_in_team: float | None) -> None:
    """400 when a member budget is above the team's budget."""
    if max_budget_in_team is None:
        return
    amount = money("max_budget_in_team", max_budget_in_team)
    if team["max_budget"] is not None and amount > team["max_budget"]:
        raise BadRequest(
            f"max_budget_in_team={max_budget_in_team} is above the team's "
            f"max_budget={nano_to_usd(team['max_budget'])} (team {team['team_id']})",
            param="max_budget_in_team",
        )


# ---------------------------------------------------------------------------- add


def make_team_member_add(plan: RoutePlan, runtime: Runtime) -> Handler:
    async def work(store: Store, request: Any, identity: Identity, data: Any, who: Actor) -> Any:
        body = convert(data, _MemberAdd)
        members = _members(body)
        team = await store.teams.require(body.team_id)
        check_manage_team(identity, team, "add members")
        _within_team(team, body.max_budget_in_team)
        member_fields = BudgetFields(
            max_budget=body.max_budget_in_team,
            budget_duration=body.budget_duration,
            allowed_models=body.allowed_models,
        )
        budget = budget_values(member_fields, _now())
        added: list[Row] = []
        async with store.transaction():
            for i, member in enumerate(members):
                user = await resolve_user(
                    store,
                    member.user_id,
                    member.user_email,
                    new_role="internal_user",
                    actor=who,
                    param="$.member" if isinstance(body.member, Member) else f"$.member[{i}]",
                )
                budget_id = team["team_member_budget_id"]
                if budget:
                    budget_id = await insert_budget(store, budget, actor=who)
                added.append(
                    await join_team(
                        store,
                        user,
                        team["team_id"],
                        role=member.role,
                        actor=who,
                        budget_id=budget_id,
                    )
                )
        budgets = {
            b["budget_id"]: b for b in await store.budgets.get_many(m["budget_id"] for m in added)
        }
        return {
            **await shown_team(store, await store.teams.require(team["team_id"])),
            "updated_users": await users_shown(store, [m["user_id"] for m in added]),
            "updated_team_memberships": [
                team_membership_out(m, budgets.get(m["budget_id"])) for m in added
            ],
        }

    return endpoint(runtime, work)


# ---------------------------------------------------------------------------- delete


async def _drop_own_budget(store: Store, team: Row, budget_id: str | None, who: Actor) -> None:
    """A removed member's own budget row goes too (not the team's shared one)."""
    if budget_id is None or budget_id == team["team_member_budget_id"]:
        return
    if not await budget_users(store, budget_id):
        await store.budgets.delete([budget_id], actor=who)


def make_team_member_delete(plan: RoutePlan, runtime: Runtime) -> Handler:
    async def work(store: Store, request: Any, identity: Identity, data: Any, who: Actor) -> Any:
        ref = convert(data, _MemberRef)
        team = await store.teams.require(ref.team_id)
        check_manage_team(identity, team, "remove members")
        user_id = await member_user_id(store, ref.user_id, ref.user_email)
        async with store.transaction():
            removed = await remove_team_member(store, team["team_id"], user_id, actor=who)
            await _drop_own_budget(store, team, removed["budget_id"], who)
        return await shown_team(store, await store.teams.require(team["team_id"]))

    return endpoint(runtime, work)


# ---------------------------------------------------------------------------- update


def make_team_member_update(plan: RoutePlan, runtime: Runtime) -> Handler:
    async def work(store: Store, request: Any, identity: Identity, data: Any, who: Actor) -> Any:
        body = convert(data, _MemberUpdate)
        team = await store.teams.require(body.team_id)
        check_manage_team(identity, team, "update members")
        user_id = await member_user_id(store, body.user_id, body.user_email)
        _within_team(team, body.max_budget_in_team)
        fields = BudgetFields(
            max_budget=body.max_budget_in_team,
            tpm_limit=body.tpm_limit,
            rpm_limit=body.rpm_limit,
            budget_duration=body.budget_duration,
            allowed_models=body.allowed_models,
        )
        budget = budget_values(fields, _now())
        async with store.transaction():
            membership = await store.team_members.require_member(user_id, team["team_id"])
            changes: dict[str, Any] = {}
            if body.role is not None:
                changes["role"] = body.role
            if budget:
                changes["budget_id"] = await own_budget(
                    store, membership["budget_id"], budget, owner="team memberships", actor=who
                )
            updated = await change_team_member(store, team["team_id"], user_id, changes, actor=who)
        row = await store.budgets.get(updated["budget_id"]) if updated["budget_id"] else None
        user = await store.users.require(user_id)
        return {
            "team_id": team["team_id"],
            "user_id": user_id,
            "user_email": user["user_email"],
            "role": updated["role"],
            "max_budget_in_team": usd(row["max_budget"]) if row else None,
            "tpm_limit": row["tpm_limit"] if row else None,
            "rpm_limit": row["rpm_limit"] if row else None,
            "budget_duration": row["budget_duration"] if row else None,
            "allowed_models": row["allowed_models"] if row else [],
        }

    return endpoint(runtime, work)


MEMBER_OPERATIONS: Mapping[str, Any] = {
    "team_member_add": make_team_member_add,
    "team_member_delete": make_team_member_delete,
    "team_member_update": make_team_member_update,
}
