"""Claude on Vertex AI: the Anthropic publisher's `:rawPredict` / `:streamRawPredict`,
Anthropic's body with Vertex's `anthropic_version`, the OAuth Bearer token minted by a
fake token endpoint on 127.0.0.1, and Anthropic's translation of answers and errors."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import openai
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from tests.conftest import MASTER_KEY, running_gateway
from tests.providers.test_vertex import (
    TokenEndpoint,
    _call,
    _deployment,
    _no_vertex_env,
    _send,
    _service_account,
    rsa_key,
    tokens,
)
from tests.support.fake_upstream import FakeUpstream
from tianji.errors import TianjiError
from tianji.providers.vertex import VertexAdapter
from tianji.providers.vertex_claude import ANTHROPIC_CHAT_PARAMS

# Fixtures shared with test_vertex (pytest finds them by name in this module).
__all__ = ["_no_vertex_env", "rsa_key", "tokens"]

pytestmark = pytest.mark.timeout(30)

FIXTURES = Path(__file__).parent / "fixtures"
SSE = "text/event-stream; charset=utf-8"
MODEL = "claude-sonnet-4-5@20250929"
ASK = [{"role": "user", "content": "What's the weather in San Francisco?"}]
RAW_PREDICT = (
    f"/v1/projects/proj-7/locations/us-east5/publishers/anthropic/models/{MODEL}:rawPredict"
)
STREAM_RAW_PREDICT = RAW_PREDICT.replace(":rawPredict", ":streamRawPredict")
WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather",
        "parameters": {
            "type": "object",
            "properties": {"location": {"type": "string"}, "unit": {"type": "string"}},
            "required": ["location"],
        },
    },
}


def _fixture_json(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text())


# --------------------------------------------------------------------------- request


def test_claude_urls(tmp_path: Path) -> None:
    d = _deployment(
        tmp_path,
        f"{{model: 'vertex_ai/{MODEL}', vertex_project: p1, vertex_location: europe-west1}}",
    )
    adapter = VertexAdapter()
    assert adapter.url(_call(d, {})) == (
        "https://europe-west1-aiplatform.googleapis.com/v1/projects/p1/locations/europe-west1/"
        f"publishers/anthropic/models/{MODEL}:rawPredict"
    )
    g = _deployment(
        tmp_path, f"{{model: 'vertex_ai/{MODEL}', vertex_project: p1, vertex_location: global}}"
    )
    assert adapter.url(_call(g, {}, stream=True)) == (
        "https://aiplatform.googleapis.com/v1/projects/p1/locations/global/"
        f"publishers/anthropic/models/{MODEL}:streamRawPredict"
    )


def test_claude_request_url_body_and_headers(tmp_path: Path) -> None:
    d = _deployment(
        tmp_path,
        f"{{model: 'vertex_ai/{MODEL}', vertex_project: proj-7, vertex_location: us-east5, "
        "api_base: 'http://127.0.0.1:9'}",
    )
    body = {
        "messages": [{"role": "system", "content": "Be brief."}, *ASK],
        "max_tokens": 300,
        "temperature": 0.2,
        "top_k": 5,  # Anthropic's, not in the Gemini set of the vertex_ai entry
        "stream": True,
    }
    call = _call(d, body, stream=True, extra_headers=(("authorization", "Bearer ya29.t"),))
    request = VertexAdapter().build_request(call)
    assert request.url == f"http://127.0.0.1:9{STREAM_RAW_PREDICT}"
    assert json.loads(request.body) == {
        "anthropic_version": "vertex-2023-10-16",
        "system": "Be brief.",
        "messages": [{"role": "user", "content": [{"type": "text", "text": ASK[0]["content"]}]}],
        "max_tokens": 300,
        "temperature": 0.2,
        "top_k": 5,
        "stream": True,
    }
    assert request.headers == [
        ("authorization", "Bearer ya29.t"),
        ("content-type", "application/json"),
    ]


def test_claude_params_are_anthropics(tmp_path: Path) -> None:
    d = _deployment(tmp_path, f"{{model: 'vertex_ai/{MODEL}', vertex_project: p}}")
    token = (("authorization", "Bearer t"),)
    adapter = VertexAdapter()
    # `seed` is a Gemini parameter (the vertex_ai entry's set) but not a Claude one.
    call = _call(
        d,
        {"messages": ASK, "seed": 3},
        extra_headers=token,
        openai_params=frozenset({"seed", "top_k"}),
    )
    with pytest.raises(TianjiError) as refused:
        adapter.build_request(call)
    assert refused.value.status == 400 and "seed" in refused.value.message
    call.drop_params = True
    assert "seed" not in json.loads(adapter.build_request(call).body)
    # The adapter's copy of the set is the shipped providers.yaml `anthropic_chat`.
    anthropic = _deployment(tmp_path, "{model: anthropic/claude-sonnet-4-5, api_key: k}")
    assert anthropic.provider.params["chat"] == ANTHROPIC_CHAT_PARAMS


def test_gemini_models_keep_the_google_publisher(tmp_path: Path) -> None:
    d = _deployment(tmp_path, "{model: vertex_ai/gemini-2.5-pro, vertex_project: p1}")
    call = _call(d, {"messages": ASK}, extra_headers=(("authorization", "Bearer t"),))
    request = VertexAdapter().build_request(call)
    assert "/publishers/google/models/gemini-2.5-pro:generateContent" in request.url
    assert "contents" in json.loads(request.body)


def test_claude_embeddings_refused(tmp_path: Path) -> None:
    d = _deployment(tmp_path, f"{{model: 'vertex_ai/{MODEL}', vertex_project: p1}}")
    call = _call(d, {"input": "x"}, operation="embeddings", extra_headers=(("authorization", "t"),))
    with pytest.raises(TianjiError, match="chat only"):
        VertexAdapter().build_request(call)


# --------------------------------------------------------------------------- gateway


@pytest.fixture
def upstream() -> Iterator[FakeUpstream]:
    with FakeUpstream() as up:
        yield up


@pytest.fixture
def client(
    upstream: FakeUpstream, tokens: TokenEndpoint, rsa_key: rsa.RSAPrivateKey, tmp_path: Path
) -> Iterator[openai.OpenAI]:
    key_file = _service_account(tmp_path, rsa_key, tokens.url)
    config = f"""
