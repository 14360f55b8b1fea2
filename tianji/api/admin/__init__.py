"""Endpoint factories of the admin routes, by operation name (merged into tianji.api).

Each area adds its operations here: keys (keys.py); users, teams, organizations,
customers, budgets and models build on tianji.store's repositories the same way.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

from tianji.api.admin.keys import KEY_OPERATIONS

__all__ = ["OPERATIONS"]

OPERATIONS: Mapping[str, Any] = MappingProxyType({**KEY_OPERATIONS})
