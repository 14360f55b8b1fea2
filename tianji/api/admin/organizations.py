"""The /organization/* endpoints (routes.md §5.4) with LiteLLM's shapes: new (+ its
budget row), update (PATCH, and POST for Go clients), delete (LiteLLM's body, and
DELETE /organization/delete/{organization_id}), info (GET, and LiteLLM's
deprecated POST form), list; and ORGANIZATION_OPERATIONS.

Non-admins see the organizations they belong to. An org admin may update their
organization's alias, models and metadata, not its budget.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import msgspec
from litestar import Request, Response

from tianji.api.admin.budget_rows import BudgetFields, budget_values, given_budget_fields
from tianji.api.admin.common import (
    BadRequest,
    ValidationFailed,
    convert,
    endpoint,
    json_response,
    read_body,
    require_store,
)
from tianji.api.admin.group_access import check_manage_org, check_read_org, denied
from tianji.api.admin.org_members import ORG_MEMBER_OPERATIONS
from tianji.api.admin.org_rows import OrgNew, OrgUpdate, org_out, orgs_out
from tianji.api.admin.team_rows import models_outside
from tianji.api.runtime import Runtime
from tianji.compile.model import RoutePlan
from tianji.guards.auth import Identity
from tianji.store import Actor, Store
from tianji.store.rosters import delete_organizations, insert_budget, own_budget

__all__ = ["ORGANIZATION_OPERATIONS"]

Handler = Any
_BUDGET_FIELDS = tuple(BudgetFields.__struct_fields__)


class _OrgIds(msgspec.Struct, kw_only=True):
    organization_ids: list[str]


class _OrgsRef(msgspec.Struct, kw_only=True):
    organizations: list[str]


def _now() -> datetime:
    return datetime.now(UTC)


def _budget_part(fields: BudgetFields) -> BudgetFields:
    return BudgetFields(**{name: getattr(fields, name) for name in _BUDGET_FIELDS})


# ---------------------------------------------------------------------------- new


def make_organization_new(plan: RoutePlan, runtime: Runtime) -> Handler:
    async def work(store: Store, request: Any, identity: Identity, data: Any, who: Actor) -> Any:
        fields = convert(data, OrgNew)
        given = given_budget_fields(fields)
        if fields.budget_id is not None and given:
            raise ValidationFailed(
                f"Pass budget_id or budget fields ({given}), not both.", param="$.budget_id"
            )
        budget = budget_values(_budget_part(fields), _now())
        org_id = fields.organization_id or str(uuid.uuid4())
        async with store.transaction():
            if fields.budget_id is not None:
                budget_id = str((await store.budgets.require(fields.budget_id))["budget_id"])
            else:
                budget_id = await insert_budget(store, budget, actor=who)
            row = {
                "organization_id": org_id,
                "organization_alias": fields.organization_alias,
                "budget_id": budget_id,
                "models": fields.models or [],
                "metadata": fields.metadata or {},
                "created_by": who.changed_by,
                "updated_by": who.changed_by,
            }
            created = await store.organizations.insert(row, actor=who)
        return org_out(created, await store.budgets.get(budget_id))

    return endpoint(runtime, work)


# ---------------------------------------------------------------------------- update


async def _check_models(store: Store, org_id: str, models: list[str]) -> None:
    """400 when a new model list drops models the organization's teams still use."""
    for team in await store.teams.find(organization_id=org_id):
        outside = models_outside(team["models"] or [], models)
        if outside:
            raise BadRequest(
                f"Team {team['team_id']} of organization {org_id} still uses models "
                f"{outside}: remove them from the team first.",
                param="models",
            )


def make_organization_update(plan: RoutePlan, runtime: Runtime) -> Handler:
    async def work(store: Store, request: Any, identity: Identity, data: Any, who: Actor) -> Any:
        fields = convert(data, OrgUpdate)
        org = await store.organizations.require(fields.organization_id)
        check_manage_org(identity, org["organization_id"], "update")
        given = given_budget_fields(fields)
        if (given or fields.budget_id is not None) and not identity.is_admin:
            raise denied(identity, "change an organization's budget (proxy_admin only)")
        changes: dict[str, Any] = {
            name: getattr(fields, name)
            for name in ("organization_alias", "models", "metadata")
            if getattr(fields, name) is not None
        }
        if fields.models is not None:
            await _check_models(store, org["organization_id"], fields.models)
        budget = budget_values(_budget_part(fields), _now())
        async with store.transaction():
            if fields.budget_id is not None:
                await store.budgets.require(fields.budget_id)
                changes["budget_id"] = fields.budget_id
            if budget:
                changes["budget_id"] = await own_budget(
                    store,
                    changes.get("budget_id", org["budget_id"]),
                    budget,
                    owner="organizations",
                    actor=who,
                )
            updated = await store.organizations.update(org["organization_id"], changes, actor=who)
        return org_out(updated, await store.budgets.get(updated["budget_id"]))

    return endpoint(runtime, work)


# ---------------------------------------------------------------------------- delete


def make_organization_delete(plan: RoutePlan, runtime: Runtime) -> Handler:
    async def work(
        store: Store, request: Request[Any, Any, Any], identity: Identity, data: Any, who: Actor
    ) -> Any:
        path_id = request.path_params.get("organization_id")
        ids = [path_id] if path_id else convert(data, _OrgIds).organization_ids
        if not ids:
            raise ValidationFailed("organization_ids is empty.", param="$.organization_ids")
        rows = await store.organizations.require_all(ids)
        budgets = {
            b["budget_id"]: b for b in await store.budgets.get_many(r["budget_id"] for r in rows)
        }
        deleted = await delete_organizations(store, ids, actor=who)
        return [org_out(row, budgets.get(row["budget_id"])) for row in deleted]

    return endpoint(runtime, work, optional=True)


# ---------------------------------------------------------------------------- read


def make_organization_info(plan: RoutePlan, runtime: Runtime) -> Handler:
    """GET ?organization_id= -> one OrgRow; POST {"organizations": [...]} -> a list."""

    async def handler(request: Request[Any, Any, Any], identity: Identity) -> Response[bytes]:
        store = require_store(runtime)
        if request.method == "POST":
            ids = convert(await read_body(request), _OrgsRef).organizations
            if not ids:
                raise ValidationFailed("organizations is empty.", param="$.organizations")
        else:
            org_id = request.query_params.get("organization_id")
            if not org_id:
                raise ValidationFailed("organization_id is required.", param="organization_id")
            ids = [org_id]
        for org_id in ids:
            check_read_org(identity, org_id)
        shown = await orgs_out(store, await store.organizations.require_all(ids))
        return json_response(shown if request.method == "POST" else shown[0])

    return handler


def make_organization_list(plan: RoutePlan, runtime: Runtime) -> Handler:
    async def handler(request: Request[Any, Any, Any], identity: Identity) -> Response[bytes]:
        store = require_store(runtime)
        if identity.reads_everything:
            rows = await store.organizations.find()
        else:
            mine = sorted(identity.org_roles)
            rows = await store.organizations.find(organization_id=mine) if mine else []
        rows.sort(key=lambda r: (r["created_at"], r["organization_id"]))
        return json_response(await orgs_out(store, rows))

    return handler


ORGANIZATION_OPERATIONS: Mapping[str, Any] = {
    "organization_new": make_organization_new,
    "organization_update": make_organization_update,
    "organization_delete": make_organization_delete,
    "organization_info": make_organization_info,
    "organization_list": make_organization_list,
    **ORG_MEMBER_OPERATIONS,
}
