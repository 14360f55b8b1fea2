"""Keys at the edge: LiteLLM's request bodies in, LiteLLM's KeyRow out.

Requests are msgspec Structs (unknown fields ignored, type errors 422 with a
path); `key_values` turns the fields that were sent into stored values
(float USD -> nano-USD, durations -> timestamps, `model_rpm_limit` & co. into
`metadata` as LiteLLM does). `key_row` is the reverse, and never includes the
stored hash (only `token` where an endpoint says so).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import datetime
from typing import Any, Literal

import msgspec

from tianji.api.admin.budget_rows import budget_out, model_budgets_usd, usd
from tianji.api.admin.common import BadRequest, ValidationFailed, iso
from tianji.api.admin.durations import next_reset, parse_duration
from tianji.store import nano_to_usd, usd_to_nano

__all__ = [
    "KeyDelete",
    "KeyFields",
    "KeyGenerate",
    "KeyRef",
    "KeyRegenerate",
    "KeyUpdate",
    "KeysRef",
    "iso",
    "key_row",
    "key_values",
]

KeyType = Literal["llm_api", "management", "read_only", "default"]


class KeyFields(msgspec.Struct, kw_only=True):
    """Every settable field of a key (POST /key/generate, all optional)."""

    key_alias: str | None = None
    duration: str | None = None
    models: list[str] | None = None
    aliases: dict[str, Any] | None = None
    config: dict[str, Any] | None = None
    permissions: dict[str, Any] | None = None
    metadata: dict[str, Any] | None = None
    tags: list[str] | None = None
    user_id: str | None = None
    team_id: str | None = None
    organization_id: str | None = None
    budget_id: str | None = None
    max_budget: float | None = None
    soft_budget: float | None = None
    budget_duration: str | None = None
    spend: float | None = None
    max_parallel_requests: int | None = None
    tpm_limit: int | None = None
    rpm_limit: int | None = None
    model_max_budget: dict[str, float | dict[str, Any]] | None = None
    model_rpm_limit: dict[str, int] | None = None
    model_tpm_limit: dict[str, int] | None = None
    allowed_cache_controls: list[str] | None = None
    allowed_routes: list[str] | None = None
    allowed_passthrough_routes: list[str] | None = None
    blocked: bool | None = None
    key_type: KeyType | None = None
    guardrails: list[str] | None = None
    enforced_params: list[str] | None = None


class KeyGenerate(KeyFields, kw_only=True):
    # A custom plaintext key (starts with sk-, at least 20 characters).
    key: str | None = None


class KeyUpdate(KeyFields, kw_only=True):
    key: str
    temp_budget_increase: float | None = None
    temp_budget_expiry: datetime | None = None
    unset_fields: list[str] | None = None


class KeyRegenerate(KeyUpdate, kw_only=True):
    key: str = ""  # from the body, or from the path of /key/{key}/regenerate
    new_key: str | None = None
    grace_period: str | None = None


class KeyRef(msgspec.Struct, kw_only=True):
    key: str


class KeysRef(msgspec.Struct, kw_only=True):
    keys: list[str]


class KeyDelete(msgspec.Struct, kw_only=True):
    keys: list[str] | None = None
    key_aliases: list[str] | None = None


_AS_IS = (
    "key_alias",
    "models",
    "aliases",
    "config",
    "permissions",
    "user_id",
    "team_id",
    "organization_id",
    "budget_id",
    "allowed_cache_controls",
    "allowed_routes",
    "allowed_passthrough_routes",
    "blocked",
    "key_type",
)
_MONEY = ("max_budget", "soft_budget", "spend")
_COUNTS = ("max_parallel_requests", "tpm_limit", "rpm_limit")
# Generate fields LiteLLM keeps inside `metadata`.
_IN_METADATA = ("tags", "model_rpm_limit", "model_tpm_limit", "guardrails", "enforced_params")
# unset_fields: what may be cleared, and the value that clears it.
UNSETTABLE: Mapping[str, Any] = {
    "key_alias": None,
    "max_budget": None,
    "soft_budget": None,
    "budget_id": None,
    "budget_duration": None,
    "max_parallel_requests": None,
    "tpm_limit": None,
    "rpm_limit": None,
    "expires": None,
    "team_id": None,
    "organization_id": None,
    "model_max_budget": {},
    "models": [],
    "allowed_routes": [],
    "allowed_cache_controls": [],
    "allowed_passthrough_routes": [],
}


def _nano(name: str, usd: float) -> int:
    if not math.isfinite(usd) or usd < 0:
        raise BadRequest(
            f"{name} must be a non-negative finite number. Received: {usd}", param=name
        )
    return usd_to_nano(usd)


def _model_budget(model: str, entry: float | dict[str, Any]) -> dict[str, Any]:
    """`{"m": 10}` or `{"m": {"max_budget"|"budget_limit": 10, "budget_duration"|
    "time_period": "1d", "tpm_limit"?, "rpm_limit"?}}` -> the nested form, in nano-USD."""
    path = f"$.model_max_budget.{model}"
    if not isinstance(entry, dict):
        return {"max_budget": _nano(path, float(entry)), "budget_duration": None}
    limit = entry.get("max_budget", entry.get("budget_limit"))
    window = entry.get("budget_duration", entry.get("time_period"))
    if not isinstance(limit, int | float) or isinstance(limit, bool):
        raise ValidationFailed(f"{path}: max_budget (a number) is required", param=path)
    normalised: dict[str, Any] = {"max_budget": _nano(path, float(limit)), "budget_duration": None}
    if window is not None:
        normalised["budget_duration"] = _duration_text(str(window), f"{path}.budget_duration")
    for limit_name in ("tpm_limit", "rpm_limit"):
        if entry.get(limit_name) is not None:
            normalised[limit_name] = int(entry[limit_name])
    return normalised


def _duration_text(text: str, name: str) -> str:
    try:
        parse_duration(text)
    except ValueError as exc:
        raise BadRequest(str(exc), param=name) from None
    return text


def key_values(
    fields: KeyFields, now: datetime, *, metadata: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """Stored values for the fields that were sent (absent or null = unchanged).
    `metadata` is the key's current metadata (updates merge into it)."""
    values: dict[str, Any] = {
        name: getattr(fields, name) for name in _AS_IS if getattr(fields, name) is not None
    }
    for name in _MONEY:
        if getattr(fields, name) is not None:
            values[name] = _nano(name, getattr(fields, name))
    for name in _COUNTS:
        count = getattr(fields, name)
        if count is not None and count < 0:
            raise BadRequest(f"{name} must be >= 0. Received: {count}", param=name)
        if count is not None:
            values[name] = count
    if fields.budget_duration is not None:
        window = parse_duration(_duration_text(fields.budget_duration, "budget_duration"))
        values["budget_duration"] = fields.budget_duration
        values["budget_reset_at"] = next_reset(now, window)
    if fields.duration is not None:
        values["expires"] = expiry(fields.duration, now)
    if fields.model_max_budget is not None:
        values["model_max_budget"] = {
            model: _model_budget(model, entry) for model, entry in fields.model_max_budget.items()
        }
    extra = {n: getattr(fields, n) for n in _IN_METADATA if getattr(fields, n) is not None}
    if fields.metadata is not None or extra:
        base = fields.metadata if fields.metadata is not None else dict(metadata or {})
        values["metadata"] = {**base, **extra}
    return values


