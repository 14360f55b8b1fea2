"""The /budget/* endpoints (routes.md §5.6, management-api.md §6).

A budget row is a reusable set of limits that keys, organizations, customers,
tags and memberships point at. Writes are proxy_admin's, reads also the admin
viewer's (tianji.guards.rbac). `POST /budget/info` answers both bodies:
LiteLLM's `{"budgets": [...]}` with a list, the Go `{"budget_id"}` with one row.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import msgspec
from litestar import Request

from tianji.api.admin.budget_rows import (
    BUDGET_UNSETTABLE,
    BudgetFields,
    budget_out,
    budget_values,
)
from tianji.api.admin.common import ValidationFailed, convert, endpoint, read_body
from tianji.api.runtime import Runtime
from tianji.compile.model import RoutePlan
from tianji.guards.auth import Identity
from tianji.store import Actor, Conflict, Row, Store
from tianji.store.budget_refs import budget_users, describe_users

__all__ = ["BUDGET_OPERATIONS", "new_budget_id"]

Handler = Any
_MAX_ID = 64  # budgets.budget_id is varchar(64)

# GET /budget/settings: the editable fields, in LiteLLM's order, with their types.
_SETTINGS = (
    ("max_budget", "Float", "Requests fail once this budget (USD) is spent."),
    ("soft_budget", "Float", "Crossing this (USD) alerts but never blocks."),
    ("max_parallel_requests", "Integer", "Concurrent requests allowed under this budget."),
    ("tpm_limit", "Integer", "Tokens per minute allowed under this budget."),
    ("rpm_limit", "Integer", "Requests per minute allowed under this budget."),
    ("budget_duration", "String", "Window after which spend resets (e.g. 30s, 1h, 1d, 30d, 1mo)."),
    ("model_max_budget", "Object", "Per-model budgets: {model: {max_budget, budget_duration}}."),
)


class BudgetNew(BudgetFields, kw_only=True):
    budget_id: str | None = None


class BudgetUpdate(BudgetFields, kw_only=True):
    budget_id: str | None = None
    unset_fields: list[str] | None = None


class BudgetLookup(msgspec.Struct, kw_only=True):
    budgets: list[str] | None = None  # LiteLLM
    budget_id: str | None = None  # Go


class BudgetDelete(msgspec.Struct, kw_only=True):
    id: str | None = None  # LiteLLM
    budget_id: str | None = None  # Go


def _now() -> datetime:
    return datetime.now(UTC)


def new_budget_id() -> str:
    return str(uuid.uuid4())


def _checked_id(budget_id: str) -> str:
    if not budget_id or len(budget_id) > _MAX_ID:
        raise ValidationFailed(f"budget_id must be 1 to {_MAX_ID} characters.", param="$.budget_id")
    return budget_id


async def create_budget(
    store: Store, fields: BudgetFields, who: Actor, *, budget_id: str | None = None
) -> Row:
    """Insert a budget row (also used for customers' own budgets); 409 for a taken id."""
    chosen = _checked_id(budget_id) if budget_id is not None else new_budget_id()
    row = {
        "budget_id": chosen,
        **budget_values(fields, _now()),
        "created_by": who.changed_by,
        "updated_by": who.changed_by,
    }
    try:
        return await store.budgets.insert(row, actor=who)
    except Conflict:
        raise Conflict(f"Budget with id '{chosen}' already exists.", param="budget_id") from None


def make_budget_new(plan: RoutePlan, runtime: Runtime) -> Handler:
    async def work(store: Store, request: Any, identity: Identity, data: Any, who: Actor) -> Any:
        fields = convert(data, BudgetNew)
        return budget_out(await create_budget(store, fields, who, budget_id=fields.budget_id))

    return endpoint(runtime, work, optional=True)


def update_values(fields: BudgetFields, unset: list[str] | None) -> dict[str, Any]:
    values = budget_values(fields, _now())
    for name in unset or ():
        if name not in BUDGET_UNSETTABLE:
            raise ValidationFailed(
                f"unset_fields: {name!r} cannot be unset (one of {sorted(BUDGET_UNSETTABLE)})",
                param="$.unset_fields",
            )
        values[name] = BUDGET_UNSETTABLE[name]
        if name == "budget_duration":
            values["budget_reset_at"] = None
    return values


def make_budget_update(plan: RoutePlan, runtime: Runtime) -> Handler:
    async def work(store: Store, request: Any, identity: Identity, data: Any, who: Actor) -> Any:
        fields = convert(data, BudgetUpdate)
        if not fields.budget_id:
            raise ValidationFailed("budget_id is required.", param="$.budget_id")
        values = update_values(fields, fields.unset_fields)
        return budget_out(await store.budgets.update(fields.budget_id, values, actor=who))

    return endpoint(runtime, work)


def _query_id(request: Request[Any, Any, Any]) -> str:
    budget_id: str | None = request.query_params.get("budget_id")
    if not budget_id:
        raise ValidationFailed("Pass ?budget_id=.", param="budget_id")
    return budget_id


def make_budget_info(plan: RoutePlan, runtime: Runtime) -> Handler:
    async def work(
        store: Store, request: Request[Any, Any, Any], identity: Identity, data: Any, who: Actor
    ) -> Any:
        if request.method == "GET":
            return budget_out(await store.budgets.require(_query_id(request)))
        lookup = convert(await read_body(request), BudgetLookup)
        if lookup.budgets is not None:
            if not lookup.budgets:
                raise ValidationFailed(
                    "Specify the list of budget ids to query.", param="$.budgets"
                )
            return [budget_out(row) for row in await store.budgets.require_all(lookup.budgets)]
        if lookup.budget_id:
            return budget_out(await store.budgets.require(lookup.budget_id))
        raise ValidationFailed("Pass 'budgets' (a list) or 'budget_id'.", param="$.budgets")

    # GET has no body; POST (the alias) reads it itself.
    return endpoint(runtime, work, body=False)


def make_budget_list(plan: RoutePlan, runtime: Runtime) -> Handler:
    async def work(store: Store, request: Any, identity: Identity, data: Any, who: Actor) -> Any:
        rows = await store.budgets.find()
        rows.sort(key=lambda row: (row["created_at"], row["budget_id"]), reverse=True)
        return [budget_out(row) for row in rows]

    return endpoint(runtime, work, body=False)


async def delete_budget(store: Store, budget_id: str, who: Actor) -> Row:
    """404 if absent; 409 naming what still uses it. All in one transaction."""
    async with store.transaction():
        await store.budgets.require(budget_id)
        users = await budget_users(store, budget_id)
        if users:
            raise Conflict(
                f"Budget '{budget_id}' is still used by {describe_users(users)}; "
                "point them at another budget first.",
                param="budget_id",
            )
        (row,) = await store.budgets.delete([budget_id], actor=who)
    return row


def make_budget_delete(plan: RoutePlan, runtime: Runtime) -> Handler:
    async def work(store: Store, request: Any, identity: Identity, data: Any, who: Actor) -> Any:
        body = convert(data, BudgetDelete)
        budget_id = body.id or body.budget_id
        if not budget_id:
            raise ValidationFailed("Pass 'id' (or 'budget_id').", param="$.id")
        row = await delete_budget(store, budget_id, who)
        return {**(budget_out(row) or {}), "status": "deleted"}

    return endpoint(runtime, work)


def _descriptor(name: str, kind: str, description: str, row: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "field_name": name,
        "field_type": kind,
        "field_description": description,
        "field_value": row[name],
        "stored_in_db": True,
        "field_default_value": None,
        "premium_field": False,
        "nested_fields": None,
    }


def make_budget_settings(plan: RoutePlan, runtime: Runtime) -> Handler:
    async def work(
        store: Store, request: Request[Any, Any, Any], identity: Identity, data: Any, who: Actor
    ) -> Any:
        shown = budget_out(await store.budgets.require(_query_id(request))) or {}
        return [_descriptor(name, kind, text, shown) for name, kind, text in _SETTINGS]

    return endpoint(runtime, work, body=False)


BUDGET_OPERATIONS: Mapping[str, Any] = {
    "budget_new": make_budget_new,
    "budget_update": make_budget_update,
    "budget_info": make_budget_info,
    "budget_list": make_budget_list,
    "budget_delete": make_budget_delete,
    "budget_settings": make_budget_settings,
}
