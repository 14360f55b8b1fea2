"""GigaChat, SAP AI Core and Snowflake Cortex: the token step against a loopback token
endpoint (headers, form, caching, refresh), link-time checks, and the openai SDK through
the gateway with the bearer and static headers the upstream must receive."""

from __future__ import annotations

import base64
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

import openai
import pytest

from tests.conftest import MASTER_KEY, running_gateway
from tests.support.fake_upstream import FakeUpstream
from tianji.compile.model import Deployment
from tianji.compile.pipeline import build
from tianji.errors import TianjiError
from tianji.providers import Call, adapter_for
from tianji.providers.oauth_openai import OAuthOpenAIAdapter
from tianji.upstream import HttpTransport, Timeouts, UpstreamRequest, UpstreamResponse

pytestmark = pytest.mark.timeout(30)

CREDENTIALS = base64.b64encode(b"giga-client:giga-secret").decode()
JWT = "eyJhbGciOiJSUzI1NiJ9.eyJpc3MiOiJBQ0NULlVTRVIifQ.c2ln"
MESSAGES: Any = [{"role": "user", "content": "hello there"}]
NOW = 1_700_000_000.0


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def deployment(tmp_path: Path, params: str, env: dict[str, str] | None = None) -> Deployment:
    config = tmp_path / "c.yaml"
    config.write_text(f"model_list:\n  - model_name: m\n    litellm_params: {params}\n")
    built, problems = build(config, env=env or {}, strict_env=False)
    assert built is not None, [p.render() for p in problems]
    return built.gateway.models.groups["m"].deployments[0]


def chat_call(d: Deployment, **kw: Any) -> Call:
    return Call("chat", d, d.model, body={"messages": MESSAGES}, **kw)


@pytest.fixture
async def send() -> AsyncIterator[Any]:
    transport = HttpTransport()

    async def send(request: UpstreamRequest, timeouts: Timeouts) -> UpstreamResponse:
        return await transport.send(request, timeouts)

    yield send
    await transport.aclose()


@pytest.fixture
def auth() -> Any:
    with FakeUpstream() as up:
        yield up


def token_requests(up: FakeUpstream, part: str) -> list[Any]:
    return [r for r in up.requests if part in r.path]


# --------------------------------------------------------------------------- gigachat


async def test_gigachat_basic_oauth_cached_then_refreshed(
    tmp_path: Path, auth: FakeUpstream, send: Any
) -> None:
    clock = Clock(NOW)
    env = {"GIGACHAT_AUTH_URL": auth.url("/api/v2/oauth")}
    adapter = OAuthOpenAIAdapter(env=env, clock=clock)
    d = deployment(tmp_path, f"{{model: gigachat/GigaChat-Pro, api_key: '{CREDENTIALS}'}}")
    # GigaChat's expires_at is epoch milliseconds.
    first = {"access_token": "giga-tok-1", "expires_at": int((NOW + 1800) * 1000)}
    auth.behave("status", status=200, json=first, times=1)
    auth.behave("status", status=200, json={"access_token": "giga-tok-2", "expires_at": 0}, times=1)

    calls = [chat_call(d) for _ in range(3)]
    for call in calls:
        await adapter.prepare(call, send)
    await adapter.prepare(calls[0], send)  # a retried call: the header is replaced
    assert len(auth.requests) == 1
    assert calls[0].extra_headers == (("authorization", "Bearer giga-tok-1"),)

    exchange = auth.requests[0]
    assert exchange.method == "POST" and exchange.path == "/api/v2/oauth"
    assert exchange.headers["authorization"] == f"Basic {CREDENTIALS}"
    assert uuid.UUID(exchange.headers["rquid"]).version == 4
    assert exchange.headers["content-type"] == "application/x-www-form-urlencoded"
    assert dict(parse_qsl(exchange.body.decode())) == {"scope": "GIGACHAT_API_PERS"}

    request = adapter.build_request(calls[1])
    assert request.url == "https://gigachat.devices.sberbank.ru/api/v1/chat/completions"
    assert [v for k, v in request.headers if k == "authorization"] == ["Bearer giga-tok-1"]

    clock.now = NOW + 1800 - 59  # inside the last minute: refresh
    late = chat_call(d)
    await adapter.prepare(late, send)
    assert len(auth.requests) == 2
    assert late.extra_headers == (("authorization", "Bearer giga-tok-2"),)
    assert auth.requests[1].headers["rquid"] != exchange.headers["rquid"]  # fresh per request


