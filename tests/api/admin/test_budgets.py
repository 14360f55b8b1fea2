"""/budget/* over real HTTP (routes.md §5.6, management-api.md §6), on SQLite or
Postgres (TIANJI_TEST_DB=postgres)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from tests.api.admin.people_support import Api, admin_api, envelope
from tests.support.fake_upstream import FakeUpstream
from tianji.store import usd_to_nano


@pytest.fixture
def api(upstream: FakeUpstream, db_url: str, tmp_path: Path) -> Iterator[Api]:
    with admin_api(upstream, db_url, tmp_path) as running:
        yield running


def test_budget_new_with_litellm_bodies(api: Api) -> None:
    # LiteLLM docs: {"budget_id": "my-free-tier", "max_budget": 4} and a duration budget.
    free = api.ok("POST", "/budget/new", {"budget_id": "my-free-tier", "max_budget": 4})
    assert free["budget_id"] == "my-free-tier" and free["max_budget"] == 4.0
    assert free["budget_duration"] is None and free["budget_reset_at"] is None
    assert free["created_by"] == "tianji_proxy_admin"
    monthly = api.ok(
        "POST",
        "/budget/new",
        {
            "max_budget": 0.1,
            "soft_budget": 0.05,
            "budget_duration": "30d",
            "tpm_limit": 1000,
            "rpm_limit": 10,
            "max_parallel_requests": 2,
            "model_max_budget": {"gpt-4o": {"max_budget": "0.0000001", "budget_duration": "1d"}},
        },
    )
    assert len(monthly["budget_id"]) == 36  # a uuid when none is given
    assert monthly["max_budget"] == 0.1 and monthly["soft_budget"] == 0.05
    # 30d resets on the 1st of next month, 00:00 UTC (guards.md §3.5).
    reset = datetime.fromisoformat(monthly["budget_reset_at"])
    assert (reset.day, reset.hour, reset.minute) == (1, 0, 0) and reset > datetime.now(UTC)
    assert monthly["model_max_budget"] == {"gpt-4o": {"max_budget": 1e-07, "budget_duration": "1d"}}
    # Money is stored exactly, in nano-USD.
    row = api.gateway.call(lambda: api.gateway.store.budgets.require(monthly["budget_id"]))
    assert row["max_budget"] == usd_to_nano(0.1) == 100_000_000


def test_budget_new_bad_input(api: Api) -> None:
    error = envelope(api.post("/budget/new", {"max_budget": -1}), 400)
    assert error["message"] == "max_budget must be a non-negative finite number. Received: -1.0"
    assert error["type"] == "bad_request_error"
    envelope(api.post("/budget/new", {"soft_budget": -0.5}), 400)
    envelope(api.post("/budget/new", {"budget_duration": "1 fortnight"}), 400)
    error = envelope(api.post("/budget/new", {"max_budget": "ten"}), 422)
    assert error["param"] == "$.max_budget" and error["type"] == "validation_error"
    error = envelope(api.post("/budget/new", {"model_max_budget": {"gpt-4o": {"x": 1}}}), 422)
    assert "gpt-4o" in error["message"]
    envelope(api.post("/budget/new", {"model_max_budget": {"gpt-4o": -2}}), 422)
    api.ok("POST", "/budget/new", {"budget_id": "b1"})
    error = envelope(api.post("/budget/new", {"budget_id": "b1", "max_budget": 9}), 409)
    assert error["message"] == "Budget with id 'b1' already exists."
    assert api.ok("GET", "/budget/info", params={"budget_id": "b1"})["max_budget"] is None
    assert len(api.ok("GET", "/budget/list")) == 1  # nothing half-written


def test_budget_update_is_partial(api: Api) -> None:
    api.ok("POST", "/budget/new", {"budget_id": "b1", "max_budget": 10, "tpm_limit": 100})
    updated = api.ok(
        "POST",
        "/budget/update",
        {"budget_id": "b1", "budget_duration": "1d", "max_parallel_requests": 3, "rpm_limit": None},
    )
    assert updated["max_budget"] == 10.0 and updated["tpm_limit"] == 100  # unchanged
    assert updated["budget_duration"] == "1d" and updated["max_parallel_requests"] == 3
    assert updated["budget_reset_at"].endswith("T00:00:00Z")  # next midnight
    cleared = api.ok(
        "POST", "/budget/update", {"budget_id": "b1", "unset_fields": ["budget_duration"]}
    )
    assert cleared["budget_duration"] is None and cleared["budget_reset_at"] is None
    envelope(api.post("/budget/update", {"max_budget": 1}), 422)
    envelope(api.post("/budget/update", {"budget_id": "nope", "max_budget": 1}), 404)
    envelope(api.post("/budget/update", {"budget_id": "b1", "unset_fields": ["spend"]}), 422)


def test_budget_info_get_and_both_post_bodies(api: Api) -> None:
    for budget_id in ("a", "b"):
        api.ok("POST", "/budget/new", {"budget_id": budget_id, "max_budget": 1})
    assert api.ok("GET", "/budget/info", params={"budget_id": "a"})["budget_id"] == "a"
    listed = api.ok("POST", "/budget/info", {"budgets": ["b", "a"]})  # LiteLLM
    assert [row["budget_id"] for row in listed] == ["b", "a"]
    assert api.ok("POST", "/budget/info", {"budget_id": "b"})["budget_id"] == "b"  # Go
    envelope(api.post("/budget/info", {"budgets": []}), 422)
    envelope(api.post("/budget/info", {}), 422)
    assert "zzz" in envelope(api.post("/budget/info", {"budgets": ["a", "zzz"]}), 404)["message"]
    envelope(api.get("/budget/info", params={"budget_id": "zzz"}), 404)
    envelope(api.get("/budget/info"), 422)


def test_budget_list_newest_first_and_settings(api: Api) -> None:
    for budget_id in ("old", "new"):
        api.ok("POST", "/budget/new", {"budget_id": budget_id, "rpm_limit": 5})
    assert [row["budget_id"] for row in api.ok("GET", "/budget/list")] == ["new", "old"]
    settings = api.ok("GET", "/budget/settings", params={"budget_id": "new"})
    assert [s["field_name"] for s in settings] == [
        "max_budget",
        "soft_budget",
        "max_parallel_requests",
        "tpm_limit",
        "rpm_limit",
        "budget_duration",
        "model_max_budget",
    ]
    rpm = next(s for s in settings if s["field_name"] == "rpm_limit")
    assert rpm["field_type"] == "Integer" and rpm["field_value"] == 5 and rpm["stored_in_db"]
    assert next(s for s in settings if s["field_name"] == "max_budget")["field_type"] == "Float"
    envelope(api.get("/budget/settings", params={"budget_id": "ghost"}), 404)


def test_budget_delete_both_bodies_and_in_use(api: Api) -> None:
    api.ok("POST", "/budget/new", {"budget_id": "used"})
    api.ok("POST", "/budget/new", {"budget_id": "spare"})
    api.ok("POST", "/budget/new", {"budget_id": "go-form"})
    api.ok("POST", "/key/generate", {"budget_id": "used"})
    api.ok("POST", "/customer/new", {"user_id": "c1", "budget_id": "used"})
    error = envelope(api.post("/budget/delete", {"id": "used"}), 409)
    assert "1 keys" in error["message"] and "1 customers" in error["message"]
    assert api.ok("GET", "/budget/info", params={"budget_id": "used"})["budget_id"] == "used"
    deleted = api.ok("POST", "/budget/delete", {"id": "spare"})  # LiteLLM
    assert deleted["budget_id"] == "spare" and deleted["status"] == "deleted"
    assert api.ok("POST", "/budget/delete", {"budget_id": "go-form"})["status"] == "deleted"
    envelope(api.post("/budget/delete", {"id": "spare"}), 404)
    envelope(api.post("/budget/delete", {}), 422)
    assert [row["budget_id"] for row in api.ok("GET", "/budget/list")] == ["used"]


def test_budget_routes_by_role(api: Api) -> None:
    api.ok("POST", "/budget/new", {"budget_id": "b1"})
    viewer = api.user_key("viewer", "proxy_admin_viewer")
    user = api.user_key("someone", "internal_user")
    admin = api.user_key("boss", "proxy_admin")
    assert api.ok("GET", "/budget/list", key=viewer)[0]["budget_id"] == "b1"
    assert api.ok("POST", "/budget/info", {"budgets": ["b1"]}, key=viewer)
    api.ok("GET", "/budget/settings", params={"budget_id": "b1"}, key=viewer)
    error = envelope(api.post("/budget/new", {"max_budget": 1}, key=viewer), 403)
    assert error["type"] == "permission_denied" and "/budget/new" in error["message"]
    envelope(api.post("/budget/delete", {"id": "b1"}, key=viewer), 403)
    for method, path in (("GET", "/budget/list"), ("POST", "/budget/update")):
        envelope(api.call(method, path, {"budget_id": "b1"}, key=user), 403)
    assert api.ok("POST", "/budget/new", {"budget_id": "b2"}, key=admin)["created_by"] == "boss"
