"""Teams at the edge: LiteLLM's request bodies in, LiteLLM's TeamRow out
(management-api.md §3).

Budget and limit fields share the budget rules (tianji.api.admin.budget_rows:
float USD -> nano-USD, 400 for a negative amount or a bad duration). Like
LiteLLM, `tags`, `model_rpm_limit`, `model_tpm_limit`, `guardrails` and
`team_member_key_duration` live in the team's `metadata`; a metadata update
merges into the stored one, so the team's callbacks (`metadata.logging`) survive
it. The `team_member_*` budget fields become the team's member-budget row.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, Literal

import msgspec

from tianji.api.admin.budget_rows import (
    BudgetFields,
    budget_out,
    budget_values,
    model_budgets_usd,
    money,
    usd,
)
from tianji.api.admin.common import BadRequest, iso
from tianji.api.admin.durations import parse_duration
from tianji.store import nano_to_usd

__all__ = [
    "REDACTED",
    "TEAM_ADMIN_FIELDS",
    "Member",
    "TeamFields",
    "TeamNew",
    "TeamRole",
    "TeamUpdate",
    "check_within_org",
    "member_budget_fields",
    "models_outside",
    "team_membership_out",
    "team_out",
    "team_values",
]

REDACTED = "***REDACTED***"
TeamRole = Literal["admin", "user"]


class Member(msgspec.Struct, kw_only=True):
    """One entry of `members_with_roles` / `member`: a user by id or email."""

    user_id: str | None = None
    user_email: str | None = None
    role: TeamRole = "user"


class TeamFields(msgspec.Struct, kw_only=True):
    """Settable fields of a team (absent or null = unchanged)."""

    team_alias: str | None = None
    organization_id: str | None = None
    metadata: dict[str, Any] | None = None
    models: list[str] | None = None
    tags: list[str] | None = None
    guardrails: list[str] | None = None
    model_aliases: dict[str, Any] | None = None
    max_budget: float | None = None
    soft_budget: float | None = None
    budget_duration: str | None = None
    tpm_limit: int | None = None
    rpm_limit: int | None = None
    max_parallel_requests: int | None = None
    model_max_budget: dict[str, Any] | None = None
    model_rpm_limit: dict[str, int] | None = None
    model_tpm_limit: dict[str, int] | None = None
    blocked: bool | None = None
    team_member_budget: float | None = None
    team_member_budget_duration: str | None = None
    team_member_rpm_limit: int | None = None
    team_member_tpm_limit: int | None = None
    team_member_key_duration: str | None = None


class TeamNew(TeamFields, kw_only=True):
    team_id: str | None = None
    members_with_roles: list[Member] | None = None


class TeamUpdate(TeamFields, kw_only=True):
    team_id: str = ""  # from the body, or the path of PATCH /team/{team_id}


_AS_IS = ("team_alias", "organization_id", "models", "model_aliases", "blocked")
_LIMITS = (
    "max_budget",
    "soft_budget",
    "budget_duration",
    "tpm_limit",
    "rpm_limit",
    "max_parallel_requests",
    "model_max_budget",
)
_IN_METADATA = ("tags", "guardrails", "model_rpm_limit", "model_tpm_limit")
# Fields a team admin may change on their own team (management-api.md §11).
TEAM_ADMIN_FIELDS = frozenset({"team_id", "team_alias", "metadata"})


def team_values(
    fields: TeamFields, now: datetime, *, metadata: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """Stored team columns for the fields that were sent; `metadata` is the
    team's current metadata (what is sent merges into it)."""
    values: dict[str, Any] = {
        name: getattr(fields, name) for name in _AS_IS if getattr(fields, name) is not None
    }
    limits = BudgetFields(**{name: getattr(fields, name) for name in _LIMITS})
    values.update(budget_values(limits, now))
    extra: dict[str, Any] = {
        name: getattr(fields, name) for name in _IN_METADATA if getattr(fields, name) is not None
    }
    if fields.team_member_key_duration is not None:
        _duration(fields.team_member_key_duration, "team_member_key_duration")
        extra["team_member_key_duration"] = fields.team_member_key_duration
    if fields.metadata is not None or extra:
        values["metadata"] = {**(metadata or {}), **(fields.metadata or {}), **extra}
    return values


