"""The /team/* write endpoints (routes.md §5.3) with LiteLLM's request and response
shapes: new, update (+ PATCH /team/{team_id}), delete, block, unblock, model
add/delete; and TEAM_OPERATIONS, every team operation by name.

A team's limits and models stay within its organization's (400). Every write is
one transaction through the store, audited and announced, so a blocked team's
keys are refused on the next call on every instance.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import msgspec
from litestar import Request

from tianji.api.admin.budget_rows import BudgetFields, budget_values
from tianji.api.admin.common import BadRequest, ValidationFailed, convert, endpoint
from tianji.api.admin.group_access import check_admin_team, denied
from tianji.api.admin.member_users import resolve_user
from tianji.api.admin.team_callbacks import CALLBACK_OPERATIONS, sealed_logging
from tianji.api.admin.team_members import MEMBER_OPERATIONS
from tianji.api.admin.team_reads import (
    make_team_available,
    make_team_daily_activity,
    make_team_info,
    make_team_list,
    make_team_list_v2,
    shown_team,
    team_id_of,
)
from tianji.api.admin.team_rows import (
    TEAM_ADMIN_FIELDS,
    Member,
    TeamNew,
    TeamUpdate,
    check_within_org,
    member_budget_fields,
    models_outside,
    team_values,
)
from tianji.api.runtime import Runtime
from tianji.compile.model import RoutePlan
from tianji.guards.auth import Identity
from tianji.store import Actor, Row, Store
from tianji.store.people import join_team
from tianji.store.rosters import delete_teams, insert_budget
from tianji.store.sealed import sealing_key

__all__ = ["TEAM_OPERATIONS"]

Handler = Any

# unset_fields of /team/update: what may be cleared, and the value that clears it.
_UNSETTABLE: Mapping[str, Any] = {
    "team_alias": None,
    "organization_id": None,
    "max_budget": None,
    "soft_budget": None,
    "budget_duration": None,
    "tpm_limit": None,
    "rpm_limit": None,
    "max_parallel_requests": None,
    "model_max_budget": {},
    "models": [],
}


class _TeamUpdateBody(TeamUpdate, kw_only=True):
    unset_fields: list[str] | None = None


class _TeamIds(msgspec.Struct, kw_only=True):
    team_ids: list[str]


class _TeamModels(msgspec.Struct, kw_only=True):
    team_id: str
    models: list[str]


def _now() -> datetime:
    return datetime.now(UTC)


async def _organization(store: Store, org_id: str | None) -> tuple[Row | None, Row | None]:
    """The organization (404 if absent) and its budget row."""
    if org_id is None:
        return None, None
    org = await store.organizations.require(org_id)
    return org, await store.budgets.get(org["budget_id"])


# ---------------------------------------------------------------------------- new


def _check_create(identity: Identity, org_id: str | None) -> None:
    if identity.is_admin or identity.administers_org(org_id):
        return
    raise denied(identity, "create this team: proxy_admin, or org_admin of its organization_id")


def _seal_logging(
    values: dict[str, Any],
    sent: Mapping[str, Any] | None,
    master_key: str | None,
    current: list[dict[str, Any]],
) -> None:
    """Callbacks sent in `metadata.logging` are stored sealed, as the callback routes do."""
    if sent is not None and "logging" in sent:
        key = sealing_key(master_key)
        values["metadata"]["logging"] = sealed_logging(sent["logging"], key, current)


def make_team_new(plan: RoutePlan, runtime: Runtime) -> Handler:
    master_key = runtime.gateway.settings.master_key

    async def work(store: Store, request: Any, identity: Identity, data: Any, who: Actor) -> Any:
        fields = convert(data, TeamNew)
        _check_create(identity, fields.organization_id)
        now = _now()
        values = team_values(fields, now)
        _seal_logging(values, fields.metadata, master_key, [])
        check_within_org(values, *await _organization(store, fields.organization_id))
        members = list(fields.members_with_roles or [])
        # A non-admin who creates a team administers it (LiteLLM).
        creator = None if identity.is_admin else identity.user_id
        if creator is not None and all(m.user_id != creator for m in members):
            members.append(Member(user_id=creator, role="admin"))
        member_budget = member_budget_fields(fields)
        team_id = fields.team_id or str(uuid.uuid4())
        async with store.transaction():
            if member_budget is not None:
                values["team_member_budget_id"] = await insert_budget(
                    store, budget_values(member_budget, now), actor=who
                )
            row = {**values, "team_id": team_id, "created_by": who.changed_by}
            await store.teams.insert({**row, "updated_by": who.changed_by}, actor=who)
            for i, member in enumerate(members):
                user = await resolve_user(
                    store,
                    member.user_id,
                    member.user_email,
                    new_role="internal_user",
                    actor=who,
                    param=f"$.members_with_roles[{i}]",
                )
                await join_team(
                    store,
                    user,
                    team_id,
                    role=member.role,
                    actor=who,
                    budget_id=values.get("team_member_budget_id"),
                )
        return await shown_team(store, await store.teams.require(team_id))

    return endpoint(runtime, work)


# ---------------------------------------------------------------------------- update


def _check_update(identity: Identity, team: Row, data: Mapping[str, Any]) -> None:
    if identity.is_admin or identity.administers_org(team["organization_id"]):
        return
    if identity.administers_team(team["team_id"]):
        known = _TeamUpdateBody.__struct_fields__
        beyond = sorted(
            k
            for k, v in data.items()
            if v is not None and k in known and k not in TEAM_ADMIN_FIELDS
        )
        if not beyond:
            return
        raise denied(identity, f"change {beyond} as a team admin (only team_alias, metadata)")
    raise denied(identity, f"update team {team['team_id']}")


def _unset(values: dict[str, Any], names: list[str]) -> None:
    for name in names:
        if name not in _UNSETTABLE:
            raise ValidationFailed(
                f"unset_fields: {name!r} cannot be unset (one of {sorted(_UNSETTABLE)})",
                param="$.unset_fields",
            )
        values[name] = _UNSETTABLE[name]
        if name == "budget_duration":
            values["budget_reset_at"] = None


async def _update_member_budget(
    store: Store, team: Row, fields: BudgetFields, now: datetime, who: Actor
) -> dict[str, Any]:
    """Change the team's member-budget row, or create it; returns team column changes."""
    budget_id = team["team_member_budget_id"]
    if budget_id is None:
        return {
            "team_member_budget_id": await insert_budget(
                store, budget_values(fields, now), actor=who
            )
        }
    await store.budgets.update(budget_id, budget_values(fields, now), actor=who)
    return {}


