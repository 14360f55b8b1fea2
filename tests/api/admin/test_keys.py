"""/key/* end to end: a real gateway, a real database (SQLite or Postgres), the
official openai SDK, and LiteLLM's documented request bodies unchanged."""

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
from tianji.store import Actor

ADMIN = {"authorization": f"Bearer {MASTER_KEY}"}
ACTOR = Actor()


@pytest.fixture
def gw(upstream: FakeUpstream, db_url: str, tmp_path: Path) -> Iterator[Gateway]:
    with running_gateway(keyed_config(upstream, db_url), tmp_path) as gateway:
        yield gateway


def _post(gw: Gateway, path: str, body: Any, caller: str = MASTER_KEY) -> httpx.Response:
    return httpx.post(gw.url + path, json=body, headers={"authorization": f"Bearer {caller}"})


def _get(gw: Gateway, path: str, caller: str = MASTER_KEY, **params: Any) -> httpx.Response:
    return httpx.get(gw.url + path, params=params, headers={"authorization": f"Bearer {caller}"})


def _generate(gw: Gateway, body: Any | None = None) -> dict[str, Any]:
    response = _post(gw, "/key/generate", body or {})
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result


def _chat(gw: Gateway, key: str, model: str = "gpt-4o-mini") -> httpx.Response:
    return httpx.post(
        gw.v1 + "/chat/completions",
        json={"model": model, "messages": [{"role": "user", "content": "hi"}]},
        headers={"authorization": f"Bearer {key}"},
    )


def _error(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    error: dict[str, Any] = response.json()["error"]
    assert error["code"] == str(status)
    return error


def test_litellm_key_flow(gw: Gateway, upstream: FakeUpstream) -> None:
    # The body of LiteLLM's /key/generate docs, unchanged.
    created = _generate(
        gw,
        {"models": ["gpt-4o-mini"], "metadata": {"user": "ishaan@berri.ai"}, "duration": "20m"},
    )
    key = created["key"]
    assert key.startswith("sk-") and len(key) == 25 and created["token"] == key
    assert created["key_name"] == f"sk-...{key[-4:]}" and len(created["token_id"]) == 64
    assert created["models"] == ["gpt-4o-mini"] and created["expires"].endswith("Z")

    client = openai.OpenAI(base_url=gw.v1, api_key=key, max_retries=0)
    reply = client.chat.completions.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}]
    )
    assert reply.choices[0].message.content
    assert upstream.last_request is not None
    assert upstream.last_request.headers["authorization"] == "Bearer sk-upstream-secret"

    info = _get(gw, "/key/info", caller=key).json()  # no ?key=: the calling key
    assert info["info"]["metadata"] == {"user": "ishaan@berri.ai"}
    assert info["info"]["key_name"] == created["key_name"] and key not in str(info)

    assert _post(gw, "/key/block", {"key": key}).json()["blocked"] is True
    with pytest.raises(openai.AuthenticationError, match="blocked"):
        client.chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": "x"}]
        )
    assert _post(gw, "/key/unblock", {"key": key}).json()["blocked"] is False
    assert _chat(gw, key).status_code == 200

    assert _post(gw, "/key/delete", {"keys": [key]}).json() == {"deleted_keys": [key]}
    error = _error(_chat(gw, key), 401)
    assert error["type"] == "authentication_error" and key not in error["message"]


def test_the_plaintext_is_shown_once(gw: Gateway) -> None:
    key = _generate(gw, {"key_alias": "once"})["key"]
    token = _generate(gw)["token_id"]
    answers = [
        _get(gw, "/key/info", caller=key).json(),
        _get(gw, "/key/info", key=key).json(),
        _get(gw, "/key/list", return_full_object="true").json(),
        _post(gw, "/key/update", {"key": key, "max_budget": 3}).json(),
        _post(gw, "/key/block", {"key": key}).json(),
    ]
    for answer in answers:
        # `key` echoes the reference the caller sent (LiteLLM); nothing else may hold it.
        rest = {name: value for name, value in answer.items() if name != "key"}
        assert key not in str(rest) and MASTER_KEY not in str(answer)
    assert answers[0]["key"] == f"sk-...{key[-4:]}"
    assert token in _get(gw, "/key/list").json()["keys"]  # the list names keys by hash
    audit = gw.call(lambda: gw.store.audit.paginate(size=100)).rows
    assert audit and key not in str(audit)


