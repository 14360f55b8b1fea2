"""The role matrix of the user, customer and budget routes (management-api.md §11),
over HTTP: every route (and every alias path) x every role -> 200 or 403, and 403
exactly when none of the caller's roles is in the route's row of
tianji.guards.rbac.ROUTE_ROLES.

Each call is one the role's row allows on its own objects (itself, a member of
the organization an org admin runs), so an allowed role must get a 200: a 403
there would be an object rule refusing what the table grants."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.api.admin.people_support import Api, admin_api
from tests.support.fake_upstream import FakeUpstream
from tianji.guards.rbac import ROUTE_ROLES
from tianji.store import Actor, Store, hash_key, key_name

SETUP = Actor(changed_by="test-setup")

# role -> (user_role, team role in t1, org role in o1); plain_key has no user.
PEOPLE: dict[str, tuple[str | None, str | None, str | None]] = {
    "proxy_admin": ("proxy_admin", None, None),
    "proxy_admin_viewer": ("proxy_admin_viewer", None, None),
    "org_admin": ("internal_user", None, "org_admin"),
    "team_admin": ("internal_user", "admin", None),
    "internal_user": ("internal_user", "user", None),
    "internal_user_viewer": ("internal_user_viewer", None, None),
    "plain_key": (None, None, None),
}

# (route id, method, path, body, fresh object the call consumes). "{n}" = a fresh
# number, "{me}" = the caller's user id.
CALLS: list[tuple[str, str, str, Any, str | None]] = [
    ("user_new", "POST", "/user/new", {"user_id": "new-{n}", "organizations": ["o1"]}, None),
    ("user_info", "GET", "/user/info", None, None),
    ("user_info_v2", "GET", "/v2/user/info", None, None),
    ("user_update", "POST", "/user/update", {"user_id": "{me}", "user_alias": "me"}, None),
    (
        "user_bulk_update",
        "POST",
        "/user/bulk_update",
        {"users": [{"user_id": "target-{n}", "user_alias": "x"}]},
        "user",
    ),
    ("user_delete", "POST", "/user/delete", {"user_ids": ["target-{n}"]}, "user"),
    ("user_list", "GET", "/user/list", None, None),
    ("user_daily_activity", "GET", "/user/daily_activity", None, None),
    ("user_daily_activity", "GET", "/user/daily/activity", None, None),
    ("customer_new", "POST", "/customer/new", {"user_id": "cust-new-{n}"}, None),
    ("customer_info", "GET", "/customer/info?end_user_id=c-seed", None, None),
    ("customer_update", "POST", "/customer/update", {"user_id": "c-seed", "alias": "x"}, None),
    ("customer_delete", "POST", "/customer/delete", {"user_ids": ["cust-{n}"]}, "customer"),
    ("customer_list", "GET", "/customer/list", None, None),
    ("customer_block", "POST", "/customer/block", {"user_ids": ["c-seed"]}, None),
    ("customer_unblock", "POST", "/customer/unblock", {"user_ids": ["c-seed"]}, None),
    ("customer_daily_activity", "GET", "/customer/daily/activity", None, None),
    ("customer_new", "POST", "/end_user/new", {"user_id": "eu-new-{n}"}, None),
    ("customer_info", "GET", "/end_user/info?end_user_id=c-seed", None, None),
    ("customer_info", "GET", "/end_user/info/c-seed", None, None),
    ("customer_update", "POST", "/end_user/update", {"user_id": "c-seed", "alias": "y"}, None),
    ("customer_delete", "POST", "/end_user/delete", {"user_ids": ["cust-{n}"]}, "customer"),
    ("customer_list", "GET", "/end_user/list", None, None),
    ("customer_block", "POST", "/end_user/block", {"user_ids": ["c-seed"]}, None),
    ("customer_unblock", "POST", "/end_user/unblock", {"user_ids": ["c-seed"]}, None),
    ("customer_daily_activity", "GET", "/end_user/daily/activity", None, None),
    ("budget_new", "POST", "/budget/new", {"budget_id": "new-{n}"}, None),
    ("budget_update", "POST", "/budget/update", {"budget_id": "b-seed", "rpm_limit": 5}, None),
    ("budget_info", "GET", "/budget/info?budget_id=b-seed", None, None),
    ("budget_info", "POST", "/budget/info", {"budgets": ["b-seed"]}, None),
    ("budget_list", "GET", "/budget/list", None, None),
    ("budget_delete", "POST", "/budget/delete", {"id": "bud-{n}"}, "budget"),
    ("budget_settings", "GET", "/budget/settings?budget_id=b-seed", None, None),
]


async def _seed(store: Store) -> dict[str, str]:
    """Organization o1 with team t1, a customer, a budget, and one caller key per role."""
    await store.budgets.insert({"budget_id": "b-o1"}, actor=SETUP)
    await store.budgets.insert({"budget_id": "b-seed"}, actor=SETUP)
    org = {"organization_id": "o1", "organization_alias": "O", "budget_id": "b-o1"}
    await store.organizations.insert(org, actor=SETUP)
    await store.teams.insert({"team_id": "t1", "organization_id": "o1"}, actor=SETUP)
    await store.customers.insert({"user_id": "c-seed"}, actor=SETUP)
    keys = {}
    for role, (user_role, team_role, org_role) in PEOPLE.items():
        user_id = f"u-{role}" if user_role else None
        if user_id is not None:
            await store.users.insert({"user_id": user_id, "user_role": user_role}, actor=SETUP)
            if team_role:
                await store.team_members.add(user_id, "t1", role=team_role, actor=SETUP)
            if org_role:
                await store.org_members.add(user_id, "o1", role=org_role, actor=SETUP)
        plaintext = f"sk-caller-{role}-000000000"
        row = {"token": hash_key(plaintext), "key_name": key_name(plaintext), "user_id": user_id}
        await store.keys.create(row, actor=SETUP)
        keys[role] = plaintext
    return keys


async def _fresh(store: Store, kind: str | None, n: int) -> None:
    """The object a consuming call (delete, bulk update) acts on: users are members
    of o1, so an org admin may manage them."""
    if kind == "user":
        await store.users.insert({"user_id": f"target-{n}"}, actor=SETUP)
        await store.org_members.add(f"target-{n}", "o1", role="internal_user", actor=SETUP)
    elif kind == "customer":
        await store.customers.insert({"user_id": f"cust-{n}"}, actor=SETUP)
    elif kind == "budget":
        await store.budgets.insert({"budget_id": f"bud-{n}"}, actor=SETUP)


def _fill(value: Any, n: int, me: str) -> Any:
    if isinstance(value, str):
        return value.replace("{n}", str(n)).replace("{me}", me)
    if isinstance(value, list):
        return [_fill(v, n, me) for v in value]
    if isinstance(value, dict):
        return {k: _fill(v, n, me) for k, v in value.items()}
    return value


@pytest.fixture
def api(upstream: FakeUpstream, db_url: str, tmp_path: Path) -> Iterator[Api]:
    with admin_api(upstream, db_url, tmp_path) as running:
        yield running


@pytest.mark.parametrize("area", ["user_", "customer_", "budget_"])
def test_every_role_on_every_route(api: Api, area: str) -> None:
    calls = [call for call in CALLS if call[0].startswith(area)]
    mine = {r for r in ROUTE_ROLES if r.startswith(area)}
    assert {call[0] for call in calls} == mine, "every route of the area is in the matrix"
    store = api.gateway.store
    callers = api.gateway.call(lambda: _seed(store))
    outcomes: dict[tuple[str, str, str], int] = {}
    for n, (role, (route_id, method, path, body, fresh)) in enumerate(
        (role, call) for role in PEOPLE for call in calls
    ):
        api.gateway.call(lambda kind=fresh, i=n: _fresh(store, kind, i))
        me = f"u-{role}"
        response = api.call(method, _fill(path, n, me), _fill(body, n, me), key=callers[role])
        outcomes[role, method, path] = response.status_code
        # A team or org admin is also an internal_user: any of its roles may open a route.
        held = {role, PEOPLE[role][0] or "plain_key"}
        expected = 200 if held & ROUTE_ROLES[route_id] else 403
        assert response.status_code == expected, (role, method, path, response.text)
    assert len(outcomes) == len(PEOPLE) * len(calls)
