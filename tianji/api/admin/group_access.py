"""Object-level rules of the team and organization endpoints (management-api.md §11).

RBAC (tianji.guards.rbac) decided that the caller's role may call the route;
these decide which teams and organizations. Reading: proxy admins and admin
viewers everything; a user their teams and organizations; an org admin the
teams of their organizations; a plain key its own team. Managing members and
callbacks: proxy_admin, the org admin of the team's organization, the team's
admins. Budgets, limits, models, blocking and deleting: proxy_admin and the
org admin only.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from tianji.errors import PermissionDenied
from tianji.guards.auth import Identity
from tianji.store import Store

__all__ = [
    "check_admin_team",
    "check_manage_org",
    "check_manage_team",
    "check_read_org",
    "check_read_team",
    "denied",
    "readable_team_ids",
]


def denied(identity: Identity, what: str) -> PermissionDenied:
    return PermissionDenied(f"role={identity.role} may not {what}.", code="403")


def _org_admin_of(identity: Identity, team: Mapping[str, Any]) -> bool:
    return identity.administers_org(team["organization_id"])


def check_read_team(identity: Identity, team: Mapping[str, Any]) -> None:
    team_id = team["team_id"]
    if (
        identity.reads_everything
        or team_id in identity.team_roles
        or team_id == identity.team_id
        or _org_admin_of(identity, team)
    ):
        return
    raise denied(identity, f"read team {team_id}: not a member or admin of it")


def check_manage_team(identity: Identity, team: Mapping[str, Any], what: str) -> None:
    """Members and callbacks: proxy_admin, org admin of the team's org, team admin."""
    if (
        identity.is_admin
        or _org_admin_of(identity, team)
        or identity.administers_team(team["team_id"])
    ):
        return
    raise denied(identity, f"{what} of team {team['team_id']}")


def check_admin_team(identity: Identity, team: Mapping[str, Any], what: str) -> None:
    """Budgets, limits, models, block, delete: proxy_admin or the org's admin."""
    if identity.is_admin or _org_admin_of(identity, team):
        return
    raise denied(identity, f"{what} team {team['team_id']}")


async def readable_team_ids(identity: Identity, store: Store) -> set[str] | None:
    """Teams the caller may list; None = every team."""
    if identity.reads_everything:
        return None
    ids = set(identity.team_roles)
    if identity.team_id is not None:
        ids.add(identity.team_id)
    orgs = [o for o, role in identity.org_roles.items() if role == "org_admin"]
    if orgs:
        ids |= {row["team_id"] for row in await store.teams.find(organization_id=orgs)}
    return ids


def check_read_org(identity: Identity, organization_id: str) -> None:
    if identity.reads_everything or organization_id in identity.org_roles:
        return
    raise denied(identity, f"read organization {organization_id}: not a member of it")


def check_manage_org(identity: Identity, organization_id: str, what: str) -> None:
    if identity.is_admin or identity.administers_org(organization_id):
        return
    raise denied(identity, f"{what} of organization {organization_id}")
