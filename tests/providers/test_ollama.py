"""Ollama's native API: request translation, NDJSON streams cut anywhere, and the
gateway end to end (openai SDK in front, a FakeUpstream speaking Ollama behind)."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import httpx
import msgspec
import openai
import pytest

from tests.conftest import MASTER_KEY, Gateway, running_gateway
from tests.support.fake_upstream import FakeUpstream
from tests.support.providers import fixture, sse_frames, translate_in_steps
from tianji.compile.pipeline import build
from tianji.errors import InvalidRequest, TianjiError, UnsupportedParams
from tianji.providers import Call, adapter_for
from tianji.providers.ndjson import NDJSONSplitter

pytestmark = pytest.mark.timeout(30)

CALL_ID = re.compile(r"^call_[0-9a-f]{32}$")
NDJSON = "application/x-ndjson"
WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_current_weather",
        "parameters": {"type": "object", "properties": {"location": {"type": "string"}}},
    },
}


def frames(sse: bytes) -> list[Any]:
    """`data:` payloads without the fields a translator makes up (id, created, call ids)."""
    out = sse_frames(sse, drop=("id", "created"))
    for payload in out:
        if isinstance(payload, dict):
            for choice in payload["choices"]:
                for call in (choice.get("delta") or {}).get("tool_calls") or ():
                    assert CALL_ID.match(call.pop("id"))
    return out


# --------------------------------------------------------------------------- unit


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Any:
    config = tmp_path_factory.mktemp("ollama") / "c.yaml"
    config.write_text(
        "model_list:\n"
        "  - model_name: m\n    litellm_params: {model: ollama/qwen3}\n"
        "  - model_name: c\n    litellm_params: {model: ollama_chat/llama3.2, api_key: ok}\n"
    )
    result, problems = build(config, env={})
    assert result is not None, [p.render() for p in problems]
    return result


def _call(built: Any, body: dict[str, Any], operation: str = "chat", **kw: Any) -> Call:
    deployment = built.gateway.models.groups[kw.pop("group", "m")].deployments[0]
    params = built.gateway.providers["openai"].params.get(operation, frozenset())
    return Call(operation, deployment, deployment.model, body=body, openai_params=params, **kw)


def _sent(built: Any, body: dict[str, Any], **kw: Any) -> dict[str, Any]:
    request = adapter_for("ollama").build_request(_call(built, body, **kw))
    return msgspec.json.decode(request.body)


def test_chat_request_translation(built: Any) -> None:
    body = {
        "model": "m",
        "messages": [
            {"role": "developer", "content": "be brief"},
            {"role": "user", "content": "hi"},
        ],
        "temperature": 0.2,
        "top_p": 0.8,
        "max_tokens": 64,
        "stop": "\n\n",
        "seed": 3,
        "num_ctx": 8192,
        "keep_alive": "5m",
        "reasoning_effort": "low",
    }
    request = adapter_for("ollama").build_request(_call(built, body))
    assert request.url == "http://localhost:11434/api/chat"
    assert not any(name == "authorization" for name, _ in request.headers)
    assert msgspec.json.decode(request.body) == {
        "model": "qwen3",
        "messages": [{"role": "system", "content": "be brief"}, {"role": "user", "content": "hi"}],
        "keep_alive": "5m",
        "think": True,
        "stream": False,  # Ollama streams unless told not to
        "options": {"num_predict": 64, "stop": ["\n\n"], "temperature": 0.2, "top_p": 0.8,
                    "seed": 3, "num_ctx": 8192},
    }  # fmt: skip


def test_ollama_chat_alias_and_optional_key(built: Any) -> None:
    request = adapter_for("ollama").build_request(_call(built, {"messages": []}, group="c"))
    assert request.url == "http://localhost:11434/api/chat"
    assert ("authorization", "Bearer ok") in request.headers


def test_tool_history_is_sent_the_ollama_way(built: Any) -> None:
    assistant = {
        "role": "assistant",
        "content": None,
        "tool_calls": [
            {
                "id": "call_1",
                "type": "function",
                "function": {"name": "get_current_weather", "arguments": '{"location": "Oslo"}'},
            }
        ],
    }
    sent = _sent(
        built,
        {
            "messages": [
                {"role": "user", "content": "weather?"},
                assistant,
                {"role": "tool", "tool_call_id": "call_1", "content": "-3 C"},
            ],
            "tools": [WEATHER_TOOL],
            "tool_choice": "auto",
        },
    )
    assert sent["messages"][1:] == [
        {
            "role": "assistant",
            "content": "",
            "tool_calls": [
                {"function": {"name": "get_current_weather", "arguments": {"location": "Oslo"}}}
            ],
        },
        {"role": "tool", "content": "-3 C", "tool_name": "get_current_weather"},
    ]
    assert sent["tools"] == [WEATHER_TOOL]
    assert "tools" not in _sent(
        built, {"messages": [], "tools": [WEATHER_TOOL], "tool_choice": "none"}
    )


def test_unsupported_and_unsendable(built: Any) -> None:
    with pytest.raises(UnsupportedParams, match=r"ollama does not support parameters: \['n'\]"):
        _sent(built, {"messages": [], "n": 2})
    assert "n" not in _sent(built, {"messages": [], "n": 2}, drop_params=True)
    remote = [{"type": "image_url", "image_url": {"url": "https://example.com/cat.png"}}]
    with pytest.raises(InvalidRequest, match="base64 data: URLs"):
        _sent(built, {"messages": [{"role": "user", "content": remote}]})


def test_ndjson_splitter_joins_lines_cut_anywhere() -> None:
    data = b'{"a": "\xc3\xa9"}\r\n\n{"b": 2}\n{"c": 3}'
    splitter = NDJSONSplitter("ollama")
    values = [v for i in range(len(data)) for v in splitter.feed(data[i : i + 1])]
    assert values + splitter.close() == [{"a": "é"}, {"b": 2}, {"c": 3}]
    with pytest.raises(TianjiError, match="not JSON"):
        NDJSONSplitter("ollama").feed(b"{oops\n")


@pytest.mark.parametrize(
    ("name", "operation"),
    [
        ("ollama_chat_stream.ndjson", "chat"),
        ("ollama_tool_stream.ndjson", "chat"),
        ("ollama_generate_stream.ndjson", "text_completion"),
    ],
)
def test_stream_cut_anywhere_gives_the_same_chunks(built: Any, name: str, operation: str) -> None:
    body = {"stream": True, "stream_options": {"include_usage": True}}
    call = _call(built, body, operation, stream=True)
    data = fixture(name)
    whole = frames(translate_in_steps("ollama", call, data, len(data)))
    assert frames(translate_in_steps("ollama", call, data, 1)) == whole
    assert whole[-1] == "[DONE]" and whole[-2]["usage"]["completion_tokens"] > 0


def test_error_line_mid_stream(built: Any) -> None:
    data = fixture("ollama_chat_stream.ndjson").split(b"\n")[0] + b'\n{"error":"out of memory"}\n'
    with pytest.raises(TianjiError, match="ollamaException - out of memory"):
        translate_in_steps("ollama", _call(built, {}, stream=True), data, 5)


# --------------------------------------------------------------------------- end to end


@pytest.fixture(scope="module")
def up() -> Iterator[FakeUpstream]:
    with FakeUpstream() as upstream:
        yield upstream


@pytest.fixture(scope="module")
def gw(up: FakeUpstream, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    config = f"""
model_list:
  - model_name: llama
    litellm_params: {{model: ollama/llama3.2}}
  - model_name: minilm
    litellm_params: {{model: ollama/all-minilm}}
