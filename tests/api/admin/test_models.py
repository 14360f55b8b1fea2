"""/model/* end to end: deployments stored in the database are routed at once on
the instance that wrote them, within the poll interval (or at once with Redis) on
another, and never shown with their credentials. Real gateways, real databases
(SQLite or Postgres), fake upstreams, LiteLLM's request bodies unchanged."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

from tests.conftest import MASTER_KEY, Gateway, keyed_config, running_gateway
from tests.support.fake_upstream import FakeUpstream
from tianji.store import Actor, Store, hash_key, key_name

ACTOR = Actor(changed_by="test-setup")
DB_SECRET = "sk-db-secret-0123456789"
HEADER_SECRET = "hdr-secret-9876543210"


@pytest.fixture
def gw(upstream: FakeUpstream, db_url: str, tmp_path: Path) -> Iterator[Gateway]:
    with running_gateway(keyed_config(upstream, db_url), tmp_path) as gateway:
        yield gateway


@pytest.fixture
def other() -> Iterator[FakeUpstream]:
    with FakeUpstream() as up:
        yield up


def _call(
    gw: Gateway, method: str, path: str, body: Any = None, key: str = MASTER_KEY, **params: Any
) -> httpx.Response:
    headers = {"authorization": f"Bearer {key}"}
    return httpx.request(method, gw.url + path, json=body, params=params, headers=headers)


def _ok(gw: Gateway, method: str, path: str, body: Any = None, **kwargs: Any) -> Any:
    response = _call(gw, method, path, body, **kwargs)
    assert response.status_code == 200, response.text
    return response.json()


def _error(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    error: dict[str, Any] = response.json()["error"]
    assert error["code"] == str(status)
    return error


def _chat_error(response: httpx.Response, status: int) -> dict[str, Any]:
    """An LLM route's error (its `code` is e.g. model_not_found)."""
    assert response.status_code == status, response.text
    error: dict[str, Any] = response.json()["error"]
    return error


def _chat(gw: Gateway, model: str, key: str = MASTER_KEY) -> httpx.Response:
    return httpx.post(
        gw.v1 + "/chat/completions",
        json={"model": model, "messages": [{"role": "user", "content": "hi"}]},
        headers={"authorization": f"Bearer {key}"},
    )


def _model_body(name: str, up: FakeUpstream, model_id: str | None = None, **info: Any) -> Any:
    """The body of LiteLLM's /model/new docs, pointed at a fake upstream."""
    model_info = {"id": model_id, **info} if model_id else info
    return {
        "model_name": name,
        "litellm_params": {
            "model": "openai/gpt-4o-2024-08-06",
            "api_base": up.base_url,
            "api_key": DB_SECRET,
            "timeout": 5,
        },
        "model_info": model_info,
    }


def _new(gw: Gateway, body: Any, key: str = MASTER_KEY) -> dict[str, Any]:
    created: dict[str, Any] = _ok(gw, "POST", "/model/new", body, key=key)
    return created


def _wait_until(check: Any, limit: float) -> float:
    """Seconds until `check()` is true; fails after `limit`."""
    started = time.monotonic()
    while not check():
        assert time.monotonic() - started < limit, f"not true within {limit} s"
        time.sleep(0.05)
    return time.monotonic() - started


# --------------------------------------------------------------------------- live on this instance


