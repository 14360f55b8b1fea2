"""LiteLLM's documented management flow end to end, with LiteLLM's request bodies
unchanged: organization, budget, team in the organization, user, memberships with
roles, a key for that user in that team, an LLM call with it, /key/info, block
(next call 401), unblock, delete (next call 401). Runs on SQLite and on Postgres."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import openai
import pytest

from tests.api.admin.people_support import Api, admin_api
from tests.support.fake_upstream import FakeUpstream

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
def api(upstream: FakeUpstream, db_url: str, tmp_path: Path) -> Iterator[Api]:
    with admin_api(upstream, db_url, tmp_path) as running:
        yield running


def _chat(api: Api, key: str) -> openai.types.chat.ChatCompletion:
    client = openai.OpenAI(base_url=api.gateway.v1, api_key=key, max_retries=0)
    return client.chat.completions.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": "hello"}]
    )


def test_the_documented_management_flow(api: Api, upstream: FakeUpstream) -> None:
    org = api.ok(
        "POST",
        "/organization/new",
        {
            "organization_alias": "marketing-department",
            "models": ["gpt-4o-mini"],
            "max_budget": 100,
        },
    )
    org_id = org["organization_id"]
    budget = api.ok("POST", "/budget/new", {"budget_id": "my-free-tier", "max_budget": 4})
    assert budget["budget_id"] == "my-free-tier"
    team = api.ok(
        "POST",
        "/team/new",
        {
            "team_alias": "marketing-team",
            "organization_id": org_id,
            "models": ["gpt-4o-mini"],
        },
    )
    team_id = team["team_id"]
    user = api.ok(
        "POST",
        "/user/new",
        {
            "user_email": "krrish@berri.ai",
            "user_role": "internal_user",
            "auto_create_key": False,
        },
    )
    user_id = user["user_id"]
    api.ok(
        "POST",
        "/team/member_add",
        {
            "team_id": team_id,
            "member": {"role": "user", "user_id": user_id},
        },
    )
    api.ok(
        "POST",
        "/organization/member_add",
        {
            "organization_id": org_id,
            "member": [{"role": "internal_user", "user_id": user_id}],
        },
    )
    info = api.ok("GET", "/user/info", params={"user_id": user_id})
    assert team_id in [t["team_id"] for t in info["teams"]]

    generated = api.ok(
        "POST",
        "/key/generate",
        {
            "user_id": user_id,
            "team_id": team_id,
            "models": ["gpt-4o-mini"],
            "budget_id": "my-free-tier",
            "metadata": {"purpose": "docs flow"},
        },
    )
    key = generated["key"]
    assert key.startswith("sk-")

    reply = _chat(api, key)
    assert reply.choices[0].message.content == "echo: hello"
    assert upstream.last_request is not None
    assert upstream.last_request.headers["authorization"] == "Bearer sk-upstream-secret"

    key_info = api.ok("GET", "/key/info", params={"key": key})["info"]
    assert (key_info["user_id"], key_info["team_id"]) == (user_id, team_id)
    assert key not in str(key_info)  # only the hash is stored, and no secret is returned

    api.ok("POST", "/key/block", {"key": key})
    with pytest.raises(openai.AuthenticationError):
        _chat(api, key)
    api.ok("POST", "/key/unblock", {"key": key})
    assert _chat(api, key).choices[0].message.content == "echo: hello"

    api.ok("POST", "/key/delete", {"keys": [key]})
    with pytest.raises(openai.AuthenticationError):
        _chat(api, key)
