"""Budget rows at the edge: the budget fields of LiteLLM's bodies in, the budget
row out (management-api.md §6). Shared by /budget/* and /customer/*, whose
bodies carry the same fields (LiteLLM's NewCustomerRequest extends BudgetNewRequest).

Money is float USD in the API and nano-USD in the row; `model_max_budget`
takes both LiteLLM shapes (`{"m": 10}` and `{"m": {"max_budget": 10,
"budget_duration": "1d"}}`, with the aliases `budget_limit` / `time_period`)
and is stored in the nested one. A duration sets `budget_reset_at` to the next
aligned boundary unless the body gives `budget_reset_at` itself.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import msgspec

from tianji.api.admin.common import BadRequest, ValidationFailed, iso
from tianji.api.admin.durations import next_reset, parse_duration
from tianji.store import nano_to_usd, usd_to_nano

__all__ = [
    "BUDGET_FIELDS",
    "BUDGET_UNSETTABLE",
    "BudgetFields",
    "budget_out",
    "budget_values",
    "given_budget_fields",
    "model_budgets",
    "model_budgets_usd",
    "money",
    "usd",
]

BUDGET_FIELDS = (
    "max_budget",
    "soft_budget",
    "max_parallel_requests",
    "tpm_limit",
    "rpm_limit",
    "budget_duration",
    "model_max_budget",
    "budget_reset_at",
    "allowed_models",
)
# unset_fields of /budget/update: what may be cleared, and the value that clears it.
BUDGET_UNSETTABLE: Mapping[str, Any] = {
    "max_budget": None,
    "soft_budget": None,
    "max_parallel_requests": None,
    "tpm_limit": None,
    "rpm_limit": None,
    "budget_duration": None,
    "budget_reset_at": None,
    "model_max_budget": {},
    "allowed_models": [],
}
_COUNTS = ("max_parallel_requests", "tpm_limit", "rpm_limit")


class BudgetFields(msgspec.Struct, kw_only=True):
    """The budget fields of a body; absent or null = not given."""

    max_budget: float | None = None
    soft_budget: float | None = None
    max_parallel_requests: int | None = None
    tpm_limit: int | None = None
    rpm_limit: int | None = None
    budget_duration: str | None = None
    model_max_budget: dict[str, Any] | None = None
    budget_reset_at: datetime | None = None
    allowed_models: list[str] | None = None


def given_budget_fields(fields: BudgetFields) -> list[str]:
    return [name for name in BUDGET_FIELDS if getattr(fields, name) is not None]


def money(name: str, value: float) -> int:
    """Float USD -> nano-USD; 400 for a negative or non-finite amount."""
    if not math.isfinite(value) or value < 0:
        raise BadRequest(
            f"{name} must be a non-negative finite number. Received: {value}", param=name
        )
    return usd_to_nano(value)


def usd(nano: int | None) -> float | None:
    return nano_to_usd(nano) if nano is not None else None


def _window(text: str, param: str) -> str:
    try:
        parse_duration(text)
    except ValueError as exc:
        raise BadRequest(str(exc), param=param) from None
    return text


def _amount(value: Any, path: str) -> int:
    """A per-model limit: a number, or a numeric string as in LiteLLM's own example."""
    if isinstance(value, str):
        try:
            value = float(value)
        except ValueError:
            value = None
    if not isinstance(value, int | float) or isinstance(value, bool):
        raise ValidationFailed(f"{path}: max_budget must be a number", param=path)
    if not math.isfinite(value) or value < 0:
        raise ValidationFailed(f"{path}: max_budget must be >= 0, got {value}", param=path)
    return usd_to_nano(float(value))


def _model_entry(model: str, entry: Any) -> dict[str, Any]:
    path = f"$.model_max_budget.{model}"
    if not isinstance(entry, dict):
        return {"max_budget": _amount(entry, path), "budget_duration": None}
    limit = entry.get("max_budget", entry.get("budget_limit"))
    if limit is None:
        raise ValidationFailed(f"{path}: max_budget is required", param=path)
    stored: dict[str, Any] = {"max_budget": _amount(limit, path), "budget_duration": None}
    window = entry.get("budget_duration", entry.get("time_period"))
    if window is not None:
        try:
            parse_duration(str(window))
        except ValueError as exc:
            raise ValidationFailed(f"{path}: {exc}", param=path) from None
        stored["budget_duration"] = str(window)
    for name in ("tpm_limit", "rpm_limit"):
        count = entry.get(name)
        if count is None:
            continue
        if not isinstance(count, int) or isinstance(count, bool) or count < 0:
            raise ValidationFailed(f"{path}.{name} must be an integer >= 0", param=path)
        stored[name] = count
    return stored


def model_budgets(given: Mapping[str, Any]) -> dict[str, Any]:
    """`model_max_budget` in either shape -> the stored nested form (422 if invalid)."""
    return {model: _model_entry(model, entry) for model, entry in given.items()}


def budget_values(fields: BudgetFields, now: datetime) -> dict[str, Any]:
    """Stored values of the budget fields that were given."""
    values: dict[str, Any] = {}
    for name in ("max_budget", "soft_budget"):
        amount = getattr(fields, name)
        if amount is not None:
            values[name] = money(name, amount)
    for name in _COUNTS:
        count = getattr(fields, name)
        if count is not None and count < 0:
            raise BadRequest(f"{name} must be >= 0. Received: {count}", param=name)
        if count is not None:
            values[name] = count
    if fields.budget_duration is not None:
        window = parse_duration(_window(fields.budget_duration, "budget_duration"))
        values["budget_duration"] = fields.budget_duration
        values["budget_reset_at"] = next_reset(now, window)
    if fields.budget_reset_at is not None:
        reset = fields.budget_reset_at
        values["budget_reset_at"] = reset if reset.tzinfo else reset.replace(tzinfo=UTC)
    if fields.model_max_budget is not None:
        values["model_max_budget"] = model_budgets(fields.model_max_budget)
    if fields.allowed_models is not None:
        values["allowed_models"] = fields.allowed_models
    return values


def model_budgets_usd(stored: Mapping[str, Any] | None) -> dict[str, Any]:
    return {m: {**e, "max_budget": usd(e.get("max_budget"))} for m, e in (stored or {}).items()}


def budget_out(row: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """The budget row of management-api.md §6 (also a customer's litellm_budget_table)."""
    if row is None:
        return None
    return {
        "budget_id": row["budget_id"],
        "max_budget": usd(row["max_budget"]),
        "soft_budget": usd(row["soft_budget"]),
        "max_parallel_requests": row["max_parallel_requests"],
        "tpm_limit": row["tpm_limit"],
        "rpm_limit": row["rpm_limit"],
        "model_max_budget": model_budgets_usd(row["model_max_budget"]),
        "budget_duration": row["budget_duration"],
        "budget_reset_at": iso(row["budget_reset_at"]),
        "allowed_models": row["allowed_models"] or [],
        "created_at": iso(row["created_at"]),
        "created_by": row["created_by"],
        "updated_at": iso(row["updated_at"]),
        "updated_by": row["updated_by"],
    }
