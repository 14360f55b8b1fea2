"""/organization/* over real HTTP (routes.md §5.4, management-api.md §4) on SQLite or
Postgres (TIANJI_TEST_DB=postgres), with LiteLLM's documented bodies unchanged; and
200 concurrent adds of one membership: exactly one wins, the rest get 409."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.api.admin.people_support import Api, admin_api, envelope
from tests.conftest import MASTER_KEY
from tests.support.fake_upstream import FakeUpstream


@pytest.fixture
def api(upstream: FakeUpstream, db_url: str, tmp_path: Path) -> Iterator[Api]:
    with admin_api(upstream, db_url, tmp_path) as running:
        yield running


def _count(api: Api, repository: str, **equals: Any) -> int:
    store = api.gateway.store
    return len(api.gateway.call(lambda: getattr(store, repository).find(**equals)))


def _new_org(api: Api, org_id: str = "o1", **fields: Any) -> dict[str, Any]:
    body = {"organization_id": org_id, "organization_alias": org_id.upper(), **fields}
    created: dict[str, Any] = api.ok("POST", "/organization/new", body)
    return created


def test_new_update_info_list(api: Api) -> None:
    # LiteLLM docs body; the budget fields become the organization's budget row.
    org = api.ok(
        "POST",
        "/organization/new",
        {"organization_alias": "my-secret-org", "models": ["model1", "model2"], "max_budget": 100},
    )
    assert org["organization_alias"] == "my-secret-org" and len(org["organization_id"]) == 36
    assert org["models"] == ["model1", "model2"] and org["spend"] == 0.0
    table = org["litellm_budget_table"]
    assert table["max_budget"] == 100.0 and table["budget_id"] == org["budget_id"]
    org_id = org["organization_id"]

    patched = api.ok(
        "PATCH",
        "/organization/update",
        {"organization_id": org_id, "organization_alias": "renamed"},
    )
    assert patched["organization_alias"] == "renamed" and patched["models"] == ["model1", "model2"]
    go = api.ok("POST", "/organization/update", {"organization_id": org_id, "max_budget": 50})
    assert go["litellm_budget_table"]["max_budget"] == 50.0 and go["budget_id"] == org["budget_id"]

    api.ok("POST", "/team/new", {"team_id": "t1", "organization_id": org_id, "models": ["model1"]})
    api.ok(
        "POST",
        "/organization/member_add",
        {"organization_id": org_id, "member": {"role": "internal_user", "user_email": "a@x.io"}},
    )
    info = api.ok("GET", "/organization/info", params={"organization_id": org_id})
    assert [t["team_id"] for t in info["teams"]] == ["t1"]
    (member,) = info["members"]
    assert member["user_email"] == "a@x.io" and member["user_role"] == "internal_user"
    # LiteLLM's deprecated POST form answers a list.
    assert api.ok("POST", "/organization/info", {"organizations": [org_id]}) == [info]
    assert api.ok("GET", "/organization/list") == [info]
    # Dropping a model a team still uses is refused.
    kept = api.post("/organization/update", {"organization_id": org_id, "models": ["model2"]})
    assert "t1" in envelope(kept, 400)["message"]


def test_new_with_a_budget_id_and_bad_input(api: Api) -> None:
    api.ok("POST", "/budget/new", {"budget_id": "shared", "max_budget": 5})
    org = _new_org(api, "o1", budget_id="shared")
    assert org["budget_id"] == "shared" and org["litellm_budget_table"]["max_budget"] == 5.0
    envelope(
        api.post("/organization/new", {"organization_id": "o1", "organization_alias": "x"}), 409
    )
    envelope(api.post("/organization/new", {"organization_alias": "x", "budget_id": "ghost"}), 404)
    both = {"organization_alias": "x", "budget_id": "shared", "max_budget": 1}
    envelope(api.post("/organization/new", both), 422)
    missing = envelope(api.post("/organization/new", {"models": []}), 422)
    assert "organization_alias" in missing["message"]
    envelope(api.post("/organization/new", {"organization_alias": "x", "max_budget": -1}), 400)
    assert _count(api, "organizations") == 1 and _count(api, "budgets") == 1
    # Changing the budget of an organization that shares its row copies it first.
    api.ok("POST", "/key/generate", {"budget_id": "shared"})
    changed = api.ok("PATCH", "/organization/update", {"organization_id": "o1", "max_budget": 9})
    assert changed["budget_id"] != "shared" and changed["litellm_budget_table"]["max_budget"] == 9
    assert api.ok("GET", "/budget/info", params={"budget_id": "shared"})["max_budget"] == 5.0
    envelope(api.call("PATCH", "/organization/update", {"organization_id": "ghost"}), 404)
    envelope(api.get("/organization/info", params={"organization_id": "ghost"}), 404)


def test_delete_both_forms_and_still_referenced(api: Api) -> None:
    for org_id in ("o1", "o2", "o3"):
        _new_org(api, org_id, max_budget=1)
    api.ok(
        "POST",
        "/organization/member_add",
        {"organization_id": "o1", "member": {"user_id": "u1"}, "max_budget_in_organization": 2},
    )
    api.ok("POST", "/team/new", {"team_id": "t3", "organization_id": "o3"})
    assert _count(api, "budgets") == 4
    deleted = api.ok("DELETE", "/organization/delete", {"organization_ids": ["o1"]})
    assert [o["organization_id"] for o in deleted] == ["o1"]
    # The membership and both budget rows (the org's and the member's) went with it.
    assert _count(api, "org_members") == 0 and _count(api, "budgets") == 2
    assert [o["organization_id"] for o in api.ok("DELETE", "/organization/delete/o2")] == ["o2"]
    in_use = envelope(api.call("DELETE", "/organization/delete", {"organization_ids": ["o3"]}), 409)
    assert "t3" in in_use["message"]
    envelope(api.call("DELETE", "/organization/delete", {"organization_ids": ["o3", "x"]}), 404)
    assert _count(api, "organizations") == 1


def test_member_add_update_delete(api: Api) -> None:
    _new_org(api)
    # Go form: {organization_id, user_id, user_role}.
    go = api.ok(
        "POST",
        "/organization/member_add",
        {"organization_id": "o1", "user_id": "u1", "user_role": "org_admin"},
    )
    assert go["organization_id"] == "o1" and go["updated_users"][0]["user_id"] == "u1"
    listed = api.ok("POST", "/organization/member_add", {
        "organization_id": "o1",
        "member": [{"role": "internal_user_viewer", "user_id": "u2"}, {"user_email": "c@x.io"}],
        "max_budget_in_organization": 3,
    })  # fmt: skip
    viewer, created = listed["updated_users"]
    assert viewer["user_role"] == "internal_user_viewer" and created["user_email"] == "c@x.io"
    memberships = listed["updated_organization_memberships"]
    assert [m["litellm_budget_table"]["max_budget"] for m in memberships] == [3.0, 3.0]
    assert memberships[0]["budget_id"] != memberships[1]["budget_id"]
    envelope(api.post("/organization/member_add", {"organization_id": "o1", "user_id": "u1"}), 409)
    bad_role = {"organization_id": "o1", "member": {"user_id": "u9", "role": "owner"}}
    envelope(api.post("/organization/member_add", bad_role), 422)
    envelope(api.post("/organization/member_add", {"organization_id": "x", "user_id": "u1"}), 404)

    update = {
        "organization_id": "o1",
        "user_id": "u2",
        "role": "org_admin",
        "max_budget_in_organization": 7,
    }
    changed = api.ok("PATCH", "/organization/member_update", update)
    assert (
        changed["user_role"] == "org_admin" and changed["litellm_budget_table"]["max_budget"] == 7
    )
    assert changed["budget_id"] == memberships[0]["budget_id"]  # its own row, changed in place
    go_update = {"organization_id": "o1", "user_email": "C@x.io", "user_role": "internal_user"}
    assert api.ok("PATCH", "/organization/member_update", go_update)["user_role"] == "internal_user"
    envelope(
        api.call(
            "PATCH", "/organization/member_update", {"organization_id": "o1", "user_id": "nobody"}
        ),
        404,
    )
    envelope(
        api.call(
            "PATCH", "/organization/member_update", {"organization_id": "ghost", "user_id": "u1"}
        ),
        404,
    )

    gone = api.ok(
        "DELETE", "/organization/member_delete", {"organization_id": "o1", "user_id": "u2"}
    )
    assert gone["status"] == "deleted" and gone["user_id"] == "u2"
    envelope(
        api.call(
            "DELETE", "/organization/member_delete", {"organization_id": "o1", "user_id": "u2"}
        ),
        404,
    )
    assert _count(api, "org_members") == 2


def test_members_see_their_organizations_only(api: Api) -> None:
    _new_org(api, "o1")
    _new_org(api, "o2")
    member = api.user_key("m1")
    api.ok("POST", "/organization/member_add", {"organization_id": "o1", "user_id": "m1"})
    assert [o["organization_id"] for o in api.ok("GET", "/organization/list", key=member)] == ["o1"]
    api.ok("GET", "/organization/info", params={"organization_id": "o1"}, key=member)
    envelope(api.get("/organization/info", params={"organization_id": "o2"}, key=member), 403)
    envelope(
        api.post("/organization/member_add", {"organization_id": "o1", "user_id": "x"}, key=member),
        403,
    )
    # An org admin manages its own organization's members, not another's, nor its budget.
    api.ok(
        "PATCH",
        "/organization/member_update",
        {"organization_id": "o1", "user_id": "m1", "role": "org_admin"},
    )
    api.ok(
        "POST", "/organization/member_add", {"organization_id": "o1", "user_id": "x"}, key=member
    )
    envelope(
        api.post("/organization/member_add", {"organization_id": "o2", "user_id": "x"}, key=member),
        403,
    )
    envelope(
        api.call(
            "PATCH", "/organization/update", {"organization_id": "o1", "max_budget": 9}, key=member
        ),
        403,
    )
    renamed = api.ok(
        "PATCH",
        "/organization/update",
        {"organization_id": "o1", "organization_alias": "ours"},
        key=member,
    )
    assert renamed["organization_alias"] == "ours"


async def _add_concurrently(url: str, body: dict[str, Any], times: int) -> list[int]:
    limits = httpx.Limits(max_connections=times, max_keepalive_connections=times)
    headers = {"authorization": f"Bearer {MASTER_KEY}"}
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=30) as client:
        responses = await asyncio.gather(
            *(client.post("/organization/member_add", json=body, headers=headers)
              for _ in range(times))
        )  # fmt: skip
    for response in responses:
        if response.status_code == 409:
            assert response.json()["error"]["type"] == "conflict"
    return [r.status_code for r in responses]


@pytest.mark.timeout(60)
def test_200_concurrent_adds_of_one_membership(api: Api) -> None:
    _new_org(api)
    api.ok("POST", "/user/new", {"user_id": "u1", "auto_create_key": False})
    body = {"organization_id": "o1", "member": {"role": "internal_user", "user_id": "u1"}}
    started = time.monotonic()
    statuses = asyncio.run(asyncio.wait_for(_add_concurrently(api.gateway.url, body, 200), 45))
    elapsed = time.monotonic() - started
    assert sorted(set(statuses)) == [200, 409], statuses
    assert statuses.count(200) == 1 and statuses.count(409) == 199
    assert _count(api, "org_members", user_id="u1", organization_id="o1") == 1
    assert elapsed < 30, f"200 concurrent member_add took {elapsed:.1f}s"
