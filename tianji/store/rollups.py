"""Reading the daily spend rollup (`daily_spend`, management-api.md §12).

The spend writer upserts one row per (entity, date, key, model, provider,
endpoint); the `/…/daily/activity` endpoints read them back for a date range.
Dates are `YYYY-MM-DD` text, so a range is a plain string comparison.
"""

from __future__ import annotations

from collections.abc import Sequence

from tianji.store.repo import Row
from tianji.store.store import Store
from tianji.store.tables import DailySpend

__all__ = ["daily_rows"]


async def daily_rows(
    store: Store,
    *,
    entity_type: str,
    entity_ids: Sequence[str] | None,
    start: str,
    end: str,
    model: str | None = None,
    api_key: str | None = None,
) -> list[Row]:
    """Rows of one entity type between two dates (inclusive), newest date first;
    `entity_ids` None = every entity of the type."""
    query = DailySpend.select().where(
        (DailySpend.entity_type == entity_type)
        & (DailySpend.date >= start)
        & (DailySpend.date <= end)
    )
    if entity_ids is not None:
        query = query.where(DailySpend.entity_id.is_in(list(entity_ids) or [""]))
    if model is not None:
        query = query.where(DailySpend.model == model)
    if api_key is not None:
        query = query.where(DailySpend.api_key == api_key)
    query = query.order_by(DailySpend.date, ascending=False).order_by(DailySpend.id)
    return [dict(row) for row in await store.run(query)]
