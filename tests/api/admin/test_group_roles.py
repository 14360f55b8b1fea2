"""The role matrix of the team and organization routes (management-api.md §11), over
HTTP: every route x every role answers 200, or 403 exactly when the role is not in
the route's row of tianji/guards/rbac.py. Each caller acts on objects within its
scope (its own team, its organization), so a 403 can only come from the table."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import Gateway, keyed_config, running_gateway
from tests.support.fake_upstream import FakeUpstream
from tianji.guards.rbac import ROLES, ROUTE_ROLES
from tianji.store import Actor, Store, hash_key, key_name

ACTOR = Actor()

# role -> (user_role, team role in its own team, org role in o1); plain_key: no user.
_PEOPLE: dict[str, tuple[str | None, str | None, str | None]] = {
    "proxy_admin": ("proxy_admin", None, None),
    "proxy_admin_viewer": ("proxy_admin_viewer", None, None),
    "org_admin": ("internal_user", None, "org_admin"),
    "team_admin": ("internal_user", "admin", "internal_user"),
    "internal_user": ("internal_user", "user", "internal_user"),
    "internal_user_viewer": ("internal_user_viewer", "user", "internal_user_viewer"),
    "plain_key": (None, None, None),
}

# route id -> (method, path, body); {r} is the caller's role. Each caller has its own
# team t-{r} in organization o1 (with members x-{r}-1 and x-{r}-2), a spare team
# d-{r} and a spare organization od-{r}; o1 has members ox-{r}-1 and ox-{r}-2.
_CALLS: dict[str, tuple[str, str, Any]] = {
    "team_new": ("POST", "/team/new", {"team_id": "n-{r}", "organization_id": "o1"}),
    "team_update": ("POST", "/team/update", {"team_id": "t-{r}", "team_alias": "A"}),
    "team_block": ("POST", "/team/block", {"team_id": "t-{r}"}),
    "team_unblock": ("POST", "/team/unblock", {"team_id": "t-{r}"}),
    "team_model_add": ("POST", "/team/model/add", {"team_id": "t-{r}", "models": ["gpt-4o"]}),
    "team_model_delete": ("POST", "/team/model/delete", {"team_id": "t-{r}", "models": ["o3"]}),
    "team_member_add": ("POST", "/team/member/add", {"team_id": "t-{r}", "user_id": "ta-{r}"}),
    "team_member_update": (
        "POST",
        "/team/member_update",
        {"team_id": "t-{r}", "user_id": "x-{r}-1", "role": "user"},
    ),
    "team_member_delete": (
        "POST",
        "/team/member/delete",
        {"team_id": "t-{r}", "user_id": "x-{r}-2"},
    ),
    "team_callback_add": (
        "POST",
        "/team/callback",
        {"team_id": "t-{r}", "callback_name": "langfuse", "callback_vars": {}},
    ),
    "team_callback_get": ("GET", "/team/callback?team_id=t-{r}", None),
    "team_callback_delete": ("DELETE", "/team/t-{r}/callback/langfuse", None),
    "team_disable_logging": ("POST", "/team/t-{r}/disable_logging", None),
    "team_info": ("GET", "/team/info?team_id=t-{r}", None),
    "team_list": ("GET", "/team/list", None),
    "team_list_v2": ("GET", "/v2/team/list", None),
    "team_daily_activity": ("GET", "/team/daily/activity", None),
    "team_available": ("GET", "/team/available", None),
    "team_delete": ("POST", "/team/delete", {"team_ids": ["d-{r}"]}),
    "organization_new": ("POST", "/organization/new", {"organization_alias": "new"}),
    "organization_update": (
        "PATCH",
        "/organization/update",
        {"organization_id": "o1", "organization_alias": "O"},
    ),
    "organization_info": ("GET", "/organization/info?organization_id=o1", None),
    "organization_list": ("GET", "/organization/list", None),
    "organization_member_add": (
        "POST",
        "/organization/member_add",
        {"organization_id": "o1", "member": {"user_id": "oa-{r}"}},
    ),
    "organization_member_update": (
        "PATCH",
        "/organization/member_update",
        {"organization_id": "o1", "user_id": "ox-{r}-1", "role": "internal_user"},
    ),
    "organization_member_delete": (
        "DELETE",
        "/organization/member_delete",
        {"organization_id": "o1", "user_id": "ox-{r}-2"},
    ),
    "organization_delete": ("DELETE", "/organization/delete", {"organization_ids": ["od-{r}"]}),
}


async def _user(store: Store, user_id: str, role: str = "internal_user") -> None:
    await store.users.insert({"user_id": user_id, "user_role": role}, actor=ACTOR)


async def _seed_role(store: Store, role: str) -> str:
    """The caller's user, teams, memberships and key; returns the key's plaintext."""
    user_role, team_role, org_role = _PEOPLE[role]
    user_id = f"u-{role}" if user_role else None
    team_id = f"t-{role}"
    await store.teams.insert(
        {"team_id": team_id, "organization_id": "o1", "models": ["o3"]}, actor=ACTOR
    )
    await store.teams.insert({"team_id": f"d-{role}", "organization_id": "o1"}, actor=ACTOR)
    await store.budgets.insert({"budget_id": f"bd-{role}"}, actor=ACTOR)
    org = {"organization_id": f"od-{role}", "organization_alias": "D", "budget_id": f"bd-{role}"}
    await store.organizations.insert(org, actor=ACTOR)
    for n in (1, 2):
        await _user(store, f"x-{role}-{n}")
        await store.team_members.add(f"x-{role}-{n}", team_id, role="user", actor=ACTOR)
        await _user(store, f"ox-{role}-{n}")
        await store.org_members.add(f"ox-{role}-{n}", "o1", role="internal_user", actor=ACTOR)
    if user_id is not None and user_role is not None:
        await _user(store, user_id, user_role)
        if team_role:
            await store.team_members.add(user_id, team_id, role=team_role, actor=ACTOR)
        if org_role:
            await store.org_members.add(user_id, "o1", role=org_role, actor=ACTOR)
    plaintext = f"sk-caller-{role}-00000000"
    key = {
        "token": hash_key(plaintext),
        "key_name": key_name(plaintext),
        "user_id": user_id,
        # A plain key reads its own team; users' keys belong to no team.
        "team_id": team_id if user_id is None else None,
    }
    await store.keys.create(key, actor=ACTOR)
    return plaintext


async def _seed(store: Store) -> dict[str, str]:
    await store.budgets.insert({"budget_id": "b1"}, actor=ACTOR)
    org = {"organization_id": "o1", "organization_alias": "O", "budget_id": "b1"}
    await store.organizations.insert(org, actor=ACTOR)
    return {role: await _seed_role(store, role) for role in ROLES}


def _fill(value: Any, role: str) -> Any:
    if isinstance(value, str):
        return value.replace("{r}", role)
    if isinstance(value, list):
        return [_fill(v, role) for v in value]
    if isinstance(value, dict):
        return {k: _fill(v, role) for k, v in value.items()}
    return value


@pytest.fixture
def gw(upstream: FakeUpstream, db_url: str, tmp_path: Path) -> Iterator[Gateway]:
    with running_gateway(keyed_config(upstream, db_url), tmp_path) as gateway:
        yield gateway


def _calls(url: str, role: str, caller: str) -> dict[tuple[str, str], tuple[int, str]]:
    """One role's calls, in order (add a callback before deleting it, ...)."""
    outcomes = {}
    with httpx.Client(base_url=url, timeout=10) as client:
        for route_id, (method, path, body) in _CALLS.items():
            response = client.request(
                method,
                _fill(path, role),
                json=_fill(body, role),
                headers={"authorization": f"Bearer {caller}"},
            )
            outcomes[role, route_id] = (response.status_code, response.text[:160])
    return outcomes


