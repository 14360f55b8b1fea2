"""/team/* over real HTTP (routes.md §5.3, management-api.md §3) on SQLite or Postgres
(TIANJI_TEST_DB=postgres), with LiteLLM's documented request bodies unchanged."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.api.admin.people_support import Api, admin_api, envelope
from tests.conftest import keyed_config, running_gateway
from tests.support.fake_upstream import FakeUpstream
from tianji.store import Actor

ACTOR = Actor()
CHAT = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}


@pytest.fixture
def api(upstream: FakeUpstream, db_url: str, tmp_path: Path) -> Iterator[Api]:
    with admin_api(upstream, db_url, tmp_path) as running:
        yield running


def _chat(api: Api, key: str) -> httpx.Response:
    return api.post("/v1/chat/completions", CHAT, key=key)


def _count(api: Api, repository: str, **equals: Any) -> int:
    store = api.gateway.store
    return len(api.gateway.call(lambda: getattr(store, repository).find(**equals)))


def test_litellm_management_flow(api: Api) -> None:
    """The issue's "must show" pieces: an organization, a budget, a team in it, a user,
    the user added to team and organization with roles, a team key that works until
    the team is blocked (LiteLLM's documented bodies)."""
    org = api.ok(
        "POST",
        "/organization/new",
        {"organization_alias": "my-secret-org", "models": ["gpt-4o-mini"], "max_budget": 100},
    )
    org_id = org["organization_id"]
    assert org["litellm_budget_table"]["max_budget"] == 100.0
    budget = api.ok("POST", "/budget/new", {"budget_id": "my-free-tier", "max_budget": 4})
    team = api.ok(
        "POST",
        "/team/new",
        {"team_alias": "my-new-team_4", "organization_id": org_id, "models": ["gpt-4o-mini"]},
    )
    team_id = team["team_id"]
    assert team["organization_id"] == org_id and team["members_with_roles"] == []
    api.ok("POST", "/user/new", {"user_id": "krrish@berri.ai", "auto_create_key": False})
    added = api.ok(
        "POST",
        "/team/member_add",
        {"team_id": team_id, "member": {"role": "admin", "user_id": "krrish@berri.ai"}},
    )
    assert added["members_with_roles"] == [
        {"user_id": "krrish@berri.ai", "user_email": None, "role": "admin"}
    ]
    assert added["updated_users"][0]["teams"] == [team_id]
    assert added["updated_team_memberships"][0]["team_id"] == team_id
    joined = api.ok(
        "POST",
        "/organization/member_add",
        {"organization_id": org_id, "member": {"role": "org_admin", "user_id": "krrish@berri.ai"}},
    )
    assert joined["updated_organization_memberships"][0]["user_role"] == "org_admin"

    key = api.ok(
        "POST",
        "/key/generate",
        {"user_id": "krrish@berri.ai", "team_id": team_id, "budget_id": budget["budget_id"]},
    )["key"]
    assert _chat(api, key).status_code == 200
    info = api.ok("GET", "/team/info", params={"team_id": team_id})
    assert info["team_info"]["admins"] == ["krrish@berri.ai"]
    assert [k["key_name"] for k in info["keys"]] == [f"sk-...{key[-4:]}"]
    assert info["team_memberships"][0]["user_id"] == "krrish@berri.ai"

    assert api.ok("POST", "/team/block", {"team_id": team_id})["blocked"] is True
    error = envelope(_chat(api, key), 401)
    assert f"Team={team_id} is blocked" in error["message"]
    assert api.ok("POST", "/team/unblock", {"team_id": team_id})["blocked"] is False
    assert _chat(api, key).status_code == 200


def test_team_new_bad_input_leaves_nothing(api: Api) -> None:
    api.ok(
        "POST",
        "/organization/new",
        {
            "organization_id": "o1",
            "organization_alias": "O",
            "models": ["gpt-4o-mini"],
            "max_budget": 10,
        },
    )
    api.ok("POST", "/team/new", {"team_id": "t1"})
    assert "already exists" in envelope(api.post("/team/new", {"team_id": "t1"}), 409)["message"]
    envelope(api.post("/team/new", {"team_id": "t2", "organization_id": "nope"}), 404)
    above = envelope(api.post("/team/new", {"organization_id": "o1", "max_budget": 11}), 400)
    assert "above the organization's max_budget=10.0" in above["message"]
    outside = envelope(api.post("/team/new", {"organization_id": "o1", "models": ["gpt-5"]}), 400)
    assert "gpt-5" in outside["message"] and outside["param"] == "models"
    negative = envelope(api.post("/team/new", {"max_budget": -1}), 400)
    assert negative["type"] == "bad_request_error"
    envelope(api.post("/team/new", {"budget_duration": "1 fortnight"}), 400)
    envelope(api.post("/team/new", {"team_member_budget": -5}), 400)
    typed = envelope(api.post("/team/new", {"tpm_limit": "many"}), 422)
    assert typed["param"] == "$.tpm_limit"
    # A bad member rolls the whole team back (one transaction).
    envelope(
        api.post("/team/new", {"team_id": "t3", "members_with_roles": [{"role": "user"}]}), 422
    )
    assert _count(api, "teams") == 1 and _count(api, "budgets") == 1


def test_team_new_fields_and_member_budget(api: Api) -> None:
    team = api.ok(
        "POST",
        "/team/new",
        {
            "team_alias": "research",
            "team_id": "t-r",
            "members_with_roles": [{"role": "admin", "user_email": "Ada@Example.com"}],
            "metadata": {"owner": "ada"},
            "tags": ["prod"],
            "model_aliases": {"fast": "gpt-4o-mini"},
            "max_budget": 50.5,
            "budget_duration": "30d",
            "tpm_limit": 1000,
            "rpm_limit": 10,
            "model_rpm_limit": {"gpt-4o-mini": 5},
            "team_member_budget": 2.5,
            "team_member_key_duration": "7d",
        },
    )
    assert team["max_budget"] == 50.5 and team["budget_reset_at"].endswith("Z")
    assert team["metadata"] == {
        "owner": "ada",
        "tags": ["prod"],
        "model_rpm_limit": {"gpt-4o-mini": 5},
        "team_member_key_duration": "7d",
    }
    assert team["model_aliases"] == {"fast": "gpt-4o-mini"}
    assert team["team_member_budget_table"]["max_budget"] == 2.5
    # The unknown email became a user, and its membership uses the member budget.
    (member,) = team["members_with_roles"]
    assert member["user_email"] == "Ada@Example.com" and member["role"] == "admin"
    info = api.ok("GET", "/team/info/t-r")  # the Go path form
    (membership,) = info["team_memberships"]
    assert membership["budget_id"] == team["team_member_budget_table"]["budget_id"]
    assert membership["litellm_budget_table"]["max_budget"] == 2.5


def test_team_update_and_patch_alias(api: Api) -> None:
    api.ok("POST", "/team/new", {"team_id": "t1", "team_alias": "a", "metadata": {"x": 1}})
    updated = api.ok("POST", "/team/update", {"team_id": "t1", "max_budget": 10, "tpm_limit": None})
    assert updated["team_id"] == "t1" and updated["data"]["max_budget"] == 10.0
    assert updated["data"]["team_alias"] == "a"  # absent or null = unchanged
    patched = api.ok("PATCH", "/team/t1", {"team_alias": "b", "metadata": {"y": 2}})
    assert patched["data"]["team_alias"] == "b"
    assert patched["data"]["metadata"] == {"x": 1, "y": 2}  # metadata merges
    assert patched["data"]["max_budget"] == 10.0
    cleared = api.ok("POST", "/team/update", {"team_id": "t1", "unset_fields": ["max_budget"]})
    assert cleared["data"]["max_budget"] is None
    envelope(api.post("/team/update", {"team_id": "t1", "unset_fields": ["spend"]}), 422)
    envelope(api.post("/team/update", {"team_id": "ghost", "max_budget": 1}), 404)
    envelope(api.call("PATCH", "/team/ghost", {"team_alias": "x"}), 404)
    envelope(api.post("/team/update", {"max_budget": 1}), 422)


def test_team_info_and_lists(api: Api) -> None:
    for i, alias in enumerate(["Alpha", "beta", "alphabet"]):
        api.ok("POST", "/team/new", {"team_id": f"t{i}", "team_alias": alias})
    by_query = api.ok("GET", "/team/info", params={"team_id": "t1"})
    assert by_query == api.ok("GET", "/team/info/t1")
    assert by_query["team_info"]["team_alias"] == "beta"
    envelope(api.get("/team/info", params={"team_id": "ghost"}), 404)
    envelope(api.get("/team/info"), 422)

    listed = api.ok("GET", "/team/list")
    assert isinstance(listed, list) and [t["team_id"] for t in listed] == ["t0", "t1", "t2"]
    assert listed[0]["keys"] == [] and listed[0]["team_memberships"] == []

    page = api.ok(
        "GET", "/v2/team/list", params={"page_size": 2, "sort_by": "team_id", "sort_order": "asc"}
    )
    assert [t["team_id"] for t in page["teams"]] == ["t0", "t1"]
    assert (page["total"], page["page"], page["page_size"], page["total_pages"]) == (3, 1, 2, 2)
    alpha = api.ok(
        "GET",
        "/v2/team/list",
        params={"team_alias": "ALPHA", "sort_by": "team_id", "sort_order": "asc"},
    )
    assert [t["team_id"] for t in alpha["teams"]] == ["t0", "t2"]
    envelope(api.get("/v2/team/list", params={"sort_by": "password"}), 422)


def test_team_delete_removes_keys_and_memberships(api: Api) -> None:
    api.ok("POST", "/team/new", {"team_id": "t1", "members_with_roles": [{"user_id": "u1"}]})
    api.ok("POST", "/team/new", {"team_id": "t2", "members_with_roles": [{"user_id": "u1"}]})
    key = api.ok("POST", "/key/generate", {"team_id": "t1", "user_id": "u1"})["key"]
    assert _chat(api, key).status_code == 200
    # All or nothing: an unknown id deletes nothing.
    envelope(api.post("/team/delete", {"team_ids": ["t1", "ghost"]}), 404)
    assert _count(api, "teams") == 2
    assert api.ok("POST", "/team/delete", {"team_ids": ["t1"]}) == {"deleted_teams": ["t1"]}
    envelope(_chat(api, key), 401)
    assert _count(api, "team_members", team_id="t1") == 0
    user = api.gateway.call(lambda: api.gateway.store.users.require("u1"))
    assert user["teams"] == ["t2"]
    assert _count(api, "keys", team_id="t1") == 0


def test_team_delete_refused_while_team_models_exist(api: Api) -> None:
    api.ok("POST", "/team/new", {"team_id": "t1"})
    store = api.gateway.store
    row = {"model_id": "m1", "model_name": "private", "team_id": "t1"}
    api.gateway.call(lambda: store.models.insert(row, actor=ACTOR))
    error = envelope(api.post("/team/delete", {"team_ids": ["t1"]}), 409)
    assert "m1" in error["message"]
    assert _count(api, "teams") == 1


def test_team_models_add_delete_and_remove_alias(api: Api) -> None:
    api.ok(
        "POST",
        "/organization/new",
        {
            "organization_id": "o1",
            "organization_alias": "O",
            "models": ["gpt-4o", "gpt-4o-mini", "o3"],
        },
    )
    api.ok("POST", "/team/new", {"team_id": "t1", "organization_id": "o1", "models": ["gpt-4o"]})
    added = api.ok("POST", "/team/model/add", {"team_id": "t1", "models": ["gpt-4o-mini", "o3"]})
    assert added["models"] == ["gpt-4o", "gpt-4o-mini", "o3"]
    envelope(api.post("/team/model/add", {"team_id": "t1", "models": ["claude"]}), 400)
    removed = api.ok("POST", "/team/model/delete", {"team_id": "t1", "models": ["gpt-4o"]})
    assert removed["models"] == ["gpt-4o-mini", "o3"]
    go = api.ok("POST", "/team/model/remove", {"team_id": "t1", "models": ["o3"]})
    assert go["models"] == ["gpt-4o-mini"]
    envelope(api.post("/team/model/add", {"team_id": "ghost", "models": ["o3"]}), 404)


def test_team_daily_activity_and_alias(api: Api) -> None:
    api.ok("POST", "/team/new", {"team_id": "t1"})
    store = api.gateway.store
    row = {
        "entity_type": "team",
        "entity_id": "t1",
        "date": "2026-01-10",
        "model": "gpt-4o-mini",
        "spend": 17_700_000,
        "prompt_tokens": 11,
        "completion_tokens": 7,
        "api_requests": 2,
        "successful_requests": 2,
    }
    api.gateway.call(lambda: store.daily_spend.insert(row, actor=ACTOR))
    params = {"team_ids": "t1", "start_date": "2026-01-01", "end_date": "2026-01-31"}
    canonical = api.ok("GET", "/team/daily/activity", params=params)
    assert canonical == api.ok("GET", "/team/daily_activity", params=params)
    (day,) = canonical["results"]
    assert day["date"] == "2026-01-10" and day["metrics"]["spend"] == 0.0177
    assert day["metrics"]["total_tokens"] == 18
    assert canonical["metadata"]["total_api_requests"] == 2
    other = api.ok("GET", "/team/daily/activity", params={**params, "team_ids": "t9"})
    assert other["results"] == []


def test_available_teams_are_the_configured_ones_not_yet_joined(
    upstream: FakeUpstream, db_url: str, tmp_path: Path
) -> None:
    general = "  available_teams: [t-open, t-also-open]"
    with running_gateway(keyed_config(upstream, db_url, general=general), tmp_path) as gw:
        api = Api(gw)
        for team in ("t-open", "t-also-open", "t-closed"):
            api.ok("POST", "/team/new", {"team_id": team})
        api.ok("POST", "/user/new", {"user_id": "u9", "auto_create_key": False})
        api.ok(
            "POST",
            "/team/member_add",
            {"team_id": "t-also-open", "member": {"role": "user", "user_id": "u9"}},
        )
        key = api.ok("POST", "/key/generate", {"user_id": "u9"})["key"]
        shown = api.ok("GET", "/team/available", key=key)
        assert [t["team_id"] for t in shown] == ["t-open"]
        api.client.close()
