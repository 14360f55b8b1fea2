"""Durations of the management API: key lifetimes and budget windows.

Grammar (management-api.md §0): `^\\d+(s|m|h|d|w|mo)$`, or Go's compound form
(`1h30m`, `90s`). A key's `expires` is creation time + duration exactly; a
budget's `budget_reset_at` is the next aligned boundary (guards.md §3.5), in UTC.
"""

from __future__ import annotations

import calendar
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

__all__ = ["Duration", "add_months", "next_reset", "parse_duration"]

_SIMPLE = re.compile(r"^(\d+)(s|m|h|d|w|mo)$")
_COMPOUND = re.compile(r"^(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?$")
_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86_400, "w": 604_800}


@dataclass(frozen=True, slots=True)
class Duration:
    text: str
    count: int
    # "s", "m", "h", "d", "w", "mo", or "" for a compound (unaligned) duration.
    unit: str
    seconds: int = 0
    months: int = 0

    def after(self, start: datetime) -> datetime:
        return add_months(start, self.months) + timedelta(seconds=self.seconds)


def parse_duration(text: str) -> Duration:
    """ValueError with a readable message for anything else."""
    match = _SIMPLE.match(text)
    if match:
        count, unit = int(match.group(1)), match.group(2)
        if count <= 0:
            raise ValueError(f"Invalid duration {text!r}: must be positive")
        if unit == "mo":
            return Duration(text, count, unit, months=count)
        return Duration(text, count, unit, seconds=count * _SECONDS[unit])
    match = _COMPOUND.match(text)
    if text and match and any(match.groups()):
        hours, minutes, seconds = (int(g) if g else 0 for g in match.groups())
        total = hours * 3600 + minutes * 60 + seconds
        if total > 0:
            return Duration(text, total, "", seconds=total)
    raise ValueError(
        f"Invalid duration {text!r}: use e.g. 30s, 15m, 1h, 7d, 1w, 1mo (or Go's 1h30m)"
    )


def add_months(start: datetime, months: int) -> datetime:
    """Calendar months; the day is clamped to the target month's length."""
    if months == 0:
        return start
    index = start.year * 12 + (start.month - 1) + months
    year, month = divmod(index, 12)
    day = min(start.day, calendar.monthrange(year, month + 1)[1])
    return start.replace(year=year, month=month + 1, day=day)


def next_reset(now: datetime, duration: Duration) -> datetime:
    """The next window boundary strictly after `now` (UTC)."""
    now = now.astimezone(UTC)
    n, unit = duration.count, duration.unit
    midnight = now.replace(hour=0, minute=0, second=0, microsecond=0)
    if unit == "s":
        start = now.replace(second=0, microsecond=0)
        second = (now.second // n + 1) * n
        return start + timedelta(seconds=second) if second < 60 else start + timedelta(minutes=1)
    if unit == "m":
        start = now.replace(minute=0, second=0, microsecond=0)
        minute = (now.minute // n + 1) * n
        return start + timedelta(minutes=minute) if minute < 60 else start + timedelta(hours=1)
    if unit == "h":
        hour = (now.hour // n + 1) * n
        return midnight + timedelta(hours=hour) if hour < 24 else midnight + timedelta(days=1)
    if (unit == "d" and n == 7) or (unit == "w" and n == 1):
        return midnight + timedelta(days=7 - now.weekday())
    if unit == "d" and n == 30:
        return add_months(midnight.replace(day=1), 1)
    if unit in ("d", "w"):
        return midnight + timedelta(days=n * (7 if unit == "w" else 1))
    if unit == "mo":
        return add_months(midnight.replace(day=1), n)
    return now + timedelta(seconds=duration.seconds)
