"""Cohere v2: request translation, the named-event stream, and the gateway end to end
(openai SDK in front, a FakeUpstream speaking Cohere's wire format behind)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from functools import partial
from typing import Any

import httpx
import msgspec
import openai
import pytest

from tests.conftest import MASTER_KEY, Gateway, running_gateway
from tests.support.fake_upstream import FakeUpstream
from tests.support.providers import fixture, sse_frames, translate_in_steps
from tianji.compile.pipeline import build
from tianji.errors import TianjiError, UnsupportedParams
from tianji.providers import Call, adapter_for

pytestmark = pytest.mark.timeout(30)

frames = partial(sse_frames, drop=("created",))
WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Weather for a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
    },
}


# --------------------------------------------------------------------------- unit


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Any:
    config = tmp_path_factory.mktemp("cohere") / "c.yaml"
    config.write_text(
        "model_list:\n"
        "  - model_name: m\n    litellm_params: {model: cohere/command-a-03-2025, api_key: k}\n"
        "  - model_name: e\n    litellm_params: {model: cohere/embed-v4.0, api_key: k}\n"
    )
    result, problems = build(config, env={})
    assert result is not None, [p.render() for p in problems]
    return result


def _call(built: Any, body: dict[str, Any], operation: str = "chat", **kw: Any) -> Call:
    deployment = built.gateway.models.groups["e" if operation == "embeddings" else "m"]
    deployment = deployment.deployments[0]
    params = built.gateway.providers["openai"].params.get(operation, frozenset())
    return Call(operation, deployment, deployment.model, body=body, openai_params=params, **kw)


def _sent(built: Any, body: dict[str, Any], **kw: Any) -> dict[str, Any]:
    request = adapter_for("cohere").build_request(_call(built, body, **kw))
    return msgspec.json.decode(request.body)


def test_chat_request_translation(built: Any) -> None:
    body = {
        "model": "m",
        "messages": [
            {"role": "developer", "content": "be brief", "name": "ops"},
            {"role": "user", "content": "hi"},
        ],
        "top_p": 0.9,
        "top_k": 40,
        "stop": "END",
        "max_completion_tokens": 50,
        "temperature": 0.3,
        "seed": 7,
        "tool_choice": "required",
        "tools": [WEATHER_TOOL],
        "stream": True,
        "stream_options": {"include_usage": True},
        "safety_mode": "STRICT",
    }
    request = adapter_for("cohere").build_request(_call(built, body))
    assert request.url == "https://api.cohere.com/v2/chat"
    assert ("authorization", "Bearer k") in request.headers
    assert msgspec.json.decode(request.body) == {
        "model": "command-a-03-2025",
        "messages": [{"role": "system", "content": "be brief"}, {"role": "user", "content": "hi"}],
        "p": 0.9,
        "k": 40,
        "stop_sequences": ["END"],
        "max_tokens": 50,
        "temperature": 0.3,
        "seed": 7,
        "tool_choice": "REQUIRED",
        "tools": [WEATHER_TOOL],
        "stream": True,
        "safety_mode": "STRICT",  # a Cohere extra passes through
    }


def test_tool_choice_mapping(built: Any) -> None:
    assert _sent(built, {"messages": [], "tool_choice": "none"})["tool_choice"] == "NONE"
    assert "tool_choice" not in _sent(built, {"messages": [], "tool_choice": "auto"})
    named = {"type": "function", "function": {"name": "get_weather"}}
    with pytest.raises(UnsupportedParams) as info:
        _sent(built, {"messages": [], "tool_choice": named})
    assert info.value.param == "tool_choice"
    assert "tool_choice" not in _sent(
        built, {"messages": [], "tool_choice": named}, drop_params=True
    )


def test_unsupported_param_rule(built: Any) -> None:
    with pytest.raises(UnsupportedParams, match=r"cohere does not support parameters: \['n'\]"):
        _sent(built, {"messages": [], "n": 2})
    assert "n" not in _sent(built, {"messages": [], "n": 2}, drop_params=True)


@pytest.mark.parametrize("name", ["cohere_chat_stream.sse", "cohere_tool_stream.sse"])
def test_stream_cut_anywhere_gives_the_same_chunks(built: Any, name: str) -> None:
    call = _call(built, {"messages": [], "stream_options": {"include_usage": True}}, stream=True)
    data = fixture(name)
    whole = frames(translate_in_steps("cohere", call, data, len(data)))
    assert frames(translate_in_steps("cohere", call, data, 1)) == whole
    assert whole[-1] == "[DONE]" and whole[-2]["usage"]["prompt_tokens"] > 0


def test_stream_without_message_end_is_an_error(built: Any) -> None:
    data = fixture("cohere_chat_stream.sse")
    cut = data[: data.index(b"event: message-end")]
    with pytest.raises(TianjiError, match="ended before message-end"):
        translate_in_steps("cohere", _call(built, {"messages": []}, stream=True), cut, 7)


def test_failed_generation_is_an_error(built: Any) -> None:
    answer = json.loads(fixture("cohere_chat.json"))
    answer["finish_reason"] = "ERROR"
    with pytest.raises(TianjiError) as info:
        adapter_for("cohere").translate_response(
            _call(built, {"messages": []}), json.dumps(answer).encode()
        )
    assert info.value.status == 502 and "finish_reason ERROR" in info.value.message


# --------------------------------------------------------------------------- end to end


@pytest.fixture(scope="module")
def up() -> Iterator[FakeUpstream]:
    with FakeUpstream() as upstream:
        yield upstream


@pytest.fixture(scope="module")
def gw(up: FakeUpstream, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    config = f"""
model_list:
  - model_name: command
    litellm_params: {{model: cohere/command-a-03-2025, api_base: {up.root_url}, api_key: co-key}}
  - model_name: embed
    litellm_params: {{model: cohere/embed-v4.0, api_base: {up.root_url}, api_key: co-key}}
  - model_name: rerank
    litellm_params: {{model: cohere/rerank-v3.5, api_base: {up.root_url}, api_key: co-key}}
