"""Organization membership endpoints (management-api.md §4): member_add,
PATCH member_update, DELETE member_delete (JSON body).

A membership is the pair (user_id, organization_id), unique in the database on
both engines: of concurrent adds of one pair exactly one succeeds and the others
get 409. Member add takes LiteLLM's `member` (one entry or a list) and the Go form
(`{"organization_id", "user_id", "user_role"?, "budget_id"?}`); unknown users
are created, and `max_budget_in_organization` gives each new membership its own
budget row. One transaction per request: a duplicate adds nobody.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import msgspec

from tianji.api.admin.budget_rows import BudgetFields, budget_values
from tianji.api.admin.common import ValidationFailed, convert, endpoint
from tianji.api.admin.group_access import check_manage_org
from tianji.api.admin.member_users import member_user_id, resolve_user, users_shown
from tianji.api.admin.org_rows import OrgMember, OrgRole, membership_out
from tianji.api.runtime import Runtime
from tianji.compile.model import RoutePlan
from tianji.guards.auth import Identity
from tianji.store import Actor, Row, Store
from tianji.store.budget_refs import budget_users
from tianji.store.rosters import insert_budget, own_budget

__all__ = ["ORG_MEMBER_OPERATIONS"]

Handler = Any


class _MemberAdd(msgspec.Struct, kw_only=True):
    organization_id: str
    member: OrgMember | list[OrgMember] | None = None
    # Go form: one member.
    user_id: str | None = None
    user_email: str | None = None
    user_role: OrgRole = "internal_user"
    budget_id: str | None = None
    max_budget_in_organization: float | None = None


class _MemberRef(msgspec.Struct, kw_only=True):
    organization_id: str
    user_id: str | None = None
    user_email: str | None = None


class _MemberUpdate(_MemberRef, kw_only=True):
    role: OrgRole | None = None
    user_role: OrgRole | None = None  # Go form
    budget_id: str | None = None  # Go form
    max_budget_in_organization: float | None = None


def _members(body: _MemberAdd) -> list[OrgMember]:
    if isinstance(body.member, OrgMember):
        return [body.member]
    if body.member is not None:
        if not body.member:
            raise ValidationFailed("member is an empty list.", param="$.member")
        return body.member
    if body.user_id is None and body.user_email is None:
        raise ValidationFailed(
            "Pass member ({user_id|user_email, role}) or user_id.", param="$.member"
        )
    return [OrgMember(user_id=body.user_id, user_email=body.user_email, role=body.user_role)]


def _member_budget(max_budget: float | None) -> dict[str, Any]:
    now = datetime.now(UTC)
    return budget_values(BudgetFields(max_budget=max_budget), now) if max_budget is not None else {}


async def _budgets_of(store: Store, rows: list[Row]) -> dict[str, Row]:
    ids = [r["budget_id"] for r in rows if r["budget_id"]]
    return {b["budget_id"]: b for b in await store.budgets.get_many(ids)}


def make_org_member_add(plan: RoutePlan, runtime: Runtime) -> Handler:
    async def work(store: Store, request: Any, identity: Identity, data: Any, who: Actor) -> Any:
        body = convert(data, _MemberAdd)
        members = _members(body)
        org = await store.organizations.require(body.organization_id)
        org_id = org["organization_id"]
        check_manage_org(identity, org_id, "add members")
        member_budget = _member_budget(body.max_budget_in_organization)
        added: list[Row] = []
        async with store.transaction():
            for i, member in enumerate(members):
                user = await resolve_user(
                    store,
                    member.user_id,
                    member.user_email,
                    # A new user gets the matching proxy role (viewers stay viewers).
                    new_role="internal_user_viewer"
                    if member.role == "internal_user_viewer"
                    else "internal_user",
                    actor=who,
                    param="$.member" if isinstance(body.member, OrgMember) else f"$.member[{i}]",
                )
                budget_id = body.budget_id
                if member_budget:
                    budget_id = await insert_budget(store, member_budget, actor=who)
                added.append(
                    await store.org_members.add(
                        user["user_id"], org_id, role=member.role, actor=who, budget_id=budget_id
                    )
                )
        budgets = await _budgets_of(store, added)
        return {
            "organization_id": org_id,
            "updated_users": await users_shown(store, [m["user_id"] for m in added]),
            "updated_organization_memberships": [
                membership_out(m, budgets.get(m["budget_id"])) for m in added
            ],
        }

    return endpoint(runtime, work)


def make_org_member_update(plan: RoutePlan, runtime: Runtime) -> Handler:
    async def work(store: Store, request: Any, identity: Identity, data: Any, who: Actor) -> Any:
        body = convert(data, _MemberUpdate)
        org = await store.organizations.require(body.organization_id)
        org_id = org["organization_id"]
        check_manage_org(identity, org_id, "update members")
        user_id = await member_user_id(store, body.user_id, body.user_email)
        budget = _member_budget(body.max_budget_in_organization)
        async with store.transaction():
            membership = await store.org_members.require_member(user_id, org_id)
            changes: dict[str, Any] = {}
            role = body.role or body.user_role
            if role is not None:
                changes["user_role"] = role
            if body.budget_id is not None:
                await store.budgets.require(body.budget_id)
                changes["budget_id"] = body.budget_id
            if budget:
                changes["budget_id"] = await own_budget(
                    store,
                    changes.get("budget_id", membership["budget_id"]),
                    budget,
                    owner="organization memberships",
                    actor=who,
                )
            updated = await store.org_members.set(user_id, org_id, changes, actor=who)
        budgets = await _budgets_of(store, [updated])
        return membership_out(updated, budgets.get(updated["budget_id"]))

    return endpoint(runtime, work)


def make_org_member_delete(plan: RoutePlan, runtime: Runtime) -> Handler:
    async def work(store: Store, request: Any, identity: Identity, data: Any, who: Actor) -> Any:
        ref = convert(data, _MemberRef)
        org = await store.organizations.require(ref.organization_id)
        org_id = org["organization_id"]
        check_manage_org(identity, org_id, "remove members")
        user_id = await member_user_id(store, ref.user_id, ref.user_email)
        budgets: dict[str, Row] = {}
        async with store.transaction():
            removed = await store.org_members.remove(user_id, org_id, actor=who)
            budget_id = removed["budget_id"]
            if budget_id is not None:
                budgets = await _budgets_of(store, [removed])
                if not await budget_users(store, budget_id):
                    await store.budgets.delete([budget_id], actor=who)
        return {**membership_out(removed, budgets.get(budget_id)), "status": "deleted"}

    return endpoint(runtime, work)


ORG_MEMBER_OPERATIONS: Mapping[str, Any] = {
    "organization_member_add": make_org_member_add,
    "organization_member_update": make_org_member_update,
    "organization_member_delete": make_org_member_delete,
}
