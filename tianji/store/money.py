"""Money at the edge: the API speaks float USD, the store integer nano-USD (10**9 per USD).

Conversion goes through the float's shortest decimal text (`repr`), so 0.1 USD is
exactly 100_000_000 nano-USD, and rounds half-even below one nano-USD.
"""

from __future__ import annotations

import math
from decimal import ROUND_HALF_EVEN, Decimal

__all__ = ["NANO_PER_USD", "nano_to_usd", "usd_to_nano"]

NANO_PER_USD = 10**9


def usd_to_nano(usd: float | int) -> int:
    if isinstance(usd, float) and not math.isfinite(usd):
        raise ValueError(f"not a finite amount: {usd}")
    nano = Decimal(repr(usd)) * NANO_PER_USD
    return int(nano.quantize(Decimal(1), rounding=ROUND_HALF_EVEN))


def nano_to_usd(nano: int) -> float:
    return nano / NANO_PER_USD