def member_budget_fields(fields: TeamFields) -> BudgetFields | None:
    """The team's default member budget (`team_member_*`), when any part is sent."""
    if fields.team_member_budget is not None:
        money("team_member_budget", fields.team_member_budget)
    if fields.team_member_budget_duration is not None:
        _duration(fields.team_member_budget_duration, "team_member_budget_duration")
    budget = BudgetFields(
        max_budget=fields.team_member_budget,
        budget_duration=fields.team_member_budget_duration,
        rpm_limit=fields.team_member_rpm_limit,
        tpm_limit=fields.team_member_tpm_limit,
    )
    given = (budget.max_budget, budget.budget_duration, budget.rpm_limit, budget.tpm_limit)
    return budget if any(v is not None for v in given) else None


def _duration(text: str, param: str) -> None:
    try:
        parse_duration(text)
    except ValueError as exc:
        raise BadRequest(str(exc), param=param) from None


def check_within_org(
    values: Mapping[str, Any],
    organization: Mapping[str, Any] | None,
    budget: Mapping[str, Any] | None,
) -> None:
    """400 when a team asks for more than its organization has (limits, models)."""
    if organization is None:
        return
    org_id = organization["organization_id"]
    for name in ("max_budget", "tpm_limit", "rpm_limit", "max_parallel_requests"):
        mine, theirs = values.get(name), (budget or {}).get(name)
        if mine is not None and theirs is not None and mine > theirs:
            shown = nano_to_usd(mine) if name == "max_budget" else mine
            limit = nano_to_usd(theirs) if name == "max_budget" else theirs
            raise BadRequest(
                f"{name}={shown} is above the organization's {name}={limit} "
                f"(organization {org_id})",
                param=name,
            )
    outside = models_outside(values.get("models") or [], organization.get("models") or [])
    if outside:
        raise BadRequest(
            f"models {outside} are not among the organization's models "
            f"{organization['models']} (organization {org_id})",
            param="models",
        )


def models_outside(models: Sequence[str], allowed: Sequence[str]) -> list[str]:
    """Models of `models` that an `allowed` list (empty = no restriction) excludes."""
    if not allowed or "all-proxy-models" in allowed:
        return []
    return [m for m in models if m not in allowed]


def _redacted_logging(metadata: Mapping[str, Any]) -> dict[str, Any]:
    """Team callbacks without their (sealed) variables."""
    shown = dict(metadata)
    if isinstance(shown.get("logging"), list):
        shown["logging"] = [
            {**entry, "callback_vars": dict.fromkeys(entry.get("callback_vars") or {}, REDACTED)}
            for entry in shown["logging"]
        ]
    return shown


def team_out(row: Mapping[str, Any], member_budget: Mapping[str, Any] | None) -> dict[str, Any]:
    """LiteLLM's TeamRow; `admins`/`members` are derived from `members_with_roles`."""
    roster = list(row["members_with_roles"] or [])
    return {
        "team_id": row["team_id"],
        "team_alias": row["team_alias"],
        "organization_id": row["organization_id"],
        "admins": [m.get("user_id") for m in roster if m.get("role") == "admin"],
        "members": [m.get("user_id") for m in roster],
        "members_with_roles": roster,
        "metadata": _redacted_logging(row["metadata"] or {}),
        "models": row["models"] or [],
        "max_budget": usd(row["max_budget"]),
        "soft_budget": usd(row["soft_budget"]),
        "spend": nano_to_usd(row["spend"]),
        "model_spend": {m: nano_to_usd(v) for m, v in (row["model_spend"] or {}).items()},
        "model_max_budget": model_budgets_usd(row["model_max_budget"]),
        "max_parallel_requests": row["max_parallel_requests"],
        "tpm_limit": row["tpm_limit"],
        "rpm_limit": row["rpm_limit"],
        "budget_duration": row["budget_duration"],
        "budget_reset_at": iso(row["budget_reset_at"]),
        "blocked": row["blocked"],
        "model_aliases": row["model_aliases"] or {},
        "team_member_budget_table": budget_out(member_budget),
        "created_at": iso(row["created_at"]),
        "created_by": row["created_by"],
        "updated_at": iso(row["updated_at"]),
        "updated_by": row["updated_by"],
    }


def team_membership_out(row: Mapping[str, Any], budget: Mapping[str, Any] | None) -> dict[str, Any]:
    return {
        "user_id": row["user_id"],
        "team_id": row["team_id"],
        "spend": nano_to_usd(row["spend"]),
        "budget_id": row["budget_id"],
        "litellm_budget_table": budget_out(budget),
    }
