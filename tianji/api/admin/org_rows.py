"""Organizations at the edge: LiteLLM's request bodies in, OrgRow and Membership
out (management-api.md §4).

An organization always has a budget row (the schema requires one): the body
names an existing one (`budget_id`) or gives budget fields, from which a row is
made. info and list add the members (Membership + `user_email`) and the teams.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Literal

import msgspec

from tianji.api.admin.budget_rows import BudgetFields, budget_out
from tianji.api.admin.common import iso
from tianji.api.admin.team_reads import shown_teams
from tianji.store import Row, Store, nano_to_usd

__all__ = [
    "OrgMember",
    "OrgNew",
    "OrgRole",
    "OrgUpdate",
    "membership_out",
    "org_out",
    "orgs_out",
]

OrgRole = Literal["org_admin", "internal_user", "internal_user_viewer"]


class OrgMember(msgspec.Struct, kw_only=True):
    user_id: str | None = None
    user_email: str | None = None
    role: OrgRole = "internal_user"


class _OrgFields(BudgetFields, kw_only=True):
    organization_alias: str | None = None
    models: list[str] | None = None
    metadata: dict[str, Any] | None = None
    budget_id: str | None = None


class OrgNew(_OrgFields, kw_only=True):
    organization_alias: str
    organization_id: str | None = None


class OrgUpdate(_OrgFields, kw_only=True):
    organization_id: str


def org_out(row: Mapping[str, Any], budget: Mapping[str, Any] | None) -> dict[str, Any]:
    return {
        "organization_id": row["organization_id"],
        "organization_alias": row["organization_alias"],
        "budget_id": row["budget_id"],
        "metadata": row["metadata"] or {},
        "models": row["models"] or [],
        "spend": nano_to_usd(row["spend"]),
        "model_spend": {m: nano_to_usd(v) for m, v in (row["model_spend"] or {}).items()},
        "blocked": row["blocked"],
        "litellm_budget_table": budget_out(budget),
        "created_at": iso(row["created_at"]),
        "created_by": row["created_by"],
        "updated_at": iso(row["updated_at"]),
        "updated_by": row["updated_by"],
    }


def membership_out(
    row: Mapping[str, Any], budget: Mapping[str, Any] | None, user_email: str | None = None
) -> dict[str, Any]:
    shown = {
        "user_id": row["user_id"],
        "organization_id": row["organization_id"],
        "user_role": row["user_role"],
        "spend": nano_to_usd(row["spend"]),
        "budget_id": row["budget_id"],
        "created_at": iso(row["created_at"]),
        "updated_at": iso(row["updated_at"]),
        "litellm_budget_table": budget_out(budget),
    }
    if user_email is not None:
        shown["user_email"] = user_email
    return shown


async def orgs_out(store: Store, rows: Sequence[Row]) -> list[dict[str, Any]]:
    """OrgRows with their `members` and `teams` (info and list)."""
    ids = [row["organization_id"] for row in rows]
    members = await store.org_members.find(organization_id=ids) if ids else []
    teams = await store.teams.find(organization_id=ids) if ids else []
    budget_ids = [row["budget_id"] for row in rows] + [m["budget_id"] for m in members]
    budgets = {b["budget_id"]: b for b in await store.budgets.get_many(i for i in budget_ids if i)}
    users = await store.users.get_many(m["user_id"] for m in members)
    emails = {u["user_id"]: u["user_email"] for u in users}
    teams.sort(key=lambda t: (t["created_at"], t["team_id"]))
    shown_team_rows = await shown_teams(store, teams)
    out = []
    for row in rows:
        org_id = row["organization_id"]
        out.append(
            {
                **org_out(row, budgets.get(row["budget_id"])),
                "members": [
                    {
                        **membership_out(m, budgets.get(m["budget_id"])),
                        "user_email": emails.get(m["user_id"]),
                    }
                    for m in members
                    if m["organization_id"] == org_id
                ],
                "teams": [t for t in shown_team_rows if t["organization_id"] == org_id],
            }
        )
    return out
