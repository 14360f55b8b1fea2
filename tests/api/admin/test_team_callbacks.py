"""Team callbacks over real HTTP (management-api.md §3 "Team callbacks"): LiteLLM's
and the Go paths, secrets sealed at rest and redacted on the way out."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.api.admin.people_support import Api, admin_api, envelope
from tests.conftest import MASTER_KEY
from tests.support.fake_upstream import FakeUpstream
from tianji.store.sealed import is_sealed, sealing_key, unseal

LANGFUSE = {
    "callback_name": "langfuse",
    "callback_type": "success",
    "callback_vars": {
        "langfuse_public_key": "pk-lf-public",
        "langfuse_secret_key": "sk-lf-very-secret",
        "langfuse_host": "https://cloud.langfuse.com",
    },
}
GENERIC = {
    "team_id": "t1",
    "callback_name": "generic_api",
    "callback_vars": {
        "generic_api_endpoint": "https://logs.example.com/ingest",
        "generic_api_headers": "authorization=Bearer abc,x-env=prod",
    },
}


@pytest.fixture
def api(upstream: FakeUpstream, db_url: str, tmp_path: Path) -> Iterator[Api]:
    with admin_api(upstream, db_url, tmp_path) as running:
        running.ok("POST", "/team/new", {"team_id": "t1"})
        yield running


def _stored_logging(api: Api) -> list[dict[str, Any]]:
    team = api.gateway.call(lambda: api.gateway.store.teams.require("t1"))
    logging: list[dict[str, Any]] = team["metadata"]["logging"]
    return logging


def test_add_read_and_redaction(api: Api) -> None:
    # LiteLLM: POST /team/{team_id}/callback; the Go form: POST /team/callback with team_id.
    added = api.ok("POST", "/team/t1/callback", LANGFUSE)
    assert added["status"] == "success" and added["data"]["team_id"] == "t1"
    assert "sk-lf-very-secret" not in json.dumps(added)
    api.ok("POST", "/team/callback", GENERIC)

    by_path = api.ok("GET", "/team/t1/callback")
    assert by_path == api.ok("GET", "/team/callback", params={"team_id": "t1"})
    assert by_path["data"] == {
        "team_id": "t1",
        "success_callbacks": ["langfuse", "generic_api"],
        "failure_callbacks": ["generic_api"],  # success_and_failure by default
        "callback_vars": {
            "langfuse_public_key": "***REDACTED***",
            "langfuse_secret_key": "***REDACTED***",
            "langfuse_host": "https://cloud.langfuse.com",
            "generic_api_endpoint": "https://logs.example.com/ingest",
            "generic_api_headers": "***REDACTED***",
        },
    }
    # At rest every variable is sealed, and opens with the key derived from the master key.
    stored = _stored_logging(api)
    secret = stored[0]["callback_vars"]["langfuse_secret_key"]
    assert is_sealed(secret) and "very-secret" not in json.dumps(stored)
    assert unseal(secret, sealing_key(MASTER_KEY)) == "sk-lf-very-secret"
    info = api.ok("GET", "/team/info", params={"team_id": "t1"})
    assert "tianji-sealed" not in json.dumps(info) and "very-secret" not in json.dumps(info)


def test_bad_callbacks(api: Api) -> None:
    api.ok("POST", "/team/t1/callback", LANGFUSE)
    duplicate = envelope(api.post("/team/t1/callback", LANGFUSE), 409)
    assert "langfuse" in duplicate["message"]
    # The same name for failures is another callback.
    api.ok("POST", "/team/t1/callback", {**LANGFUSE, "callback_type": "failure"})
    unknown = {**LANGFUSE, "callback_vars": {"langfuse_host": "h", "api_base": "x"}}
    error = envelope(api.post("/team/t1/callback", unknown), 422)
    assert error["param"] == "$.callback_vars.api_base"
    envelope(api.post("/team/ghost/callback", LANGFUSE), 404)
    envelope(api.post("/team/callback", LANGFUSE), 422)  # no team id anywhere
    envelope(api.get("/team/ghost/callback"), 404)


def test_delete_one_and_disable_logging(api: Api) -> None:
    api.ok("POST", "/team/t1/callback", LANGFUSE)
    api.ok("POST", "/team/callback", GENERIC)
    removed = api.ok("DELETE", "/team/t1/callback/langfuse")
    assert removed["data"] == {
        "team_id": "t1",
        "success_callbacks": ["generic_api"],
        "failure_callbacks": ["generic_api"],
    }
    envelope(api.call("DELETE", "/team/t1/callback/langfuse"), 404)
    disabled = api.ok("POST", "/team/t1/disable_logging")
    assert disabled["data"]["success_callbacks"] == [] and "t1" in disabled["message"]
    assert _stored_logging(api) == []
    assert api.ok("GET", "/team/t1/callback")["data"]["callback_vars"] == {}


def test_only_team_managers_see_callbacks(api: Api) -> None:
    member = api.user_key("m1")
    api.ok("POST", "/team/member_add", {"team_id": "t1", "user_id": "m1"})
    envelope(api.get("/team/t1/callback", key=member), 403)
    envelope(api.post("/team/t1/callback", LANGFUSE, key=member), 403)
    api.ok("POST", "/team/member_update", {"team_id": "t1", "user_id": "m1", "role": "admin"})
    assert api.ok("POST", "/team/t1/callback", LANGFUSE, key=member)["status"] == "success"


def test_callbacks_in_team_metadata_are_sealed_too(api: Api) -> None:
    # LiteLLM's team-based logging docs set callbacks through /team/new metadata.
    body = {
        "team_alias": "my-team",
        "team_id": "t2",
        "metadata": {"logging": [LANGFUSE]},
    }
    created = api.ok("POST", "/team/new", body)
    assert created["metadata"]["logging"][0]["callback_vars"]["langfuse_secret_key"] == (
        "***REDACTED***"
    )
    stored = api.gateway.call(lambda: api.gateway.store.teams.require("t2"))
    assert "very-secret" not in json.dumps(stored["metadata"])
    shown = api.ok("GET", "/team/t2/callback")["data"]
    assert shown["success_callbacks"] == ["langfuse"]
    assert shown["callback_vars"]["langfuse_host"] == "https://cloud.langfuse.com"
    # Echoing the TeamRow back keeps the stored secrets instead of storing "***REDACTED***".
    echoed = api.ok("POST", "/team/update", {"team_id": "t2", "metadata": created["metadata"]})
    assert echoed["data"]["metadata"]["logging"][0]["callback_name"] == "langfuse"
    after = api.gateway.call(lambda: api.gateway.store.teams.require("t2"))
    secret = after["metadata"]["logging"][0]["callback_vars"]["langfuse_secret_key"]
    assert unseal(secret, sealing_key(MASTER_KEY)) == "sk-lf-very-secret"
    bad = {
        "team_id": "t2",
        "metadata": {"logging": [{"callback_name": "x", "callback_vars": {"nope": "1"}}]},
    }
    assert envelope(api.post("/team/update", bad), 422)["param"] == (
        "$.metadata.logging[0].callback_vars.nope"
    )