async def test_gigachat_scope_from_env_and_refusal(
    tmp_path: Path, auth: FakeUpstream, send: Any
) -> None:
    env = {"GIGACHAT_AUTH_URL": auth.url("/api/v2/oauth"), "GIGACHAT_SCOPE": "GIGACHAT_API_CORP"}
    adapter = OAuthOpenAIAdapter(env=env)
    d = deployment(tmp_path, "{model: gigachat/GigaChat, api_key: 'bad-creds'}")
    auth.behave("status", status=401, json={"code": 6, "message": "credentials doesn't match"})
    with pytest.raises(TianjiError) as info:
        await adapter.prepare(chat_call(d), send)
    assert info.value.status == 401 and "credentials doesn't match" in info.value.message
    assert dict(parse_qsl(auth.last_request.body.decode())) == {"scope": "GIGACHAT_API_CORP"}


# --------------------------------------------------------------------------- sap


async def test_sap_client_credentials(tmp_path: Path, auth: FakeUpstream, send: Any) -> None:
    env = {"AICORE_AUTH_URL": auth.url("/sap-tenant/"), "AICORE_RESOURCE_GROUP": "team-a"}
    adapter = OAuthOpenAIAdapter(env=env, clock=Clock(NOW))
    d = deployment(
        tmp_path,
        "{model: sap/gpt-4o, client_id: 'sb-client|aicore', client_secret: 's3cret', "
        "api_base: 'https://api.ai.eu.hana.ondemand.com/v2/inference/deployments/d123'}",
    )
    auth.behave("status", status=200, json={"access_token": "sap-tok", "expires_in": 43199})
    first, second = chat_call(d), chat_call(d)
    await adapter.prepare(first, send)
    await adapter.prepare(second, send)
    assert len(auth.requests) == 1
    exchange = auth.requests[0]
    assert exchange.path == "/sap-tenant/oauth/token"
    assert dict(parse_qsl(exchange.body.decode())) == {
        "grant_type": "client_credentials",
        "client_id": "sb-client|aicore",
        "client_secret": "s3cret",
    }
    request = adapter.build_request(second)
    assert request.url == (
        "https://api.ai.eu.hana.ondemand.com/v2/inference/deployments/d123"
        "/chat/completions?api-version=2024-02-01"
    )
    headers = dict(request.headers)
    assert headers["authorization"] == "Bearer sap-tok"
    assert headers["ai-resource-group"] == "team-a"


async def test_upstream_401_forgets_the_token(
    tmp_path: Path, auth: FakeUpstream, send: Any
) -> None:
    env = {"AICORE_AUTH_URL": auth.url("/"), "AICORE_CLIENT_ID": "c", "AICORE_CLIENT_SECRET": "s"}
    adapter = OAuthOpenAIAdapter(env=env)
    d = deployment(tmp_path, "{model: sap/gpt-4o, api_base: 'https://sap.example/v2/x'}")
    auth.behave("status", status=200, json={"access_token": "sap-old", "expires_in": 3600}, times=1)
    auth.behave("status", status=200, json={"access_token": "sap-new", "expires_in": 3600}, times=1)
    call = chat_call(d)
    await adapter.prepare(call, send)
    error = adapter.error_from_status(call, 401, {}, b'{"error": {"message": "expired"}}')
    assert error.status == 401 and "expired" in error.message
    await adapter.prepare(call, send)
    assert ("authorization", "Bearer sap-new") in call.extra_headers
    assert len(auth.requests) == 2


# --------------------------------------------------------------------------- snowflake