def test_a_new_model_is_routed_at_once(gw: Gateway, other: FakeUpstream) -> None:
    assert _chat_error(_chat(gw, "my-new-model"), 400)["code"] == "model_not_found"
    created = _new(gw, _model_body("my-new-model", other, "db-1", mode="chat"))
    assert created["model_id"] == "db-1" and created["model_name"] == "my-new-model"
    assert created["model_info"] == {"id": "db-1", "mode": "chat", "db_model": True}
    assert created["created_by"] == "tianji_proxy_admin" and created["created_at"].endswith("Z")
    assert "api_key" not in created["litellm_params"] and DB_SECRET not in str(created)

    client = openai.OpenAI(base_url=gw.v1, api_key=MASTER_KEY, max_retries=0)
    raw = client.chat.completions.with_raw_response.create(
        model="my-new-model", messages=[{"role": "user", "content": "hello"}]
    )
    assert raw.parse().choices[0].message.content == "echo: hello"
    assert raw.headers["x-litellm-model-id"] == "db-1"
    request = other.last_request
    assert request is not None and request.json["model"] == "gpt-4o-2024-08-06"
    assert request.headers["authorization"] == f"Bearer {DB_SECRET}"

    # At rest: the credential sealed, in the row and in the audit log.
    row = gw.call(lambda: gw.store.models.require("db-1"))
    assert row["litellm_params"]["api_key"].startswith("tianji-sealed:v1:")
    audit = gw.call(lambda: gw.store.audit.paginate(size=100)).rows
    assert audit and DB_SECRET not in str(row) and DB_SECRET not in str(audit)
    assert _error(_call(gw, "POST", "/model/new", _model_body("x", other, "db-1")), 409)


def test_update_changes_the_upstream(
    gw: Gateway, upstream: FakeUpstream, other: FakeUpstream
) -> None:
    _new(gw, _model_body("moving", upstream, "mv-1"))
    assert _chat(gw, "moving").status_code == 200
    assert upstream.last_request is not None and upstream.last_request.path.endswith(
        "/chat/completions"
    )
    seen_before = len(other.requests)

    # LiteLLM's form: the id in model_info; only api_base sent (deep merge).
    update = {
        "model_info": {"id": "mv-1", "base_model": "gpt-4o"},
        "litellm_params": {"api_base": other.base_url},
    }
    updated = _ok(gw, "POST", "/model/update", update)
    assert updated["model_info"]["base_model"] == "gpt-4o"
    assert updated["litellm_params"]["timeout"] == 5  # kept by the merge
    assert _chat(gw, "moving").status_code == 200
    assert len(other.requests) == seen_before + 1
    # The credential was kept: not sent, and sent back redacted.
    assert other.requests[-1].headers["authorization"] == f"Bearer {DB_SECRET}"
    patch = {"litellm_params": {"api_key": "***REDACTED***", "model": "openai/gpt-4.1"}}
    _ok(gw, "PATCH", "/model/mv-1/update", patch)
    assert _chat(gw, "moving").status_code == 200
    assert other.requests[-1].headers["authorization"] == f"Bearer {DB_SECRET}"
    assert other.requests[-1].json["model"] == "gpt-4.1"
    # The Go form: top-level model_id; a rename moves the deployment to another group.
    _ok(gw, "POST", "/model/update", {"model_id": "mv-1", "model_name": "moved"})
    assert _chat(gw, "moved").status_code == 200
    assert "Invalid model name" in _chat_error(_chat(gw, "moving"), 400)["message"]
    assert _error(_call(gw, "POST", "/model/update", {"model_id": "absent"}), 404)


def test_delete_and_config_models(gw: Gateway, other: FakeUpstream) -> None:
    _new(gw, _model_body("doomed", other, "dm-1"))
    assert _chat(gw, "doomed").status_code == 200
    answer = _ok(gw, "POST", "/model/delete", {"id": "dm-1"})
    assert answer == {"message": "Model: dm-1 deleted successfully"}
    error = _chat_error(_chat(gw, "doomed"), 400)
    assert "Invalid model name" in error["message"]
    assert _error(_call(gw, "POST", "/model/delete", {"id": "dm-1"}), 404)

    # Config-file deployments are read-only here.
    items = _ok(gw, "GET", "/model/info")["data"]
    configured = next(i for i in items if i["model_name"] == "gpt-4o-mini")["model_info"]
    assert configured["db_model"] is False
    config_id = configured["id"]
    assert _error(_call(gw, "POST", "/model/delete", {"id": config_id}), 409)
    update = {"model_info": {"id": config_id}, "litellm_params": {"api_base": other.base_url}}
    assert _error(_call(gw, "POST", "/model/update", update), 409)
    assert _error(_call(gw, "POST", "/model/new", _model_body("x", other, config_id)), 409)
    assert _chat(gw, "gpt-4o-mini").status_code == 200
    assert other.requests == [other.requests[0]]  # only the call to "doomed"


