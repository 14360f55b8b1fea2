"""Errors raised before the /v1/messages handler runs (auth) still use Anthropic's
envelope, so the anthropic SDK raises its own typed errors."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import anthropic
import httpx
import pytest

from tests.api.native.native_support import config, providers_file
from tests.conftest import Gateway, running_gateway
from tests.support.fake_upstream import FakeUpstream

pytestmark = pytest.mark.timeout(30)

MESSAGE = {"model": "gpt-4o-mini", "max_tokens": 5, "messages": [{"role": "user", "content": "hi"}]}


@pytest.fixture
def gateway(tmp_path: Path) -> Iterator[Gateway]:
    with (
        FakeUpstream() as up,
        running_gateway(config(up), tmp_path, providers=providers_file(tmp_path)) as gw,
    ):
        yield gw


@pytest.mark.parametrize("path", ["/v1/messages", "/v1/messages/count_tokens"])
def test_bad_key_gets_anthropics_envelope(gateway: Gateway, path: str) -> None:
    response = httpx.post(gateway.url + path, json=MESSAGE, headers={"x-api-key": "sk-wrong"})
    assert response.status_code == 401
    body = response.json()
    assert body["type"] == "error"
    assert body["error"]["type"] == "authentication_error"
    assert "sk-wrong" not in response.text


def test_anthropic_sdk_raises_its_authentication_error(gateway: Gateway) -> None:
    client = anthropic.Anthropic(base_url=gateway.url, api_key="sk-wrong", max_retries=0)
    with pytest.raises(anthropic.AuthenticationError):
        client.messages.create(**MESSAGE)  # type: ignore[arg-type]


def test_openai_routes_keep_the_openai_envelope(gateway: Gateway) -> None:
    response = httpx.post(
        gateway.v1 + "/chat/completions", json=MESSAGE, headers={"authorization": "Bearer sk-wrong"}
    )
    assert response.status_code == 401
    assert set(response.json()["error"]) == {"message", "type", "param", "code"}
