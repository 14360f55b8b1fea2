"""Team membership over real HTTP (management-api.md §3): member add, delete and
update under both spellings, LiteLLM's and the Go bodies, the last-admin rule, and
who may do what. SQLite or Postgres (TIANJI_TEST_DB=postgres)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.api.admin.people_support import Api, admin_api, envelope
from tests.support.fake_upstream import FakeUpstream


@pytest.fixture
def api(upstream: FakeUpstream, db_url: str, tmp_path: Path) -> Iterator[Api]:
    with admin_api(upstream, db_url, tmp_path) as running:
        running.ok("POST", "/team/new", {"team_id": "t1", "max_budget": 100})
        yield running


def _roster(api: Api, team_id: str = "t1") -> list[dict[str, Any]]:
    info = api.ok("GET", "/team/info", params={"team_id": team_id})
    roster: list[dict[str, Any]] = info["team_info"]["members_with_roles"]
    return roster


def _user(api: Api, user_id: str) -> dict[str, Any]:
    row: dict[str, Any] = api.gateway.call(lambda: api.gateway.store.users.require(user_id))
    return row


@pytest.mark.parametrize("path", ["/team/member_add", "/team/member/add"])
def test_member_add_bodies(api: Api, path: str) -> None:
    # LiteLLM: one member, then a list (the second one by email only: created).
    one = api.ok("POST", path, {"team_id": "t1", "member": {"role": "admin", "user_id": "u1"}})
    assert one["team_id"] == "t1" and one["admins"] == ["u1"]
    assert [u["user_id"] for u in one["updated_users"]] == ["u1"]
    many = api.ok(
        "POST",
        path,
        {
            "team_id": "t1",
            "member": [{"role": "user", "user_id": "u2"}, {"role": "user", "user_email": "c@x.io"}],
        },
    )
    created = many["updated_users"][1]
    assert created["user_email"] == "c@x.io" and created["user_role"] == "internal_user"
    # Go form: {team_id, user_id} = one member with role user.
    go = api.ok("POST", path, {"team_id": "t1", "user_id": "u4"})
    assert go["updated_team_memberships"][0]["user_id"] == "u4"
    assert [(m["user_id"], m["role"]) for m in _roster(api)] == [
        ("u1", "admin"),
        ("u2", "user"),
        (created["user_id"], "user"),
        ("u4", "user"),
    ]
    assert _user(api, "u2")["teams"] == ["t1"]


def test_member_add_errors_add_nobody(api: Api) -> None:
    api.ok("POST", "/team/member_add", {"team_id": "t1", "member": {"user_id": "u1"}})
    duplicate = api.post(
        "/team/member_add",
        {"team_id": "t1", "member": [{"user_id": "u-new"}, {"user_id": "u1"}]},
    )
    assert "already a member" in envelope(duplicate, 409)["message"]
    assert [m["user_id"] for m in _roster(api)] == ["u1"]
    # The user the failed request would have created does not exist either.
    assert api.gateway.call(lambda: api.gateway.store.users.get("u-new")) is None
    envelope(api.post("/team/member_add", {"team_id": "ghost", "user_id": "u1"}), 404)
    envelope(api.post("/team/member_add", {"team_id": "t1", "member": {"role": "user"}}), 422)
    envelope(
        api.post(
            "/team/member_add", {"team_id": "t1", "member": {"user_id": "u", "role": "owner"}}
        ),
        422,
    )
    envelope(api.post("/team/member_add", {"team_id": "t1"}), 422)


def test_member_budgets(api: Api) -> None:
    added = api.ok(
        "POST",
        "/team/member_add",
        {
            "team_id": "t1",
            "member": {"user_id": "u1"},
            "max_budget_in_team": 10,
            "budget_duration": "1d",
            "allowed_models": ["gpt-4o-mini"],
        },
    )
    (membership,) = added["updated_team_memberships"]
    assert membership["litellm_budget_table"]["max_budget"] == 10.0
    assert membership["litellm_budget_table"]["allowed_models"] == ["gpt-4o-mini"]
    above = api.post(
        "/team/member_add", {"team_id": "t1", "user_id": "u2", "max_budget_in_team": 101}
    )
    assert "above the team's max_budget=100.0" in envelope(above, 400)["message"]

    updated = api.ok(
        "POST",
        "/team/member_update",
        {
            "team_id": "t1",
            "user_id": "u1",
            "max_budget_in_team": 20,
            "tpm_limit": 5,
            "role": "admin",
        },
    )
    assert updated == {
        "team_id": "t1", "user_id": "u1", "user_email": None, "role": "admin",
        "max_budget_in_team": 20.0, "tpm_limit": 5, "rpm_limit": None,
        "budget_duration": "1d", "allowed_models": ["gpt-4o-mini"],
    }  # fmt: skip
    # Its own budget row was changed in place, not copied.
    info = api.ok("GET", "/team/info", params={"team_id": "t1"})
    assert info["team_memberships"][0]["budget_id"] == membership["budget_id"]
    assert _roster(api)[0]["role"] == "admin"
    envelope(
        api.post(
            "/team/member_update", {"team_id": "t1", "user_id": "u1", "max_budget_in_team": 1000}
        ),
        400,
    )
    envelope(api.post("/team/member_update", {"team_id": "t1", "user_id": "nobody"}), 404)


def test_team_member_budget_is_the_default_and_copied_on_change(api: Api) -> None:
    api.ok("POST", "/team/new", {"team_id": "t2", "team_member_budget": 3})
    for user in ("u1", "u2"):
        api.ok("POST", "/team/member_add", {"team_id": "t2", "user_id": user})
    info = api.ok("GET", "/team/info", params={"team_id": "t2"})
    shared = info["team_info"]["team_member_budget_table"]["budget_id"]
    assert {m["budget_id"] for m in info["team_memberships"]} == {shared}
    api.ok("POST", "/team/member_update", {"team_id": "t2", "user_id": "u1", "rpm_limit": 9})
    after = {m["user_id"]: m for m in api.ok("GET", "/team/info/t2")["team_memberships"]}
    own = after["u1"]["litellm_budget_table"]
    assert own["budget_id"] != shared and (own["max_budget"], own["rpm_limit"]) == (3.0, 9)
    assert after["u2"]["budget_id"] == shared  # the others keep the team default


@pytest.mark.parametrize("path", ["/team/member_delete", "/team/member/delete"])
def test_member_delete_and_the_last_admin(api: Api, path: str) -> None:
    api.ok(
        "POST", "/team/member_add", {"team_id": "t1", "member": {"user_id": "a1", "role": "admin"}}
    )
    api.ok("POST", "/team/member_add", {"team_id": "t1", "member": {"user_email": "m@x.io"}})
    # By email, as LiteLLM allows.
    left = api.ok("POST", path, {"team_id": "t1", "user_email": "M@x.io"})
    assert [m["user_id"] for m in left["members_with_roles"]] == ["a1"]
    last = envelope(api.post(path, {"team_id": "t1", "user_id": "a1"}), 409)
    assert "last admin" in last["message"]
    demote = api.post("/team/member_update", {"team_id": "t1", "user_id": "a1", "role": "user"})
    envelope(demote, 409)
    assert _roster(api) == [{"user_id": "a1", "user_email": None, "role": "admin"}]
    # With a second admin the first may go.
    api.ok(
        "POST", "/team/member_add", {"team_id": "t1", "member": {"user_id": "a2", "role": "admin"}}
    )
    assert api.ok("POST", path, {"team_id": "t1", "user_id": "a1"})["admins"] == ["a2"]
    assert _user(api, "a1")["teams"] == []
    envelope(api.post(path, {"team_id": "t1", "user_id": "a1"}), 404)
    envelope(api.post(path, {"team_id": "t1", "user_email": "nobody@x.io"}), 404)
    envelope(api.post(path, {"team_id": "ghost", "user_id": "a2"}), 404)


def test_who_may_manage_members(api: Api) -> None:
    admin_key = api.user_key("boss")
    member_key = api.user_key("worker")
    api.ok(
        "POST",
        "/team/member_add",
        {"team_id": "t1", "member": {"user_id": "boss", "role": "admin"}},
    )
    api.ok("POST", "/team/member_add", {"team_id": "t1", "user_id": "worker"})
    api.ok("POST", "/team/new", {"team_id": "t2"})
    # A team admin manages the members of their own team only.
    api.ok("POST", "/team/member_add", {"team_id": "t1", "user_id": "new"}, key=admin_key)
    envelope(api.post("/team/member_add", {"team_id": "t2", "user_id": "x"}, key=admin_key), 403)
    # ... and may rename it, but not change its budget.
    api.ok("POST", "/team/update", {"team_id": "t1", "team_alias": "mine"}, key=admin_key)
    budget = api.post("/team/update", {"team_id": "t1", "max_budget": 1e6}, key=admin_key)
    assert "max_budget" in envelope(budget, 403)["message"]
    envelope(api.post("/team/block", {"team_id": "t1"}, key=admin_key), 403)
    # A plain member may read the team, not change it.
    assert api.get("/team/info", params={"team_id": "t1"}, key=member_key).status_code == 200
    envelope(api.get("/team/info", params={"team_id": "t2"}, key=member_key), 403)
    envelope(api.post("/team/member_add", {"team_id": "t1", "user_id": "y"}, key=member_key), 403)
    listed = api.ok("GET", "/team/list", key=member_key)
    assert [t["team_id"] for t in listed] == ["t1"]


def test_team_creator_becomes_its_admin(api: Api) -> None:
    api.ok("POST", "/organization/new", {"organization_id": "o1", "organization_alias": "O"})
    org_admin = api.user_key("oa")
    api.ok(
        "POST",
        "/organization/member_add",
        {"organization_id": "o1", "member": {"user_id": "oa", "role": "org_admin"}},
    )
    made = api.ok("POST", "/team/new", {"team_id": "t-oa", "organization_id": "o1"}, key=org_admin)
    assert made["admins"] == ["oa"]
    outside = api.post("/team/new", {"team_id": "t-x"}, key=org_admin)
    envelope(outside, 403)
    internal = api.user_key("plain-user")
    envelope(api.post("/team/new", {"team_id": "t-y"}, key=internal), 403)
