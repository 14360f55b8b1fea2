"""Object-level rules of the user endpoints (management-api.md §11).

RBAC (tianji.guards.rbac) decided that the caller's role may call the route;
these decide which users. Reading: proxy_admin and the admin viewer all users,
an org admin the members of their organizations, a team admin the members of
their teams, everyone themselves. Writing: proxy_admin all; an org admin the
members of their organizations that hold no admin role, never changing a role;
a user their own profile fields only (alias, email, metadata), so nobody raises
their own budget or unblocks themselves.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from tianji.api.admin.user_rows import ADMIN_ROLES
from tianji.errors import PermissionDenied
from tianji.guards.auth import Identity
from tianji.store import Store

__all__ = [
    "SELF_EDITABLE",
    "admin_orgs",
    "admin_teams",
    "can_read_user",
    "check_org_scope",
    "check_user_manage",
    "check_user_read",
    "check_user_update",
    "denied",
]

# What a user may change on their own row.
SELF_EDITABLE = frozenset({"user_alias", "user_email", "metadata"})


def denied(identity: Identity, what: str) -> PermissionDenied:
    return PermissionDenied(f"role={identity.role} may not {what}.", code="403")


def admin_orgs(identity: Identity) -> list[str]:
    return sorted(o for o, role in identity.org_roles.items() if role == "org_admin")


def admin_teams(identity: Identity) -> list[str]:
    return sorted(t for t, role in identity.team_roles.items() if role == "admin")


async def _in_admin_orgs(identity: Identity, store: Store, user_id: str) -> bool:
    orgs = admin_orgs(identity)
    return bool(orgs) and bool(await store.org_members.find(user_id=user_id, organization_id=orgs))


async def can_read_user(identity: Identity, store: Store, user_id: str) -> bool:
    if identity.reads_everything or user_id == identity.user_id:
        return True
    if await _in_admin_orgs(identity, store, user_id):
        return True
    teams = admin_teams(identity)
    return bool(teams) and bool(await store.team_members.find(user_id=user_id, team_id=teams))


async def check_user_read(identity: Identity, store: Store, user_id: str) -> None:
    if not await can_read_user(identity, store, user_id):
        raise denied(identity, f"read user {user_id}")


async def check_user_manage(identity: Identity, store: Store, user: Mapping[str, Any]) -> None:
    """Delete (and any change beyond one's own profile): proxy_admin, or an org admin
    for another non-admin member of their organizations (not themselves: an org
    admin does not raise their own budget)."""
    if identity.is_admin:
        return
    others = user["user_id"] != identity.user_id
    if (
        others
        and user["user_role"] not in ADMIN_ROLES
        and await _in_admin_orgs(identity, store, user["user_id"])
    ):
        return
    raise denied(identity, f"manage user {user['user_id']}")


async def check_user_update(
    identity: Identity, store: Store, user: Mapping[str, Any], changing: Iterable[str]
) -> None:
    changed = set(changing)
    if identity.is_admin:
        return
    if "user_role" in changed:
        raise denied(identity, "change a user's role (proxy_admin only)")
    if user["user_id"] == identity.user_id and changed <= SELF_EDITABLE:
        return
    await check_user_manage(identity, store, user)


def check_org_scope(
    identity: Identity, organizations: Iterable[str], team_orgs: Iterable[str | None]
) -> None:
    """An org admin creating a user: only into organizations they administer, and only
    into teams of those organizations."""
    if identity.is_admin:
        return
    mine = set(admin_orgs(identity))
    wanted = set(organizations)
    if not wanted or not wanted <= mine:
        raise denied(
            identity,
            "create a user outside the organizations they administer "
            f"(pass organizations within {sorted(mine)})",
        )
    if any(org not in mine for org in team_orgs):
        raise denied(identity, "add a user to a team outside their organizations")
