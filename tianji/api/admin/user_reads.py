"""Reading users: GET /user/info, GET /v2/user/info, GET /user/list
(management-api.md §2)."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from litestar import Request

from tianji.api.admin.common import ValidationFailed, endpoint, query_int
from tianji.api.admin.daily_activity import csv_query
from tianji.api.admin.key_rows import key_row
from tianji.api.admin.user_access import admin_orgs, can_read_user, check_user_read, denied
from tianji.api.admin.user_rows import teams_out, users_out
from tianji.api.runtime import Runtime
from tianji.compile.model import RoutePlan
from tianji.errors import NotFound
from tianji.guards.auth import Identity
from tianji.store import Actor, Store
from tianji.store.people import UserSearch, key_counts, search_users

__all__ = ["make_user_info", "make_user_list"]

Handler = Any
_SORTABLE = ("user_id", "user_email", "created_at", "spend", "user_alias", "user_role")
# GET /v2/user/info: the row without memberships, limits or spend per model.
_V2_FIELDS = (
    "user_id",
    "user_email",
    "user_alias",
    "user_role",
    "spend",
    "max_budget",
    "models",
    "budget_duration",
    "budget_reset_at",
    "metadata",
    "created_at",
    "updated_at",
    "sso_user_id",
    "teams",
)


def _asked_user(request: Request[Any, Any, Any], identity: Identity) -> str:
    user_id = request.query_params.get("user_id") or identity.user_id
    if not user_id:
        raise ValidationFailed(
            "Pass ?user_id=: this key (or the master key) belongs to no user.", param="user_id"
        )
    return user_id


async def _keys_of(store: Store, user_id: str) -> list[dict[str, Any]]:
    rows = await store.keys.find(user_id=user_id)
    rows.sort(key=lambda row: row["created_at"], reverse=True)
    budgets = {
        b["budget_id"]: b
        for b in await store.budgets.get_many(r["budget_id"] for r in rows if r["budget_id"])
    }
    return [key_row(row, budgets.get(row["budget_id"])) for row in rows]


def make_user_info(plan: RoutePlan, runtime: Runtime) -> Handler:
    """GET /user/info, and GET /v2/user/info (the row only; 404 also when forbidden,
    so it does not tell who exists)."""
    v2 = plan.operation == "user_info_v2"

    async def work(
        store: Store, request: Request[Any, Any, Any], identity: Identity, data: Any, who: Actor
    ) -> Any:
        user_id = _asked_user(request, identity)
        if v2 and not await can_read_user(identity, store, user_id):
            raise NotFound(f"user not found: {user_id}", param="user_id")
        user = await store.users.require(user_id)
        if not v2:
            await check_user_read(identity, store, user_id)
        (shown,) = await users_out(store, [user])
        if v2:
            return {name: shown[name] for name in _V2_FIELDS}
        teams = await store.teams.get_many(user["teams"] or [])
        return {
            "user_id": user_id,
            "user_info": shown,
            "keys": await _keys_of(store, user_id),
            "teams": await teams_out(store, teams),
        }

    return endpoint(runtime, work, body=False)


def _choice(
    request: Request[Any, Any, Any], name: str, default: str, allowed: tuple[str, ...]
) -> str:
    value = request.query_params.get(name) or default
    if value not in allowed:
        raise ValidationFailed(f"{name} must be one of {list(allowed)}, got {value!r}", param=name)
    return value


async def _member_filter(
    request: Request[Any, Any, Any], identity: Identity, store: Store
) -> set[str] | None:
    """User ids allowed by the team / organization filters (an org admin is always
    limited to their organizations); None = no such filter."""
    allowed: set[str] | None = None
    team = request.query_params.get("team")
    if team:
        allowed = {row["user_id"] for row in await store.team_members.of_group(team)}
    orgs = csv_query(request, "organization_ids")
    if not identity.reads_everything:
        mine = admin_orgs(identity)
        if not mine:
            raise denied(identity, "list users")
        orgs = [o for o in orgs if o in mine] if orgs is not None else mine
    if orgs is not None:
        found = await store.org_members.find(organization_id=orgs) if orgs else []
        members = {row["user_id"] for row in found}
        allowed = members if allowed is None else allowed & members
    return allowed


def make_user_list(plan: RoutePlan, runtime: Runtime) -> Handler:
    async def work(
        store: Store, request: Request[Any, Any, Any], identity: Identity, data: Any, who: Actor
    ) -> Any:
        page = query_int(request, "page", 1, low=1, high=1_000_000)
        size = query_int(request, "page_size", 25, low=1, high=100)
        sort_by = _choice(request, "sort_by", "created_at", _SORTABLE)
        order = _choice(request, "sort_order", "desc", ("asc", "desc"))
        user_ids = csv_query(request, "user_ids")
        members = await _member_filter(request, identity, store)
        if members is not None:
            user_ids = sorted(members if user_ids is None else members & set(user_ids))
        search = UserSearch(
            role=request.query_params.get("role") or None,
            user_ids=user_ids,
            email_contains=request.query_params.get("user_email") or None,
            sso_user_ids=csv_query(request, "sso_user_ids"),
        )
        found = await search_users(
            store, search, page=page, size=size, order_by=sort_by, descending=order == "desc"
        )
        counts = await key_counts(store, (row["user_id"] for row in found.rows))
        users: list[Mapping[str, Any]] = [
            {**shown, "key_count": counts.get(shown["user_id"], 0)}
            for shown in await users_out(store, found.rows)
        ]
        return {
            "users": users,
            "total": found.total,
            "page": page,
            "page_size": size,
            "total_pages": math.ceil(found.total / size),
        }

    return endpoint(runtime, work, body=False)
