"""Everything authentication needs about a key, in one load.

The key row, its user, team and organization, and the user's team and
organization roles: what the identity cache keeps (guards.md §1.3), so a cached
key costs no query at all. At most six primary-key or indexed selects on a miss,
the independent ones concurrently.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from tianji.store.repo import Row, now

if TYPE_CHECKING:
    from tianji.store.store import Store

__all__ = ["KeyRecord", "load_key_record"]

_NONE: Mapping[str, str] = MappingProxyType({})


@dataclass(frozen=True, slots=True)
class KeyRecord:
    key: Row
    user: Row | None = None
    team: Row | None = None
    organization: Row | None = None
    # The key's user: team_id -> "admin" | "user"; organization_id -> user_role.
    team_roles: Mapping[str, str] = field(default_factory=lambda: _NONE)
    org_roles: Mapping[str, str] = field(default_factory=lambda: _NONE)
    # Set when the key was found by an old hash still in its grace period.
    revoke_at: datetime | None = None


async def _none() -> None:
    return None


async def _roles(store: Store, user_id: str | None) -> tuple[dict[str, str], dict[str, str]]:
    if user_id is None:
        return {}, {}
    teams, orgs = await asyncio.gather(
        store.team_members.of_user(user_id), store.org_members.of_user(user_id)
    )
    return (
        {row["team_id"]: row["role"] for row in teams},
        {row["organization_id"]: row["user_role"] for row in orgs},
    )


async def load_key_record(store: Store, token: str) -> KeyRecord | None:
    """None when no key has this hash (or its grace period is over)."""
    key = await store.keys.get(token)
    revoke_at = None
    if key is None:
        old = await store.keys.deprecated(token)
        if old is None or old["revoke_at"] <= now():
            return None
        key = await store.keys.get(old["active_token_id"])
        if key is None:
            return None
        revoke_at = old["revoke_at"]
    user_id: str | None = key["user_id"]
    team_id: str | None = key["team_id"]
    user, team, (team_roles, org_roles) = await asyncio.gather(
        store.users.get(user_id) if user_id else _none(),
        store.teams.get(team_id) if team_id else _none(),
        _roles(store, user_id),
    )
    org_id: Any = key["organization_id"] or (team["organization_id"] if team else None)
    organization = await store.organizations.get(org_id) if org_id else None
    return KeyRecord(
        key=key,
        user=user,
        team=team,
        organization=organization,
        team_roles=MappingProxyType(team_roles),
        org_roles=MappingProxyType(org_roles),
        revoke_at=revoke_at,
    )
