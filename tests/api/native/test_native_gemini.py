"""Gemini's native routes relayed to a Gemini upstream with the deployment's key."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.api.native.native_support import (
    SSE,
    config,
    gemini_response,
    gemini_sse,
    providers_file,
    vertex_entry,
)
from tests.conftest import MASTER_KEY, Gateway, running_gateway
from tests.support.fake_upstream import FakeUpstream

pytestmark = pytest.mark.timeout(30)

BODY = {"contents": [{"role": "user", "parts": [{"text": "Say hi"}]}]}


@pytest.fixture
def upstream() -> Iterator[FakeUpstream]:
    with FakeUpstream() as up:
        yield up


@pytest.fixture
def gateway(upstream: FakeUpstream, tmp_path: Path) -> Iterator[Gateway]:
    with running_gateway(config(upstream), tmp_path, providers=providers_file(tmp_path)) as gw:
        yield gw


def test_generate_content_with_key_in_query(gateway: Gateway, upstream: FakeUpstream) -> None:
    upstream.behave("status", status=200, json=gemini_response("hi!"))
    response = httpx.post(
        gateway.url + f"/v1beta/models/gemini-flash:generateContent?key={MASTER_KEY}",
        json=BODY,
    )
    assert response.status_code == 200
    assert response.json() == gemini_response("hi!")
    seen = upstream.last_request
    assert seen.path == "/v1beta/models/gemini-2.0-flash:generateContent"
    assert seen.query == {}  # the caller's ?key= is not forwarded
    assert seen.headers["x-goog-api-key"] == "gemini-upstream-key"
    assert seen.json == BODY
    assert MASTER_KEY not in json.dumps(seen.headers) + seen.target


def test_stream_generate_content_relays_sse(gateway: Gateway, upstream: FakeUpstream) -> None:
    stream = gemini_sse(["Hel", "lo"])
    upstream.behave("status", status=200, body=stream, content_type=SSE)
    with httpx.stream(
        "POST",
        gateway.url + "/v1beta/models/gemini-flash:streamGenerateContent?alt=sse",
        json=BODY,
        headers={"x-goog-api-key": MASTER_KEY},
    ) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        received = response.read()
    assert received == stream
    seen = upstream.last_request
    assert seen.path == "/v1beta/models/gemini-2.0-flash:streamGenerateContent"
    assert seen.query == {"alt": "sse"}


def test_alias_without_v1beta_and_count_tokens(gateway: Gateway, upstream: FakeUpstream) -> None:
    upstream.behave("status", status=200, json={"totalTokens": 5})
    response = httpx.post(
        gateway.url + "/models/gemini-flash:countTokens",
        json=BODY,
        headers={"authorization": f"Bearer {MASTER_KEY}"},
    )
    assert response.status_code == 200
    assert response.json() == {"totalTokens": 5}
    assert upstream.last_request.path == "/v1beta/models/gemini-2.0-flash:countTokens"


def test_non_gemini_model_is_refused(gateway: Gateway, upstream: FakeUpstream) -> None:
    response = httpx.post(
        gateway.url + f"/v1beta/models/gpt-4o-mini:generateContent?key={MASTER_KEY}", json=BODY
    )
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["type"] == "invalid_request_error"
    assert error["message"] == "model gpt-4o-mini is not a Gemini model"
    assert upstream.requests == []


def test_auth_is_required(gateway: Gateway, upstream: FakeUpstream) -> None:
    url = gateway.url + "/v1beta/models/gemini-flash:generateContent"
    assert httpx.post(url, json=BODY).status_code == 401
    assert httpx.post(url + "?key=sk-wrong", json=BODY).status_code == 401
    assert upstream.requests == []


def test_unknown_action_and_colon_in_model_name(gateway: Gateway, upstream: FakeUpstream) -> None:
    url = gateway.url + "/v1beta/models/gemini-flash:explode"
    response = httpx.post(url, json=BODY, headers={"x-goog-api-key": MASTER_KEY})
    assert response.status_code == 404
    # Split on the last colon: the model part keeps its own colon (and is then unknown).
    url = gateway.url + "/v1beta/models/tuned:v2:generateContent"
    response = httpx.post(url, json=BODY, headers={"x-goog-api-key": MASTER_KEY})
    assert response.status_code == 400
    assert "model=tuned:v2" in response.json()["error"]["message"]


def test_upstream_error_is_relayed(gateway: Gateway, upstream: FakeUpstream) -> None:
    error = {"error": {"code": 400, "message": "API key not valid", "status": "INVALID_ARGUMENT"}}
    upstream.behave("status", status=400, json=error)
    response = httpx.post(
        gateway.url + "/v1beta/models/gemini-flash:generateContent",
        json=BODY,
        headers={"x-goog-api-key": MASTER_KEY},
    )
    assert response.status_code == 400
    assert response.json() == error


def test_vertex_gemini_deployment_is_relayed_with_a_minted_token(
    upstream: FakeUpstream, tmp_path: Path
) -> None:
    extra = vertex_entry(upstream, tmp_path)
    upstream.behave("status", status=200, json=gemini_response("from vertex"), match="Content")
    providers = providers_file(tmp_path)
    with running_gateway(config(upstream, extra), tmp_path, providers=providers) as gw:
        response = httpx.post(
            gw.url + f"/v1beta/models/vertex-flash:generateContent?key={MASTER_KEY}", json=BODY
        )
    assert response.status_code == 200, response.text
    assert response.json() == gemini_response("from vertex")
    seen = upstream.requests[-1]
    assert seen.path == (
        "/v1/projects/p1/locations/us-central1/publishers/google/models/"
        "gemini-2.0-flash:generateContent"
    )
    assert seen.headers["authorization"] == "Bearer ya29.minted"
    assert seen.query == {}
    assert seen.json == BODY
