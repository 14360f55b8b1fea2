"""Endpoint factories of the admin routes, by operation name (merged into tianji.api).

Each area adds its operations here: keys (keys.py); users, teams, organizations,
customers, budgets and models build on tianji.store's repositories the same way.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

from tianji.api.admin.budgets import BUDGET_OPERATIONS
from tianji.api.admin.customers import CUSTOMER_OPERATIONS
from tianji.api.admin.keys import KEY_OPERATIONS
from tianji.api.admin.models import MODEL_OPERATIONS
from tianji.api.admin.organizations import ORGANIZATION_OPERATIONS
from tianji.api.admin.teams import TEAM_OPERATIONS
from tianji.api.admin.users import USER_OPERATIONS

__all__ = ["OPERATIONS"]

OPERATIONS: Mapping[str, Any] = MappingProxyType(
    {
        **KEY_OPERATIONS,
        **MODEL_OPERATIONS,
        **TEAM_OPERATIONS,
        **ORGANIZATION_OPERATIONS,
        **USER_OPERATIONS,
        **CUSTOMER_OPERATIONS,
        **BUDGET_OPERATIONS,
    }
)
