"""Daily activity from the spend rollup (management-api.md §2 "daily_activity"):
GET /user/daily_activity (alias /user/daily/activity) and
GET /customer/daily/activity (and /end_user/daily/activity).

One result per date (newest first) with the day's metrics and their breakdown
by model, model group, provider, endpoint and key; `metadata` totals every row
in the range, and `page` / `page_size` page over the rollup rows as LiteLLM
does. With no rows (no traffic yet, or no spend writer) the answer is the same
shape with empty results and zero totals.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from datetime import UTC, date, datetime, timedelta
from typing import Any

from litestar import Request

from tianji.api.admin.common import BadRequest, ValidationFailed, endpoint, query_int
from tianji.api.admin.user_access import check_user_read
from tianji.api.runtime import Runtime
from tianji.compile.model import RoutePlan
from tianji.guards.auth import Identity
from tianji.store import Actor, Row, Store, nano_to_usd, token_of
from tianji.store.rollups import daily_rows

__all__ = [
    "activity",
    "csv_query",
    "make_customer_daily_activity",
    "make_user_daily_activity",
]

Handler = Any
_COUNTERS = (
    "prompt_tokens",
    "completion_tokens",
    "cache_read_input_tokens",
    "cache_creation_input_tokens",
    "api_requests",
    "successful_requests",
    "failed_requests",
)
# breakdown name -> the rollup column it groups by
_BREAKDOWNS = (
    ("models", "model"),
    ("model_groups", "model_group"),
    ("providers", "custom_llm_provider"),
    ("endpoints", "endpoint"),
    ("api_keys", "api_key"),
)


def _zero() -> dict[str, Any]:
    return {"spend": 0, "total_tokens": 0, **dict.fromkeys(_COUNTERS, 0)}


def _add(totals: dict[str, Any], row: Mapping[str, Any]) -> None:
    """Sums in nano-USD (exact); converted to USD once, at the end."""
    totals["spend"] += row["spend"]
    for name in _COUNTERS:
        totals[name] += row[name]
    totals["total_tokens"] += row["prompt_tokens"] + row["completion_tokens"]


def _metrics(totals: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "spend": nano_to_usd(totals["spend"]),
        "prompt_tokens": totals["prompt_tokens"],
        "completion_tokens": totals["completion_tokens"],
        "cache_read_input_tokens": totals["cache_read_input_tokens"],
        "cache_creation_input_tokens": totals["cache_creation_input_tokens"],
        "total_tokens": totals["total_tokens"],
        "api_requests": totals["api_requests"],
        "successful_requests": totals["successful_requests"],
        "failed_requests": totals["failed_requests"],
    }


def _day(rows: list[Row], key_info: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    totals = _zero()
    groups: dict[str, dict[str, dict[str, Any]]] = {name: {} for name, _ in _BREAKDOWNS}
    for row in rows:
        _add(totals, row)
        for name, column in _BREAKDOWNS:
            value = row[column]
            if value:
                _add(groups[name].setdefault(value, _zero()), row)
    breakdown = {
        name: {
            value: {
                "metrics": _metrics(sums),
                "metadata": dict(key_info.get(value, {})) if name == "api_keys" else {},
            }
            for value, sums in groups[name].items()
        }
        for name, _ in _BREAKDOWNS
    }
    return {"date": rows[0]["date"], "metrics": _metrics(totals), "breakdown": breakdown}


async def _key_info(store: Store, tokens: Iterable[str]) -> dict[str, dict[str, Any]]:
    """key_alias and team_id of the keys named in the rows (deleted keys: nulls)."""
    wanted = [t for t in dict.fromkeys(tokens) if t]
    found = {row["token"]: row for row in await store.keys.get_many(wanted)}
    return {
        token: {
            "key_alias": found[token]["key_alias"] if token in found else None,
            "team_id": found[token]["team_id"] if token in found else None,
        }
        for token in wanted
    }


def _date(request: Request[Any, Any, Any], name: str, default: date) -> date:
    raw = request.query_params.get(name)
    if not raw:
        return default
    try:
        return date.fromisoformat(raw)
    except ValueError:
        raise ValidationFailed(f"{name} must be YYYY-MM-DD, got {raw!r}", param=name) from None


def _range(request: Request[Any, Any, Any]) -> tuple[str, str]:
    """start_date..end_date, by default the last 30 days of the caller's calendar
    (`timezone` = minutes behind UTC, JavaScript's getTimezoneOffset)."""
    offset = query_int(request, "timezone", 0, low=-840, high=840)
    today = (datetime.now(UTC) - timedelta(minutes=offset)).date()
    end = _date(request, "end_date", today)
    start = _date(request, "start_date", end - timedelta(days=30))
    if start > end:
        raise BadRequest(f"start_date {start} is after end_date {end}", param="start_date")
    return start.isoformat(), end.isoformat()


async def activity(
    store: Store,
    request: Request[Any, Any, Any],
    *,
    entity_type: str,
    entity_ids: list[str] | None,
) -> dict[str, Any]:
    """The LiteLLM daily-activity answer for one entity type."""
    start, end = _range(request)
    page = query_int(request, "page", 1, low=1, high=1_000_000)
    size = query_int(request, "page_size", 50, low=1, high=1000)
    api_key = request.query_params.get("api_key")
    rows = await daily_rows(
        store,
        entity_type=entity_type,
        entity_ids=entity_ids,
        start=start,
        end=end,
        model=request.query_params.get("model") or None,
        api_key=token_of(api_key) if api_key else None,
    )
    totals = _zero()
    for row in rows:
        _add(totals, row)
    shown = rows[(page - 1) * size : page * size]
    key_info = await _key_info(store, (row["api_key"] for row in shown))
    days: dict[str, list[Row]] = {}
    for row in shown:
        days.setdefault(row["date"], []).append(row)
    pages = math.ceil(len(rows) / size)
    metadata = {f"total_{name}": value for name, value in _metrics(totals).items()}
    return {
        "results": [_day(day_rows, key_info) for day_rows in days.values()],
        "metadata": {**metadata, "page": page, "total_pages": pages, "has_more": page < pages},
    }


def csv_query(request: Request[Any, Any, Any], name: str) -> list[str] | None:
    raw = request.query_params.get(name)
    if not raw:
        return None
    return [part.strip() for part in raw.split(",") if part.strip()]


def make_user_daily_activity(plan: RoutePlan, runtime: Runtime) -> Handler:
    """Admins and admin viewers see every user unless they pass `user_id`; anyone
    else sees a user they may read (themselves by default)."""

    async def work(
        store: Store, request: Request[Any, Any, Any], identity: Identity, data: Any, who: Actor
    ) -> Any:
        user_id = request.query_params.get("user_id") or None
        if user_id is None and not identity.reads_everything:
            user_id = identity.user_id
            if user_id is None:
                raise ValidationFailed("Pass ?user_id=: this key belongs to no user.")
        if user_id is not None:
            await check_user_read(identity, store, user_id)
        ids = [user_id] if user_id is not None else None
        return await activity(store, request, entity_type="user", entity_ids=ids)

    return endpoint(runtime, work, body=False)


def make_customer_daily_activity(plan: RoutePlan, runtime: Runtime) -> Handler:
    """`?end_user_ids=a,b`; none = every customer (admins and admin viewers only)."""

    async def work(
        store: Store, request: Request[Any, Any, Any], identity: Identity, data: Any, who: Actor
    ) -> Any:
        ids = csv_query(request, "end_user_ids")
        return await activity(store, request, entity_type="end_user", entity_ids=ids)

    return endpoint(runtime, work, body=False)
