"""Endpoint factories of the passthrough routes, by operation name (merged into tianji.api).

One operation per provider (`passthrough_<name>`, names of routes.md §4); the
aliases (`/vertex-ai/...`, `/openai_passthrough/...`, `/v1/anthropic/...`) name
the same routes.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

from tianji.api.passthrough.handler import make_passthrough_factory
from tianji.api.passthrough.targets import TARGETS

__all__ = ["OPERATIONS"]

OPERATIONS: Mapping[str, Any] = MappingProxyType(
    {f"passthrough_{name}": make_passthrough_factory(name) for name in TARGETS}
)
