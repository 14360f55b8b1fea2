"""Bulk key changes and spend resets: /key/bulk_update, /key/{key}/reset_spend."""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Any

import msgspec
from litestar import Request

from tianji.api.admin.common import BadRequest, ValidationFailed, convert, displayed, endpoint, iso
from tianji.api.admin.key_access import check_within_team
from tianji.api.admin.key_reads import find_key, shown_key
from tianji.api.admin.key_rows import KeyFields, key_values
from tianji.api.runtime import Runtime
from tianji.compile.model import RoutePlan
from tianji.errors import PermissionDenied, TianjiError
from tianji.guards.auth import Identity
from tianji.store import Actor, Store, nano_to_usd, usd_to_nano

__all__ = ["make_key_bulk_update", "make_key_reset_spend"]

Handler = Any
_BULK_LIMIT = 500


def _now() -> datetime:
    return datetime.now(UTC)


class _BulkItem(msgspec.Struct, kw_only=True):
    key: str
    budget_id: str | None = None
    max_budget: float | None = None
    team_id: str | None = None
    tags: list[str] | None = None


class _BulkUpdate(msgspec.Struct, kw_only=True):
    keys: list[_BulkItem]


def make_key_bulk_update(plan: RoutePlan, runtime: Runtime) -> Handler:
    """Each key on its own (its own transaction): one failure does not stop the rest."""

    async def work(store: Store, request: Any, identity: Identity, data: Any, who: Actor) -> Any:
        items = convert(data, _BulkUpdate).keys
        if len(items) > _BULK_LIMIT:
            raise ValidationFailed(f"At most {_BULK_LIMIT} keys per request.", param="$.keys")
        done: list[dict[str, Any]] = []
        failed: list[dict[str, Any]] = []
        for item in items:
            fields = KeyFields(
                budget_id=item.budget_id,
                max_budget=item.max_budget,
                team_id=item.team_id,
                tags=item.tags,
            )
            try:
                row = await find_key(store, item.key)
                values = key_values(fields, _now(), metadata=row["metadata"])
                team = (
                    await store.teams.require(values["team_id"]) if values.get("team_id") else None
                )
                check_within_team({**row, **values}, team)
                updated = await store.keys.change(row["token"], values, actor=who)
            except TianjiError as exc:
                failed.append(
                    {"key": displayed(item.key), "key_info": None, "failed_reason": exc.message}
                )
            else:
                done.append(
                    {"key": displayed(item.key), "key_info": await shown_key(store, updated)}
                )
        return {"total_requested": len(items), "successful_updates": done, "failed_updates": failed}

    return endpoint(runtime, work)


class _ResetSpend(msgspec.Struct, kw_only=True):
    reset_to: float


def make_key_reset_spend(plan: RoutePlan, runtime: Runtime) -> Handler:
    async def work(
        store: Store, request: Request[Any, Any, Any], identity: Identity, data: Any, who: Actor
    ) -> Any:
        row = await find_key(store, request.path_params["key"])
        if not identity.is_admin and not identity.administers_team(row["team_id"]):
            raise PermissionDenied(
                f"role={identity.role} may reset the spend of its teams' keys only.", code="403"
            )
        reset_to = convert(data, _ResetSpend).reset_to
        previous = row["spend"]
        if not math.isfinite(reset_to) or reset_to < 0 or usd_to_nano(reset_to) > previous:
            raise BadRequest(
                f"reset_to must be between 0 and the current spend {nano_to_usd(previous)}; "
                f"got {reset_to}",
                param="reset_to",
            )
        updated = await store.keys.change(row["token"], {"spend": usd_to_nano(reset_to)}, actor=who)
        return {
            "key_hash": updated["token"],
            "spend": nano_to_usd(updated["spend"]),
            "previous_spend": nano_to_usd(previous),
            "max_budget": nano_to_usd(updated["max_budget"])
            if updated["max_budget"] is not None
            else None,
            "budget_reset_at": iso(updated["budget_reset_at"]),
        }

    return endpoint(runtime, work)
