"""Object-level rules of the key endpoints (management-api.md §11).

RBAC (tianji.guards.rbac) decided that the caller's role may call the route;
these decide which keys: proxy_admin all; an org admin the keys of the teams of
their organizations; a team admin the keys of their teams; an internal user
their own keys (in teams they belong to); viewers read only.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from tianji.api.admin.common import BadRequest
from tianji.errors import PermissionDenied
from tianji.guards.auth import Identity
from tianji.store import Store, nano_to_usd

__all__ = [
    "check_create",
    "check_manage",
    "check_read",
    "check_within_team",
    "visible_keys",
]


async def _org_of_team(store: Store, team_id: str | None) -> str | None:
    if team_id is None:
        return None
    team = await store.teams.get(team_id)
    return team["organization_id"] if team is not None else None


async def _administers(identity: Identity, store: Store, row: Mapping[str, Any]) -> bool:
    """Team admin of the key's team, or org admin of its organization."""
    team_id = row.get("team_id")
    if identity.administers_team(team_id):
        return True
    if not identity.org_roles:
        return False
    org_id = row.get("organization_id") or await _org_of_team(store, team_id)
    return identity.administers_org(org_id)


def _denied(identity: Identity, what: str) -> PermissionDenied:
    return PermissionDenied(f"role={identity.role} may not {what}.", code="403")


async def check_create(
    identity: Identity,
    store: Store,
    *,
    user_id: str | None,
    team_id: str | None,
    organization_id: str | None,
) -> None:
    if identity.is_admin:
        return
    target = {"team_id": team_id, "organization_id": organization_id}
    if (team_id or organization_id) and await _administers(identity, store, target):
        return
    own = user_id is not None and user_id == identity.user_id
    member = team_id is None or team_id in identity.team_roles
    if own and member and organization_id is None:
        return
    raise _denied(
        identity,
        "create this key: only your own keys (in teams you belong to), "
        "or keys of teams and organizations you administer",
    )


async def check_manage(identity: Identity, store: Store, row: Mapping[str, Any]) -> None:
    """Update, delete, regenerate: owner, team/org admin of the key, proxy_admin."""
    if identity.is_admin:
        return
    if row["user_id"] is not None and row["user_id"] == identity.user_id:
        return
    if await _administers(identity, store, row):
        return
    raise _denied(identity, f"change key {row['key_name']}")


async def check_read(identity: Identity, store: Store, row: Mapping[str, Any]) -> None:
    if identity.reads_everything or row["token"] == identity.key_hash:
        return
    if row["user_id"] is not None and row["user_id"] == identity.user_id:
        return
    if await _administers(identity, store, row):
        return
    raise _denied(identity, f"read key {row['key_name']}")


async def visible_keys(
    identity: Identity,
    store: Store,
    *,
    include_team_keys: bool,
    include_created_by_keys: bool,
) -> Mapping[str, Any] | None:
    """For /key/list: None = every key; else conditions of which one must hold."""
    if identity.reads_everything:
        return None
    if identity.user_id is None:
        return {"token": identity.key_hash}  # a plain key sees itself
    visible: dict[str, Any] = {"user_id": identity.user_id}
    teams = {t for t, role in identity.team_roles.items() if role == "admin"}
    orgs = [o for o, role in identity.org_roles.items() if role == "org_admin"]
    if orgs:
        teams |= {row["team_id"] for row in await store.teams.find(organization_id=orgs)}
        visible["organization_id"] = orgs
    if include_team_keys and teams:
        visible["team_id"] = sorted(teams)
    if include_created_by_keys:
        visible["created_by"] = identity.user_id
    return visible


def check_within_team(values: Mapping[str, Any], team: Mapping[str, Any] | None) -> None:
    """400 when a key asks for more than its team has (limits, models)."""
    if team is None:
        return
    for name in ("max_budget", "tpm_limit", "rpm_limit", "max_parallel_requests"):
        mine, theirs = values.get(name), team.get(name)
        if mine is not None and theirs is not None and mine > theirs:
            shown = nano_to_usd(mine) if name == "max_budget" else mine
            limit = nano_to_usd(theirs) if name == "max_budget" else theirs
            raise BadRequest(
                f"{name}={shown} is above the team's {name}={limit} (team {team['team_id']})",
                param=name,
            )
    team_models = team.get("models") or []
    if not team_models or "all-proxy-models" in team_models:
        return
    outside = [
        m for m in values.get("models") or [] if m not in team_models and m != "all-team-models"
    ]
    if outside:
        raise BadRequest(
            f"models {outside} are not among the team's models {team_models} "
            f"(team {team['team_id']})",
            param="models",
        )