general_settings: {{master_key: {MASTER_KEY}}}
"""
    with running_gateway(config, tmp_path_factory.mktemp("gw")) as gateway:
        yield gateway


@pytest.fixture
def client(gw: Gateway, up: FakeUpstream) -> openai.OpenAI:
    up.reset()
    return openai.OpenAI(base_url=gw.v1, api_key=MASTER_KEY, max_retries=0)


def _answer(up: FakeUpstream, name: str, **kw: Any) -> None:
    kind = "text/event-stream" if name.endswith(".sse") else "application/json"
    up.behave("status", status=200, body=fixture(name), content_type=kind, times=1, **kw)


@pytest.mark.matrix("cohere", "chat")
@pytest.mark.matrix("cohere", "usage")
def test_plain_chat(client: openai.OpenAI, up: FakeUpstream) -> None:
    _answer(up, "cohere_chat.json")
    reply = client.chat.completions.create(
        model="command", messages=[{"role": "user", "content": "salut"}], max_tokens=20
    )
    assert reply.choices[0].message.content == "Bonjour from the café ☕!"
    assert reply.choices[0].finish_reason == "stop"
    assert reply.usage is not None
    assert (reply.usage.prompt_tokens, reply.usage.completion_tokens) == (73, 6)
    seen = up.requests[0]
    assert seen.path == "/v2/chat" and seen.headers["authorization"] == "Bearer co-key"
    assert seen.json == {
        "model": "command-a-03-2025",
        "messages": [{"role": "user", "content": "salut"}],
        "max_tokens": 20,
    }


@pytest.mark.matrix("cohere", "stream")
def test_streamed_chat(client: openai.OpenAI, up: FakeUpstream) -> None:
    _answer(up, "cohere_chat_stream.sse")
    stream = client.chat.completions.create(
        model="command",
        messages=[{"role": "user", "content": "salut"}],
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "Bonjour from the café ☕!"
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"
    assert chunks[-1].usage is not None and chunks[-1].usage.total_tokens == 73 + 6
    assert up.requests[0].json["stream"] is True
    assert "stream_options" not in up.requests[0].json


@pytest.mark.matrix("cohere", "tools")
@pytest.mark.matrix("cohere", "tool_result")
def test_tool_call_round_trip(client: openai.OpenAI, up: FakeUpstream) -> None:
    _answer(up, "cohere_tool_call.json")
    messages: list[Any] = [{"role": "user", "content": "Weather in Paris?"}]
    first = client.chat.completions.create(model="command", messages=messages, tools=[WEATHER_TOOL])
    call = first.choices[0].message.tool_calls[0]
    assert first.choices[0].finish_reason == "tool_calls"
    assert (call.id, call.function.name) == ("get_weather_8m3qpz2k1vxa", "get_weather")
    assert json.loads(call.function.arguments) == {"city": "Paris"}

    _answer(up, "cohere_chat.json")
    messages += [
        first.choices[0].message.model_dump(exclude_none=True),
        {"role": "tool", "tool_call_id": call.id, "content": '{"temp": 21}'},
    ]
    client.chat.completions.create(model="command", messages=messages, tools=[WEATHER_TOOL])
    sent = up.requests[1].json["messages"]
    assert sent[1]["role"] == "assistant"
    assert sent[1]["tool_calls"][0]["id"] == "get_weather_8m3qpz2k1vxa"
    assert sent[2] == {"role": "tool", "tool_call_id": call.id, "content": '{"temp": 21}'}


@pytest.mark.matrix("cohere", "tool_stream")
def test_streamed_tool_calls(client: openai.OpenAI, up: FakeUpstream) -> None:
    _answer(up, "cohere_tool_stream.sse")
    stream = client.chat.completions.create(
        model="command",
        messages=[{"role": "user", "content": "Paris and Tokyo?"}],
        tools=[WEATHER_TOOL],
        stream=True,
    )
    calls: dict[int, dict[str, str]] = {}
    finish = None
    for chunk in stream:
        for delta in chunk.choices[0].delta.tool_calls or ():
            entry = calls.setdefault(delta.index, {"id": "", "name": "", "arguments": ""})
            entry["id"] += delta.id or ""
            entry["name"] += (delta.function and delta.function.name) or ""
            entry["arguments"] += (delta.function and delta.function.arguments) or ""
        finish = chunk.choices[0].finish_reason or finish
    assert finish == "tool_calls"
    assert [c["id"] for c in calls.values()] == [
        "get_weather_8m3qpz2k1vxa",
        "get_weather_q7w4e1r9t0ys",
    ]
    assert [json.loads(c["arguments"]) for c in calls.values()] == [
        {"city": "Paris"},
        {"city": "Tokyo"},
    ]


@pytest.mark.matrix("cohere", "json_mode")
def test_json_mode(client: openai.OpenAI, up: FakeUpstream) -> None:
    schema = {"type": "object", "properties": {"city": {"type": "string"}}}
    _answer(up, "cohere_chat.json")
    client.chat.completions.create(
        model="command",
        messages=[{"role": "user", "content": "json please"}],
        response_format={"type": "json_schema", "json_schema": {"name": "c", "schema": schema}},
    )
    assert up.requests[0].json["response_format"] == {"type": "json_object", "json_schema": schema}


@pytest.mark.matrix("cohere", "vision")
def test_image_input(client: openai.OpenAI, up: FakeUpstream) -> None:
    content = [
        {"type": "text", "text": "What is this?"},
        {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}},
    ]
    _answer(up, "cohere_chat.json")
    client.chat.completions.create(
        model="command",
        messages=[{"role": "user", "content": content}],
    )
    assert up.requests[0].json["messages"] == [{"role": "user", "content": content}]


@pytest.mark.matrix("cohere", "errors")
def test_errors_are_mapped(client: openai.OpenAI, up: FakeUpstream) -> None:
    limited = {"message": "You are using a Trial key, which is limited to 10 API calls / minute."}
    up.behave("status", status=429, json=limited, headers={"retry-after": "7"}, times=1)
    with pytest.raises(openai.RateLimitError) as rate:
        client.chat.completions.create(model="command", messages=[{"role": "user", "content": "x"}])
    assert rate.value.message.startswith("Error code: 429")
    assert "cohereException - You are using a Trial key" in str(rate.value)
    assert rate.value.response.headers["retry-after"] == "7"

    too_long = {"message": "too many tokens: total number of tokens exceeds the limit"}
    up.behave("status", status=400, json=too_long, times=1)
    with pytest.raises(openai.BadRequestError) as bad:
        client.chat.completions.create(model="command", messages=[{"role": "user", "content": "x"}])
    assert bad.value.code == "context_length_exceeded"

    up.behave("status", status=500, json={"message": "internal failure"}, times=1)
    with pytest.raises(openai.InternalServerError) as server:
        client.chat.completions.create(model="command", messages=[{"role": "user", "content": "x"}])
    assert server.value.status_code == 502

    up.behave("status", status=200, json={"message": {"content": 5}}, times=1)
    with pytest.raises(openai.InternalServerError, match="invalid response from cohere"):
        client.chat.completions.create(model="command", messages=[{"role": "user", "content": "x"}])


@pytest.mark.matrix("cohere", "drop_params")
def test_unsupported_params_through_the_gateway(client: openai.OpenAI, up: FakeUpstream) -> None:
    with pytest.raises(openai.BadRequestError, match="cohere does not support parameters"):
        client.chat.completions.create(
            model="command", messages=[{"role": "user", "content": "x"}], logit_bias={"1": 2}
        )
    assert up.requests == []
    _answer(up, "cohere_chat.json")
    client.chat.completions.create(
        model="command",
        messages=[{"role": "user", "content": "x"}],
        logit_bias={"1": 2},
        extra_body={"drop_params": True},
    )
    assert "logit_bias" not in up.requests[0].json


@pytest.mark.matrix("cohere", "embeddings")
def test_embeddings(client: openai.OpenAI, up: FakeUpstream) -> None:
    expected = json.loads(fixture("cohere_embed.json"))["embeddings"]["float"]
    # The SDK asks for base64 (and decodes it) unless an encoding is given.
    for extra in ({}, {"encoding_format": "float"}):
        _answer(up, "cohere_embed.json")
        result = client.embeddings.create(
            model="embed",
            input=["hello", "world"],
            extra_body={"input_type": "search_query"},
            **extra,
        )
        assert [d.embedding for d in result.data] == [pytest.approx(v, rel=1e-6) for v in expected]
        assert result.usage.prompt_tokens == 2
    assert up.requests[0].json.get("encoding_format") is None  # answered by tianji
    seen = up.requests[1]
    assert seen.path == "/v2/embed"
    assert seen.json == {
        "model": "embed-v4.0",
        "texts": ["hello", "world"],
        "input_type": "search_query",
        "embedding_types": ["float"],
    }


@pytest.mark.matrix("cohere", "rerank")
def test_rerank_is_normalised(gw: Gateway, up: FakeUpstream) -> None:
    up.reset()
    _answer(up, "cohere_rerank.json")
    documents = [
        "Carson City is in Nevada.",
        {"text": "Saipan is in the Pacific."},
        "DC is the capital.",
    ]
    response = httpx.post(
        gw.v1 + "/rerank",
        headers={"authorization": f"Bearer {MASTER_KEY}"},
        json={
            "model": "rerank",
            "query": "capital of the US?",
            "documents": documents,
            "top_n": 2,
            "return_documents": True,
        },
        timeout=5,
    )
    assert response.status_code == 200, response.text
    assert response.json() == {
        "id": "07734bd2-2473-4f07-94e1-0d9f0e6843cf",
        "results": [
            {"index": 2, "relevance_score": 0.9871, "document": {"text": "DC is the capital."}},
            {"index": 0, "relevance_score": 0.0311, "document": {"text": documents[0]}},
        ],
        "meta": {"api_version": {"version": "2"}, "billed_units": {"search_units": 1}},
    }
    assert up.requests[0].path == "/v2/rerank"
    assert up.requests[0].json == {
        "model": "rerank-v3.5",
        "query": "capital of the US?",
        "documents": [documents[0], "Saipan is in the Pacific.", documents[2]],
        "top_n": 2,
    }
