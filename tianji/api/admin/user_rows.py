"""Users at the edge: LiteLLM's request bodies in, LiteLLM's UserRow out
(management-api.md §2).

`user_values` turns the fields that were sent into stored values (float USD ->
nano-USD, `budget_duration` -> `budget_reset_at`, `model_rpm_limit` /
`model_tpm_limit` into `metadata` as for keys). `users_out` is the reverse, with
each user's organization memberships fetched in one query per page.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, Literal

import msgspec

from tianji.api.admin.budget_rows import budget_out, model_budgets, model_budgets_usd, money, usd
from tianji.api.admin.common import BadRequest, ValidationFailed, iso
from tianji.api.admin.durations import next_reset, parse_duration
from tianji.api.admin.team_rows import team_out
from tianji.store import Row, Store, nano_to_usd

__all__ = [
    "ADMIN_ROLES",
    "UNSETTABLE_USER_FIELDS",
    "NewUserTeam",
    "UserFields",
    "UserNew",
    "UserUpdate",
    "teams_out",
    "unset_values",
    "user_values",
    "users_out",
]

UserRole = Literal["proxy_admin", "proxy_admin_viewer", "internal_user", "internal_user_viewer"]
# Roles only a proxy_admin may hand out or take away.
ADMIN_ROLES = frozenset({"proxy_admin", "proxy_admin_viewer"})


class UserFields(msgspec.Struct, kw_only=True):
    """Every settable field of a user; absent or null = not given."""

    user_alias: str | None = None
    user_email: str | None = None
    user_role: UserRole | None = None
    max_budget: float | None = None
    soft_budget: float | None = None
    spend: float | None = None
    models: list[str] | None = None
    metadata: dict[str, Any] | None = None
    max_parallel_requests: int | None = None
    tpm_limit: int | None = None
    rpm_limit: int | None = None
    budget_duration: str | None = None
    model_max_budget: dict[str, Any] | None = None
    model_rpm_limit: dict[str, int] | None = None
    model_tpm_limit: dict[str, int] | None = None
    allowed_cache_controls: list[str] | None = None
    blocked: bool | None = None
    sso_user_id: str | None = None


class NewUserTeam(msgspec.Struct, kw_only=True):
    team_id: str
    max_budget_in_team: float | None = None
    user_role: Literal["user", "admin"] = "user"


class UserNew(UserFields, kw_only=True):
    user_id: str | None = None
    teams: list[str | NewUserTeam] | None = None
    organizations: list[str] | None = None
    auto_create_key: bool = True
    # The auto-created key (LiteLLM's GenerateRequestBase fields).
    key_alias: str | None = None
    duration: str | None = None
    aliases: dict[str, Any] | None = None
    config: dict[str, Any] | None = None
    permissions: dict[str, Any] | None = None
    team_id: str | None = None
    guardrails: list[str] | None = None


class UserUpdate(UserFields, kw_only=True):
    user_id: str | None = None
    unset_fields: list[str] | None = None


_AS_IS = (
    "user_alias",
    "user_email",
    "user_role",
    "models",
    "allowed_cache_controls",
    "blocked",
    "sso_user_id",
)
_COUNTS = ("max_parallel_requests", "tpm_limit", "rpm_limit")
_IN_METADATA = ("model_rpm_limit", "model_tpm_limit")
UNSETTABLE_USER_FIELDS: Mapping[str, Any] = {
    "user_alias": None,
    "user_email": None,
    "max_budget": None,
    "soft_budget": None,
    "max_parallel_requests": None,
    "tpm_limit": None,
    "rpm_limit": None,
    "budget_duration": None,
    "sso_user_id": None,
    "model_max_budget": {},
    "models": [],
    "allowed_cache_controls": [],
}


def user_values(
    fields: UserFields, now: datetime, *, metadata: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """Stored values for the fields that were sent; `metadata` is the user's current
    metadata, into which `model_rpm_limit` / `model_tpm_limit` are merged."""
    values: dict[str, Any] = {
        name: getattr(fields, name) for name in _AS_IS if getattr(fields, name) is not None
    }
    for name in ("max_budget", "soft_budget", "spend"):
        if getattr(fields, name) is not None:
            values[name] = money(name, getattr(fields, name))
    for name in _COUNTS:
        count = getattr(fields, name)
        if count is not None and count < 0:
            raise BadRequest(f"{name} must be >= 0. Received: {count}", param=name)
        if count is not None:
            values[name] = count
    if fields.budget_duration is not None:
        try:
            window = parse_duration(fields.budget_duration)
        except ValueError as exc:
            raise BadRequest(str(exc), param="budget_duration") from None
        values["budget_duration"] = fields.budget_duration
        values["budget_reset_at"] = next_reset(now, window)
    if fields.model_max_budget is not None:
        values["model_max_budget"] = model_budgets(fields.model_max_budget)
    extra = {n: getattr(fields, n) for n in _IN_METADATA if getattr(fields, n) is not None}
    if fields.metadata is not None or extra:
        base = fields.metadata if fields.metadata is not None else dict(metadata or {})
        values["metadata"] = {**base, **extra}
    return values


def unset_values(names: Sequence[str]) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for name in names:
        if name not in UNSETTABLE_USER_FIELDS:
            raise ValidationFailed(
                f"unset_fields: {name!r} cannot be unset (one of {sorted(UNSETTABLE_USER_FIELDS)})",
                param="$.unset_fields",
            )
        values[name] = UNSETTABLE_USER_FIELDS[name]
        if name == "budget_duration":
            values["budget_reset_at"] = None
    return values


def _membership_out(row: Mapping[str, Any], budget: Mapping[str, Any] | None) -> dict[str, Any]:
    return {
        "user_id": row["user_id"],
        "organization_id": row["organization_id"],
        "user_role": row["user_role"],
        "spend": nano_to_usd(row["spend"]),
        "budget_id": row["budget_id"],
        "created_at": iso(row["created_at"]),
        "updated_at": iso(row["updated_at"]),
        "litellm_budget_table": budget_out(budget),
    }


def _user_out(row: Mapping[str, Any], memberships: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "user_id": row["user_id"],
        "user_alias": row["user_alias"],
        "user_email": row["user_email"],
        "user_role": row["user_role"],
        "teams": row["teams"] or [],
        "organization_memberships": memberships,
        "max_budget": usd(row["max_budget"]),
        "soft_budget": usd(row["soft_budget"]),
        "spend": nano_to_usd(row["spend"]),
        "model_spend": {m: nano_to_usd(v) for m, v in (row["model_spend"] or {}).items()},
        "model_max_budget": model_budgets_usd(row["model_max_budget"]),
        "models": row["models"] or [],
        "metadata": row["metadata"] or {},
        "max_parallel_requests": row["max_parallel_requests"],
        "tpm_limit": row["tpm_limit"],
        "rpm_limit": row["rpm_limit"],
        "budget_duration": row["budget_duration"],
        "budget_reset_at": iso(row["budget_reset_at"]),
        "allowed_cache_controls": row["allowed_cache_controls"] or [],
        "blocked": row["blocked"],
        "sso_user_id": row["sso_user_id"],
        "created_at": iso(row["created_at"]),
        "updated_at": iso(row["updated_at"]),
    }


async def users_out(store: Store, rows: Sequence[Row]) -> list[dict[str, Any]]:
    """UserRows, with organization memberships (and their budgets) in two queries."""
    ids = [row["user_id"] for row in rows]
    memberships = await store.org_members.find(user_id=ids) if ids else []
    budgets = {
        b["budget_id"]: b
        for b in await store.budgets.get_many(m["budget_id"] for m in memberships if m["budget_id"])
    }
    by_user: dict[str, list[dict[str, Any]]] = {user_id: [] for user_id in ids}
    for membership in memberships:
        shown = _membership_out(membership, budgets.get(membership["budget_id"]))
        by_user[membership["user_id"]].append(shown)
    return [_user_out(row, by_user[row["user_id"]]) for row in rows]


async def teams_out(store: Store, rows: Sequence[Row]) -> list[dict[str, Any]]:
    """Teams as /user/info lists them: LiteLLM's TeamRow (tianji.api.admin.team_rows,
    callback secrets redacted), member budgets fetched in one query."""
    budgets = {
        b["budget_id"]: b
        for b in await store.budgets.get_many(
            r["team_member_budget_id"] for r in rows if r["team_member_budget_id"]
        )
    }
    return [team_out(row, budgets.get(row["team_member_budget_id"])) for row in rows]