def test_bad_bodies_are_refused_and_nothing_is_half_written(gw: Gateway) -> None:
    _generate(gw, {"key_alias": "taken", "key": "sk-custom-key-0123456789"})
    cases: list[tuple[Any, int, str]] = [
        ({"max_budget": "ten"}, 422, "$.max_budget"),
        ({"models": "gpt-4o"}, 422, "$.models"),
        ({"key_type": "superuser"}, 422, "$.key_type"),
        ({"model_rpm_limit": {"gpt-4o": "many"}}, 422, "$.model_rpm_limit[...]"),
        ({"duration": "3 days"}, 400, "duration"),
        ({"budget_duration": "monthly"}, 400, "budget_duration"),
        ({"max_budget": -1}, 400, "max_budget"),
        ({"tpm_limit": -5}, 400, "tpm_limit"),
        ({"key": "sk-short"}, 400, "key"),
        ({"key": "pk-" + "x" * 30}, 400, "key"),
        ({"key_alias": "taken"}, 409, "key_alias"),
        ({"key": "sk-custom-key-0123456789"}, 409, "key"),
        ({"team_id": "no-such-team"}, 404, "team_id"),
        ({"user_id": "no-such-user"}, 404, "user_id"),
        ({"budget_id": "no-such-budget"}, 404, "budget_id"),
        ({"organization_id": "no-such-org"}, 404, "organization_id"),
    ]
    for body, status, param in cases:
        error = _error(_post(gw, "/key/generate", body), status)
        assert error["param"] == param, (body, error)
    assert _error(_post(gw, "/key/generate", [1, 2]), 422)["type"] == "validation_error"
    malformed = httpx.post(gw.url + "/key/generate", content=b"{", headers=ADMIN)
    assert _error(malformed, 422)["type"] == "validation_error"
    assert _get(gw, "/key/list").json()["total_count"] == 1


def test_update_is_partial(gw: Gateway) -> None:
    created = _generate(
        gw, {"key_alias": "a", "max_budget": 10, "models": ["gpt-4o-mini"], "tpm_limit": 100}
    )
    key = created["key"]
    updated = _post(gw, "/key/update", {"key": key, "max_budget": 2.5, "models": None}).json()
    assert updated["key"] == key
    assert (updated["max_budget"], updated["models"], updated["tpm_limit"]) == (
        2.5,
        ["gpt-4o-mini"],
        100,
    )
    cleared = _post(
        gw, "/key/update", {"key": created["token_id"], "unset_fields": ["max_budget", "tpm_limit"]}
    ).json()
    assert cleared["max_budget"] is None and cleared["tpm_limit"] is None
    assert cleared["key"] == created["token_id"]  # a key may be named by its hash
    assert _error(_post(gw, "/key/update", {"key": key, "unset_fields": ["spend"]}), 422)
    lone = {"key": key, "temp_budget_increase": 5}
    assert _error(_post(gw, "/key/update", lone), 422)["param"] == "$.temp_budget_expiry"
    both = {**lone, "temp_budget_expiry": "2030-01-01T00:00:00Z"}
    assert _post(gw, "/key/update", both).json()["metadata"]["temp_budget_increase"] == 5
    assert _error(_post(gw, "/key/update", {"key": "sk-missing-key-00000000"}), 404)
    assert _error(_post(gw, "/key/update", {"max_budget": 1}), 422)["param"] == "$"


def test_expired_key_is_refused_until_extended(gw: Gateway) -> None:
    created = _generate(gw, {"duration": "1s"})
    key = created["key"]
    assert _chat(gw, key).status_code == 200
    time.sleep(1.1)
    error = _error(_chat(gw, key), 400)
    assert error["type"] == "expired_key" and "Expired Key" in error["message"]
    never = _post(gw, "/key/update", {"key": key, "duration": "-1"}).json()
    assert never["expires"] is None
    assert _chat(gw, key).status_code == 200


def test_regenerate(gw: Gateway) -> None:
    created = _generate(gw, {"key_alias": "rot", "max_budget": 4})
    old = created["key"]
    renewed = _post(gw, "/key/regenerate", {"key": old}).json()
    new = renewed["key"]
    assert new != old and renewed["key_alias"] == "rot" and renewed["max_budget"] == 4
    assert _error(_chat(gw, old), 401) and _chat(gw, new).status_code == 200

    # LiteLLM's path form, a custom new key and a grace period for the old one.
    custom = "sk-my-rotated-key-000001"
    path_form = _post(gw, f"/key/{new}/regenerate", {"new_key": custom, "grace_period": "1h"})
    assert path_form.json()["key"] == custom
    assert _chat(gw, custom).status_code == 200
    assert _chat(gw, new).status_code == 200  # still inside its grace period
    master = _error(_post(gw, "/key/regenerate", {"key": MASTER_KEY}), 400)
    assert "master key" in master["message"]
    assert _error(_post(gw, "/key/regenerate", {"key": "sk-missing-key-00000000"}), 404)