@pytest.mark.timeout(60)
def test_every_role_on_every_team_and_organization_route(gw: Gateway) -> None:
    mine = {r for r in ROUTE_ROLES if r.startswith(("team_", "organization_"))}
    assert set(_CALLS) == mine, "every team and organization route is in the matrix"
    callers = gw.call(lambda: _seed(gw.store), timeout=30)
    # The roles act on disjoint objects: run them side by side.
    with ThreadPoolExecutor(len(callers)) as pool:
        runs = [pool.submit(_calls, gw.url, role, key) for role, key in callers.items()]
        outcomes = {k: v for run in runs for k, v in run.result().items()}
    wrong = {
        (role, route): outcome
        for (role, route), outcome in outcomes.items()
        if outcome[0] != (200 if role in ROUTE_ROLES[route] else 403)
    }
    assert wrong == {}, "allowed by the table must answer 200, refused must answer 403"
    # Spot checks that the table is what §11 says.
    assert outcomes["team_admin", "team_member_add"][0] == 200
    assert outcomes["team_admin", "team_block"][0] == 403
    assert outcomes["org_admin", "team_delete"][0] == 200
    assert outcomes["plain_key", "team_info"][0] == 200
    assert outcomes["proxy_admin_viewer", "organization_member_add"][0] == 403
    assert outcomes["internal_user_viewer", "organization_info"][0] == 200
