"""Reading keys: /key/info, /v2/key/info, /key/list, /key/aliases, /key/health."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from litestar import Request, Response

from tianji.api.admin.common import (
    ValidationFailed,
    convert,
    displayed,
    iso,
    json_response,
    query_bool,
    query_int,
    read_body,
    require_store,
)
from tianji.api.admin.key_access import check_read, visible_keys
from tianji.api.admin.key_rows import KeysRef, key_row
from tianji.api.runtime import Runtime
from tianji.compile.model import RoutePlan
from tianji.errors import NotFound
from tianji.guards.auth import Identity
from tianji.store import Row, Store, nano_to_usd, token_of

__all__ = [
    "find_key",
    "make_key_aliases",
    "make_key_health",
    "make_key_info",
    "make_key_info_v2",
    "make_key_list",
    "shown_key",
]

Handler = Any
_SORTABLE = ("spend", "max_budget", "created_at", "updated_at", "token", "key_alias")
_FILTERS = ("user_id", "team_id", "organization_id", "key_alias")


async def find_key(store: Store, reference: str) -> Row:
    """A key by plaintext or hash; 404 naming it without its secret."""
    row = await store.keys.get(token_of(reference))
    if row is None:
        raise NotFound(f"Key not found: {displayed(reference)}", param="key")
    return row


async def shown_key(store: Store, row: Mapping[str, Any]) -> dict[str, Any]:
    (shown,) = await _rows_out(store, [dict(row)])
    return shown


async def _rows_out(store: Store, rows: list[Row]) -> list[dict[str, Any]]:
    budgets = {
        b["budget_id"]: b
        for b in await store.budgets.get_many(r["budget_id"] for r in rows if r["budget_id"])
    }
    return [key_row(row, budgets.get(row["budget_id"])) for row in rows]


def _usage(row: Mapping[str, Any]) -> dict[str, Any]:
    """model_max_budget_usage: per budgeted model, spend against the limit."""
    spent = row["model_spend"] or {}
    return {
        model: {
            "current_spend": nano_to_usd(spent.get(model, 0)),
            "budget_limit": nano_to_usd(entry["max_budget"]),
            "time_period": entry.get("budget_duration"),
        }
        for model, entry in (row["model_max_budget"] or {}).items()
    }


def make_key_info(plan: RoutePlan, runtime: Runtime) -> Handler:
    async def handler(request: Request[Any, Any, Any], identity: Identity) -> Response[bytes]:
        store = require_store(runtime)
        reference = request.query_params.get("key")
        if reference is None:
            if identity.key_hash is None:
                raise ValidationFailed("Pass ?key=: the master key has no key info.", param="key")
            row = await store.keys.require(identity.key_hash)
            reference = row["key_name"]
        else:
            row = await find_key(store, reference)
            await check_read(identity, store, row)
        (info,) = await _rows_out(store, [row])
        return json_response(
            {"key": reference, "info": {**info, "model_max_budget_usage": _usage(row)}}
        )

    return handler


def make_key_info_v2(plan: RoutePlan, runtime: Runtime) -> Handler:
    async def handler(request: Request[Any, Any, Any], identity: Identity) -> Response[bytes]:
        store = require_store(runtime)
        keys = convert(await read_body(request), KeysRef).keys
        rows = {r["token"]: r for r in await store.keys.get_many(map(token_of, keys))}
        missing = [displayed(k) for k in keys if token_of(k) not in rows]
        if missing:
            raise NotFound(f"Keys not found: {missing}", param="keys")
        ordered = [rows[token_of(k)] for k in keys]
        for row in ordered:
            await check_read(identity, store, row)
        return json_response({"key": keys, "info": await _rows_out(store, ordered)})

    return handler


def _choice(
    request: Request[Any, Any, Any], name: str, default: str, allowed: tuple[str, ...]
) -> str:
    value = request.query_params.get(name) or default
    if value not in allowed:
        raise ValidationFailed(f"{name} must be one of {list(allowed)}, got {value!r}", param=name)
    return value


def make_key_list(plan: RoutePlan, runtime: Runtime) -> Handler:
    async def handler(request: Request[Any, Any, Any], identity: Identity) -> Response[bytes]:
        store = require_store(runtime)
        page = query_int(request, "page", 1, low=1, high=1_000_000)
        size = query_int(request, "size", 10, low=1, high=100)
        sort_by = _choice(request, "sort_by", "created_at", _SORTABLE)
        order = _choice(request, "sort_order", "desc", ("asc", "desc"))
        status = request.query_params.get("status")
        if status not in (None, "deleted"):
            raise ValidationFailed("status must be 'deleted' when given.", param="status")
        filters: dict[str, Any] = {
            name: request.query_params[name] for name in _FILTERS if request.query_params.get(name)
        }
        if request.query_params.get("key_hash"):
            filters["token"] = token_of(request.query_params["key_hash"])
        any_of = await visible_keys(
            identity,
            store,
            include_team_keys=query_bool(request, "include_team_keys"),
            include_created_by_keys=query_bool(request, "include_created_by_keys"),
        )
        found = await store.keys.search(
            filters=filters,
            any_of=any_of,
            page=page,
            size=size,
            order_by=sort_by,
            descending=order == "desc",
            deleted=status == "deleted",
        )
        keys: list[Any]
        if query_bool(request, "return_full_object"):
            shown = await _rows_out(store, found.rows)
            keys = [{**s, "token": r["token"]} for s, r in zip(shown, found.rows, strict=True)]
            if status == "deleted":
                for entry, row in zip(keys, found.rows, strict=True):
                    entry["deleted_at"] = iso(row["deleted_at"])
                    entry["deleted_by"] = row["deleted_by"]
        else:
            keys = [r["token"] for r in found.rows]
        return json_response(
            {
                "keys": keys,
                "total_count": found.total,
                "current_page": page,
                "total_pages": math.ceil(found.total / size),
            }
        )

    return handler


def make_key_aliases(plan: RoutePlan, runtime: Runtime) -> Handler:
    async def handler(request: Request[Any, Any, Any], identity: Identity) -> Response[bytes]:
        store = require_store(runtime)
        return json_response({"aliases": await store.keys.aliases()})

    return handler


def make_key_health(plan: RoutePlan, runtime: Runtime) -> Handler:
    """LiteLLM: `{"key": "healthy", "logging_callbacks": null}` (no per-key callbacks
    yet); GET adds the Go fields. A blocked key never gets here (401 first)."""

    async def handler(request: Request[Any, Any, Any], identity: Identity) -> Response[bytes]:
        result: dict[str, Any] = {"key": "healthy", "logging_callbacks": None}
        if request.method == "GET":
            row = None
            if identity.key_hash is not None:
                row = await require_store(runtime).keys.get(identity.key_hash)
            result.update(
                healthy=True,
                blocked=False,
                spend=nano_to_usd(row["spend"]) if row else 0.0,
                max_budget=nano_to_usd(row["max_budget"])
                if row and row["max_budget"] is not None
                else None,
            )
        return json_response(result)

    return handler
