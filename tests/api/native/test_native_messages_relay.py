"""The anthropic SDK through tianji's /v1/messages to an Anthropic upstream: the native
relay (body unchanged except `model`, the client's key replaced, SSE byte for byte)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import anthropic
import httpx
import pytest

from tests.api.native.native_support import (
    SSE,
    anthropic_message,
    anthropic_sse,
    config,
    providers_file,
)
from tests.conftest import MASTER_KEY, Gateway, running_gateway
from tests.support.fake_upstream import FakeUpstream

pytestmark = pytest.mark.timeout(30)


@pytest.fixture
def upstream() -> Iterator[FakeUpstream]:
    with FakeUpstream() as up:
        yield up


@pytest.fixture
def gateway(upstream: FakeUpstream, tmp_path: Path) -> Iterator[Gateway]:
    with running_gateway(config(upstream), tmp_path, providers=providers_file(tmp_path)) as gw:
        yield gw


@pytest.fixture
def client(gateway: Gateway) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=gateway.url, api_key=MASTER_KEY, max_retries=0)


@pytest.mark.matrix("anthropic_inbound", "chat")
def test_native_relay_forwards_the_body_unchanged_except_model(
    gateway: Gateway, upstream: FakeUpstream
) -> None:
    upstream.behave("status", status=200, json=anthropic_message("Bonjour"))
    # Odd spacing, key order, escapes and a float format a re-encoder would change.
    raw = (
        b'{ "max_tokens" : 64,"messages":[{"role":"user","content":"caf\\u00e9 \\"x\\""}],'
        b'  "model":"claude-x", "temperature": 1.0E0, "metadata": {"model": "keep"} }'
    )
    response = httpx.post(
        gateway.url + "/v1/messages?beta=true",
        content=raw,
        headers={
            "x-api-key": MASTER_KEY,
            "content-type": "application/json",
            "anthropic-version": "2023-06-01",
            "anthropic-beta": "prompt-caching-2024-07-31",
        },
    )
    assert response.status_code == 200
    assert response.json() == anthropic_message("Bonjour")
    seen = upstream.last_request
    assert seen.path == "/v1/messages"
    assert seen.query == {"beta": "true"}
    assert seen.body == raw.replace(b'"model":"claude-x"', b'"model":"claude-x-upstream"')
    assert seen.headers["x-api-key"] == "sk-ant-upstream-secret"
    assert seen.headers["anthropic-version"] == "2023-06-01"
    assert seen.headers["anthropic-beta"] == "prompt-caching-2024-07-31"
    assert MASTER_KEY not in json.dumps(seen.headers)
    assert "authorization" not in seen.headers


@pytest.mark.matrix("anthropic_inbound", "chat")
def test_sdk_plain_message_to_anthropic(
    client: anthropic.Anthropic, upstream: FakeUpstream
) -> None:
    upstream.behave("status", status=200, json=anthropic_message("Hi!", cache_read_input_tokens=3))
    message = client.messages.create(
        model="claude-x", max_tokens=32, messages=[{"role": "user", "content": "hello"}]
    )
    assert message.content[0].text == "Hi!"  # type: ignore[union-attr]
    assert message.usage.cache_read_input_tokens == 3
    sent = upstream.last_request
    assert sent.json["model"] == "claude-x-upstream"
    assert sent.json["messages"] == [{"role": "user", "content": "hello"}]
    # The SDK's own API version wins over the deployment's configured 2023-06-01.
    assert sent.headers["anthropic-version"] == client.default_headers["anthropic-version"]


@pytest.mark.matrix("anthropic_inbound", "stream")
def test_stream_is_relayed_byte_for_byte(gateway: Gateway, upstream: FakeUpstream) -> None:
    stream = anthropic_sse(["Hello", " there", "!"])
    upstream.behave("status", status=200, body=stream, content_type=SSE)
    body = {
        "model": "claude-x",
        "max_tokens": 32,
        "stream": True,
        "messages": [{"role": "user", "content": "hi"}],
    }
    with httpx.stream(
        "POST", gateway.url + "/v1/messages", json=body, headers={"x-api-key": MASTER_KEY}
    ) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        received = response.read()
    assert received == stream


@pytest.mark.matrix("anthropic_inbound", "stream")
def test_sdk_stream_through_the_native_relay(
    client: anthropic.Anthropic, upstream: FakeUpstream
) -> None:
    upstream.behave("status", status=200, body=anthropic_sse(["Hello", " there"]), content_type=SSE)
    with client.messages.stream(
        model="claude-x", max_tokens=32, messages=[{"role": "user", "content": "hi"}]
    ) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert text == "Hello there"
    assert final.usage.output_tokens == 7
    assert upstream.last_request.json["stream"] is True


@pytest.mark.matrix("anthropic_inbound", "errors")
def test_upstream_errors_are_relayed_in_anthropic_shape(
    client: anthropic.Anthropic, upstream: FakeUpstream
) -> None:
    overloaded = {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}
    upstream.behave("status", status=529, json=overloaded, times=1)
    with pytest.raises(anthropic.APIStatusError) as error:
        client.messages.create(
            model="claude-x", max_tokens=8, messages=[{"role": "user", "content": "x"}]
        )
    assert error.value.status_code == 529
    assert error.value.body == overloaded
    # A body that is not Anthropic's (a proxy page): tianji's mapping, Anthropic's envelope.
    upstream.behave("status", status=502, body="<html>bad gateway</html>", times=1)
    with pytest.raises(anthropic.APIStatusError) as proxy:
        client.messages.create(
            model="claude-x", max_tokens=8, messages=[{"role": "user", "content": "x"}]
        )
    assert proxy.value.status_code == 502
    assert proxy.value.body["type"] == "error"  # type: ignore[index]
    assert proxy.value.body["error"]["type"] == "api_error"  # type: ignore[index]


def test_count_tokens_is_forwarded_to_anthropic(
    client: anthropic.Anthropic, upstream: FakeUpstream
) -> None:
    upstream.behave("status", status=200, json={"input_tokens": 42})
    counted = client.messages.count_tokens(
        model="claude-x", messages=[{"role": "user", "content": "hello"}]
    )
    assert counted.input_tokens == 42
    sent = upstream.last_request
    assert sent.path == "/v1/messages/count_tokens"
    assert sent.json["model"] == "claude-x-upstream"
    assert sent.headers["x-api-key"] == "sk-ant-upstream-secret"


def test_a_stream_cut_short_ends_with_an_error_event(
    gateway: Gateway, upstream: FakeUpstream
) -> None:
    upstream.behave("close_mid_stream", n=2)
    body = {
        "model": "claude-x",
        "max_tokens": 32,
        "stream": True,
        "messages": [{"role": "user", "content": "hi"}],
    }
    response = httpx.post(
        gateway.url + "/v1/messages", json=body, headers={"x-api-key": MASTER_KEY}, timeout=10
    )
    assert response.status_code == 200
    tail = response.text.rstrip().split("\n\n")[-1]
    assert tail.startswith("event: error\ndata: ")
    error = json.loads(tail.split("data: ", 1)[1])
    assert error["type"] == "error"
    assert error["error"]["type"] in ("api_error", "overloaded_error")


def test_oauth_token_deployment_goes_as_bearer_with_the_oauth_beta(
    upstream: FakeUpstream, tmp_path: Path
) -> None:
    extra = f"""
  - model_name: claude-subscription
    litellm_params:
      model: anthropic/claude-x-upstream
      api_base: {upstream.root_url}
      api_key: sk-ant-oat01-subscription-token
      use_in_pass_through: true  # the passthrough's credentials, not claude-x's
"""
    upstream.behave("status", status=200, json=anthropic_message())
    providers = providers_file(tmp_path)
    with running_gateway(config(upstream, extra), tmp_path, providers=providers) as gw:
        for path in ("/v1/messages", "/anthropic/v1/messages"):
            response = httpx.post(
                gw.url + path,
                json={"model": "claude-subscription", "max_tokens": 8, "messages": []},
                headers={"x-api-key": MASTER_KEY, "anthropic-beta": "files-api-2025-04-14"},
            )
            assert response.status_code == 200, response.text
    native, passthrough = upstream.requests
    for seen in (native, passthrough):
        assert seen.headers["authorization"] == "Bearer sk-ant-oat01-subscription-token"
        assert "x-api-key" not in seen.headers
        flags = seen.headers["anthropic-beta"].split(",")
        assert sorted(flags) == ["files-api-2025-04-14", "oauth-2025-04-20"]
