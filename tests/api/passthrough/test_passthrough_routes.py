"""Provider passthrough: the client's request relayed with the provider's credentials
instead of the caller's key, answers (streams included) relayed as they come."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import anthropic
import botocore.auth
import httpx
import openai
import pytest
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from tests.api.native.native_support import (
    SSE,
    anthropic_message,
    anthropic_sse,
    config,
    gemini_response,
    providers_file,
    vertex_entry,
)
from tests.conftest import MASTER_KEY, Gateway, running_gateway
from tests.support.fake_upstream import FakeUpstream

pytestmark = pytest.mark.timeout(30)

AWS_KEY, AWS_SECRET = "AKIDPASSTHROUGH", "secret/passthrough+key"


def bedrock_entry(up: FakeUpstream) -> str:
    return f"""
  - model_name: nova
    litellm_params:
      model: bedrock/amazon.nova-lite-v1:0
      api_base: {up.root_url}
      aws_access_key_id: {AWS_KEY}
      aws_secret_access_key: {AWS_SECRET}
      aws_region_name: eu-west-1
"""


@pytest.fixture
def upstream() -> Iterator[FakeUpstream]:
    with FakeUpstream() as up:
        yield up


@pytest.fixture
def gateway(upstream: FakeUpstream, tmp_path: Path) -> Iterator[Gateway]:
    text = config(upstream, extra=bedrock_entry(upstream))
    with running_gateway(text, tmp_path, providers=providers_file(tmp_path)) as gw:
        yield gw


def no_client_key(headers: dict[str, str]) -> None:
    assert MASTER_KEY not in json.dumps(headers)


def test_anthropic_sdk_through_the_anthropic_passthrough(
    gateway: Gateway, upstream: FakeUpstream
) -> None:
    upstream.behave("status", status=200, json=anthropic_message("native"))
    client = anthropic.Anthropic(
        base_url=gateway.url + "/anthropic", api_key=MASTER_KEY, max_retries=0
    )
    message = client.messages.create(
        model="claude-any-name", max_tokens=9, messages=[{"role": "user", "content": "hi"}]
    )
    assert message.content[0].text == "native"  # type: ignore[union-attr]
    seen = upstream.last_request
    assert seen.path == "/v1/messages"
    assert seen.json["model"] == "claude-any-name"  # passthrough: no model mapping
    assert seen.headers["x-api-key"] == "sk-ant-upstream-secret"
    assert seen.headers["anthropic-version"] == client.default_headers["anthropic-version"]
    no_client_key(seen.headers)


def test_anthropic_passthrough_streams_sse(gateway: Gateway, upstream: FakeUpstream) -> None:
    stream = anthropic_sse(["a", "b", "c"])
    upstream.behave("status", status=200, body=stream, content_type=SSE)
    with httpx.stream(
        "POST",
        gateway.url + "/v1/anthropic/v1/messages",  # the Go-era alias
        json={"model": "x", "max_tokens": 5, "stream": True, "messages": []},
        headers={"x-api-key": MASTER_KEY},
    ) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        assert response.read() == stream
    assert upstream.last_request.path == "/v1/messages"


def test_openai_sdk_through_the_openai_passthrough(
    gateway: Gateway, upstream: FakeUpstream
) -> None:
    client = openai.OpenAI(base_url=gateway.url + "/openai/v1", api_key=MASTER_KEY, max_retries=0)
    reply = client.chat.completions.create(
        model="whatever-upstream-knows", messages=[{"role": "user", "content": "ping"}]
    )
    assert reply.choices[0].message.content == "echo: ping"
    seen = upstream.last_request
    assert seen.path == "/v1/chat/completions"
    assert seen.json["model"] == "whatever-upstream-knows"
    assert seen.headers["authorization"] == "Bearer sk-upstream-openai"
    no_client_key(seen.headers)


def test_openai_passthrough_stream_arrives_incrementally(
    gateway: Gateway, upstream: FakeUpstream
) -> None:
    upstream.stream_delay = 0.3
    body = {"model": "m", "stream": True, "messages": [{"role": "user", "content": "a b c d"}]}
    with httpx.stream(
        "POST",
        gateway.url + "/openai_passthrough/v1/chat/completions",
        json=body,
        headers={"authorization": f"Bearer {MASTER_KEY}"},
    ) as response:
        started = time.monotonic()
        chunks = response.iter_raw()
        first = next(chunks)
        first_at = time.monotonic() - started
        rest = b"".join(chunks)
        total = time.monotonic() - started
    assert b"chat.completion.chunk" in first
    assert rest.rstrip().endswith(b"data: [DONE]")
    assert first_at < 0.5 < total


def test_gemini_passthrough_takes_key_from_query_and_drops_it(
    gateway: Gateway, upstream: FakeUpstream
) -> None:
    upstream.behave("status", status=200, json=gemini_response("yo"))
    response = httpx.post(
        gateway.url
        + f"/gemini/v1beta/models/gemini-2.0-flash:generateContent?key={MASTER_KEY}&alt=json",
        json={"contents": [{"parts": [{"text": "hi"}]}]},
    )
    assert response.status_code == 200
    assert response.json() == gemini_response("yo")
    seen = upstream.last_request
    assert seen.path == "/v1beta/models/gemini-2.0-flash:generateContent"
    assert seen.query == {"alt": "json"}
    assert seen.headers["x-goog-api-key"] == "gemini-upstream-key"
    no_client_key(seen.headers)
    assert MASTER_KEY not in seen.target
    # Without any key the route refuses, like every LLM route.
    anonymous = httpx.post(gateway.url + "/gemini/v1beta/models/x:generateContent", json={})
    assert anonymous.status_code == 401


def test_client_key_headers_are_stripped_and_x_pass_headers_forwarded(
    gateway: Gateway, upstream: FakeUpstream
) -> None:
    response = httpx.post(
        gateway.url + "/openai/v1/assistants?limit=3",
        json={"name": "a"},
        headers={
            "x-litellm-api-key": MASTER_KEY,
            "authorization": "Bearer sk-client-own",
            "x-api-key": "sk-client-x",
            "api-key": "sk-client-azure",
            "x-goog-api-key": "client-goog",
            "cookie": "session=1",
            "x-pass-openai-beta": "assistants=v2",
            "x-custom": "kept",
        },
    )
    assert response.status_code == 200
    seen = upstream.last_request
    assert seen.query == {"limit": "3"}
    assert seen.headers["authorization"] == "Bearer sk-upstream-openai"
    for name in ("x-litellm-api-key", "x-api-key", "api-key", "x-goog-api-key", "cookie"):
        assert name not in seen.headers
    assert seen.headers["openai-beta"] == "assistants=v2"
    assert seen.headers["x-custom"] == "kept"
    assert "sk-client" not in json.dumps(seen.headers)


def test_method_raw_path_and_upstream_errors_pass_through(
    gateway: Gateway, upstream: FakeUpstream
) -> None:
    auth = {"authorization": f"Bearer {MASTER_KEY}"}
    deleted = httpx.delete(gateway.url + "/openai/v1/files/file%2Fabc%3A1", headers=auth)
    assert deleted.status_code == 200
    seen = upstream.last_request
    assert seen.method == "DELETE"
    assert seen.target == "/v1/files/file%2Fabc%3A1"
    missing = {"error": {"message": "No such file", "type": "invalid_request_error"}}
    upstream.behave("status", status=404, json=missing, headers={"x-request-id": "req_9"})
    got = httpx.get(gateway.url + "/openai/v1/files/nope", headers=auth)
    assert got.status_code == 404
    assert got.json() == missing
    assert got.headers["x-request-id"] == "req_9"


def test_azure_style_and_responses_routes_win_over_the_openai_passthrough(
    gateway: Gateway, upstream: FakeUpstream
) -> None:
    auth = {"authorization": f"Bearer {MASTER_KEY}"}
    chat = {"messages": [{"role": "user", "content": "hi"}]}
    azure = httpx.post(
        gateway.url + "/openai/deployments/gpt-4o-mini/chat/completions", json=chat, headers=auth
    )
    assert azure.status_code == 200
    # The chat route resolved the model group: the deployment's upstream name went out.
    assert upstream.last_request.json["model"] == "gpt-4o-mini-upstream"
    responses = httpx.post(
        gateway.url + "/openai/v1/responses",
        json={"model": "gpt-4o-mini", "input": "x"},
        headers=auth,
    )
    assert responses.status_code == 200
    assert upstream.last_request.json["model"] == "gpt-4o-mini-upstream"
    # Anything else under /openai/ is the passthrough: the model goes out untouched.
    passthrough = httpx.post(
        gateway.url + "/openai/v1/chat/completions",
        json={**chat, "model": "gpt-4o-mini"},
        headers=auth,
    )
    assert passthrough.status_code == 200
    assert upstream.last_request.json["model"] == "gpt-4o-mini"
    assert upstream.last_request.path == "/v1/chat/completions"
    plans = {p.path: p.operation for p in gateway.built.gateway.routes}
    assert plans["/openai/deployments/{model}/chat/completions"] == "chat"
    assert plans["/openai/v1/responses"] == "responses"
    assert plans["/openai/{path:path}"] == "passthrough_openai"


def test_bedrock_passthrough_is_sigv4_signed(gateway: Gateway, upstream: FakeUpstream) -> None:
    upstream.behave("status", status=200, json={"output": {"message": {"content": []}}})
    body = b'{"messages":[{"role":"user","content":[{"text":"hi"}]}]}'
    response = httpx.post(
        gateway.url + "/bedrock/model/amazon.nova-lite-v1%3A0/converse",
        content=body,
        headers={"content-type": "application/json", "x-litellm-api-key": MASTER_KEY},
    )
    assert response.status_code == 200
    seen = upstream.last_request
    assert seen.target == "/model/amazon.nova-lite-v1%3A0/converse"
    assert seen.body == body
    no_client_key(seen.headers)
    authorization = seen.headers["authorization"]
    match = re.match(
        r"AWS4-HMAC-SHA256 Credential=(\S+)/(\d{8})/eu-west-1/bedrock/aws4_request, "
        r"SignedHeaders=(\S+), Signature=([0-9a-f]{64})$",
        authorization,
    )
    assert match, authorization
    assert match[1] == AWS_KEY
    # botocore, given the same request and time, computes the same signature.
    signed = match[3].split(";")
    when = datetime.strptime(seen.headers["x-amz-date"], "%Y%m%dT%H%M%SZ")
    headers = {n: seen.headers[n] for n in signed if n != "host"}
    request = AWSRequest(
        method="POST", url=upstream.root_url + seen.target, data=body, headers=headers
    )
    signer = botocore.auth.SigV4Auth(Credentials(AWS_KEY, AWS_SECRET), "bedrock", "eu-west-1")
    original = botocore.auth.get_current_datetime
    botocore.auth.get_current_datetime = lambda: when  # type: ignore[assignment]
    try:
        signer.add_auth(request)
    finally:
        botocore.auth.get_current_datetime = original  # type: ignore[assignment]
    assert request.headers["Authorization"] == authorization


def test_env_credentials_when_no_deployment(
    upstream: FakeUpstream, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MISTRAL_API_KEY", "sk-mistral-env")
    monkeypatch.setenv("MISTRAL_API_BASE", upstream.root_url + "/v1")
    for name in ("COHERE_API_KEY", "CO_API_KEY", "AWS_ACCESS_KEY_ID", "AWS_BEARER_TOKEN_BEDROCK"):
        monkeypatch.delenv(name, raising=False)
    with running_gateway(config(upstream), tmp_path, providers=providers_file(tmp_path)) as gw:
        auth = {"authorization": f"Bearer {MASTER_KEY}"}
        ok = httpx.get(gw.url + "/mistral/v1/models", headers=auth)
        assert ok.status_code == 200
        seen = upstream.last_request
        assert seen.path == "/v1/models"
        assert seen.headers["authorization"] == "Bearer sk-mistral-env"
        refused = httpx.post(gw.url + "/cohere/v2/chat", json={}, headers=auth)
        unsigned = httpx.post(gw.url + "/bedrock/model/x/converse", json={}, headers=auth)
    assert refused.status_code == 400
    error = refused.json()["error"]
    assert error["code"] == "passthrough_not_configured"
    assert "COHERE_API_KEY" in error["message"]
    # Missing AWS keys are tianji's configuration problem, not the caller's 401.
    assert unsigned.status_code == 400
    assert unsigned.json()["error"]["code"] == "passthrough_not_configured"
    assert len(upstream.requests) == 1


def test_vertex_passthrough_mints_a_token_with_the_adapter(
    upstream: FakeUpstream, tmp_path: Path
) -> None:
    extra = vertex_entry(upstream, tmp_path)
    upstream.behave("status", status=200, json=gemini_response("v"), match=":generateContent")
    path = (
        "/v1/projects/p1/locations/us-central1/publishers/google/models/"
        "gemini-2.0-flash:generateContent"
    )
    providers = providers_file(tmp_path)
    with running_gateway(config(upstream, extra), tmp_path, providers=providers) as gw:
        for prefix in ("/vertex_ai", "/vertex-ai", "/v1/vertex-ai"):
            response = httpx.post(
                gw.url + prefix + path,
                json={"contents": [{"parts": [{"text": "hi"}]}]},
                headers={"authorization": f"Bearer {MASTER_KEY}"},
            )
            assert response.status_code == 200, response.text
            assert response.json() == gemini_response("v")
    token_requests = [r for r in upstream.requests if r.path == "/token"]
    calls = [r for r in upstream.requests if r.path != "/token"]
    assert len(token_requests) == 1  # minted once, cached for the next calls
    assert b"refresh_token=rtoken" in token_requests[0].body
    assert [c.path for c in calls] == [path] * 3
    assert all(c.headers["authorization"] == "Bearer ya29.minted" for c in calls)
    assert all(MASTER_KEY not in json.dumps(c.headers) for c in calls)


def test_watsonx_passthrough_uses_the_deployment_token(
    upstream: FakeUpstream, tmp_path: Path
) -> None:
    extra = f"""
  - model_name: granite
    litellm_params:
      model: watsonx/ibm/granite-3-8b-instruct
      api_base: {upstream.root_url}
      api_key: eyJhbGciOi.eyJzdWIiOi.c2lnbmF0dXJl
      project_id: proj-1
"""
    providers = providers_file(tmp_path)
    with running_gateway(config(upstream, extra), tmp_path, providers=providers) as gw:
        response = httpx.post(
            gw.url + "/watsonx/ml/v1/text/chat?version=2024-03-13",
            json={"model_id": "ibm/granite-3-8b-instruct", "messages": []},
            headers={"authorization": f"Bearer {MASTER_KEY}"},
        )
    assert response.status_code == 200
    seen = upstream.last_request
    assert seen.path == "/ml/v1/text/chat"
    assert seen.query == {"version": "2024-03-13"}
    # An IAM access token (a JWT) is used as it is: no exchange at IBM IAM.
    assert seen.headers["authorization"] == "Bearer eyJhbGciOi.eyJzdWIiOi.c2lnbmF0dXJl"
    assert len(upstream.requests) == 1