def test_invalid_models_are_refused_and_nothing_is_stored(
    upstream: FakeUpstream, other: FakeUpstream, db_url: str, tmp_path: Path
) -> None:
    config = keyed_config(upstream, db_url)
    with running_gateway(config, tmp_path, env={"OPENAI_API_KEY": ""}) as gw:
        good = _model_body("m", other)["litellm_params"]
        cases: list[tuple[Any, int, str]] = [
            ({"litellm_params": {**good, "model": "nope/x"}}, 400, "unknown provider 'nope'"),
            ({"litellm_params": {**good, "api_key": None}}, 400, "has no key for 'openai'"),
            (
                {"litellm_params": {**good, "api_key": "os.environ/TIANJI_UNSET_VAR"}},
                400,
                "environment variable TIANJI_UNSET_VAR is not set",
            ),
            ({"litellm_params": {**good, "temprature": 1}}, 422, "$.litellm_params"),
            ({"litellm_params": {**good, "timeout": "soon"}}, 422, "$.litellm_params.timeout"),
            ({"litellm_params": {"api_base": other.base_url}}, 422, "model"),
            ({}, 422, "litellm_params is required"),
            ({"litellm_params": good, "tianji_params": good}, 400, "not both"),
            ({"litellm_params": good, "model_info": {"team_id": "no-team"}}, 404, "no-team"),
            ({"litellm_params": good, "model_name": " "}, 422, "model_name"),
        ]
        for extra, status, fragment in cases:
            body = {"model_name": "bad", **extra}
            error = _error(_call(gw, "POST", "/model/new", body), status)
            assert fragment in error["message"] or fragment == error["param"], (extra, error)
        assert gw.call(lambda: gw.store.models.find()) == []
        assert _chat(gw, "gpt-4o-mini").status_code == 200


def test_a_stored_row_that_no_longer_plans_never_breaks_routing(
    gw: Gateway, other: FakeUpstream
) -> None:
    _new(gw, _model_body("fine", other, "ok-1"))
    broken = {"model_id": "bad-1", "model_name": "broken", "litellm_params": {"model": "nope/x"}}
    sealed_elsewhere = {
        "model_id": "bad-2",
        "model_name": "broken",
        "litellm_params": {
            "model": "openai/x",
            "api_key": "tianji-sealed:v1:AAAAAAAAAAAAAAAAAAAAAAAAAAAA",
        },
    }
    sync = gw.built.runtime.model_sync
    assert sync is not None

    async def store_past_the_checks() -> None:
        for row in (broken, sealed_elsewhere):
            await gw.store.models.insert(row, actor=ACTOR)
        await sync.refresh()

    gw.call(store_past_the_checks)
    ids = {i["model_info"]["id"] for i in _ok(gw, "GET", "/model/info")["data"]}
    assert "ok-1" in ids and not ids & {"bad-1", "bad-2"}
    assert _chat(gw, "fine").status_code == 200 and _chat(gw, "gpt-4o-mini").status_code == 200
    # A broken row can still be repaired through the API.
    repair = {
        "model_id": "bad-1",
        "litellm_params": {"model": "openai/x", "api_base": other.base_url, "api_key": "k"},
    }
    _ok(gw, "POST", "/model/update", repair)
    assert _chat(gw, "broken").status_code == 200


# --------------------------------------------------------------------------- other instances


def _pair(upstream: FakeUpstream, db_url: str, tmp_path: Path, general: str) -> Any:
    config = keyed_config(upstream, db_url, general=general)
    a_dir, b_dir = tmp_path / "a", tmp_path / "b"
    a_dir.mkdir()
    b_dir.mkdir()
    return running_gateway(config, a_dir), running_gateway(config, b_dir)


