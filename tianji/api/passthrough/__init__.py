"""Endpoint factories of the passthrough routes, by operation name (merged into tianji.api)."""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

__all__ = ["OPERATIONS"]

OPERATIONS: Mapping[str, Any] = MappingProxyType({})