async def test_snowflake_static_jwt(tmp_path: Path, auth: FakeUpstream, send: Any) -> None:
    adapter = OAuthOpenAIAdapter(env={"SNOWFLAKE_ACCOUNT_ID": "MyOrg-Acct1"})
    d = deployment(tmp_path, f"{{model: snowflake/mistral-large2, api_key: '{JWT}'}}")
    call = chat_call(d, extra_headers=(("Authorization", "Bearer stale"),))
    await adapter.prepare(call, send)
    assert auth.requests == []  # no exchange
    request = adapter.build_request(call)
    assert request.url == (
        "https://myorg-acct1.snowflakecomputing.com/api/v2/cortex/inference:complete"
    )
    assert [v for k, v in request.headers if k.lower() == "authorization"] == [f"Bearer {JWT}"]
    assert ("X-Snowflake-Authorization-Token-Type", "KEYPAIR_JWT") in request.headers


def test_build_request_without_prepare_is_refused(tmp_path: Path) -> None:
    d = deployment(tmp_path, f"{{model: gigachat/GigaChat, api_key: '{CREDENTIALS}'}}")
    with pytest.raises(TianjiError, match="prepare hook"):
        OAuthOpenAIAdapter(env={}).build_request(chat_call(d))


# --------------------------------------------------------------------------- check


def test_check_reports_missing_credentials(tmp_path: Path) -> None:
    adapter = OAuthOpenAIAdapter(env={})
    giga = deployment(tmp_path, "{model: gigachat/GigaChat}")
    assert adapter.check(giga, {}) == [
        "gigachat needs api_key or GIGACHAT_CREDENTIALS (base64 client_id:secret)"
    ]
    keyed = deployment(tmp_path, f"{{model: gigachat/GigaChat, api_key: '{CREDENTIALS}'}}")
    assert adapter.check(keyed, {}) == []
    other = deployment(tmp_path, "{model: groq/llama, api_key: k}")
    assert adapter.check(other, {}) == ["oauth_openai has no token flow for provider 'groq'"]
    sap = deployment(tmp_path, "{model: sap/gpt-4o, api_base: 'https://sap.example/v2/x'}")
    problems = adapter.check(sap, {})
    assert len(problems) == 2
    assert "client_id and client_secret" in problems[0] and "AICORE_AUTH_URL" in problems[1]
    env = {"AICORE_AUTH_URL": "https://a", "AICORE_CLIENT_ID": "c", "AICORE_CLIENT_SECRET": "s"}
    assert adapter.check(sap, env) == []
    snow = deployment(tmp_path, "{model: snowflake/llama3.1-70b}")
    assert adapter.check(snow, {}) == [
        "snowflake needs api_key or SNOWFLAKE_JWT (a key-pair JWT)",
        "snowflake needs SNOWFLAKE_ACCOUNT_ID or api_base",
    ]
    filled = deployment(tmp_path, "{model: snowflake/llama3.1-70b}", {"SNOWFLAKE_JWT": JWT})
    assert adapter.check(filled, {"SNOWFLAKE_ACCOUNT_ID": "acct"}) == []


def test_tianji_check_fails_on_missing_credentials(tmp_path: Path) -> None:
    config = tmp_path / "c.yaml"
    config.write_text("model_list:\n  - model_name: m\n    litellm_params: {model: gigachat/G}\n")
    built, problems = build(config, env={})
    assert built is None
    assert any("GIGACHAT_CREDENTIALS" in p.render() for p in problems)


# --------------------------------------------------------------------------- gateway


def gateway_config(models: str) -> str:
    return f"model_list:\n{models}\ngeneral_settings:\n  master_key: {MASTER_KEY}\n"


def client(url: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=url, api_key=MASTER_KEY, max_retries=0)


