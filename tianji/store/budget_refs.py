"""Who uses a budget row: keys, organizations, customers, tags, memberships and
teams (their member-budget default) may all point at one (management-api.md §12).

Deleting a budget still in use is refused with a message that says by whom
(the foreign keys would refuse it too, but without saying which objects).
A budget used by exactly one object is that object's own, so editing it
changes nobody else's limits.
"""

from __future__ import annotations

from piccolo.columns import Column

from tianji.store.store import Store
from tianji.store.tables import (
    EndUser,
    Organization,
    OrganizationMembership,
    Tag,
    Team,
    TeamMembership,
    VirtualKey,
)

__all__ = ["BUDGET_REFERENCES", "budget_users", "describe_users"]

# (what, the column pointing at budgets.budget_id)
BUDGET_REFERENCES: tuple[tuple[str, Column], ...] = (
    ("keys", VirtualKey.budget_id),
    ("organizations", Organization.budget_id),
    ("customers", EndUser.budget_id),
    ("tags", Tag.budget_id),
    ("teams (member budget)", Team.team_member_budget_id),
    ("team memberships", TeamMembership.budget_id),
    ("organization memberships", OrganizationMembership.budget_id),
)


async def budget_users(store: Store, budget_id: str) -> dict[str, int]:
    """How many objects of each kind reference the budget (kinds with none left out)."""
    found: dict[str, int] = {}
    for what, column in BUDGET_REFERENCES:
        table = column._meta.table
        count = int(await store.run(table.count().where(column == budget_id)))
        if count:
            found[what] = count
    return found


def describe_users(users: dict[str, int]) -> str:
    return ", ".join(f"{count} {what}" for what, count in users.items())
