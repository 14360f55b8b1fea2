"""The /customer/* endpoints and their /end_user/* aliases (routes.md §5.5,
management-api.md §5): the end users of an application, identified by the
`user` field (or a customer header) of LLM requests.

A customer's limits live in a budget row: `budget_id` links an existing one,
budget fields (`max_budget`, `tpm_limit`, ...) create the customer's own. An
update with budget fields edits the customer's own row, and never a row other
objects share: a shared row is copied first. Block and unblock are stored
(LiteLLM's unblock only edited an in-memory list); blocking an unknown id
creates it blocked, so it is refused from its first request.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, Literal

import msgspec
from litestar import Request

from tianji.api.admin.budget_rows import (
    BUDGET_FIELDS,
    BudgetFields,
    budget_out,
    budget_values,
    given_budget_fields,
    money,
)
from tianji.api.admin.budgets import create_budget, new_budget_id
from tianji.api.admin.common import ValidationFailed, convert, endpoint, iso
from tianji.api.admin.daily_activity import make_customer_daily_activity
from tianji.api.runtime import Runtime
from tianji.compile.model import RoutePlan
from tianji.guards.auth import Identity
from tianji.store import Actor, Conflict, Row, Store, nano_to_usd
from tianji.store.budget_refs import budget_users

__all__ = ["CUSTOMER_OPERATIONS"]

Handler = Any
Region = Literal["eu", "us"]
_PLAIN = ("alias", "blocked", "allowed_model_region", "default_model", "metadata")


class CustomerFields(BudgetFields, kw_only=True):
    alias: str | None = None
    blocked: bool | None = None
    budget_id: str | None = None
    allowed_model_region: Region | None = None
    default_model: str | None = None
    spend: float | None = None
    metadata: dict[str, Any] | None = None


class CustomerBody(CustomerFields, kw_only=True):
    user_id: str


class CustomerIds(msgspec.Struct, kw_only=True):
    user_ids: list[str]


def _now() -> datetime:
    return datetime.now(UTC)


async def customers_out(store: Store, rows: list[Row]) -> list[dict[str, Any]]:
    """End-user objects, their budget rows fetched in one query."""
    budgets = {
        b["budget_id"]: b
        for b in await store.budgets.get_many(r["budget_id"] for r in rows if r["budget_id"])
    }
    return [
        {
            "user_id": row["user_id"],
            "alias": row["alias"],
            "spend": nano_to_usd(row["spend"]),
            "allowed_model_region": row["allowed_model_region"],
            "default_model": row["default_model"],
            "budget_id": row["budget_id"],
            "blocked": row["blocked"],
            "metadata": row["metadata"] or {},
            "litellm_budget_table": budget_out(budgets.get(row["budget_id"])),
            "created_at": iso(row["created_at"]),
        }
        for row in rows
    ]


async def _customer_out(store: Store, row: Row) -> dict[str, Any]:
    (shown,) = await customers_out(store, [row])
    return shown


def _checked(fields: CustomerBody) -> list[str]:
    """The budget fields given; 422 when a `budget_id` comes with them."""
    if not fields.user_id:
        raise ValidationFailed("user_id must not be empty.", param="$.user_id")
    given = given_budget_fields(fields)
    if fields.budget_id is not None and given:
        raise ValidationFailed(
            f"Set either 'budget_id' or budget fields ({', '.join(given)}), not both.",
            param="$.budget_id",
        )
    return given


async def _check_default_model(runtime: Runtime, store: Store, model: str | None) -> None:
    if model is None or runtime.models.resolve(model) is not None:
        return
    if await store.models.find(model_name=model):
        return
    raise ValidationFailed(
        f"default_model {model!r} is not a model of this gateway.", param="$.default_model"
    )


def _plain_values(fields: CustomerFields) -> dict[str, Any]:
    values = {name: getattr(fields, name) for name in _PLAIN if getattr(fields, name) is not None}
    if fields.spend is not None:
        values["spend"] = money("spend", fields.spend)
    return values


def make_customer_new(plan: RoutePlan, runtime: Runtime) -> Handler:
    async def work(store: Store, request: Any, identity: Identity, data: Any, who: Actor) -> Any:
        fields = convert(data, CustomerBody)
        given = _checked(fields)
        await _check_default_model(runtime, store, fields.default_model)
        async with store.transaction():
            if await store.customers.exists(fields.user_id):
                raise Conflict(f"Customer already exists: {fields.user_id}", param="user_id")
            budget_id = fields.budget_id
            if budget_id is not None:
                await store.budgets.require(budget_id)
            elif given:
                budget_id = (await create_budget(store, fields, who))["budget_id"]
            row = {**_plain_values(fields), "user_id": fields.user_id, "budget_id": budget_id}
            created = await store.customers.insert(row, actor=who)
        return await _customer_out(store, created)

    return endpoint(runtime, work)


async def _own_budget(store: Store, row: Row, fields: CustomerFields, who: Actor) -> str:
    """Apply budget fields to the customer's own budget row; returns its id."""
    current = row["budget_id"]
    changes = budget_values(fields, _now())
    if current is None:
        return str((await create_budget(store, fields, who))["budget_id"])
    if await budget_users(store, current) == {"customers": 1}:
        await store.budgets.update(current, changes, actor=who)
        return str(current)
    # Shared with other objects: the customer gets a copy with the changes.
    shared = await store.budgets.require(current)
    copy = {name: shared[name] for name in BUDGET_FIELDS}
    budget_id = new_budget_id()
    new_row = {
        **copy,
        **changes,
        "budget_id": budget_id,
        "created_by": who.changed_by,
        "updated_by": who.changed_by,
    }
    await store.budgets.insert(new_row, actor=who)
    return budget_id