def test_list_pages_and_filters(gw: Gateway) -> None:
    gw.call(lambda: gw.store.teams.insert({"team_id": "t1"}, actor=ACTOR))
    tokens = [
        _generate(gw, {"key_alias": f"k{i:02d}", "team_id": "t1" if i % 3 == 0 else None})[
            "token_id"
        ]
        for i in range(12)
    ]
    first = _get(gw, "/key/list", size=5, sort_by="key_alias", sort_order="asc").json()
    assert first["keys"] == tokens[:5]
    assert (first["total_count"], first["current_page"], first["total_pages"]) == (12, 1, 3)
    last = _get(gw, "/key/list", size=5, page=3, sort_by="key_alias", sort_order="asc").json()
    assert last["keys"] == tokens[10:]
    team = _get(gw, "/key/list", team_id="t1", return_full_object="true").json()
    assert sorted(k["key_alias"] for k in team["keys"]) == ["k00", "k03", "k06", "k09"]
    assert all(k["token"] in tokens for k in team["keys"])
    by_hash = _get(gw, "/key/list", key_hash=tokens[4]).json()
    assert by_hash["keys"] == [tokens[4]]
    assert _error(_get(gw, "/key/list", size=101), 422)["param"] == "size"
    assert _error(_get(gw, "/key/list", sort_by="secret"), 422)["param"] == "sort_by"
    _post(gw, "/key/delete", {"key_aliases": ["k00", "k01"]})
    deleted = _get(gw, "/key/list", status="deleted", return_full_object="true").json()
    assert sorted(k["key_alias"] for k in deleted["keys"]) == ["k00", "k01"]
    assert all(k["deleted_by"] == "tianji_proxy_admin" for k in deleted["keys"])


def test_delete_is_all_or_nothing(gw: Gateway) -> None:
    key = _generate(gw)["key"]
    error = _error(_post(gw, "/key/delete", {"keys": [key, "sk-missing-key-0000000"]}), 404)
    assert "sk-...0000" in error["message"] and "sk-missing" not in error["message"]
    assert _chat(gw, key).status_code == 200
    assert _error(_post(gw, "/key/delete", {}), 422)
    assert _error(_post(gw, "/key/delete", {"key_aliases": ["nope"]}), 404)


def test_other_key_routes(gw: Gateway) -> None:
    gw.call(lambda: gw.store.teams.insert({"team_id": "svc", "max_budget": 10**10}, actor=ACTOR))
    first = _generate(gw, {"key_alias": "one"})
    second = _generate(gw, {"key_alias": "two"})
    both = _post(gw, "/v2/key/info", {"keys": [first["key"], second["token_id"]]}).json()
    assert [i["key_alias"] for i in both["info"]] == ["one", "two"]
    assert _get(gw, "/key/aliases").json() == {"aliases": ["one", "two"]}

    bulk = _post(
        gw,
        "/key/bulk_update",
        {
            "keys": [
                {"key": first["key"], "max_budget": 5, "tags": ["ci"]},
                {"key": "sk-nope-nope-nope-0000"},
            ]
        },
    ).json()
    assert bulk["total_requested"] == 2
    assert bulk["successful_updates"][0]["key_info"]["metadata"]["tags"] == ["ci"]
    assert "not found" in bulk["failed_updates"][0]["failed_reason"]

    gw.call(lambda: gw.store.keys.change(first["token_id"], {"spend": 3 * 10**9}, actor=ACTOR))
    reset = _post(gw, f"/key/{first['key']}/reset_spend", {"reset_to": 1.5}).json()
    assert (reset["spend"], reset["previous_spend"], reset["max_budget"]) == (1.5, 3.0, 5.0)
    assert _error(_post(gw, f"/key/{first['key']}/reset_spend", {"reset_to": 2}), 400)

    assert _post(gw, "/key/health", {}, caller=first["key"]).json() == {
        "key": "healthy",
        "logging_callbacks": None,
    }
    health = _get(gw, "/key/health", caller=first["key"]).json()
    assert health["healthy"] is True and health["spend"] == 1.5

    service = _post(gw, "/key/service-account/generate", {"team_id": "svc", "user_id": "x"}).json()
    assert service["team_id"] == "svc" and service["user_id"] is None
    assert _error(_post(gw, "/key/service-account/generate", {}), 422)["param"] == "$.team_id"
    over = _error(_post(gw, "/key/generate", {"team_id": "svc", "max_budget": 11}), 400)
    assert "above the team's max_budget" in over["message"]


def test_master_key_has_no_key_info(gw: Gateway) -> None:
    assert _error(_get(gw, "/key/info"), 422)["param"] == "key"
