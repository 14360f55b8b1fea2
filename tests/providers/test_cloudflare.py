"""Cloudflare Workers AI: account id and URL, body and answers, the `{"response"}`
stream, embeddings, and the gateway end to end with the openai SDK."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from functools import partial
from typing import Any

import msgspec
import openai
import pytest

from tests.conftest import MASTER_KEY, Gateway, running_gateway
from tests.support.fake_upstream import FakeUpstream
from tests.support.providers import fixture, sse_frames
from tianji.compile.pipeline import build
from tianji.errors import TianjiError, UnsupportedParams
from tianji.providers import Call, adapter_for

pytestmark = pytest.mark.timeout(30)

frames = partial(sse_frames, drop=("id", "created"))
ACCOUNT = "0123456789abcdef0123456789abcdef"
CALL_ID = re.compile(r"^call_[0-9a-f]{32}$")
USER = [{"role": "user", "content": "Say hello"}]


# --------------------------------------------------------------------------- unit


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Any:
    config = tmp_path_factory.mktemp("cf") / "c.yaml"
    config.write_text(
        "model_list:\n"
        "  - model_name: env\n"
        "    litellm_params: {model: cloudflare/@cf/meta/llama-3.1-8b-instruct, api_key: cf}\n"
        "  - model_name: go\n"
        f"    litellm_params: {{model: cloudflare/{ACCOUNT}/@cf/meta/llama-3.1-8b-instruct, "
        "api_key: cf}\n"
        "  - model_name: run\n"
        "    litellm_params: {model: cloudflare/@cf/baai/bge-base-en-v1.5, api_key: cf,"
        " api_base: 'https://gw.example/v1/acc/ai/run'}\n"
    )
    result, problems = build(
        config, env={}, strict_env=False
    )  # translation tests: config checks elsewhere
    assert result is not None, [p.render() for p in problems]
    return result


def _call(built: Any, group: str, body: dict[str, Any], operation: str = "chat", **kw: Any) -> Call:
    deployment = built.gateway.models.groups[group].deployments[0]
    params = built.gateway.providers["openai"].params.get(operation, frozenset())
    return Call(operation, deployment, deployment.model, body=body, openai_params=params, **kw)


def test_account_id_from_env_model_or_api_base(built: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    adapter = adapter_for("cloudflare")
    monkeypatch.delenv("CLOUDFLARE_ACCOUNT_ID", raising=False)
    with pytest.raises(TianjiError, match="CLOUDFLARE_ACCOUNT_ID"):
        adapter.build_request(_call(built, "env", {"messages": USER}))
    monkeypatch.setenv("CLOUDFLARE_ACCOUNT_ID", "acc-from-env")
    base = "https://api.cloudflare.com/client/v4/accounts"
    request = adapter.build_request(_call(built, "env", {"messages": USER}))
    assert request.url == f"{base}/acc-from-env/ai/run/@cf/meta/llama-3.1-8b-instruct"
    assert ("authorization", "Bearer cf") in request.headers
    request = adapter.build_request(_call(built, "go", {"messages": USER}))
    assert request.url == f"{base}/{ACCOUNT}/ai/run/@cf/meta/llama-3.1-8b-instruct"
    request = adapter.build_request(_call(built, "run", {"input": "x"}, "embeddings"))
    assert request.url == "https://gw.example/v1/acc/ai/run/@cf/baai/bge-base-en-v1.5"
    assert msgspec.json.decode(request.body) == {"text": ["x"]}


def test_chat_body(built: Any) -> None:
    tool = {"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}
    body = {
        "model": "go",
        "messages": [{"role": "user", "content": [{"type": "text", "text": "hi"}]}],
        "max_completion_tokens": 30,
        "temperature": 0.5,
        "tools": [tool],
        "top_k": 5,
    }
    request = adapter_for("cloudflare").build_request(_call(built, "go", body))
    assert msgspec.json.decode(request.body) == {
        "messages": [{"role": "user", "content": "hi"}],
        "max_tokens": 30,
        "temperature": 0.5,
        "tools": [tool],
        "top_k": 5,
    }
    with pytest.raises(
        UnsupportedParams, match=r"cloudflare does not support parameters: \['stop'\]"
    ):
        adapter_for("cloudflare").build_request(_call(built, "go", {"messages": USER, "stop": "x"}))


def test_stream_cut_anywhere_gives_the_same_chunks(built: Any) -> None:
    call = _call(built, "go", {"messages": USER, "stream_options": {"include_usage": True}})
    data = fixture("cloudflare_chat_stream.sse")

    def run(step: int) -> list[Any]:
        translator = adapter_for("cloudflare").stream_translator(call)
        assert translator is not None
        out = b"".join(translator.feed(data[i : i + step]) for i in range(0, len(data), step))
        return frames(out + translator.close())

    whole = run(len(data))
    assert run(1) == whole
    assert whole[-2]["usage"] == {"prompt_tokens": 18, "completion_tokens": 5, "total_tokens": 23}


def test_stream_usage_is_counted_when_not_reported(built: Any) -> None:
    call = _call(built, "go", {"messages": USER, "stream_options": {"include_usage": True}})
    translator = adapter_for("cloudflare").stream_translator(call)
    assert translator is not None
    out = translator.feed(b'data: {"response":"Hello world"}\n\ndata: [DONE]\n\n')
    usage = frames(out + translator.close())[-2]["usage"]
    assert usage["completion_tokens"] >= 1 and usage["prompt_tokens"] > usage["completion_tokens"]


# --------------------------------------------------------------------------- end to end


@pytest.fixture(scope="module")
def up() -> Iterator[FakeUpstream]:
    with FakeUpstream() as upstream:
        yield upstream


@pytest.fixture(scope="module")
def gw(up: FakeUpstream, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    base = f"{up.root_url}/client/v4"
    config = f"""
