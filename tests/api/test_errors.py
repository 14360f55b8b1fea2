"""Bad input and upstream failures: each an OpenAI error envelope with the right status."""

from __future__ import annotations

import socket
from pathlib import Path

import httpx
import pytest

from tests.conftest import MASTER_KEY, Gateway, openai_config, running_gateway
from tests.support.fake_upstream import FakeUpstream

pytestmark = pytest.mark.timeout(30)

AUTH = {"authorization": f"Bearer {MASTER_KEY}"}
CHAT = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}


def _error(response: httpx.Response, status: int) -> dict[str, object]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    return error  # type: ignore[no-any-return]


def _post(gateway: Gateway, body: object = CHAT, **kw: object) -> httpx.Response:
    headers = kw.pop("headers", AUTH)
    content = kw.pop("content", None)
    if content is None:
        return httpx.post(gateway.v1 + "/chat/completions", json=body, headers=headers, timeout=10)
    return httpx.post(
        gateway.v1 + "/chat/completions", content=content, headers=headers, timeout=10
    )


def test_malformed_json(gateway: Gateway) -> None:
    error = _error(_post(gateway, content=b'{"model": "gpt-4o-mini", '), 400)
    assert error["type"] == "invalid_request_error"
    assert "Malformed JSON" in str(error["message"])


def test_body_must_be_an_object(gateway: Gateway) -> None:
    error = _error(_post(gateway, content=b"[1, 2]"), 400)
    assert "JSON object" in str(error["message"])


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"model": "gpt-4o-mini"}, None),  # messages missing
        ({"model": "gpt-4o-mini", "messages": "hi"}, "messages"),
        (
            {"model": "gpt-4o-mini", "messages": [{"role": "robot", "content": "x"}]},
            "messages[0].role",
        ),
        (
            {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": 5}]},
            "messages[0].content",
        ),
        ({"model": 42, "messages": []}, "model"),
        ({"model": "gpt-4o-mini", "messages": [], "stream": "yes"}, "stream"),
    ],
)
def test_wrong_types_name_the_field(
    gateway: Gateway, body: dict[str, object], param: str | None
) -> None:
    error = _error(_post(gateway, body), 400)
    assert error["param"] == param
    assert (
        ("messages" in str(error["message"])) if param is None else (param in str(error["message"]))
    )


def test_unknown_model_names_what_exists(gateway: Gateway, upstream: FakeUpstream) -> None:
    error = _error(_post(gateway, {**CHAT, "model": "gpt-9"}), 400)
    assert "model=gpt-9" in str(error["message"])
    assert "gpt-4o-mini" in str(error["message"])
    assert upstream.requests == []


@pytest.mark.parametrize(
    "headers",
    [{}, {"authorization": "Bearer wrong"}, {"authorization": "Basic abc"}, {"x-api-key": "nope"}],
)
def test_missing_or_invalid_key(
    gateway: Gateway, upstream: FakeUpstream, headers: dict[str, str]
) -> None:
    error = _error(_post(gateway, headers=headers), 401)
    assert error["type"] == "authentication_error"
    assert "wrong" not in str(error["message"]) and "nope" not in str(error["message"])
    assert upstream.requests == []


@pytest.mark.parametrize("header", ["x-api-key", "api-key", "x-litellm-api-key", "x-goog-api-key"])
def test_key_headers_accepted(gateway: Gateway, header: str) -> None:
    assert _post(gateway, headers={header: MASTER_KEY}).status_code == 200


def test_body_over_the_limit_is_413(upstream: FakeUpstream, tmp_path: Path) -> None:
    config = openai_config(upstream, general="  max_request_size_mb: 0.001")
    with running_gateway(config, tmp_path) as gw:
        big = {**CHAT, "messages": [{"role": "user", "content": "x" * 5000}]}
        error = _error(_post(gw, big), 413)
        assert error["type"] == "request_too_large"
        assert _post(gw).status_code == 200
    assert len(upstream.requests) == 1


def test_unknown_route_and_method(gateway: Gateway) -> None:
    assert _error(httpx.get(gateway.url + "/v1/nothing-here", headers=AUTH), 404)["type"] == (
        "not_found_error"
    )
    _error(httpx.get(gateway.v1 + "/chat/completions", headers=AUTH), 405)


@pytest.mark.matrix("openai", "errors")
def test_upstream_4xx_is_passed_on(gateway: Gateway, upstream: FakeUpstream) -> None:
    upstream.behave(
        "status",
        status=429,
        headers={"retry-after": "7"},
        json={
            "error": {
                "message": "slow down",
                "type": "rate_limit_error",
                "code": "rate_limit_exceeded",
            }
        },
    )
    response = _post(gateway)
    error = _error(response, 429)
    assert "slow down" in str(error["message"])
    assert error["code"] == "rate_limit_exceeded"
    assert response.headers["retry-after"] == "7"


def test_upstream_400_without_openai_body(gateway: Gateway, upstream: FakeUpstream) -> None:
    upstream.behave("status", status=400, body=b"plain words", content_type="text/plain")
    error = _error(_post(gateway), 400)
    assert error["message"] == "openaiException - plain words"


def test_upstream_5xx_is_502(gateway: Gateway, upstream: FakeUpstream) -> None:
    upstream.behave("status", status=500)
    error = _error(_post(gateway), 502)
    assert error["type"] == "api_error"


def test_upstream_invalid_json_is_502(gateway: Gateway, upstream: FakeUpstream) -> None:
    upstream.behave("invalid_json", body=b'{"choices": [')
    error = _error(_post(gateway), 502)
    assert "not valid JSON" in str(error["message"])


@pytest.mark.parametrize("kind", ["garbage", "close_before_response"])
def test_upstream_protocol_failures(gateway: Gateway, upstream: FakeUpstream, kind: str) -> None:
    upstream.behave(kind)
    assert _post(gateway).status_code == 502


def test_upstream_slower_than_timeout_is_504(gateway: Gateway, upstream: FakeUpstream) -> None:
    upstream.behave("slow", delay=3.5)  # the deployment's timeout is 2 s
    error = _error(_post(gateway), 504)
    assert error["type"] == "timeout"


def test_connection_refused_is_502(tmp_path: Path) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again: nothing listens there
    config = f"""
model_list:
  - model_name: gpt-4o-mini
    litellm_params: {{model: openai/x, api_base: "http://127.0.0.1:{port}/v1", api_key: k}}
general_settings: {{master_key: {MASTER_KEY}}}
"""
    with running_gateway(config, tmp_path) as gw:
        error = _error(_post(gw), 502)
        assert error["type"] == "api_connection_error"
        assert error["message"] != "k"


def test_no_traceback_or_secret_in_errors(gateway: Gateway, upstream: FakeUpstream) -> None:
    upstream.behave("status", status=401, json={"error": {"message": "bad key sk-upstream-secret"}})
    response = _post(gateway)
    assert response.status_code == 401
    assert "Traceback" not in response.text
    assert "sk-upstream-secret" not in response.text
    assert "bad key ***" in response.json()["error"]["message"]


def test_unsupported_param_rule_knows_image_and_speech_params(gateway: Gateway) -> None:
    """Adapters get every OpenAI param of the operation, so a narrower provider can
    reject (or drop) the ones it cannot express, for images and speech as for chat."""
    params = gateway.built.runtime.openai_params
    assert {"quality", "size", "n", "response_format"} <= params["image_generation"]
    assert {"voice", "speed", "response_format"} <= params["speech"]
    assert "tools" in params["chat"] and "tools" not in params["image_generation"]
