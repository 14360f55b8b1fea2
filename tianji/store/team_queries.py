"""Team look-ups the generic repository cannot express: the paginated,
alias-searching list of GET /v2/team/list."""

from __future__ import annotations

from collections.abc import Collection
from typing import TYPE_CHECKING, Any

from piccolo.query import WhereRaw

from tianji.store.repo import Page
from tianji.store.tables import Team

if TYPE_CHECKING:
    from tianji.store.store import Store

__all__ = ["TEAM_SORTS", "search_teams"]

TEAM_SORTS = ("team_id", "team_alias", "created_at", "updated_at", "spend", "max_budget")


def _contains(text: str) -> str:
    """A LIKE pattern matching `text` anywhere (lower case), its % and _ literal."""
    escaped = text.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


async def search_teams(
    store: Store,
    *,
    alias_contains: str | None = None,
    organization_id: str | None = None,
    team_ids: Collection[str] | None = None,
    page: int = 1,
    size: int = 10,
    order_by: str = "created_at",
    descending: bool = True,
) -> Page:
    """One page of teams and the total; `team_ids` None = any team."""
    conditions: list[Any] = []
    if alias_contains:
        conditions.append(
            WhereRaw("lower(team_alias) LIKE {} ESCAPE '\\'", _contains(alias_contains))
        )
    if organization_id is not None:
        conditions.append(Team.organization_id == organization_id)
    if team_ids is not None:
        if not team_ids:
            return Page([], 0)
        conditions.append(Team.team_id.is_in(sorted(team_ids)))
    query = Team.select().output(load_json=True)
    count = Team.count()
    for condition in conditions:
        query = query.where(condition)
        count = count.where(condition)
    column = Team._meta.get_column_by_name(order_by)
    # The primary key breaks ties, so pages never overlap.
    query = (
        query.order_by(column, ascending=not descending)
        .order_by(Team.team_id, ascending=True)
        .limit(size)
        .offset((page - 1) * size)
    )
    rows = await store.run(query)
    total = await store.run(count)
    return Page([dict(r) for r in rows], int(total))
