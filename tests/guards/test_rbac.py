"""Route permission: the role table, key_type and allowed_routes (management-api.md §11)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import MASTER_KEY, Gateway, keyed_config, running_gateway
from tests.support.fake_upstream import FakeUpstream
from tianji.compile.model import RoutePlan
from tianji.compile.pipeline import Built, build
from tianji.errors import PermissionDenied
from tianji.guards.auth import Identity
from tianji.guards.rbac import ROLES, ROUTE_ROLES, allowed_roles, authorize, routes_for_role
from tianji.store import Actor, Store, hash_key, key_name

ACTOR = Actor()


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Built:
    config = tmp_path_factory.mktemp("rbac") / "config.yaml"
    config.write_text("general_settings: {master_key: sk-test-master}\n")
    result, problems = build(config, strict_env=False)
    assert result is not None, problems
    return result


def _plan(built: Built, route_id: str) -> RoutePlan:
    return next(p for p in built.gateway.routes if p.route_id == route_id and p.alias_of is None)


def test_every_management_route_has_a_row(built: Built) -> None:
    declared = {p.route_id for p in built.gateway.routes if p.auth == "mgmt"}
    assert declared - set(ROUTE_ROLES) == set(), "add these routes to tianji/guards/rbac.py"
    assert set(ROUTE_ROLES) - declared == set(), "rows for routes routes.yaml does not declare"
    assert all(roles <= set(ROLES) and "proxy_admin" in roles for roles in ROUTE_ROLES.values())


def test_the_table_read_by_role() -> None:
    plain = routes_for_role("plain_key")
    assert {"key_info", "key_health", "key_list", "token_counter"} <= plain
    key_admin = {r for r in ROUTE_ROLES if r.startswith("key_")} - {
        "key_info",
        "key_health",
        "key_list",
    }
    assert plain & key_admin == set()  # a plain key never mints, changes or lists others
    assert routes_for_role("proxy_admin") == set(ROUTE_ROLES)
    assert "key_block" not in routes_for_role("team_admin")
    assert allowed_roles("some_future_route") == {"proxy_admin"}  # unlisted: admin only


@pytest.mark.parametrize(
    ("key_type", "route_id", "method", "allowed"),
    [
        ("llm_api", "chat", "POST", True),
        ("llm_api", "key_info", "GET", False),
        ("management", "key_generate", "POST", True),
        ("management", "chat", "POST", False),
        ("read_only", "key_list", "GET", True),
        ("read_only", "key_generate", "POST", False),
        ("read_only", "chat", "POST", False),
        ("default", "chat", "POST", True),
    ],
)
def test_key_type_narrows_routes(
    built: Built, key_type: str, route_id: str, method: str, allowed: bool
) -> None:
    identity = Identity("h", role="proxy_admin", key_type=key_type)
    _check(identity, _plan(built, route_id), method, allowed)


@pytest.mark.parametrize(
    ("entries", "route_id", "allowed"),
    [
        (("/chat/completions",), "chat", True),
        (("/chat/completions",), "embeddings", False),
        (("llm_api_routes",), "embeddings", True),
        (("llm_api_routes",), "key_list", False),
        (("/key/*",), "key_generate", True),
        (("/key/*",), "chat", False),
        (("info_routes",), "key_info", True),
        (("info_routes",), "key_generate", False),
        (("management_routes",), "key_block", True),
    ],
)
def test_allowed_routes(
    built: Built, entries: tuple[str, ...], route_id: str, allowed: bool
) -> None:
    identity = Identity("h", role="proxy_admin", allowed_routes=entries)
    _check(identity, _plan(built, route_id), _plan(built, route_id).methods[0], allowed)


def _check(identity: Identity, plan: RoutePlan, method: str, allowed: bool) -> None:
    if allowed:
        authorize(identity, plan, method)
        return
    with pytest.raises(PermissionDenied) as denied:
        authorize(identity, plan, method)
    assert "user not allowed to access this route, role=proxy_admin" in denied.value.message


# --------------------------------------------------------------------------- the matrix, over HTTP

# role -> (user row, team role in t1, org role in o1); plain_key has no user.
_PEOPLE: dict[str, tuple[str | None, str | None, str | None]] = {
    "proxy_admin": ("proxy_admin", None, None),
    "proxy_admin_viewer": ("proxy_admin_viewer", None, None),
    "org_admin": ("internal_user", None, "org_admin"),
    "team_admin": ("internal_user", "admin", None),
    "internal_user": ("internal_user", "user", None),
    "internal_user_viewer": ("internal_user_viewer", None, None),
    "plain_key": (None, None, None),
}


async def _seed(store: Store) -> dict[str, str]:
    """One key per role (its caller key); returns role -> plaintext."""
    await store.budgets.insert({"budget_id": "b1"}, actor=ACTOR)
    await store.organizations.insert(
        {"organization_id": "o1", "organization_alias": "O", "budget_id": "b1"}, actor=ACTOR
    )
    await store.teams.insert({"team_id": "t1", "organization_id": "o1"}, actor=ACTOR)
    keys = {}
    for role, (user_role, team_role, org_role) in _PEOPLE.items():
        user_id = f"u-{role}" if user_role else None
        if user_id:
            await store.users.insert({"user_id": user_id, "user_role": user_role}, actor=ACTOR)
        if team_role and user_id:
            await store.team_members.add(user_id, "t1", role=team_role, actor=ACTOR)
        if org_role and user_id:
            await store.org_members.add(user_id, "o1", role=org_role, actor=ACTOR)
        keys[role] = await _key(store, f"sk-caller-{role}-0000000", user_id)
    return keys


async def _key(store: Store, plaintext: str, user_id: str | None) -> str:
    team_id = "t1" if user_id in ("u-team_admin", "u-org_admin", "u-internal_user") else None
    await store.keys.create(
        {
            "token": hash_key(plaintext),
            "key_name": key_name(plaintext),
            "user_id": user_id,
            "team_id": team_id,
        },
        actor=ACTOR,
    )
    return plaintext


# route id -> (method, path, body); {target} is a fresh key owned by the caller's user.
# The key routes and utils; the user/team/org/... endpoints keep their own matrices.
_CALLS: dict[str, tuple[str, str, Any]] = {
    "supported_openai_params": ("GET", "/utils/supported_openai_params?model=gpt-4o-mini", None),
    "token_counter": ("POST", "/utils/token_counter", {"model": "gpt-4o", "prompt": "hi"}),
    "health": ("GET", "/health", None),
    "key_generate": ("POST", "/key/generate", {}),
    "key_service_account_generate": ("POST", "/key/service-account/generate", {"team_id": "t1"}),
    "key_update": ("POST", "/key/update", {"key": "{target}", "metadata": {"a": 1}}),
    "key_delete": ("POST", "/key/delete", {"keys": ["{target}"]}),
    "key_info": ("GET", "/key/info?key={target}", None),
    "key_info_v2": ("POST", "/v2/key/info", {"keys": ["{target}"]}),
    "key_list": ("GET", "/key/list", None),
    "key_regenerate": ("POST", "/key/regenerate", {"key": "{target}"}),
    "key_block": ("POST", "/key/block", {"key": "{target}"}),
    "key_unblock": ("POST", "/key/unblock", {"key": "{target}"}),
    "key_bulk_update": ("POST", "/key/bulk_update", {"keys": [{"key": "{target}", "tags": ["x"]}]}),
    "key_reset_spend": ("POST", "/key/{target}/reset_spend", {"reset_to": 0}),
    "key_aliases": ("GET", "/key/aliases", None),
    "key_health": ("POST", "/key/health", {}),
}


def _fill(value: Any, target: str) -> Any:
    if isinstance(value, str):
        return value.replace("{target}", target)
    if isinstance(value, list):
        return [_fill(v, target) for v in value]
    if isinstance(value, dict):
        return {k: _fill(v, target) for k, v in value.items()}
    return value


@pytest.fixture
def gw(upstream: FakeUpstream, db_url: str, tmp_path: Path) -> Iterator[Gateway]:
    with running_gateway(keyed_config(upstream, db_url), tmp_path) as gateway:
        yield gateway


@pytest.mark.timeout(60)
def test_every_role_on_every_management_route(gw: Gateway) -> None:
    mine = {r for r in ROUTE_ROLES if r.startswith("key_")} | {
        "supported_openai_params",
        "token_counter",
        "health",
    }
    assert set(_CALLS) == mine, "every key route (and utils) is in the matrix"
    callers = gw.call(lambda: _seed(gw.store))
    outcomes: dict[tuple[str, str], int] = {}
    with httpx.Client(base_url=gw.url, timeout=10) as client:
        for role, caller in callers.items():
            user_id = f"u-{role}" if _PEOPLE[role][0] else None
            for route_id, (method, path, body) in _CALLS.items():
                # The target: a fresh key of the caller's user (a plain key reads itself only).
                target = caller
                if user_id is not None:
                    plaintext = f"sk-target-{len(outcomes):04d}-000000000"
                    target = gw.call(lambda p=plaintext, u=user_id: _key(gw.store, p, u))
                response = client.request(
                    method,
                    _fill(path, target),
                    json=_fill(body, target),
                    headers={"authorization": f"Bearer {caller}"},
                )
                outcomes[role, route_id] = response.status_code
    wrong = {
        (role, route): status
        for (role, route), status in outcomes.items()
        if (status == 403) == (role in ROUTE_ROLES[route]) or status in (401, 500)
    }
    assert wrong == {}, "status 403 must mean: role not in the route's row"
    # Allowed calls on the caller's own keys succeed outright.
    assert outcomes["internal_user", "key_update"] == 200
    assert outcomes["team_admin", "key_reset_spend"] == 200
    assert outcomes["plain_key", "key_info"] == 200
    assert outcomes["proxy_admin", "key_block"] == 200


def test_roles_object_rules(gw: Gateway) -> None:
    """Allowed by role is not allowed on everything: own keys and administered teams."""
    callers = gw.call(lambda: _seed(gw.store))
    stranger = gw.call(lambda: _key(gw.store, "sk-stranger-key-000000001", None))
    headers = {"authorization": f"Bearer {callers['internal_user']}"}
    update = httpx.post(
        gw.url + "/key/update", json={"key": stranger, "max_budget": 1}, headers=headers
    )
    assert update.status_code == 403
    foreign_team = httpx.post(
        gw.url + "/key/generate", json={"team_id": "t1", "user_id": "u-x"}, headers=headers
    )
    assert foreign_team.status_code == 403
    own = httpx.post(gw.url + "/key/generate", json={}, headers=headers).json()
    assert own["user_id"] == "u-internal_user"
    listed = httpx.get(gw.url + "/key/list", headers=headers).json()
    assert listed["total_count"] == 2  # its caller key and the one it just made
    team_admin = {"authorization": f"Bearer {callers['team_admin']}"}
    members = httpx.get(
        gw.url + "/key/list", params={"include_team_keys": "true"}, headers=team_admin
    )
    assert members.json()["total_count"] == 3  # t1 keys: team admin, org admin, member
    org_admin = {"authorization": f"Bearer {callers['org_admin']}"}
    moved = httpx.post(
        gw.url + "/key/generate",
        json={"team_id": "t1", "user_id": "u-internal_user"},
        headers=org_admin,
    )
    assert moved.status_code == 200, moved.text
    master = httpx.get(gw.url + "/key/list", headers={"authorization": f"Bearer {MASTER_KEY}"})
    assert master.json()["total_count"] == 10
