"""Route permission (management-api.md §11, guards.md §2): one table, no if-chains.

`ROUTE_ROLES` maps each management route id (routes.yaml) to the roles that
may call it, like the rows (capabilities) and role columns of §11. A caller passes when any of
its roles (`Identity.roles`) is in the row. Object-level rules ("own keys",
"keys of own teams") stay in the endpoints, which see the objects.

A management route missing from the table is proxy_admin-only. To open a new
route to other roles, add one row here; tests/guards/test_rbac.py checks that
every `auth: mgmt` route of routes.yaml has a row, so the decision is explicit.

On top of the role: the key's `key_type` and `allowed_routes` (guards.md §2)
narrow every route, LLM routes included.
"""

from __future__ import annotations

from collections.abc import Mapping
from fnmatch import fnmatchcase
from types import MappingProxyType

from tianji.compile.model import RoutePlan
from tianji.errors import PermissionDenied
from tianji.guards.auth import Identity

__all__ = [
    "ROLES",
    "ROUTE_GROUPS",
    "ROUTE_ROLES",
    "allowed_roles",
    "authorize",
    "routes_for_role",
]

ROLES = (
    "proxy_admin",
    "proxy_admin_viewer",
    "org_admin",
    "team_admin",
    "internal_user",
    "internal_user_viewer",
    "plain_key",
)

_ADMIN = frozenset({"proxy_admin"})
_VIEWERS = _ADMIN | {"proxy_admin_viewer"}
_EVERYONE = frozenset(ROLES)
# Those who may mint and manage keys (each within its own scope).
_KEY_WRITERS = frozenset({"proxy_admin", "org_admin", "team_admin", "internal_user"})

ROUTE_ROLES: Mapping[str, frozenset[str]] = MappingProxyType(
    {
        # --- utils and health
        "supported_openai_params": _EVERYONE,
        "token_counter": _EVERYONE,
        "health": _VIEWERS,
        # --- keys (§1): /key/info of the calling key and /key/health are everyone's
        "key_info": _EVERYONE,
        "key_health": _EVERYONE,
        "key_list": _EVERYONE,
        "key_generate": _KEY_WRITERS,
        "key_regenerate": _KEY_WRITERS,
        "key_update": _KEY_WRITERS,
        "key_delete": _KEY_WRITERS,
        "key_service_account_generate": _ADMIN | {"org_admin", "team_admin"},
        "key_reset_spend": _ADMIN | {"team_admin"},
        "key_block": _ADMIN,
        "key_unblock": _ADMIN,
        "key_bulk_update": _ADMIN,
        "key_info_v2": _VIEWERS,
        "key_aliases": _VIEWERS,
        # --- models (§8): a team admin writes models of own teams (model_info.team_id;
        # tianji/api/admin/models.py); the info routes list what the caller may call
        "model_new": _ADMIN | {"team_admin"},
        "model_update": _ADMIN | {"team_admin"},
        "model_delete": _ADMIN | {"team_admin"},
        "model_info": _EVERYONE,
        "model_group_info": _EVERYONE,
        # --- teams (§3) and organizations (§4): which team / organization in
        # tianji/api/admin/group_access.py (own teams, teams of own orgs, ...)
        # internal users too once allow_internal_user_team_creation exists (§11)
        "team_new": _ADMIN | {"org_admin"},
        "team_update": _ADMIN | {"org_admin", "team_admin"},
        "team_delete": _ADMIN | {"org_admin"},
        "team_block": _ADMIN | {"org_admin"},
        "team_unblock": _ADMIN | {"org_admin"},
        "team_model_add": _ADMIN | {"org_admin"},
        "team_model_delete": _ADMIN | {"org_admin"},
        "team_member_add": _ADMIN | {"org_admin", "team_admin"},
        "team_member_delete": _ADMIN | {"org_admin", "team_admin"},
        "team_member_update": _ADMIN | {"org_admin", "team_admin"},
        "team_callback_add": _ADMIN | {"org_admin", "team_admin"},
        "team_callback_get": _ADMIN | {"org_admin", "team_admin"},
        "team_callback_delete": _ADMIN | {"org_admin", "team_admin"},
        "team_disable_logging": _ADMIN | {"org_admin", "team_admin"},
        "team_info": _EVERYONE,
        "team_list": _EVERYONE,
        "team_list_v2": _EVERYONE,
        "team_daily_activity": _EVERYONE,
        "team_available": _EVERYONE - {"plain_key"},
        "organization_new": _ADMIN,
        "organization_delete": _ADMIN,
        "organization_update": _ADMIN | {"org_admin"},
        "organization_member_add": _ADMIN | {"org_admin"},
        "organization_member_update": _ADMIN | {"org_admin"},
        "organization_member_delete": _ADMIN | {"org_admin"},
        "organization_info": _EVERYONE - {"plain_key"},
        "organization_list": _EVERYONE - {"plain_key"},
        # --- users (§2): object-level scope (self, org members, team members) in
        # tianji/api/admin/user_access.py
        "user_new": _ADMIN | {"org_admin"},
        "user_delete": _ADMIN | {"org_admin"},
        "user_bulk_update": _ADMIN | {"org_admin"},
        "user_update": _ADMIN | {"org_admin", "internal_user"},
        "user_info": _EVERYONE - {"plain_key"},
        "user_info_v2": _EVERYONE - {"plain_key"},
        "user_daily_activity": _EVERYONE - {"plain_key"},
        "user_list": _VIEWERS | {"org_admin"},
        # --- customers (§5) and budgets (§6): admin writes, admin-viewer reads
        "customer_new": _ADMIN,
        "customer_update": _ADMIN,
        "customer_delete": _ADMIN,
        "customer_block": _ADMIN,
        "customer_unblock": _ADMIN,
        "customer_info": _VIEWERS,
        "customer_list": _VIEWERS,
        "customer_daily_activity": _VIEWERS,
        "budget_new": _ADMIN,
        "budget_update": _ADMIN,
        "budget_delete": _ADMIN,
        "budget_info": _VIEWERS,
        "budget_list": _VIEWERS,
        "budget_settings": _VIEWERS,
    }
)