general_settings: {{master_key: {MASTER_KEY}}}
"""
    env = {"OLLAMA_API_BASE": up.root_url}
    with running_gateway(config, tmp_path_factory.mktemp("gw"), env=env) as gateway:
        yield gateway


@pytest.fixture
def client(gw: Gateway, up: FakeUpstream) -> openai.OpenAI:
    up.reset()
    return openai.OpenAI(base_url=gw.v1, api_key=MASTER_KEY, max_retries=0)


def _answer(up: FakeUpstream, name: str) -> None:
    kind = NDJSON if name.endswith(".ndjson") else "application/json; charset=utf-8"
    up.behave("status", status=200, body=fixture(name), content_type=kind, times=1)


USER = [{"role": "user", "content": "hallo"}]


@pytest.mark.matrix("ollama", "chat")
@pytest.mark.matrix("ollama", "usage")
def test_plain_chat(client: openai.OpenAI, up: FakeUpstream) -> None:
    _answer(up, "ollama_chat.json")
    reply = client.chat.completions.create(model="llama", messages=USER)
    assert reply.choices[0].message.content == "Grüß dich 👋!"
    assert reply.choices[0].finish_reason == "stop"
    assert reply.usage is not None
    assert (reply.usage.prompt_tokens, reply.usage.completion_tokens) == (26, 7)
    assert up.requests[0].path == "/api/chat"
    assert up.requests[0].json == {"model": "llama3.2", "messages": USER, "stream": False}


@pytest.mark.matrix("ollama", "stream")
@pytest.mark.matrix("ollama", "reasoning")
def test_streamed_chat(client: openai.OpenAI, up: FakeUpstream) -> None:
    _answer(up, "ollama_chat_stream.ndjson")
    chunks = list(
        client.chat.completions.create(
            model="llama",
            messages=USER,
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    deltas = [c.choices[0].delta for c in chunks if c.choices]
    assert "".join(d.content or "" for d in deltas) == "Grüß dich 👋!"
    thinking = "".join(getattr(d, "reasoning_content", None) or "" for d in deltas)
    assert thinking == "Okay, the user greets."
    assert chunks[-1].usage is not None and chunks[-1].usage.total_tokens == 12 + 23
    assert up.requests[0].json["stream"] is True


def test_translated_stream_is_served_as_sse(gw: Gateway, up: FakeUpstream) -> None:
    """Ollama streams NDJSON; the client must get text/event-stream all the same."""
    up.reset()
    _answer(up, "ollama_chat_stream.ndjson")
    body = {"model": "llama", "messages": USER, "stream": True}
    headers = {"authorization": f"Bearer {MASTER_KEY}"}
    response = httpx.post(gw.v1 + "/chat/completions", json=body, headers=headers, timeout=10)
    assert response.headers["content-type"].startswith("text/event-stream")
    assert response.text.endswith("data: [DONE]\n\n")


@pytest.mark.matrix("ollama", "tools")
@pytest.mark.matrix("ollama", "tool_result")
def test_tool_call_round_trip(client: openai.OpenAI, up: FakeUpstream) -> None:
    _answer(up, "ollama_tool_call.json")
    messages: list[Any] = [{"role": "user", "content": "Weather in Toronto?"}]
    first = client.chat.completions.create(model="llama", messages=messages, tools=[WEATHER_TOOL])
    assert first.choices[0].finish_reason == "tool_calls"
    call = first.choices[0].message.tool_calls[0]
    assert CALL_ID.match(call.id)
    assert json.loads(call.function.arguments) == {"format": "celsius", "location": "Toronto"}

    _answer(up, "ollama_chat.json")
    messages += [
        first.choices[0].message.model_dump(exclude_none=True),
        {"role": "tool", "tool_call_id": call.id, "content": "12 C"},
    ]
    client.chat.completions.create(model="llama", messages=messages, tools=[WEATHER_TOOL])
    sent = up.requests[1].json["messages"]
    assert sent[1]["tool_calls"] == [
        {
            "function": {
                "name": "get_current_weather",
                "arguments": {"format": "celsius", "location": "Toronto"},
            }
        }
    ]
    assert sent[2] == {"role": "tool", "content": "12 C", "tool_name": "get_current_weather"}


@pytest.mark.matrix("ollama", "tool_stream")
def test_streamed_tool_calls(client: openai.OpenAI, up: FakeUpstream) -> None:
    _answer(up, "ollama_tool_stream.ndjson")
    stream = client.chat.completions.create(
        model="llama",
        messages=USER,
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
    assert sorted(calls) == [0, 1]
    assert all(CALL_ID.match(c["id"]) for c in calls.values())
    assert calls[0]["id"] != calls[1]["id"]
    assert [json.loads(c["arguments"])["location"] for c in calls.values()] == ["Toronto", "Zürich"]


@pytest.mark.matrix("ollama", "json_mode")
def test_json_mode(client: openai.OpenAI, up: FakeUpstream) -> None:
    schema = {"type": "object", "properties": {"city": {"type": "string"}}}
    _answer(up, "ollama_chat.json")
    client.chat.completions.create(
        model="llama",
        messages=USER,
        response_format={"type": "json_object"},
    )
    _answer(up, "ollama_chat.json")
    client.chat.completions.create(
        model="llama",
        messages=USER,
        response_format={"type": "json_schema", "json_schema": {"name": "c", "schema": schema}},
    )
    assert [r.json["format"] for r in up.requests] == ["json", schema]


@pytest.mark.matrix("ollama", "vision")
def test_image_input(client: openai.OpenAI, up: FakeUpstream) -> None:
    content = [
        {"type": "text", "text": "What is this?"},
        {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}},
    ]
    _answer(up, "ollama_chat.json")
    client.chat.completions.create(model="llama", messages=[{"role": "user", "content": content}])
    assert up.requests[0].json["messages"] == [
        {"role": "user", "content": "What is this?", "images": ["iVBORw0KGgo="]}
    ]


@pytest.mark.matrix("ollama", "errors")
def test_errors_are_mapped(client: openai.OpenAI, up: FakeUpstream) -> None:
    missing = {"error": 'model "llama3.2" not found, try pulling it first'}
    up.behave("status", status=404, json=missing, times=1)
    with pytest.raises(openai.NotFoundError) as info:
        client.chat.completions.create(model="llama", messages=USER)
    assert 'ollamaException - model "llama3.2" not found' in str(info.value)

    up.behave("status", status=503, json={"error": "server busy"}, times=1)
    with pytest.raises(openai.InternalServerError) as busy:
        client.chat.completions.create(model="llama", messages=USER)
    assert busy.value.status_code == 503


@pytest.mark.matrix("ollama", "drop_params")
def test_unsupported_params_through_the_gateway(client: openai.OpenAI, up: FakeUpstream) -> None:
    with pytest.raises(openai.BadRequestError, match="ollama does not support parameters"):
        client.chat.completions.create(model="llama", messages=USER, logprobs=True)
    assert up.requests == []


@pytest.mark.matrix("ollama", "embeddings")
def test_embeddings(client: openai.OpenAI, up: FakeUpstream) -> None:
    _answer(up, "ollama_embed.json")
    result = client.embeddings.create(model="minilm", input=["why", "sky"])
    expected = json.loads(fixture("ollama_embed.json"))["embeddings"]
    assert [d.embedding for d in result.data] == [pytest.approx(v, rel=1e-6) for v in expected]
    assert result.usage.prompt_tokens == 8
    assert up.requests[0].path == "/api/embed"
    assert up.requests[0].json == {"model": "all-minilm", "input": ["why", "sky"]}


def test_completions_through_generate(client: openai.OpenAI, up: FakeUpstream) -> None:
    _answer(up, "ollama_generate_stream.ndjson")
    stream = client.completions.create(model="llama", prompt="def add", max_tokens=5, stream=True)
    chunks = list(stream)
    assert "".join(c.choices[0].text for c in chunks) == "def add(a, b):"
    assert chunks[-1].choices[0].finish_reason == "length"
    assert up.requests[0].path == "/api/generate"
    assert up.requests[0].json == {
        "model": "llama3.2",
        "prompt": "def add",
        "stream": True,
        "options": {"num_predict": 5},
    }