def test_another_instance_routes_it_within_the_poll_interval(
    upstream: FakeUpstream, other: FakeUpstream, db_url: str, tmp_path: Path
) -> None:
    first, second = _pair(upstream, db_url, tmp_path, "  proxy_config_reload_interval_seconds: 0.5")
    with first as a, second as b:
        assert _chat(b, "shared-model").status_code == 400
        _new(a, _model_body("shared-model", other, "sh-1"))
        waited = _wait_until(lambda: _chat(b, "shared-model").status_code == 200, 3)
        assert waited < 1.5
        _ok(a, "POST", "/model/delete", {"id": "sh-1"})
        _wait_until(lambda: _chat(b, "shared-model").status_code == 400, 3)


def test_with_redis_another_instance_routes_it_at_once(
    upstream: FakeUpstream, other: FakeUpstream, db_url: str, redis_url: str, tmp_path: Path
) -> None:
    # A poll far away: only the Redis announcement can tell B in time.
    general = f"  redis_url: {redis_url}\n  proxy_config_reload_interval_seconds: 600"
    first, second = _pair(upstream, db_url, tmp_path, general)
    with first as a, second as b:
        assert _chat(b, "announced").status_code == 400
        _new(a, _model_body("announced", other, "rd-1"))
        assert _wait_until(lambda: _chat(b, "announced").status_code == 200, 3) < 1
        _ok(a, "POST", "/model/update", {"model_id": "rd-1", "model_name": "renamed"})
        assert _wait_until(lambda: _chat(b, "renamed").status_code == 200, 3) < 1


# --------------------------------------------------------------------------- reads


def test_model_info_never_shows_a_credential(gw: Gateway, other: FakeUpstream) -> None:
    body = _model_body("secretive", other, "sc-1", input_cost_per_token=2e-6, supports_vision=True)
    body["litellm_params"]["headers"] = {
        "Authorization": f"Bearer {HEADER_SECRET}",
        "X-Trace": "on",
    }
    body["litellm_params"]["aws_secret_access_key"] = HEADER_SECRET + "-aws"
    created = _new(gw, body)
    assert created["litellm_params"]["headers"] == {"X-Trace": "on"}
    answers = [
        created,
        _ok(gw, "GET", "/model/info"),
        _ok(gw, "GET", "/v1/model/info"),
        _ok(gw, "GET", "/v2/model/info"),
        _ok(gw, "GET", "/model_group/info"),
        _ok(gw, "GET", "/model/info", litellm_model_id="sc-1"),
    ]
    for answer in answers:
        text = str(answer)
        assert DB_SECRET not in text and HEADER_SECRET not in text
        assert "sk-upstream-secret" not in text  # the config's key neither
        assert "tianji-sealed" not in text
    (item,) = answers[-1]["data"]
    assert item["model_name"] == "secretive" and item["litellm_params"]["headers"] == {
        "X-Trace": "on"
    }
    info = item["model_info"]
    assert info["db_model"] is True and info["litellm_provider"] == "openai"
    assert info["input_cost_per_token"] == 2e-6 and info["supports_vision"] is True
    assert _error(_call(gw, "GET", "/model/info", litellm_model_id="nope"), 404)
    # The upstream did get the header.
    assert _chat(gw, "secretive").status_code == 200
    assert other.last_request is not None
    assert HEADER_SECRET in other.last_request.headers["authorization"]


def test_v2_model_info_pages_and_searches(gw: Gateway, other: FakeUpstream) -> None:
    for n in range(3):
        _new(gw, _model_body(f"paged-{n}", other, f"pg-{n}"))
    page = _ok(gw, "GET", "/v2/model/info", search="PAGED", size=2, page=2)
    assert page["total_count"] == 3 and page["total_pages"] == 2 and page["current_page"] == 2
    assert [i["model_name"] for i in page["data"]] == ["paged-2"] and page["size"] == 2
    assert _error(_call(gw, "GET", "/v2/model/info", size=0), 422)