def make_customer_update(plan: RoutePlan, runtime: Runtime) -> Handler:
    async def work(store: Store, request: Any, identity: Identity, data: Any, who: Actor) -> Any:
        fields = convert(data, CustomerBody)
        given = _checked(fields)
        await _check_default_model(runtime, store, fields.default_model)
        async with store.transaction():
            row = await store.customers.require(fields.user_id)
            values = _plain_values(fields)
            if fields.budget_id is not None:
                await store.budgets.require(fields.budget_id)
                values["budget_id"] = fields.budget_id
            elif given:
                values["budget_id"] = await _own_budget(store, row, fields, who)
            if values:
                row = await store.customers.update(fields.user_id, values, actor=who)
        return await _customer_out(store, row)

    return endpoint(runtime, work)


def _ids(data: Mapping[str, Any]) -> list[str]:
    ids = convert(data, CustomerIds).user_ids
    if not ids:
        raise ValidationFailed("user_ids must not be empty.", param="$.user_ids")
    return list(dict.fromkeys(ids))


def make_customer_delete(plan: RoutePlan, runtime: Runtime) -> Handler:
    async def work(store: Store, request: Any, identity: Identity, data: Any, who: Actor) -> Any:
        ids = _ids(data)
        deleted = await store.customers.delete(ids, actor=who)  # 404 naming any missing
        return {
            "deleted_customers": len(deleted),
            "message": f"Successfully deleted customers with ids: {ids}",
        }

    return endpoint(runtime, work)


def make_customer_info(plan: RoutePlan, runtime: Runtime) -> Handler:
    async def work(
        store: Store, request: Request[Any, Any, Any], identity: Identity, data: Any, who: Actor
    ) -> Any:
        # GET /customer/info?end_user_id= or the Go path /end_user/info/{end_user_id}.
        end_user_id = request.path_params.get("end_user_id") or request.query_params.get(
            "end_user_id"
        )
        if not end_user_id:
            raise ValidationFailed("Pass ?end_user_id=.", param="end_user_id")
        return await _customer_out(store, await store.customers.require(end_user_id))

    return endpoint(runtime, work, body=False)


def make_customer_list(plan: RoutePlan, runtime: Runtime) -> Handler:
    async def work(store: Store, request: Any, identity: Identity, data: Any, who: Actor) -> Any:
        rows = await store.customers.find()
        rows.sort(key=lambda row: (row["created_at"], row["user_id"]), reverse=True)
        return await customers_out(store, rows)

    return endpoint(runtime, work, body=False)


def make_customer_block(plan: RoutePlan, runtime: Runtime) -> Handler:
    blocking = plan.operation == "customer_block"
    action = "blocked" if blocking else "unblocked"

    async def work(store: Store, request: Any, identity: Identity, data: Any, who: Actor) -> Any:
        ids = _ids(data)
        changed: list[Row] = []
        async with store.transaction():
            known = {row["user_id"] for row in await store.customers.get_many(ids)}
            if not blocking:
                await store.customers.require_all(ids)  # 404: nothing to unblock
            for end_user_id in ids:
                if end_user_id in known:
                    row = await store.customers.update(
                        end_user_id, {"blocked": blocking}, actor=who, action=action
                    )
                else:
                    row = await store.customers.insert(
                        {"user_id": end_user_id, "blocked": True}, actor=who
                    )
                changed.append(row)
        return {f"{action}_users": await customers_out(store, changed)}

    return endpoint(runtime, work)


CUSTOMER_OPERATIONS: Mapping[str, Any] = {
    "customer_new": make_customer_new,
    "customer_info": make_customer_info,
    "customer_update": make_customer_update,
    "customer_delete": make_customer_delete,
    "customer_list": make_customer_list,
    "customer_block": make_customer_block,
    "customer_unblock": make_customer_block,
    "customer_daily_activity": make_customer_daily_activity,
}