model_list:
  - model_name: llama
    litellm_params:
      model: cloudflare/{ACCOUNT}/@cf/meta/llama-3.1-8b-instruct
      api_base: {base}
      api_key: cf-token
  - model_name: bge
    litellm_params: {{model: "cloudflare/{ACCOUNT}/@cf/baai/bge-base-en-v1.5", api_base: {base},
      api_key: cf-token}}
general_settings: {{master_key: {MASTER_KEY}}}
"""
    with running_gateway(config, tmp_path_factory.mktemp("gw")) as gateway:
        yield gateway


@pytest.fixture
def client(gw: Gateway, up: FakeUpstream) -> openai.OpenAI:
    up.reset()
    return openai.OpenAI(base_url=gw.v1, api_key=MASTER_KEY, max_retries=0)


def _answer(up: FakeUpstream, name: str, status: int = 200) -> None:
    kind = "text/event-stream" if name.endswith(".sse") else "application/json"
    up.behave("status", status=status, body=fixture(name), content_type=kind, times=1)


@pytest.mark.matrix("cloudflare", "chat")
@pytest.mark.matrix("cloudflare", "usage")
def test_plain_chat(client: openai.OpenAI, up: FakeUpstream) -> None:
    _answer(up, "cloudflare_chat.json")
    reply = client.chat.completions.create(model="llama", messages=USER, max_tokens=40)
    assert reply.choices[0].message.content == "Hello there, naïve world"
    assert reply.choices[0].finish_reason == "stop"
    assert reply.usage is not None and reply.usage.total_tokens == 23
    seen = up.requests[0]
    assert seen.path == f"/client/v4/accounts/{ACCOUNT}/ai/run/@cf/meta/llama-3.1-8b-instruct"
    assert seen.headers["authorization"] == "Bearer cf-token"
    assert seen.json == {"messages": USER, "max_tokens": 40}


@pytest.mark.matrix("cloudflare", "stream")
def test_streamed_chat(client: openai.OpenAI, up: FakeUpstream) -> None:
    _answer(up, "cloudflare_chat_stream.sse")
    chunks = list(
        client.chat.completions.create(
            model="llama",
            messages=USER,
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "Hello there, naïve world"
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens == 5
    assert up.requests[0].json == {"messages": USER, "stream": True}


@pytest.mark.matrix("cloudflare", "tools")
def test_tool_calls_get_ids(client: openai.OpenAI, up: FakeUpstream) -> None:
    _answer(up, "cloudflare_tool_call.json")
    tool = {"type": "function", "function": {"name": "get_weather", "parameters": {}}}
    reply = client.chat.completions.create(model="llama", messages=USER, tools=[tool])
    assert reply.choices[0].finish_reason == "tool_calls"
    call = reply.choices[0].message.tool_calls[0]
    assert CALL_ID.match(call.id)
    assert json.loads(call.function.arguments) == {"city": "Lisbon"}


@pytest.mark.matrix("cloudflare", "errors")
def test_errors_are_mapped(client: openai.OpenAI, up: FakeUpstream) -> None:
    _answer(up, "cloudflare_error.json", status=400)
    with pytest.raises(openai.BadRequestError) as info:
        client.chat.completions.create(model="llama", messages=USER)
    assert "cloudflareException - No such model @cf/meta/llama-9 or task" in str(info.value)
    up.behave("status", status=429, json={"success": False, "errors": [{"message": "slow down"}]})
    with pytest.raises(openai.RateLimitError, match="slow down"):
        client.chat.completions.create(model="llama", messages=USER)
    up.clear_behaviours()


@pytest.mark.matrix("cloudflare", "drop_params")
def test_unsupported_params_dropped_on_request(client: openai.OpenAI, up: FakeUpstream) -> None:
    _answer(up, "cloudflare_chat.json")
    client.chat.completions.create(
        model="llama",
        messages=USER,
        seed=1,
        extra_body={"drop_params": True},
    )
    assert up.requests[0].json == {"messages": USER}


@pytest.mark.matrix("cloudflare", "embeddings")
def test_embeddings(client: openai.OpenAI, up: FakeUpstream) -> None:
    _answer(up, "cloudflare_embed.json")
    result = client.embeddings.create(model="bge", input=["alpha", "beta"])
    expected = json.loads(fixture("cloudflare_embed.json"))["result"]["data"]
    assert [d.embedding for d in result.data] == [pytest.approx(v, rel=1e-6) for v in expected]
    assert result.usage.prompt_tokens >= 2
    assert up.requests[0].path.endswith("/ai/run/@cf/baai/bge-base-en-v1.5")
    assert up.requests[0].json == {"text": ["alpha", "beta"]}
