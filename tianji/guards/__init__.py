"""Request guards: who is calling (auth.py) and what they may do before a call.

`CallGuard` is the seam for model access, budgets and rate limits: the LLM
endpoints call `before_call` once the model group is known (guards see the
body's model, which Litestar's own guards cannot). `requested` is the name the
caller sent (an alias, or a name a wildcard group matched): an allow-list may
name it rather than the group.
"""

from __future__ import annotations

from typing import Protocol

from tianji.compile.model import RoutePlan
from tianji.guards.auth import Identity

__all__ = ["AllowAll", "CallGuard"]


class CallGuard(Protocol):
    async def before_call(
        self,
        identity: Identity,
        plan: RoutePlan,
        model_group: str,
        requested: str | None = None,
    ) -> None:
        """Raise a TianjiError (401/403/429...) to refuse the call."""
        ...


class AllowAll:
    """Master key only: nothing to check beyond authentication."""

    async def before_call(
        self,
        identity: Identity,
        plan: RoutePlan,
        model_group: str,
        requested: str | None = None,
    ) -> None:
        return None