def make_team_update(plan: RoutePlan, runtime: Runtime) -> Handler:
    master_key = runtime.gateway.settings.master_key

    async def work(
        store: Store, request: Request[Any, Any, Any], identity: Identity, data: Any, who: Actor
    ) -> Any:
        data = {**data, "team_id": team_id_of(request, data)}
        fields = convert(data, _TeamUpdateBody)
        team = await store.teams.require(fields.team_id)
        _check_update(identity, team, data)
        now = _now()
        values = team_values(fields, now, metadata=team["metadata"])
        current = (team["metadata"] or {}).get("logging") or []
        _seal_logging(values, fields.metadata, master_key, current)
        _unset(values, fields.unset_fields or [])
        org_id = values.get("organization_id", team["organization_id"])
        checked = values
        if org_id != team["organization_id"]:
            # Into an organization: its admin (or proxy_admin); out of all: proxy_admin.
            if not (identity.is_admin or identity.administers_org(org_id)):
                raise denied(identity, f"move team {team['team_id']} to organization {org_id}")
            checked = {**team, **values}  # moving: the whole team must fit the new organization
        check_within_org(checked, *await _organization(store, org_id))
        member_budget = member_budget_fields(fields)
        async with store.transaction():
            if member_budget is not None:
                values.update(await _update_member_budget(store, team, member_budget, now, who))
            updated = await store.teams.update(team["team_id"], values, actor=who)
        return {"team_id": team["team_id"], "data": await shown_team(store, updated)}

    return endpoint(runtime, work)


# ---------------------------------------------------------------------------- delete, block


def make_team_delete(plan: RoutePlan, runtime: Runtime) -> Handler:
    async def work(store: Store, request: Any, identity: Identity, data: Any, who: Actor) -> Any:
        ids = convert(data, _TeamIds).team_ids
        if not ids:
            raise ValidationFailed("team_ids is empty.", param="$.team_ids")
        for team in await store.teams.require_all(ids):
            check_admin_team(identity, team, "delete")
        deleted = await delete_teams(store, ids, actor=who)
        return {"deleted_teams": [row["team_id"] for row in deleted]}

    return endpoint(runtime, work)


def make_team_block(plan: RoutePlan, runtime: Runtime) -> Handler:
    blocked = plan.operation == "team_block"
    action = "blocked" if blocked else "unblocked"

    async def work(
        store: Store, request: Request[Any, Any, Any], identity: Identity, data: Any, who: Actor
    ) -> Any:
        team = await store.teams.require(team_id_of(request, data))
        check_admin_team(identity, team, "block or unblock")
        # The store announces the change: cached identities of the team's keys drop.
        updated = await store.teams.update(
            team["team_id"], {"blocked": blocked}, actor=who, action=action
        )
        return await shown_team(store, updated)

    return endpoint(runtime, work)


# ---------------------------------------------------------------------------- models


def make_team_models(plan: RoutePlan, runtime: Runtime) -> Handler:
    adding = plan.operation == "team_model_add"

    async def work(store: Store, request: Any, identity: Identity, data: Any, who: Actor) -> Any:
        body = convert(data, _TeamModels)
        team = await store.teams.require(body.team_id)
        check_admin_team(identity, team, "change the models of")
        current = list(team["models"] or [])
        if adding:
            models = current + [m for m in dict.fromkeys(body.models) if m not in current]
            org, _ = await _organization(store, team["organization_id"])
            outside = models_outside(body.models, org["models"] if org else [])
            if outside:
                raise BadRequest(
                    f"models {outside} are not among the models of organization "
                    f"{team['organization_id']}",
                    param="models",
                )
        else:
            models = [m for m in current if m not in set(body.models)]
        updated = await store.teams.update(team["team_id"], {"models": models}, actor=who)
        return await shown_team(store, updated)

    return endpoint(runtime, work)


TEAM_OPERATIONS: Mapping[str, Any] = {
    "team_new": make_team_new,
    "team_update": make_team_update,
    "team_delete": make_team_delete,
    "team_block": make_team_block,
    "team_unblock": make_team_block,
    "team_model_add": make_team_models,
    "team_model_delete": make_team_models,
    "team_info": make_team_info,
    "team_list": make_team_list,
    "team_list_v2": make_team_list_v2,
    "team_available": make_team_available,
    "team_daily_activity": make_team_daily_activity,
    **MEMBER_OPERATIONS,
    **CALLBACK_OPERATIONS,
}