def test_model_group_info(gw: Gateway, upstream: FakeUpstream, other: FakeUpstream) -> None:
    first = _model_body("grouped", upstream, "g-1", max_input_tokens=1000, supports_vision=True)
    first["litellm_params"]["rpm"] = 10
    second = _model_body("grouped", other, "g-2", max_input_tokens=8000, mode="chat")
    second["litellm_params"].update(rpm=5, input_cost_per_token=3e-6)
    _new(gw, first)
    _new(gw, second)
    (group,) = _ok(gw, "GET", "/model_group/info", model_group="grouped")["data"]
    assert group["model_group"] == "grouped" and group["providers"] == ["openai"]
    assert group["max_input_tokens"] == 8000 and group["rpm"] == 15 and group["tpm"] is None
    assert group["input_cost_per_token"] == 3e-6 and group["mode"] == "chat"
    assert group["supports_vision"] is True and group["supports_function_calling"] is False
    assert {"temperature", "tools"} <= set(group["supported_openai_params"])
    names = {g["model_group"] for g in _ok(gw, "GET", "/model_group/info")["data"]}
    assert {"grouped", "gpt-4o-mini", "openai/*"} <= names
    assert _error(_call(gw, "GET", "/model_group/info", model_group="nope"), 404)
    # Both deployments serve the group; a third joins it while it is in use (the
    # router's cached weights must follow the new group).
    for _ in range(12):
        assert _chat(gw, "grouped").status_code == 200
    assert upstream.requests and other.requests
    _new(gw, _model_body("grouped", other, "g-3"))
    for _ in range(6):
        assert _chat(gw, "grouped").status_code == 200


# --------------------------------------------------------------------------- caller-filtered


def _generate(gw: Gateway, **body: Any) -> str:
    key: str = _ok(gw, "POST", "/key/generate", body)["key"]
    return key


def _listed(gw: Gateway, key: str) -> set[str]:
    return {m["id"] for m in _ok(gw, "GET", "/v1/models", key=key)["data"]}


def test_listings_show_only_what_the_key_may_call(gw: Gateway, other: FakeUpstream) -> None:
    _new(gw, _model_body("db-visible", other, "v-1"))
    _new(gw, _model_body("db-hidden", other, "h-1"))
    _new(gw, _model_body("db-grouped", other, "ag-1", access_groups=["beta-models"]))
    key = _generate(gw, models=["gpt-4o-mini", "db-visible", "beta-models"])
    allowed = {"gpt-4o-mini", "db-visible", "db-grouped"}
    assert _listed(gw, key) == allowed
    assert {"db-hidden", "openai/*", "rerank-model"} <= _listed(gw, MASTER_KEY)
    assert _ok(gw, "GET", "/v1/models/db-visible", key=key)["id"] == "db-visible"
    assert _chat_error(_call(gw, "GET", "/v1/models/db-hidden", key=key), 404)
    assert {i["model_name"] for i in _ok(gw, "GET", "/model/info", key=key)["data"]} == allowed
    groups = _ok(gw, "GET", "/model_group/info", key=key)["data"]
    assert {g["model_group"] for g in groups} == allowed
    assert _error(_call(gw, "GET", "/model_group/info", key=key, model_group="db-hidden"), 404)
    assert _error(_call(gw, "GET", "/model/info", key=key, litellm_model_id="h-1"), 404)
    # What is listed can be called, what is not is refused: the same rule.
    for name in allowed:
        assert _chat(gw, name, key).status_code == 200, name
    assert _chat_error(_chat(gw, "db-hidden", key), 401)["type"] == "key_model_access_denied"


def test_a_key_allowed_a_name_a_wildcard_serves(gw: Gateway, upstream: FakeUpstream) -> None:
    key = _generate(gw, models=["openai/gpt-4"])
    assert _chat(gw, "openai/gpt-4", key).status_code == 200
    assert upstream.last_request is not None and upstream.last_request.json["model"] == "gpt-4"
    denied = _chat_error(_chat(gw, "openai/gpt-3.5-turbo", key), 401)
    assert denied["type"] == "key_model_access_denied"
    assert _listed(gw, key) == {"openai/gpt-4"}


# --------------------------------------------------------------------------- who may write


async def _person(store: Store, user_id: str, role: str, team: str | None, admin: bool) -> str:
    await store.users.insert({"user_id": user_id, "user_role": role}, actor=ACTOR)
    if team is not None:
        member_role = "admin" if admin else "user"
        await store.team_members.add(user_id, team, role=member_role, actor=ACTOR)
    plaintext = f"sk-{user_id}-0000000000000"
    row = {"token": hash_key(plaintext), "key_name": key_name(plaintext), "user_id": user_id}
    await store.keys.create({**row, "team_id": team}, actor=ACTOR)
    return plaintext