# allowed_routes group names (guards.md §2) -> paths (without the /v1 prefix).
_INFO_PATHS = frozenset(
    {
        "/key/info",
        "/v2/key/info",
        "/key/list",
        "/key/health",
        "/user/info",
        "/v2/user/info",
        "/team/info",
        "/team/list",
        "/v2/team/list",
        "/organization/info",
        "/model/info",
        "/v1/model/info",
        "/v2/model/info",
        "/model_group/info",
        "/health",
    }
)
ROUTE_GROUPS = (
    "llm_api_routes",
    "openai_routes",
    "info_routes",
    "management_routes",
    "spend_tracking_routes",
)


def _in_group(group: str, plan: RoutePlan, path: str) -> bool:
    if group in ("llm_api_routes", "openai_routes"):
        return plan.auth == "llm"
    if group == "management_routes":
        return plan.auth == "mgmt"
    if group == "info_routes":
        return path in _INFO_PATHS
    if group == "spend_tracking_routes":
        return path.startswith(("/spend", "/global/spend", "/global/activity"))
    return False


def allowed_roles(route_id: str) -> frozenset[str]:
    return ROUTE_ROLES.get(route_id, _ADMIN)


def routes_for_role(role: str) -> frozenset[str]:
    """The table read by column: route ids a role may call."""
    return frozenset(route for route, roles in ROUTE_ROLES.items() if role in roles)


def route_path(plan: RoutePlan) -> str:
    """The path routes are matched on: LLM routes without their /v1 prefix."""
    if plan.auth == "llm" and plan.path.startswith("/v1/"):
        return plan.path[3:]
    return plan.path


def _key_type_allows(key_type: str, plan: RoutePlan, method: str) -> bool:
    if key_type == "llm_api":
        return plan.auth == "llm"
    if key_type == "management":
        return plan.auth == "mgmt"
    if key_type == "read_only":
        return plan.auth == "mgmt" and method == "GET"
    return True


def _allowed_routes_allow(entries: tuple[str, ...], plan: RoutePlan, path: str) -> bool:
    for entry in entries:
        if entry in ROUTE_GROUPS:
            if _in_group(entry, plan, path):
                return True
        elif entry == path or entry == plan.path or fnmatchcase(path, entry):
            return True
    return False


def authorize(identity: Identity, plan: RoutePlan, method: str) -> None:
    """403 `permission_denied` unless the identity may call this route."""
    if identity.is_master or identity.role == "anonymous":
        return
    path = route_path(plan)
    allowed = _key_type_allows(identity.key_type, plan, method)
    if allowed and identity.allowed_routes:
        allowed = _allowed_routes_allow(identity.allowed_routes, plan, path)
    if allowed and plan.auth == "mgmt":
        allowed = bool(identity.roles & allowed_roles(plan.route_id))
    if not allowed:
        raise PermissionDenied(
            f"user not allowed to access this route, role={identity.role}. "
            f"Trying to access: {path}",
            code="403",
        )