@pytest.mark.matrix("gigachat", "chat")
@pytest.mark.matrix("gigachat", "stream")
@pytest.mark.matrix("gigachat", "embeddings")
def test_gateway_gigachat(
    tmp_path: Path, upstream: FakeUpstream, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GIGACHAT_AUTH_URL", upstream.url("/api/v2/oauth"))
    expires_ms = int((time.time() + 1800) * 1000)
    answer = {"access_token": "giga-gw-tok", "expires_at": expires_ms}
    upstream.behave("status", status=200, json=answer, match="/oauth")
    models = f"""
  - model_name: giga
    litellm_params: {{model: gigachat/GigaChat-Max, api_key: '{CREDENTIALS}',
      api_base: '{upstream.base_url}', timeout: 5}}
  - model_name: giga-embed
    litellm_params: {{model: gigachat/Embeddings, api_key: '{CREDENTIALS}',
      api_base: '{upstream.base_url}', timeout: 5}}
"""
    with running_gateway(gateway_config(models), tmp_path) as gw:
        sdk = client(gw.v1)
        reply = sdk.chat.completions.create(model="giga", messages=MESSAGES)
        assert reply.choices[0].message.content == "echo: hello there"
        chunks = list(sdk.chat.completions.create(model="giga", messages=MESSAGES, stream=True))
        text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
        assert text == "echo: hello there"
        vectors = sdk.embeddings.create(model="giga-embed", input=["a", "b"])
        assert len(vectors.data) == 2
    calls = [r for r in upstream.requests if "/oauth" not in r.path]
    assert [r.path for r in calls] == ["/v1/chat/completions"] * 2 + ["/v1/embeddings"]
    assert all(r.headers["authorization"] == "Bearer giga-gw-tok" for r in calls)
    assert calls[1].json["stream"] is True and calls[2].json["model"] == "Embeddings"
    assert len(token_requests(upstream, "/oauth")) == 1  # one exchange for all three


@pytest.mark.matrix("sap", "chat")
def test_gateway_sap(
    tmp_path: Path, upstream: FakeUpstream, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AICORE_AUTH_URL", upstream.url("/uaa"))
    monkeypatch.delenv("AICORE_RESOURCE_GROUP", raising=False)
    answer = {"access_token": "sap-gw-tok", "token_type": "bearer", "expires_in": 43199}
    upstream.behave("status", status=200, json=answer, match="/oauth/token")
    models = f"""
  - model_name: sap-gpt
    litellm_params: {{model: sap/gpt-4o, client_id: cid, client_secret: csecret, timeout: 5,
      api_base: '{upstream.root_url}/v2/inference/deployments/d42'}}
"""
    with running_gateway(gateway_config(models), tmp_path) as gw:
        reply = client(gw.v1).chat.completions.create(model="sap-gpt", messages=MESSAGES)
    assert reply.choices[0].message.content == "echo: hello there"
    seen = upstream.last_request
    assert seen.path == "/v2/inference/deployments/d42/chat/completions"
    assert seen.query == {"api-version": "2024-02-01"}
    assert seen.headers["authorization"] == "Bearer sap-gw-tok"
    assert seen.headers["ai-resource-group"] == "default"
    assert seen.json["model"] == "gpt-4o"
    exchange = token_requests(upstream, "/oauth/token")[0]
    assert exchange.path == "/uaa/oauth/token"
    assert dict(parse_qsl(exchange.body.decode()))["grant_type"] == "client_credentials"


@pytest.mark.matrix("snowflake", "chat")
def test_gateway_snowflake(
    tmp_path: Path, upstream: FakeUpstream, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SNOWFLAKE_JWT", JWT)
    monkeypatch.setenv("SNOWFLAKE_API_BASE", f"{upstream.root_url}/api/v2/cortex")
    completion = {
        "id": "sf-1",
        "object": "chat.completion",
        "created": 1_700_000_000,
        "model": "mistral-large2",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": "Hi from Cortex"},
                "finish_reason": "stop",
            }
        ],
        "usage": {"prompt_tokens": 3, "completion_tokens": 4, "total_tokens": 7},
    }
    upstream.behave("status", status=200, json=completion, match="inference:complete")
    models = """
  - model_name: cortex
    litellm_params: {model: snowflake/mistral-large2, timeout: 5}
"""
    with running_gateway(gateway_config(models), tmp_path) as gw:
        reply = client(gw.v1).chat.completions.create(model="cortex", messages=MESSAGES)
    assert reply.choices[0].message.content == "Hi from Cortex"
    seen = upstream.last_request
    assert seen.path == "/api/v2/cortex/inference:complete"
    assert seen.headers["authorization"] == f"Bearer {JWT}"
    assert seen.headers["x-snowflake-authorization-token-type"] == "KEYPAIR_JWT"
    assert seen.json["model"] == "mistral-large2"
    assert len(upstream.requests) == 1  # no token exchange


def test_registered_adapter_is_this_one() -> None:
    assert isinstance(adapter_for("oauth_openai"), OAuthOpenAIAdapter)
