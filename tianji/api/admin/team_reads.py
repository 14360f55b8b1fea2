"""Reading teams: /team/info (and /team/info/{team_id}), /team/list, /v2/team/list,
/team/available, /team/daily/activity (management-api.md §2, §3).

Non-admins see the teams they belong to, their key's team, and the teams of the
organizations they administer; proxy admins and admin viewers see every team.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from litestar import Request, Response

from tianji.api.admin.common import (
    ValidationFailed,
    endpoint,
    json_response,
    query_int,
    require_store,
)
from tianji.api.admin.daily_activity import activity, csv_query
from tianji.api.admin.group_access import check_read_team, denied, readable_team_ids
from tianji.api.admin.key_rows import key_row
from tianji.api.admin.team_rows import team_membership_out, team_out
from tianji.api.runtime import Runtime
from tianji.compile.model import RoutePlan
from tianji.guards.auth import Identity
from tianji.store import Actor, Row, Store
from tianji.store.team_queries import TEAM_SORTS, search_teams

__all__ = [
    "make_team_available",
    "make_team_daily_activity",
    "make_team_info",
    "make_team_list",
    "make_team_list_v2",
    "shown_team",
    "shown_teams",
    "team_id_of",
]

Handler = Any


def team_id_of(request: Request[Any, Any, Any], data: Mapping[str, Any] | None = None) -> str:
    """The team id from the path (`/team/{team_id}/...`), the body or the query; 422 if none."""
    team_id = request.path_params.get("team_id") or (data or {}).get("team_id")
    team_id = team_id or request.query_params.get("team_id")
    if not team_id or not isinstance(team_id, str):
        raise ValidationFailed("team_id is required (a string).", param="team_id")
    return team_id


async def _budgets(store: Store, ids: Iterable[str | None]) -> dict[str, Row]:
    return {b["budget_id"]: b for b in await store.budgets.get_many(i for i in ids if i)}


async def shown_teams(store: Store, rows: Sequence[Row]) -> list[dict[str, Any]]:
    budgets = await _budgets(store, (r["team_member_budget_id"] for r in rows))
    return [team_out(r, budgets.get(r["team_member_budget_id"])) for r in rows]


async def shown_team(store: Store, row: Row) -> dict[str, Any]:
    (shown,) = await shown_teams(store, [row])
    return shown


async def _keys_and_memberships(
    store: Store, team_ids: list[str]
) -> tuple[dict[str, list[Any]], dict[str, list[Any]]]:
    """Per team: its keys (KeyRows) and its memberships (with budget rows)."""
    keys = await store.keys.find(team_id=team_ids) if team_ids else []
    members = await store.team_members.find(team_id=team_ids) if team_ids else []
    budgets = await _budgets(
        store, [k["budget_id"] for k in keys] + [m["budget_id"] for m in members]
    )
    by_team_keys: dict[str, list[Any]] = {t: [] for t in team_ids}
    for key in keys:
        by_team_keys[key["team_id"]].append(key_row(key, budgets.get(key["budget_id"])))
    by_team_members: dict[str, list[Any]] = {t: [] for t in team_ids}
    for member in members:
        shown = team_membership_out(member, budgets.get(member["budget_id"]))
        by_team_members[member["team_id"]].append(shown)
    return by_team_keys, by_team_members


def make_team_info(plan: RoutePlan, runtime: Runtime) -> Handler:
    async def handler(request: Request[Any, Any, Any], identity: Identity) -> Response[bytes]:
        store = require_store(runtime)
        team = await store.teams.require(team_id_of(request))
        check_read_team(identity, team)
        keys, members = await _keys_and_memberships(store, [team["team_id"]])
        return json_response(
            {
                "team_id": team["team_id"],
                "team_info": await shown_team(store, team),
                "keys": keys[team["team_id"]],
                "team_memberships": members[team["team_id"]],
            }
        )

    return handler


async def _listed_ids(
    identity: Identity, store: Store, request: Request[Any, Any, Any]
) -> set[str] | None:
    """Teams the caller may see, narrowed by ?user_id= (None = no restriction)."""
    visible = await readable_team_ids(identity, store)
    user_id = request.query_params.get("user_id")
    if user_id:
        mine = {m["team_id"] for m in await store.team_members.of_user(user_id)}
        visible = mine if visible is None else visible & mine
    return visible


def make_team_list(plan: RoutePlan, runtime: Runtime) -> Handler:
    """A bare JSON array (LiteLLM), each team with its keys and memberships."""

    async def handler(request: Request[Any, Any, Any], identity: Identity) -> Response[bytes]:
        store = require_store(runtime)
        visible = await _listed_ids(identity, store, request)
        filters: dict[str, Any] = {}
        if request.query_params.get("organization_id"):
            filters["organization_id"] = request.query_params["organization_id"]
        if visible is not None:
            filters["team_id"] = sorted(visible)
        rows = [] if visible == set() else await store.teams.find(**filters)
        rows.sort(key=lambda r: (r["created_at"], r["team_id"]))
        ids = [r["team_id"] for r in rows]
        keys, members = await _keys_and_memberships(store, ids)
        shown = await shown_teams(store, rows)
        return json_response(
            [
                {
                    **team,
                    "keys": keys[team["team_id"]],
                    "team_memberships": members[team["team_id"]],
                }
                for team in shown
            ]
        )

    return handler


def _choice(
    request: Request[Any, Any, Any], name: str, default: str, allowed: Sequence[str]
) -> str:
    value = request.query_params.get(name) or default
    if value not in allowed:
        raise ValidationFailed(f"{name} must be one of {list(allowed)}, got {value!r}", param=name)
    return value


def make_team_list_v2(plan: RoutePlan, runtime: Runtime) -> Handler:
    async def handler(request: Request[Any, Any, Any], identity: Identity) -> Response[bytes]:
        store = require_store(runtime)
        page = query_int(request, "page", 1, low=1, high=1_000_000)
        size = query_int(request, "page_size", 10, low=1, high=100)
        sort_by = _choice(request, "sort_by", "created_at", TEAM_SORTS)
        order = _choice(request, "sort_order", "desc", ("asc", "desc"))
        found = await search_teams(
            store,
            alias_contains=request.query_params.get("team_alias"),
            organization_id=request.query_params.get("organization_id") or None,
            team_ids=await _listed_ids(identity, store, request),
            page=page,
            size=size,
            order_by=sort_by,
            descending=order == "desc",
        )
        return json_response(
            {
                "teams": await shown_teams(store, found.rows),
                "total": found.total,
                "page": page,
                "page_size": size,
                "total_pages": math.ceil(found.total / size),
            }
        )

    return handler


def make_team_available(plan: RoutePlan, runtime: Runtime) -> Handler:
    """Teams of `general_settings.available_teams` the caller has not joined yet."""
    offered = runtime.gateway.settings.available_teams

    async def handler(request: Request[Any, Any, Any], identity: Identity) -> Response[bytes]:
        store = require_store(runtime)
        joinable = [t for t in offered if t not in identity.team_roles]
        rows = await store.teams.get_many(joinable)
        rows.sort(key=lambda r: joinable.index(r["team_id"]))
        return json_response(await shown_teams(store, rows))

    return handler


def make_team_daily_activity(plan: RoutePlan, runtime: Runtime) -> Handler:
    """`?team_ids=a,b`; none = every team the caller may read."""

    async def work(
        store: Store, request: Request[Any, Any, Any], identity: Identity, data: Any, who: Actor
    ) -> Any:
        asked = csv_query(request, "team_ids")
        visible = await readable_team_ids(identity, store)
        if asked is None:
            ids = None if visible is None else sorted(visible)
        else:
            hidden = [t for t in asked if visible is not None and t not in visible]
            if hidden:
                raise denied(identity, f"read the activity of teams {hidden}")
            ids = asked
        return await activity(store, request, entity_type="team", entity_ids=ids)

    return endpoint(runtime, work, body=False)
