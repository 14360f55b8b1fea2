"""/user/* over real HTTP (routes.md §5.2, management-api.md §2, §11), on SQLite or
Postgres (TIANJI_TEST_DB=postgres). Teams and organizations are set up through
the store, so these tests need nothing from the /team and /organization endpoints."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from tests.api.admin.people_support import Api, admin_api, envelope
from tests.support.fake_upstream import FakeUpstream
from tianji.store import Actor, hash_key, usd_to_nano

SETUP = Actor(changed_by="test-setup")
CHAT = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}


@pytest.fixture
def api(upstream: FakeUpstream, db_url: str, tmp_path: Path) -> Iterator[Api]:
    with admin_api(upstream, db_url, tmp_path) as running:
        yield running


def _org(api: Api, org_id: str) -> None:
    store = api.gateway.store

    async def create() -> None:
        await store.budgets.insert({"budget_id": f"b-{org_id}"}, actor=SETUP)
        row = {"organization_id": org_id, "organization_alias": org_id, "budget_id": f"b-{org_id}"}
        await store.organizations.insert(row, actor=SETUP)

    api.gateway.call(create)


def _team(
    api: Api, team_id: str, organization_id: str | None = None, models: list[str] | None = None
) -> None:
    row = {
        "team_id": team_id,
        "team_alias": team_id,
        "organization_id": organization_id,
        "models": models or [],
    }
    api.gateway.call(lambda: api.gateway.store.teams.insert(row, actor=SETUP))


def _row(api: Api, repository: str, row_id: Any) -> dict[str, Any] | None:
    found: dict[str, Any] | None = api.gateway.call(
        lambda: getattr(api.gateway.store, repository).get(row_id)
    )
    return found


def _chat(api: Api, key: str) -> int:
    return api.post("/v1/chat/completions", CHAT, key=key).status_code


def test_litellm_flow_budget_user_key_block_delete(api: Api) -> None:
    """The issue's "Must show" flow, user part, with LiteLLM's documented bodies."""
    budget = api.ok("POST", "/budget/new", {"budget_id": "my-free-tier", "max_budget": 4})
    assert budget["max_budget"] == 4.0
    created = api.ok("POST", "/user/new", {"user_email": "user@example.com"})
    user_id = created["user_id"]
    assert len(user_id) == 36 and created["user_role"] == "internal_user"
    assert created["user_email"] == "user@example.com" and created["key"].startswith("sk-")
    assert created["token_id"] == hash_key(created["key"]) and created["key_name"].startswith(
        "sk-..."
    )
    assert _chat(api, created["key"]) == 200
    second = api.ok("POST", "/key/generate", {"user_id": user_id, "max_budget": 100})
    info = api.ok("GET", "/user/info", params={"user_id": user_id})
    assert info["user_id"] == user_id and info["user_info"]["user_email"] == "user@example.com"
    assert sorted(k["key_name"] for k in info["keys"]) == sorted(
        [created["key_name"], second["key_name"]]
    )
    assert all("token" not in k for k in info["keys"])  # no stored hash, no plaintext
    api.ok("POST", "/user/update", {"user_id": user_id, "blocked": True})
    blocked = api.post("/v1/chat/completions", CHAT, key=second["key"])
    assert blocked.status_code == 401 and f"User={user_id} is blocked" in blocked.text
    api.ok("POST", "/user/update", {"user_email": "USER@example.com", "blocked": False})
    assert _chat(api, second["key"]) == 200
    deleted = api.ok("POST", "/user/delete", {"user_ids": [user_id]})
    assert deleted == {"deleted_users": [user_id], "count": 1}
    assert _chat(api, created["key"]) == 401 and _chat(api, second["key"]) == 401
    envelope(api.get("/user/info", params={"user_id": user_id}), 404)


def test_user_new_with_teams_organizations_and_key_fields(api: Api) -> None:
    _org(api, "o1")
    _team(api, "t1", "o1")
    _team(api, "t2")
    created = api.ok(
        "POST",
        "/user/new",
        {
            "user_id": "ada",
            "user_email": "ada@example.com",
            "user_alias": "Ada",
            "teams": ["t1", {"team_id": "t2", "max_budget_in_team": 5, "user_role": "admin"}],
            "organizations": ["o1"],
            "max_budget": 10,
            "budget_duration": "1mo",
            "models": ["gpt-4o-mini"],
            "key_alias": "ada-first",
            "duration": "7d",
            "metadata": {"dept": "research"},
            "model_rpm_limit": {"gpt-4o-mini": 5},
        },
    )
    assert created["teams"] == ["t1", "t2"] and created["max_budget"] == 10.0
    assert created["key_alias"] == "ada-first" and created["models"] == ["gpt-4o-mini"]
    expires = datetime.fromisoformat(created["expires"])
    assert 6.9 < (expires - datetime.now(UTC)).total_seconds() / 86400 <= 7
    assert [m["organization_id"] for m in created["organization_memberships"]] == ["o1"]
    t2 = _row(api, "teams", "t2")
    assert t2 is not None
    assert t2["members_with_roles"] == [
        {"user_id": "ada", "user_email": "ada@example.com", "role": "admin"}
    ]
    membership = api.gateway.call(lambda: api.gateway.store.team_members.member("ada", "t2"))
    assert membership is not None and membership["role"] == "admin"
    member_budget = _row(api, "budgets", membership["budget_id"])
    assert member_budget is not None and member_budget["max_budget"] == usd_to_nano(5)
    user = api.ok("GET", "/user/info", params={"user_id": "ada"})
    row = user["user_info"]
    assert row["metadata"] == {"dept": "research", "model_rpm_limit": {"gpt-4o-mini": 5}}
    assert row["budget_reset_at"].endswith("-01T00:00:00Z")  # 1mo: the 1st, 00:00 UTC
    assert sorted(t["team_id"] for t in user["teams"]) == ["t1", "t2"]
    t2_shown = next(t for t in user["teams"] if t["team_id"] == "t2")
    assert t2_shown["admins"] == ["ada"]
    without_key = api.ok("POST", "/user/new", {"user_id": "bob", "auto_create_key": False})
    assert without_key["key"] is None and without_key["token"] is None
    assert api.ok("GET", "/user/info", params={"user_id": "bob"})["keys"] == []


def test_user_new_bad_input_leaves_nothing(api: Api) -> None:
    _team(api, "t1")
    _team(api, "narrow", models=["gpt-4o"])
    api.ok("POST", "/user/new", {"user_id": "ada", "user_email": "Ada@Example.com"})
    api.ok("POST", "/key/generate", {"key_alias": "taken"})
    cases: list[tuple[dict[str, Any], int]] = [
        ({"user_id": "ada"}, 409),
        ({"user_id": "x", "user_email": "ADA@example.COM"}, 409),
        ({"user_id": "x", "teams": ["t1", "ghost-team"]}, 404),
        ({"user_id": "x", "organizations": ["ghost-org"]}, 404),
        ({"user_id": "x", "teams": ["t1"], "key_alias": "taken"}, 409),
        ({"user_id": "x", "team_id": "narrow", "models": ["gpt-4o-mini"]}, 400),
        ({"user_id": "x", "user_role": "superuser"}, 422),
        ({"user_id": "x", "max_budget": -5}, 400),
        ({"user_id": "x", "duration": "forever"}, 400),
        ({"user_id": "x", "teams": [{"max_budget_in_team": 1}]}, 422),
        ({"user_id": ""}, 422),
    ]
    for body, status in cases:
        envelope(api.post("/user/new", body), status)
    assert _row(api, "users", "x") is None
    for team_id in ("t1", "narrow"):
        team = _row(api, "teams", team_id)
        assert team is not None and team["members_with_roles"] == []
    listed = api.ok("GET", "/user/list")
    assert [u["user_id"] for u in listed["users"]] == ["ada"] and listed["total"] == 1
    assert api.ok("GET", "/key/list")["total_count"] == 2  # ada's key and "taken"


def test_user_update_by_id_or_email(api: Api) -> None:
    _team(api, "t1")
    api.ok("POST", "/user/new", {"user_id": "ada", "user_email": "ada@x.io", "teams": ["t1"]})
    api.ok("POST", "/user/new", {"user_id": "bob", "user_email": "bob@x.io"})
    answer = api.ok(
        "POST",
        "/user/update",
        {
            "user_id": "ada",
            "user_email": "ada@new.io",
            "tpm_limit": 10,
            "user_role": "proxy_admin_viewer",
        },
    )
    assert answer["user_id"] == "ada" and answer["data"]["user_email"] == "ada@new.io"
    assert answer["data"]["tpm_limit"] == 10 and answer["data"]["user_role"] == "proxy_admin_viewer"
    t1 = _row(api, "teams", "t1")
    assert t1 is not None and t1["members_with_roles"][0]["user_email"] == "ada@new.io"
    by_email = api.ok("POST", "/user/update", {"user_email": "ADA@new.io", "max_budget": 3})
    assert by_email["data"]["max_budget"] == 3.0 and by_email["data"]["tpm_limit"] == 10
    cleared = api.ok("POST", "/user/update", {"user_id": "ada", "unset_fields": ["tpm_limit"]})
    assert cleared["data"]["tpm_limit"] is None and cleared["data"]["max_budget"] == 3.0
    envelope(api.post("/user/update", {"max_budget": 1}), 422)
    envelope(api.post("/user/update", {"user_id": "ghost", "max_budget": 1}), 404)
    envelope(api.post("/user/update", {"user_email": "ghost@x.io", "max_budget": 1}), 404)
    envelope(api.post("/user/update", {"user_id": "bob", "user_email": "ADA@NEW.io"}), 409)
    envelope(api.post("/user/update", {"user_id": "bob", "rpm_limit": -1}), 400)
    envelope(api.post("/user/update", {"user_id": "bob", "unset_fields": ["user_id"]}), 422)


def test_user_bulk_update(api: Api) -> None:
    for user_id in ("a", "b"):
        api.ok("POST", "/user/new", {"user_id": user_id, "auto_create_key": False})
    answer = api.ok(
        "POST",
        "/user/bulk_update",
        {"users": [{"user_id": "a", "max_budget": 1}, {"user_id": "ghost", "max_budget": 1}]},
    )
    assert answer["total_requested"] == 2 and answer["successful_updates"] == 1
    assert answer["failed_updates"] == 1
    ok, failed = answer["results"]
    assert ok["success"] and ok["updated_user"]["max_budget"] == 1.0
    assert not failed["success"] and "ghost" in failed["error"]
    everyone = api.ok(
        "POST", "/user/bulk_update", {"all_users": True, "user_updates": {"rpm_limit": 3}}
    )
    assert everyone["successful_updates"] == 2
    assert all(r["updated_user"]["rpm_limit"] == 3 for r in everyone["results"])
    too_many = {"users": [{"user_id": "a"}] * 501}
    envelope(api.post("/user/bulk_update", too_many), 422)
    envelope(api.post("/user/bulk_update", {}), 422)


def test_user_delete_takes_keys_and_memberships(api: Api) -> None:
    _org(api, "o1")
    _team(api, "t1", "o1")
    ada = api.ok("POST", "/user/new", {"user_id": "ada", "teams": ["t1"], "organizations": ["o1"]})
    api.ok("POST", "/user/new", {"user_id": "bob", "teams": ["t1"]})
    error = envelope(api.post("/user/delete", {"user_ids": ["ada", "ghost"]}), 404)
    assert "ghost" in error["message"]
    _team(api, "t2")
    api.ok(
        "POST", "/user/new", {"user_id": "cat", "teams": [{"team_id": "t2", "user_role": "admin"}]}
    )
    error = envelope(api.post("/user/delete", {"user_ids": ["ada", "cat"]}), 409)
    assert "last admin of team t2" in error["message"]
    assert _row(api, "users", "ada") is not None and _chat(api, ada["key"]) == 200
    assert api.gateway.call(lambda: api.gateway.store.team_members.member("ada", "t1"))
    api.ok("POST", "/user/delete", {"user_ids": ["ada"]})
    store = api.gateway.store
    assert api.gateway.call(lambda: store.team_members.of_user("ada")) == []
    assert api.gateway.call(lambda: store.org_members.of_user("ada")) == []
    t1 = _row(api, "teams", "t1")
    assert t1 is not None and [m["user_id"] for m in t1["members_with_roles"]] == ["bob"]
    buried = api.gateway.call(lambda: store.keys.deleted.find(token=ada["token_id"]))
    assert len(buried) == 1  # kept in deleted_virtual_keys
    assert _chat(api, ada["key"]) == 401
    envelope(api.post("/user/delete", {"user_ids": []}), 422)


def test_user_list_filters_and_pages(api: Api) -> None:
    _org(api, "o1")
    _team(api, "t1")
    api.ok("POST", "/user/new", {"user_id": "u1", "user_email": "ann_lee@corp.io", "teams": ["t1"]})
    api.ok("POST", "/user/new", {"user_id": "u2", "user_email": "annXlee@corp.io"})
    api.ok(
        "POST",
        "/user/new",
        {"user_id": "u3", "user_role": "proxy_admin_viewer", "organizations": ["o1"]},
    )
    api.ok("POST", "/key/generate", {"user_id": "u1"})
    listed = api.ok("GET", "/user/list", params={"sort_by": "user_id", "sort_order": "asc"})
    assert [u["user_id"] for u in listed["users"]] == ["u1", "u2", "u3"]
    assert [u["key_count"] for u in listed["users"]] == [2, 1, 1]
    assert listed["total"] == 3 and listed["total_pages"] == 1 and listed["page_size"] == 25

    def ids(**params: Any) -> list[str]:
        return [u["user_id"] for u in api.ok("GET", "/user/list", params=params)["users"]]

    assert ids(user_email="ANN_") == ["u1"]  # substring, case-insensitive, "_" literal
    assert ids(role="proxy_admin_viewer") == ["u3"]
    assert ids(team="t1") == ["u1"]
    assert ids(organization_ids="o1") == ["u3"]
    assert sorted(ids(user_ids="u1,u3")) == ["u1", "u3"]
    page = api.ok("GET", "/user/list", params={"page": 2, "page_size": 2, "sort_by": "user_id"})
    assert [u["user_id"] for u in page["users"]] == ["u1"] and page["total_pages"] == 2
    envelope(api.get("/user/list", params={"page_size": 101}), 422)
    envelope(api.get("/user/list", params={"sort_by": "password"}), 422)


def test_v2_user_info_is_the_row_only(api: Api) -> None:
    api.ok("POST", "/user/new", {"user_id": "ada", "max_budget": 2})
    row = api.ok("GET", "/v2/user/info", params={"user_id": "ada"})
    assert row["user_id"] == "ada" and row["max_budget"] == 2.0 and row["spend"] == 0.0
    assert "keys" not in row and "organization_memberships" not in row
    envelope(api.get("/v2/user/info", params={"user_id": "ghost"}), 404)


def _rollups(api: Api, *rows: dict[str, Any]) -> None:
    store = api.gateway.store
    today = datetime.now(UTC).date().isoformat()
    for values in rows:
        row = {
            "entity_type": "user",
            "date": today,
            "model": "gpt-4o-mini",
            "custom_llm_provider": "openai",
            "endpoint": "/chat/completions",
            "prompt_tokens": 111,
            "completion_tokens": 1711,
            "spend": usd_to_nano(0.0177),
            "api_requests": 11,
            "successful_requests": 11,
            **values,
        }
        api.gateway.call(lambda row=row: store.daily_spend.insert(row, actor=SETUP))


def test_user_daily_activity_both_paths(api: Api) -> None:
    ada_key = api.user_key("ada")
    api.user_key("bob")
    empty = api.ok("GET", "/user/daily_activity", key=ada_key)
    assert empty["results"] == [] and empty["metadata"]["total_api_requests"] == 0
    _rollups(
        api,
        {"entity_id": "ada", "api_key": hash_key(ada_key)},
        {"entity_id": "bob", "api_key": "f" * 64},
    )
    mine = api.ok("GET", "/user/daily/activity", key=ada_key)  # LiteLLM's path
    (day,) = mine["results"]
    assert day["metrics"]["total_tokens"] == 1822 and day["metrics"]["spend"] == 0.0177
    key_entry = day["breakdown"]["api_keys"][hash_key(ada_key)]
    assert key_entry["metadata"] == {"key_alias": None, "team_id": None}
    assert day["breakdown"]["providers"]["openai"]["metrics"]["api_requests"] == 11
    assert mine["metadata"]["total_spend"] == 0.0177
    everyone = api.ok("GET", "/user/daily_activity")  # the master key: every user
    assert everyone["metadata"]["total_api_requests"] == 22
    one = api.ok("GET", "/user/daily_activity", params={"user_id": "bob"})
    assert one["metadata"]["total_api_requests"] == 11
    by_key = api.ok("GET", "/user/daily_activity", params={"api_key": ada_key})
    assert by_key["metadata"]["total_api_requests"] == 11
    envelope(api.get("/user/daily_activity", params={"user_id": "bob"}, key=ada_key), 403)


def test_user_routes_by_role_and_scope(api: Api) -> None:
    _org(api, "o1")
    _org(api, "o2")
    _team(api, "t1", "o1")
    _team(api, "t-other")
    viewer = api.user_key("viewer", "proxy_admin_viewer")
    ada = api.user_key("ada", teams=["t-other"])
    api.user_key("bob", organizations=["o2"])
    lead = api.user_key("lead", teams=[{"team_id": "t-other", "user_role": "admin"}])
    boss = api.user_key("boss", organizations=["o1"])
    store = api.gateway.store
    api.gateway.call(
        lambda: store.org_members.set("boss", "o1", {"user_role": "org_admin"}, actor=SETUP)
    )
    plain = api.ok("POST", "/key/generate", {})["key"]

    # Everyone reads themselves; a user nobody else.
    assert api.ok("GET", "/user/info", key=ada)["user_id"] == "ada"
    envelope(api.get("/user/info", params={"user_id": "bob"}, key=ada), 403)
    envelope(api.get("/v2/user/info", params={"user_id": "bob"}, key=ada), 404)
    envelope(api.get("/user/info", key=plain), 403)
    # A team admin reads their members; the viewer reads all but writes nothing.
    assert api.ok("GET", "/user/info", params={"user_id": "ada"}, key=lead)["user_id"] == "ada"
    assert api.ok("GET", "/user/list", key=viewer)["total"] == 5
    envelope(api.post("/user/update", {"user_id": "ada", "max_budget": 1}, key=viewer), 403)
    envelope(api.get("/user/list", key=ada), 403)
    # Users edit their own profile, not their budget or role.
    assert api.ok("POST", "/user/update", {"user_id": "ada", "user_alias": "A"}, key=ada)
    envelope(api.post("/user/update", {"user_id": "ada", "max_budget": 99}, key=ada), 403)
    error = envelope(
        api.post("/user/update", {"user_id": "ada", "user_role": "proxy_admin"}, key=ada), 403
    )
    assert "role" in error["message"]
    envelope(api.post("/user/update", {"user_id": "bob", "user_alias": "B"}, key=ada), 403)
    envelope(api.post("/user/new", {"user_id": "x"}, key=ada), 403)
    # An org admin manages users of their organizations only.
    made = api.ok(
        "POST", "/user/new", {"user_id": "new1", "organizations": ["o1"], "teams": ["t1"]}, key=boss
    )
    assert made["teams"] == ["t1"]
    envelope(api.post("/user/new", {"user_id": "x"}, key=boss), 403)
    envelope(api.post("/user/new", {"user_id": "x", "organizations": ["o2"]}, key=boss), 403)
    envelope(
        api.post(
            "/user/new",
            {"user_id": "x", "organizations": ["o1"], "user_role": "proxy_admin"},
            key=boss,
        ),
        403,
    )
    assert [u["user_id"] for u in api.ok("GET", "/user/list", key=boss)["users"]] == [
        "new1",
        "boss",
    ]
    api.ok("POST", "/user/update", {"user_id": "new1", "max_budget": 4}, key=boss)
    envelope(api.post("/user/update", {"user_id": "bob", "max_budget": 4}, key=boss), 403)
    envelope(api.post("/user/update", {"user_id": "boss", "max_budget": 99}, key=boss), 403)
    foreign = api.ok("GET", "/user/list", params={"organization_ids": "o2"}, key=boss)
    assert foreign["users"] == [] and foreign["total"] == 0
    envelope(api.post("/user/delete", {"user_ids": ["bob"]}, key=boss), 403)
    assert api.ok("POST", "/user/delete", {"user_ids": ["new1"]}, key=boss)["count"] == 1
    assert _row(api, "users", "bob") is not None