def expiry(duration: str, now: datetime) -> datetime | None:
    """`duration` -> the expiry time; "-1" = never (key update)."""
    if duration in ("-1", ""):
        return None
    return parse_duration(_duration_text(duration, "duration")).after(now)


def _metadata_out(metadata: Mapping[str, Any] | None) -> dict[str, Any]:
    out = dict(metadata or {})
    if isinstance(out.get("temp_budget_increase"), int):
        out["temp_budget_increase"] = nano_to_usd(out["temp_budget_increase"])
    return out


def key_row(row: Mapping[str, Any], budget: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """LiteLLM's KeyRow (management-api.md §1), without the stored hash."""
    return {
        "key_name": row["key_name"],
        "key_alias": row["key_alias"],
        "spend": nano_to_usd(row["spend"]),
        "max_budget": usd(row["max_budget"]),
        "soft_budget": usd(row["soft_budget"]),
        "expires": iso(row["expires"]),
        "models": row["models"],
        "aliases": row["aliases"],
        "config": row["config"],
        "permissions": row["permissions"],
        "metadata": _metadata_out(row["metadata"]),
        "user_id": row["user_id"],
        "team_id": row["team_id"],
        "organization_id": row["organization_id"],
        "budget_id": row["budget_id"],
        "key_type": row["key_type"],
        "max_parallel_requests": row["max_parallel_requests"],
        "tpm_limit": row["tpm_limit"],
        "rpm_limit": row["rpm_limit"],
        "budget_duration": row["budget_duration"],
        "budget_reset_at": iso(row["budget_reset_at"]),
        "allowed_cache_controls": row["allowed_cache_controls"],
        "allowed_routes": row["allowed_routes"],
        "allowed_passthrough_routes": row["allowed_passthrough_routes"],
        "blocked": row["blocked"],
        "model_spend": {m: nano_to_usd(v) for m, v in (row["model_spend"] or {}).items()},
        "model_max_budget": model_budgets_usd(row["model_max_budget"]),
        "soft_budget_cooldown": row["soft_budget_cooldown"],
        "litellm_budget_table": budget_out(budget),
        "last_active": iso(row["last_active"]),
        "created_at": iso(row["created_at"]),
        "created_by": row["created_by"],
        "updated_at": iso(row["updated_at"]),
        "updated_by": row["updated_by"],
    }
