"""The anthropic SDK through tianji's /v1/messages to an OpenAI-compatible upstream:
the request translated to OpenAI chat, the answer (and stream) translated back."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anthropic
import httpx
import pytest

from tests.api.native.native_support import SSE, config, providers_file
from tests.conftest import MASTER_KEY, Gateway, running_gateway
from tests.support.fake_upstream import FakeUpstream

pytestmark = pytest.mark.timeout(30)

WEATHER_TOOL = {
    "name": "get_weather",
    "description": "Current weather for a city",
    "input_schema": {
        "type": "object",
        "properties": {"city": {"type": "string"}},
        "required": ["city"],
    },
}


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


def sent(up: FakeUpstream, index: int = -1) -> dict[str, Any]:
    request = up.requests[index]
    assert request.path == "/v1/chat/completions"
    assert isinstance(request.json, dict)
    return request.json


def openai_sse(chunks: list[dict[str, Any]]) -> bytes:
    base = {"id": "chatcmpl-9", "object": "chat.completion.chunk", "created": 1, "model": "m"}
    frames = [f"data: {json.dumps({**base, **c})}\n\n" for c in chunks]
    return ("".join(frames) + "data: [DONE]\n\n").encode()


@pytest.mark.matrix("anthropic_inbound", "chat")
@pytest.mark.matrix("anthropic_inbound", "usage")
def test_plain_message(client: anthropic.Anthropic, upstream: FakeUpstream) -> None:
    message = client.messages.create(
        model="gpt-4o-mini",
        max_tokens=100,
        system="Be brief.",
        messages=[{"role": "user", "content": "hello there"}],
        stop_sequences=["END"],
        extra_body={"temperature": 0.2},  # this SDK version has no temperature argument
        metadata={"user_id": "user-7"},
    )
    assert message.type == "message"
    assert message.role == "assistant"
    assert [block.type for block in message.content] == ["text"]
    assert message.content[0].text == "echo: hello there"  # type: ignore[union-attr]
    assert message.stop_reason == "end_turn"
    # FakeUpstream counts words: "Be brief." + "hello there" = 4 prompt, "echo: hello there" = 3.
    assert (message.usage.input_tokens, message.usage.output_tokens) == (4, 3)
    body = sent(upstream)
    assert body["model"] == "gpt-4o-mini-upstream"
    assert body["messages"] == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "hello there"},
    ]
    assert body["max_tokens"] == 100
    assert body["temperature"] == 0.2
    assert body["stop"] == ["END"]
    assert body["user"] == "user-7"
    assert "authorization" in upstream.requests[-1].headers
    assert MASTER_KEY not in json.dumps(upstream.requests[-1].headers)


@pytest.mark.matrix("anthropic_inbound", "stream")
def test_streamed_answer_reassembled_by_the_sdk(
    client: anthropic.Anthropic, upstream: FakeUpstream
) -> None:
    with client.messages.stream(
        model="gpt-4o-mini",
        max_tokens=50,
        messages=[{"role": "user", "content": "one two three"}],
    ) as stream:
        pieces = list(stream.text_stream)
        final = stream.get_final_message()
    assert len(pieces) > 1  # incremental deltas, not one block at the end
    assert "".join(pieces) == "echo: one two three"
    assert final.content[0].text == "echo: one two three"  # type: ignore[union-attr]
    assert final.stop_reason == "end_turn"
    assert (final.usage.input_tokens, final.usage.output_tokens) == (3, 4)
    body = sent(upstream)
    assert body["stream"] is True
    assert body["stream_options"] == {"include_usage": True}


@pytest.mark.matrix("anthropic_inbound", "stream")
def test_raw_stream_events_are_anthropic_sse(gateway: Gateway) -> None:
    payload = {
        "model": "gpt-4o-mini",
        "max_tokens": 20,
        "stream": True,
        "messages": [{"role": "user", "content": "hi"}],
    }
    headers = {"x-api-key": MASTER_KEY, "anthropic-version": "2023-06-01"}
    with httpx.stream("POST", gateway.url + "/v1/messages", json=payload, headers=headers) as r:
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("text/event-stream")
        text = r.read().decode()
    kinds = [line[len("event: ") :] for line in text.splitlines() if line.startswith("event: ")]
    assert kinds[0] == "message_start"
    assert kinds[1] == "content_block_start"
    assert kinds[-3:] == ["content_block_stop", "message_delta", "message_stop"]
    assert set(kinds[2:-3]) == {"content_block_delta"}


@pytest.mark.matrix("anthropic_inbound", "tools")
@pytest.mark.matrix("anthropic_inbound", "tool_result")
def test_tool_use_round_trip(client: anthropic.Anthropic, upstream: FakeUpstream) -> None:
    call = {
        "id": "call_abc",
        "type": "function",
        "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'},
    }
    reply = {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "created": 1,
        "model": "gpt-4o-mini-upstream",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": None, "tool_calls": [call]},
                "finish_reason": "tool_calls",
            }
        ],
        "usage": {"prompt_tokens": 20, "completion_tokens": 5, "total_tokens": 25},
    }
    upstream.behave("status", status=200, json=reply, times=1)
    question = {"role": "user", "content": "Weather in Paris?"}
    first = client.messages.create(
        model="gpt-4o-mini",
        max_tokens=100,
        tools=[WEATHER_TOOL],  # type: ignore[list-item]
        tool_choice={"type": "auto"},
        messages=[question],  # type: ignore[list-item]
    )
    assert first.stop_reason == "tool_use"
    (tool_use,) = first.content
    assert tool_use.type == "tool_use"
    assert (tool_use.id, tool_use.name, tool_use.input) == (
        "call_abc",
        "get_weather",
        {"city": "Paris"},
    )
    body = sent(upstream)
    assert body["tools"] == [
        {
            "type": "function",
            "function": {
                "name": "get_weather",
                "parameters": WEATHER_TOOL["input_schema"],
                "description": "Current weather for a city",
            },
        }
    ]
    assert body["tool_choice"] == "auto"

    second = client.messages.create(
        model="gpt-4o-mini",
        max_tokens=100,
        tools=[WEATHER_TOOL],  # type: ignore[list-item]
        messages=[
            question,  # type: ignore[list-item]
            {"role": "assistant", "content": first.content},  # type: ignore[dict-item]
            {
                "role": "user",
                "content": [
                    {"type": "tool_result", "tool_use_id": "call_abc", "content": "18 C, sunny"},
                    {"type": "text", "text": "thanks, summarise"},
                ],
            },
        ],
    )
    assert second.content[0].text == "echo: thanks, summarise"  # type: ignore[union-attr]
    messages = sent(upstream)["messages"]
    assert messages[1] == {
        "role": "assistant",
        "content": None,
        "tool_calls": [
            {
                "id": "call_abc",
                "type": "function",
                "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'},
            }
        ],
    }
    assert messages[2] == {"role": "tool", "tool_call_id": "call_abc", "content": "18 C, sunny"}
    assert messages[3] == {"role": "user", "content": "thanks, summarise"}


@pytest.mark.matrix("anthropic_inbound", "tool_stream")
def test_streamed_tool_use_reassembled_by_the_sdk(
    client: anthropic.Anthropic, upstream: FakeUpstream
) -> None:
    def tool_delta(**function: Any) -> dict[str, Any]:
        call: dict[str, Any] = {"index": 0, "function": function}
        if "name" in function:
            call.update(id="call_s1", type="function")
        return {"choices": [{"index": 0, "delta": {"tool_calls": [call]}, "finish_reason": None}]}

    chunks = [
        {"choices": [{"index": 0, "delta": {"role": "assistant", "content": "Let me check."}}]},
        tool_delta(name="get_weather", arguments=""),
        tool_delta(arguments='{"ci'),
        tool_delta(arguments='ty": "Os'),
        tool_delta(arguments='lo"}'),
        {"choices": [{"index": 0, "delta": {}, "finish_reason": "tool_calls"}]},
        {"choices": [], "usage": {"prompt_tokens": 30, "completion_tokens": 9, "total_tokens": 39}},
    ]
    upstream.behave("status", status=200, body=openai_sse(chunks), content_type=SSE, times=1)
    with client.messages.stream(
        model="gpt-4o-mini",
        max_tokens=100,
        tools=[WEATHER_TOOL],  # type: ignore[list-item]
        messages=[{"role": "user", "content": "Weather in Oslo?"}],
    ) as stream:
        partials = [e.partial_json for e in stream if e.type == "input_json"]
        final = stream.get_final_message()
    assert partials == ['{"ci', 'ty": "Os', 'lo"}']
    assert [b.type for b in final.content] == ["text", "tool_use"]
    assert final.content[0].text == "Let me check."  # type: ignore[union-attr]
    tool_use = final.content[1]
    assert tool_use.type == "tool_use"
    assert (tool_use.id, tool_use.name, tool_use.input) == (
        "call_s1",
        "get_weather",
        {"city": "Oslo"},
    )
    assert final.stop_reason == "tool_use"
    assert (final.usage.input_tokens, final.usage.output_tokens) == (30, 9)


@pytest.mark.matrix("anthropic_inbound", "vision")
def test_image_blocks_become_image_url_parts(
    client: anthropic.Anthropic, upstream: FakeUpstream
) -> None:
    client.messages.create(
        model="gpt-4o-mini",
        max_tokens=10,
        messages=[
            {
                "role": "user",
                "content": [
                    {
                        "type": "image",
                        "source": {
                            "type": "base64",
                            "media_type": "image/png",
                            "data": "iVBORw0KGgo=",
                        },
                    },
                    {
                        "type": "image",
                        "source": {"type": "url", "url": "https://example.com/a.jpg"},
                    },
                    {"type": "text", "text": "describe both"},
                ],
            }
        ],
    )
    (message,) = sent(upstream)["messages"]
    assert message["content"] == [
        {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}},
        {"type": "image_url", "image_url": {"url": "https://example.com/a.jpg"}},
        {"type": "text", "text": "describe both"},
    ]


@pytest.mark.matrix("anthropic_inbound", "errors")
def test_errors_use_anthropic_envelope(client: anthropic.Anthropic, upstream: FakeUpstream) -> None:
    with pytest.raises(anthropic.BadRequestError) as unknown:
        client.messages.create(
            model="no-such-model", max_tokens=5, messages=[{"role": "user", "content": "x"}]
        )
    assert unknown.value.body == {
        "type": "error",
        "error": {
            "type": "invalid_request_error",
            "message": unknown.value.body["error"]["message"],  # type: ignore[index]
        },
    }
    assert "Invalid model name passed in model=no-such-model" in str(unknown.value)

    upstream.behave("status", status=429, headers={"retry-after": "7"}, times=1)
    with pytest.raises(anthropic.RateLimitError) as limited:
        client.messages.create(
            model="gpt-4o-mini", max_tokens=5, messages=[{"role": "user", "content": "x"}]
        )
    assert limited.value.body["error"]["type"] == "rate_limit_error"  # type: ignore[index]
    assert limited.value.response.headers["retry-after"] == "7"


def test_missing_max_tokens_is_a_400_naming_the_field(gateway: Gateway) -> None:
    response = httpx.post(
        gateway.url + "/v1/messages",
        headers={"x-api-key": MASTER_KEY},
        json={"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "x"}]},
    )
    assert response.status_code == 400
    error = response.json()
    assert error["type"] == "error"
    assert error["error"]["type"] == "invalid_request_error"
    assert "max_tokens" in error["error"]["message"]


def test_count_tokens_is_local_for_non_anthropic_models(
    gateway: Gateway, upstream: FakeUpstream
) -> None:
    client = anthropic.Anthropic(base_url=gateway.url, api_key=MASTER_KEY, max_retries=0)
    short = client.messages.count_tokens(
        model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}]
    )
    long = client.messages.count_tokens(
        model="gpt-4o-mini",
        system="You are a careful assistant.",
        messages=[{"role": "user", "content": "hi " * 200}],
    )
    assert 0 < short.input_tokens < long.input_tokens
    assert long.input_tokens > 200
    assert upstream.requests == []  # counted here, nothing sent upstream
    aliased = httpx.post(
        gateway.url + "/messages/count_tokens",
        headers={"x-api-key": MASTER_KEY},
        json={"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]},
    )
    assert aliased.json() == {"input_tokens": short.input_tokens}


def test_bare_messages_alias(gateway: Gateway, upstream: FakeUpstream) -> None:
    response = httpx.post(
        gateway.url + "/messages",
        headers={"x-api-key": MASTER_KEY},
        json={
            "model": "gpt-4o-mini",
            "max_tokens": 5,
            "messages": [{"role": "user", "content": "yo"}],
        },
    )
    assert response.status_code == 200
    assert response.json()["content"] == [{"type": "text", "text": "echo: yo"}]


def test_answers_carry_the_gateway_headers(gateway: Gateway) -> None:
    body = {
        "model": "gpt-4o-mini",
        "max_tokens": 5,
        "messages": [{"role": "user", "content": "hi"}],
    }
    ids = set()
    for _ in range(2):
        response = httpx.post(
            gateway.url + "/v1/messages", json=body, headers={"x-api-key": MASTER_KEY}
        )
        assert response.status_code == 200
        assert response.headers["x-litellm-model-group"] == "gpt-4o-mini"
        ids.add(response.headers["x-litellm-call-id"])
    assert len(ids) == 2
