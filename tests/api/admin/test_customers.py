"""/customer/* and every /end_user/* alias over real HTTP (routes.md §5.5,
management-api.md §5), on SQLite or Postgres (TIANJI_TEST_DB=postgres)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.api.admin.people_support import Api, admin_api, envelope
from tests.support.fake_upstream import FakeUpstream
from tianji.store import Actor, usd_to_nano


@pytest.fixture
def api(upstream: FakeUpstream, db_url: str, tmp_path: Path) -> Iterator[Api]:
    with admin_api(upstream, db_url, tmp_path) as running:
        yield running


def test_customer_new_with_litellm_bodies_and_info_paths(api: Api) -> None:
    api.ok("POST", "/budget/new", {"budget_id": "free-tier", "max_budget": 4})
    # LiteLLM docs: link an existing budget, or give budget fields.
    linked = api.ok("POST", "/customer/new", {"user_id": "ishaan3", "budget_id": "free-tier"})
    assert linked["budget_id"] == "free-tier" and linked["blocked"] is False
    assert linked["litellm_budget_table"]["max_budget"] == 4.0
    own = api.ok(
        "POST",
        "/end_user/new",
        {"user_id": "krrish", "max_budget": 0.5, "budget_duration": "1d", "alias": "Krrish"},
    )
    assert own["budget_id"] not in (None, "free-tier") and own["alias"] == "Krrish"
    assert own["litellm_budget_table"]["max_budget"] == 0.5
    assert own["litellm_budget_table"]["budget_duration"] == "1d"
    expected = {
        "user_id",
        "alias",
        "spend",
        "allowed_model_region",
        "default_model",
        "budget_id",
        "blocked",
        "metadata",
        "litellm_budget_table",
        "created_at",
    }
    assert set(own) == expected and own["spend"] == 0.0 and own["created_at"].endswith("Z")
    for path, params in (
        ("/customer/info", {"end_user_id": "krrish"}),
        ("/end_user/info", {"end_user_id": "krrish"}),
        ("/end_user/info/krrish", None),
    ):
        assert api.ok("GET", path, params=params) == own
    envelope(api.get("/end_user/info/nobody"), 404)
    envelope(api.get("/customer/info"), 422)


def test_customer_new_bad_input_leaves_nothing(api: Api) -> None:
    api.ok("POST", "/budget/new", {"budget_id": "b1"})
    envelope(api.post("/customer/new", {"alias": "no id"}), 422)
    error = envelope(
        api.post("/customer/new", {"user_id": "c", "budget_id": "b1", "max_budget": 1}), 422
    )
    assert "not both" in error["message"]
    envelope(api.post("/customer/new", {"user_id": "c", "budget_id": "ghost"}), 404)
    envelope(api.post("/customer/new", {"user_id": "c", "allowed_model_region": "mars"}), 422)
    error = envelope(api.post("/customer/new", {"user_id": "c", "default_model": "no-such"}), 422)
    assert error["param"] == "$.default_model"
    envelope(api.post("/customer/new", {"user_id": "c", "max_budget": -1}), 400)
    envelope(
        api.post("/customer/new", {"user_id": "c", "tpm_limit": 5, "budget_duration": "x"}), 400
    )
    assert api.ok("GET", "/customer/list") == []
    assert [b["budget_id"] for b in api.ok("GET", "/budget/list")] == ["b1"]
    made = api.ok(
        "POST",
        "/customer/new",
        {"user_id": "c", "default_model": "gpt-4o-mini", "allowed_model_region": "eu"},
    )
    assert made["default_model"] == "gpt-4o-mini" and made["allowed_model_region"] == "eu"
    api.ok("POST", "/customer/new", {"user_id": "d", "default_model": "openai/gpt-4.1"})
    error = envelope(api.post("/customer/new", {"user_id": "c"}), 409)
    assert error["type"] == "conflict"


def _budget_ids(api: Api) -> set[str]:
    return {b["budget_id"] for b in api.ok("GET", "/budget/list")}


def test_customer_update_owns_its_budget(api: Api) -> None:
    api.ok("POST", "/budget/new", {"budget_id": "shared", "max_budget": 4, "rpm_limit": 7})
    api.ok("POST", "/customer/new", {"user_id": "a", "budget_id": "shared", "blocked": True})
    api.ok("POST", "/customer/new", {"user_id": "b", "budget_id": "shared"})
    # A shared budget is copied, never edited for everyone.
    a = api.ok("POST", "/customer/update", {"user_id": "a", "max_budget": 9})
    assert a["budget_id"] != "shared" and a["blocked"] is True  # absent = unchanged
    assert a["litellm_budget_table"]["max_budget"] == 9.0
    assert a["litellm_budget_table"]["rpm_limit"] == 7  # copied from the shared row
    assert api.ok("GET", "/budget/info", params={"budget_id": "shared"})["max_budget"] == 4.0
    # Its own budget is edited in place.
    again = api.ok("POST", "/end_user/update", {"user_id": "a", "tpm_limit": 50, "alias": "A"})
    assert again["budget_id"] == a["budget_id"] and again["alias"] == "A"
    assert again["litellm_budget_table"]["tpm_limit"] == 50
    assert again["litellm_budget_table"]["max_budget"] == 9.0
    budgets_before = _budget_ids(api)
    relinked = api.ok("POST", "/customer/update", {"user_id": "b", "budget_id": a["budget_id"]})
    assert relinked["budget_id"] == a["budget_id"]
    unblocked = api.ok("POST", "/customer/update", {"user_id": "a", "blocked": False})
    assert unblocked["blocked"] is False
    envelope(api.post("/customer/update", {"user_id": "ghost", "alias": "x"}), 404)
    envelope(api.post("/customer/update", {"user_id": "a", "budget_id": "ghost"}), 404)
    envelope(api.post("/customer/update", {"user_id": "a", "max_budget": -3}), 400)
    assert _budget_ids(api) == budgets_before


def test_customer_delete_is_all_or_nothing(api: Api) -> None:
    for end_user in ("a", "b", "c"):
        api.ok("POST", "/customer/new", {"user_id": end_user})
    error = envelope(api.post("/customer/delete", {"user_ids": ["a", "ghost"]}), 404)
    assert "ghost" in error["message"]
    assert len(api.ok("GET", "/customer/list")) == 3
    deleted = api.ok("POST", "/customer/delete", {"user_ids": ["a", "b"]})
    assert deleted == {
        "deleted_customers": 2,
        "message": "Successfully deleted customers with ids: ['a', 'b']",
    }
    assert api.ok("POST", "/end_user/delete", {"user_ids": ["c"]})["deleted_customers"] == 1
    assert api.ok("GET", "/end_user/list") == []
    envelope(api.post("/customer/delete", {"user_ids": []}), 422)


def test_customer_block_and_unblock(api: Api) -> None:
    api.ok("POST", "/customer/new", {"user_id": "known"})
    blocked = api.ok("POST", "/customer/block", {"user_ids": ["known", "stranger"]})
    assert [(c["user_id"], c["blocked"]) for c in blocked["blocked_users"]] == [
        ("known", True),
        ("stranger", True),  # unknown ids are created blocked
    ]
    error = envelope(api.post("/customer/unblock", {"user_ids": ["known", "ghost"]}), 404)
    assert "ghost" in error["message"]
    assert api.ok("GET", "/customer/info", params={"end_user_id": "known"})["blocked"] is True
    unblocked = api.ok("POST", "/end_user/unblock", {"user_ids": ["known"]})
    assert [c["blocked"] for c in unblocked["unblocked_users"]] == [False]
    again = api.ok("POST", "/end_user/block", {"user_ids": ["known"]})
    assert again["blocked_users"][0]["blocked"] is True
    envelope(api.post("/customer/block", {"user_ids": "known"}), 422)
    actions = api.gateway.call(
        lambda: api.gateway.store.audit.find(table_name="end_users", object_id="known")
    )
    assert sorted(a["action"] for a in actions) == ["blocked", "blocked", "created", "unblocked"]


def _rollup(day: str, **values: Any) -> dict[str, Any]:
    row = {
        "entity_type": "end_user",
        "entity_id": "acme",
        "date": day,
        "api_key": "",
        "model": "gpt-4o-mini",
        "model_group": "gpt-4o-mini",
        "custom_llm_provider": "openai",
        "endpoint": "/chat/completions",
        "prompt_tokens": 10,
        "completion_tokens": 5,
        "spend": usd_to_nano(0.25),
        "api_requests": 2,
        "successful_requests": 2,
    }
    return {**row, **values}


def test_customer_daily_activity(api: Api) -> None:
    empty = api.ok("GET", "/customer/daily/activity")
    assert empty["results"] == []
    assert empty["metadata"]["total_spend"] == 0.0 and empty["metadata"]["has_more"] is False
    today = datetime.now(UTC).date()
    yesterday = (today - timedelta(days=1)).isoformat()
    rows = [
        _rollup(today.isoformat()),
        _rollup(today.isoformat(), model="gpt-4o", endpoint="/embeddings", spend=usd_to_nano(0.5)),
        _rollup(yesterday, failed_requests=1, api_requests=3),
        _rollup(yesterday, entity_id="other"),
    ]
    store = api.gateway.store
    for row in rows:
        api.gateway.call(lambda row=row: store.daily_spend.insert(row, actor=Actor()))
    answer = api.ok("GET", "/end_user/daily/activity", params={"end_user_ids": "acme"})
    assert [r["date"] for r in answer["results"]] == [today.isoformat(), yesterday]
    first = answer["results"][0]
    assert first["metrics"]["spend"] == 0.75 and first["metrics"]["total_tokens"] == 30
    assert set(first["breakdown"]["models"]) == {"gpt-4o-mini", "gpt-4o"}
    assert first["breakdown"]["endpoints"]["/embeddings"]["metrics"]["spend"] == 0.5
    totals = answer["metadata"]
    assert totals["total_spend"] == 1.0 and totals["total_api_requests"] == 7
    assert totals["total_failed_requests"] == 1 and totals["total_pages"] == 1
    paged = api.ok("GET", "/customer/daily/activity", params={"page_size": 1, "page": 2})
    assert paged["metadata"]["total_pages"] == 4 and paged["metadata"]["has_more"] is True
    everyone = api.ok("GET", "/customer/daily/activity", params={"start_date": yesterday})
    assert everyone["metadata"]["total_spend"] == 1.25
    envelope(api.get("/customer/daily/activity", params={"start_date": "01/02/2026"}), 422)
    envelope(
        api.get("/customer/daily/activity", params={"start_date": today, "end_date": yesterday}),
        400,
    )


def test_customer_routes_by_role(api: Api) -> None:
    api.ok("POST", "/customer/new", {"user_id": "c1"})
    viewer = api.user_key("viewer", "proxy_admin_viewer")
    user = api.user_key("someone", "internal_user")
    assert [c["user_id"] for c in api.ok("GET", "/customer/list", key=viewer)] == ["c1"]
    api.ok("GET", "/end_user/info/c1", key=viewer)
    api.ok("GET", "/customer/daily/activity", key=viewer)
    for path in ("/customer/new", "/customer/block", "/end_user/delete", "/end_user/update"):
        error = envelope(api.post(path, {"user_id": "x", "user_ids": ["c1"]}, key=viewer), 403)
        assert error["type"] == "permission_denied"
    envelope(api.get("/customer/list", key=user), 403)
    envelope(api.get("/end_user/info/c1", key=user), 403)
    assert api.ok("GET", "/customer/info", params={"end_user_id": "c1"})["blocked"] is False
