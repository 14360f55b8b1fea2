"""Every route of routes.yaml answers (no 404/405) under every prefix it is mounted on."""

from __future__ import annotations

import re

import httpx
import pytest

from tests.conftest import MASTER_KEY, Gateway
from tests.support.fake_upstream import FakeUpstream

pytestmark = pytest.mark.timeout(60)

AUTH = {"authorization": f"Bearer {MASTER_KEY}"}
BODIES = {
    "chat": {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]},
    "text_completion": {"model": "gpt-4o-mini", "prompt": "hi"},
    "embeddings": {"model": "gpt-4o-mini", "input": "hi"},
    "image_generation": {"model": "gpt-4o-mini", "prompt": "a cat"},
    "speech": {"model": "gpt-4o-mini", "input": "hi", "voice": "alloy"},
    "moderation": {"model": "gpt-4o-mini", "input": "hi"},
    "rerank": {"model": "rerank-model", "query": "q", "documents": ["a q", "b"]},
    "responses": {"model": "gpt-4o-mini", "input": "hi"},
    "token_counter": {"model": "gpt-4o-mini", "prompt": "hi"},
    "forward": {"purpose": "batch"},
    "anthropic_messages": {
        "model": "gpt-4o-mini",
        "max_tokens": 5,
        "messages": [{"role": "user", "content": "hi"}],
    },
    "anthropic_count_tokens": {
        "model": "gpt-4o-mini",
        "messages": [{"role": "user", "content": "hi"}],
    },
}
# Management-class routes of the LLM surface (utils and health).
MGMT_UTILS = {"supported_openai_params", "token_counter", "health"}
MULTIPART = {"transcription", "image_edit", "image_variation"}


PATH_VALUES = {
    "model": "gpt-4o-mini",
    "model_id": "gpt-4o-mini",
    "model_action": "gpt-4o-mini:countTokens",
    "path": "v1/models",
}
# Served, but they need deployments of a provider this gateway lacks (or a Gemini
# model): they must answer, not 404/405.
NEEDS_PROVIDER = ("gemini_native", "passthrough_")


def _request(client: httpx.Client, method: str, path: str, operation: str) -> httpx.Response:
    url = re.sub(r"\{(\w+)(?::\w+)?\}", lambda m: PATH_VALUES.get(m[1], "id-1"), path)
    if operation in MULTIPART:
        files = {"file": ("a.png", b"\x89PNG....", "image/png")}
        return client.request(
            method, url, headers=AUTH, data={"model": "gpt-4o-mini", "prompt": "x"}, files=files
        )
    if operation == "supported_openai_params":
        return client.request(method, url, headers=AUTH, params={"model": "gpt-4o-mini"})
    body = BODIES.get(operation)
    if method in ("GET", "DELETE") or body is None:
        return client.request(method, url, headers=AUTH)
    return client.request(method, url, headers=AUTH, json=body)


def test_every_declared_route_answers(gateway: Gateway, upstream: FakeUpstream) -> None:
    plans = gateway.built.gateway.routes
    assert len(plans) > 100
    prefixes_seen = set()
    failures = []
    with httpx.Client(base_url=gateway.url, timeout=10) as client:
        for plan in plans:
            if plan.auth == "mgmt" and plan.operation not in MGMT_UTILS:
                continue  # management routes: tests/api/admin, with real bodies
            for method in plan.methods:
                response = _request(client, method, plan.path, plan.operation)
                if plan.operation.startswith(NEEDS_PROVIDER):
                    ok = response.status_code not in (404, 405)
                else:
                    ok = response.status_code == 200
                if not ok:
                    failures.append(
                        f"{method} {plan.path}: {response.status_code} {response.text[:200]}"
                    )
            prefixes_seen.add(plan.path.startswith("/v1/"))
    assert failures == [], "\n".join(failures)
    assert prefixes_seen == {True, False}


def test_llm_routes_are_mounted_under_both_prefixes(gateway: Gateway) -> None:
    served = {(m, p.path) for p in gateway.built.gateway.routes for m in p.methods}
    llm = [p for p in gateway.built.gateway.routes if p.path.startswith("/v1/")]
    assert llm
    for plan in llm:
        for method in plan.methods:
            assert (method, plan.path[len("/v1") :]) in served


def test_forward_route_relays_path_query_and_body(gateway: Gateway, upstream: FakeUpstream) -> None:
    response = httpx.post(
        gateway.v1 + "/threads/th_1/messages?limit=3",
        headers=AUTH,
        json={"role": "user", "content": "x"},
    )
    assert response.status_code == 200
    seen = upstream.last_request
    assert seen is not None
    assert seen.path == "/v1/threads/th_1/messages"
    assert seen.query == {"limit": "3"}
    assert seen.json == {"role": "user", "content": "x"}
    assert seen.headers["openai-beta"] == "assistants=v2"
    assert seen.headers["authorization"] == "Bearer sk-upstream-secret"


@pytest.mark.matrix("hosted_vllm", "rerank")
def test_alias_serves_its_target(gateway: Gateway, upstream: FakeUpstream) -> None:
    body = BODIES["rerank"]
    direct = httpx.post(gateway.url + "/v1/rerank", headers=AUTH, json=body)
    aliased = httpx.post(gateway.url + "/v2/rerank", headers=AUTH, json=body)
    assert direct.status_code == aliased.status_code == 200
    assert direct.json()["results"] == aliased.json()["results"]
    got = httpx.get(gateway.url + "/openai/v1/responses/resp_9", headers=AUTH)
    assert got.status_code == 200
    assert upstream.last_request is not None
    assert upstream.last_request.path == "/v1/responses/resp_9"


def test_routes_listing_is_public_and_complete(gateway: Gateway) -> None:
    listed = httpx.get(gateway.url + "/routes").json()["routes"]
    assert {r["path"] for r in listed} == {p.path for p in gateway.built.gateway.routes}