async def _people(store: Store) -> dict[str, str]:
    for team in ("t1", "t2"):
        await store.teams.insert({"team_id": team}, actor=ACTOR)
    return {
        "team_admin": await _person(store, "u-admin", "internal_user", "t1", True),
        "member": await _person(store, "u-member", "internal_user", "t1", False),
        "viewer": await _person(store, "u-viewer", "proxy_admin_viewer", None, False),
        "other_admin": await _person(store, "u-other", "internal_user", "t2", True),
    }


def test_who_may_write_models(gw: Gateway, other: FakeUpstream) -> None:
    keys = gw.call(lambda: _people(gw.store))
    admin = keys["team_admin"]
    team_model = _model_body("team-one-model", other, "tm-1", team_id="t1")
    assert _new(gw, team_model, key=admin)["model_info"]["team_id"] == "t1"
    assert _chat(gw, "team-one-model", admin).status_code == 200
    assert _error(_call(gw, "POST", "/model/new", _model_body("x", other), admin), 403)
    foreign = _model_body("x2", other, team_id="t2")
    assert _error(_call(gw, "POST", "/model/new", foreign, admin), 403)
    # A team's model may not take a share of a group others are served by.
    joining = _model_body("gpt-4o-mini", other, team_id="t1")
    assert _error(_call(gw, "POST", "/model/new", joining, admin), 409)
    for role in ("member", "viewer"):
        body = _model_body("y", other, team_id="t1")
        assert _error(_call(gw, "POST", "/model/new", body, keys[role]), 403)
    # Writes on another team's model, or moving one's own to another team: refused.
    assert _error(_call(gw, "POST", "/model/delete", {"id": "tm-1"}, keys["other_admin"]), 403)
    move = {"model_id": "tm-1", "model_info": {"team_id": "t2"}}
    assert _error(_call(gw, "POST", "/model/update", move, admin), 403)
    rename = {"model_id": "tm-1", "model_name": "team-one-renamed"}
    assert _ok(gw, "POST", "/model/update", rename, key=admin)["model_name"] == "team-one-renamed"
    # The team-scoped model shows to its team and to admins, not to other teams.
    names = {i["model_name"] for i in _ok(gw, "GET", "/model/info", key=keys["member"])["data"]}
    assert "team-one-renamed" in names
    others = _ok(gw, "GET", "/model/info", key=keys["other_admin"])["data"]
    assert "team-one-renamed" not in {i["model_name"] for i in others}
    viewer = _ok(gw, "GET", "/model/info", key=keys["viewer"])["data"]
    assert "team-one-renamed" in {i["model_name"] for i in viewer}
    # ... and only its team may call it: another team's key is refused.
    assert _chat(gw, "team-one-renamed", keys["member"]).status_code == 200
    refused = _chat(gw, "team-one-renamed", keys["other_admin"])
    assert refused.status_code == 401
    assert refused.json()["error"]["type"] == "team_model_access_denied"
    assert _ok(gw, "POST", "/model/delete", {"id": "tm-1"}, key=admin)["message"]


def test_the_requested_name_also_counts_on_v1_messages(gw: Gateway, upstream: FakeUpstream) -> None:
    """/v1/messages applies the same allow-list rule as /chat/completions."""
    key = _generate(gw, models=["openai/gpt-4"])
    body = {
        "model": "openai/gpt-4",
        "max_tokens": 5,
        "messages": [{"role": "user", "content": "hi"}],
    }
    allowed = httpx.post(gw.url + "/v1/messages", json=body, headers={"x-api-key": key})
    assert allowed.status_code == 200, allowed.text
    denied = httpx.post(
        gw.url + "/v1/messages",
        json={**body, "model": "openai/gpt-3.5-turbo"},
        headers={"x-api-key": key},
    )
    assert denied.status_code == 401
    assert denied.json()["type"] == "error"