model_list:
  - model_name: claude
    litellm_params:
      model: vertex_ai/{MODEL}
      vertex_project: proj-7
      vertex_location: us-east5
      api_base: {upstream.root_url}
      vertex_credentials: {key_file}
      timeout: 5
      stream_timeout: 5
general_settings:
  master_key: {MASTER_KEY}
"""
    with running_gateway(config, tmp_path) as gw:
        yield openai.OpenAI(base_url=gw.v1, api_key=MASTER_KEY, max_retries=0, timeout=10)


def _sent(up: FakeUpstream, index: int = -1, path: str = RAW_PREDICT) -> dict[str, Any]:
    request = up.requests[index]
    assert request.path == path
    assert request.headers["authorization"] == "Bearer ya29.test-token-1"
    assert "x-api-key" not in request.headers and "anthropic-version" not in request.headers
    body: dict[str, Any] = request.json
    assert body["anthropic_version"] == "vertex-2023-10-16" and "model" not in body
    return body


def _answer(up: FakeUpstream, name: str, **kw: Any) -> None:
    up.behave("status", status=200, json=_fixture_json(f"anthropic_message_{name}.json"), **kw)


@pytest.mark.matrix("vertex_ai_claude", "chat")
@pytest.mark.matrix("vertex_ai_claude", "usage")
@pytest.mark.matrix("vertex_ai_claude", "cache_usage")
def test_plain_chat_and_cache_usage(client: openai.OpenAI, upstream: FakeUpstream) -> None:
    _answer(upstream, "text")
    reply = client.chat.completions.create(
        model="claude", messages=[{"role": "system", "content": "Be brief."}, *ASK]
    )
    assert reply.choices[0].message.content == "Hi! My name is Claude."
    assert reply.choices[0].finish_reason == "stop"
    assert _sent(upstream) == {
        "anthropic_version": "vertex-2023-10-16",
        "system": "Be brief.",
        "messages": [{"role": "user", "content": [{"type": "text", "text": ASK[0]["content"]}]}],
        "max_tokens": 4096,
    }
    usage = reply.usage
    assert usage is not None
    assert (usage.prompt_tokens, usage.completion_tokens) == (2095 + 1800 + 512, 503)
    assert usage.prompt_tokens_details is not None
    assert usage.prompt_tokens_details.cached_tokens == 1800
    assert (usage.model_extra or {})["cache_creation_input_tokens"] == 512


@pytest.mark.matrix("vertex_ai_claude", "stream")
def test_streamed_chat(client: openai.OpenAI, upstream: FakeUpstream) -> None:
    raw = (FIXTURES / "anthropic_text.sse").read_bytes()
    upstream.behave("status", status=200, body=raw, content_type=SSE)
    chunks = list(
        client.chat.completions.create(
            model="claude", messages=ASK, stream=True, stream_options={"include_usage": True}
        )
    )
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "Bonjour le monde — 你好世界 👋"
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens == 12
    body = _sent(upstream, path=STREAM_RAW_PREDICT)
    assert body["stream"] is True and "stream_options" not in body


@pytest.mark.matrix("vertex_ai_claude", "tools")
@pytest.mark.matrix("vertex_ai_claude", "tool_stream")
def test_tool_calls(client: openai.OpenAI, upstream: FakeUpstream, tokens: TokenEndpoint) -> None:
    _answer(upstream, "tool_use", times=1)
    raw = (FIXTURES / "anthropic_tool_use.sse").read_bytes()
    upstream.behave("status", status=200, body=raw, content_type=SSE, times=1)
    first = client.chat.completions.create(model="claude", messages=ASK, tools=[WEATHER_TOOL])  # type: ignore[list-item]
    assert first.choices[0].finish_reason == "tool_calls"
    [call] = first.choices[0].message.tool_calls or []
    assert call.id == "toolu_01A09q90qw90lq917835lq9"
    assert call.function.name == "get_weather"  # type: ignore[union-attr]
    assert _sent(upstream, 0)["tools"] == [
        {
            "name": "get_weather",
            "description": "Current weather",
            "input_schema": WEATHER_TOOL["function"]["parameters"],  # type: ignore[index]
        }
    ]
    with client.chat.completions.stream(
        model="claude",
        messages=ASK,
        tools=[WEATHER_TOOL],  # type: ignore[list-item]
    ) as stream:
        final = stream.get_final_completion()
    calls = final.choices[0].message.tool_calls or []
    arguments = [json.loads(c.function.arguments) for c in calls]  # type: ignore[union-attr]
    assert arguments == [
        {"location": "San Francisco, CA", "unit": "fahrenheit"},
        {"location": "Paris, FR"},
    ]
    _sent(upstream, 1, path=STREAM_RAW_PREDICT)
    assert tokens.issued == 1  # one token for both calls


@pytest.mark.matrix("vertex_ai_claude", "errors")
def test_errors(client: openai.OpenAI, upstream: FakeUpstream) -> None:
    overloaded = _fixture_json("anthropic_errors.json")["overloaded"]
    upstream.behave("status", status=529, json=overloaded, times=1)
    with pytest.raises(openai.InternalServerError) as busy:
        client.chat.completions.create(model="claude", messages=ASK)
    assert busy.value.status_code == 503
    assert busy.value.type == "service_unavailable"
    # Vertex's own front end answers quota errors in the google.rpc shape.
    quota = {
        "error": {
            "code": 429,
            "message": "Quota exceeded for aiplatform.googleapis.com/online_prediction_requests",
            "status": "RESOURCE_EXHAUSTED",
        }
    }
    upstream.behave("status", status=429, json=quota, times=1)
    with pytest.raises(openai.RateLimitError) as limited:
        client.chat.completions.create(model="claude", messages=ASK)
    assert "Quota exceeded" in limited.value.message


def test_transport_only_call(
    tmp_path: Path, rsa_key: rsa.RSAPrivateKey, tokens: TokenEndpoint, upstream: FakeUpstream
) -> None:
    """prepare + build_request + the real transport, without the gateway."""
    key_file = _service_account(tmp_path, rsa_key, tokens.url)
    d = _deployment(
        tmp_path,
        f"{{model: 'vertex_ai/{MODEL}', vertex_project: proj-7, vertex_location: us-east5, "
        f"api_base: '{upstream.root_url}', vertex_credentials: '{key_file}'}}",
    )
    _answer(upstream, "text")
    adapter = VertexAdapter()
    call = _call(d, {"messages": ASK})
    ((status, body),) = _send(adapter, [call])
    out = json.loads(adapter.translate_response(call, body) or b"")
    assert status == 200 and out["choices"][0]["message"]["content"] == "Hi! My name is Claude."
    _sent(upstream)


def test_supported_params_are_claudes_for_claude_models(tmp_path: Path) -> None:
    """What /utils/supported_openai_params and /model_group/info report follows the
    adapter: Anthropic's set for Claude on Vertex, Gemini's for Gemini."""
    from tianji.compile.pipeline import build
    from tianji.providers import supported_params

    config = tmp_path / "c.yaml"
    config.write_text(
        "model_list:\n"
        "  - model_name: c\n"
        "    litellm_params: {model: vertex_ai/claude-sonnet-4-5, vertex_project: p}\n"
        "  - model_name: g\n"
        "    litellm_params: {model: vertex_ai/gemini-2.0-flash, vertex_project: p}\n"
    )
    built, problems = build(config, env={}, strict_env=False)
    assert built is not None, [p.render() for p in problems]
    claude = supported_params(built.gateway.models.groups["c"].deployments[0], "chat")
    gemini = supported_params(built.gateway.models.groups["g"].deployments[0], "chat")
    assert "top_k" in claude and "seed" not in claude
    assert "seed" in gemini
