"""The anthropic adapter end to end: the openai SDK -> tianji -> a FakeUpstream that
speaks the Anthropic Messages API (JSON bodies and SSE fixtures)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

from tests.conftest import MASTER_KEY, Gateway, running_gateway
from tests.providers.anthropic_sdk_types import check_request_type
from tests.support.fake_upstream import FakeUpstream

pytestmark = pytest.mark.timeout(30)

FIXTURES = Path(__file__).parent / "fixtures"
SSE = "text/event-stream; charset=utf-8"
ASK = [{"role": "user", "content": "What's the weather in San Francisco?"}]
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


def fixture_json(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text())


def fixture_bytes(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def config(up: FakeUpstream) -> str:
    return f"""
model_list:
  - model_name: claude
    litellm_params:
      model: anthropic/claude-sonnet-4-5
      api_base: {up.root_url}
      api_key: sk-ant-api03-upstream
      timeout: 5
      stream_timeout: 5
general_settings:
  master_key: {MASTER_KEY}
"""


@pytest.fixture
def upstream() -> Iterator[FakeUpstream]:
    with FakeUpstream() as up:
        yield up


@pytest.fixture
def gateway(upstream: FakeUpstream, tmp_path: Path) -> Iterator[Gateway]:
    with running_gateway(config(upstream), tmp_path) as gw:
        yield gw


@pytest.fixture
def client(gateway: Gateway) -> openai.OpenAI:
    return openai.OpenAI(base_url=gateway.v1, api_key=MASTER_KEY, max_retries=0, timeout=10)


def answer(up: FakeUpstream, name: str, **kw: Any) -> None:
    up.behave("status", status=200, json=fixture_json(f"anthropic_message_{name}.json"), **kw)


def stream_answer(up: FakeUpstream, name: str) -> None:
    up.behave("status", status=200, body=fixture_bytes(f"anthropic_{name}.sse"), content_type=SSE)


def sent(up: FakeUpstream, index: int = -1) -> dict[str, Any]:
    request = up.requests[index]
    assert request.path == "/v1/messages"
    body: dict[str, Any] = request.json
    check_request_type(body)
    return body


def sse_frames(text: str) -> list[str]:
    return [f.removeprefix("data: ") for f in text.split("\n\n") if f.startswith("data: ")]


@pytest.mark.matrix("anthropic", "chat")
def test_plain_chat(client: openai.OpenAI, upstream: FakeUpstream) -> None:
    answer(upstream, "text")
    reply = client.chat.completions.create(
        model="claude", messages=[{"role": "system", "content": "Be brief."}, *ASK]
    )
    assert reply.choices[0].message.content == "Hi! My name is Claude."
    assert reply.choices[0].finish_reason == "stop"
    assert reply.id == "msg_013Zva2CMHLNnXjNJJKqJ2EF"
    request = upstream.requests[-1]
    assert request.headers["x-api-key"] == "sk-ant-api03-upstream"
    assert request.headers["anthropic-version"] == "2023-06-01"
    assert "authorization" not in request.headers
    body = sent(upstream)
    assert body == {
        "model": "claude-sonnet-4-5",
        "system": "Be brief.",
        "messages": [{"role": "user", "content": [{"type": "text", "text": ASK[0]["content"]}]}],
        "max_tokens": 4096,
    }


@pytest.mark.matrix("anthropic", "usage")
@pytest.mark.matrix("anthropic", "cache_usage")
def test_usage_with_cache_tokens(client: openai.OpenAI, upstream: FakeUpstream) -> None:
    answer(upstream, "text")
    usage = client.chat.completions.create(model="claude", messages=ASK).usage
    assert usage is not None
    assert (usage.prompt_tokens, usage.completion_tokens) == (2095 + 1800 + 512, 503)
    assert usage.total_tokens == 2095 + 1800 + 512 + 503
    assert usage.prompt_tokens_details is not None
    assert usage.prompt_tokens_details.cached_tokens == 1800
    extra = usage.model_extra or {}
    assert extra["cache_read_input_tokens"] == 1800
    assert extra["cache_creation_input_tokens"] == 512


@pytest.mark.matrix("anthropic", "stream")
def test_streamed_chat(client: openai.OpenAI, upstream: FakeUpstream) -> None:
    stream_answer(upstream, "text")
    stream = client.chat.completions.create(
        model="claude", messages=ASK, stream=True, stream_options={"include_usage": True}
    )
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "Bonjour le monde — 你好世界 👋"
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens == 12
    assert sent(upstream)["stream"] is True and "stream_options" not in sent(upstream)


@pytest.mark.matrix("anthropic", "tools")
@pytest.mark.matrix("anthropic", "tool_result")
def test_tool_call_round_trip(client: openai.OpenAI, upstream: FakeUpstream) -> None:
    answer(upstream, "tool_use", times=1)
    answer(upstream, "answer", times=1)
    first = client.chat.completions.create(model="claude", messages=ASK, tools=[WEATHER_TOOL])
    choice = first.choices[0]
    assert choice.finish_reason == "tool_calls"
    [call] = choice.message.tool_calls or []
    assert call.id == "toolu_01A09q90qw90lq917835lq9"
    assert call.function.name == "get_weather"  # type: ignore[union-attr]
    assert sent(upstream, 0)["tools"] == [
        {
            "name": "get_weather",
            "description": "Current weather",
            "input_schema": WEATHER_TOOL["function"]["parameters"],  # type: ignore[index]
        }
    ]
    assistant = choice.message.model_dump(exclude_none=True)
    tool = {"role": "tool", "tool_call_id": call.id, "content": "15C, foggy"}
    second = client.chat.completions.create(
        model="claude",
        messages=[*ASK, assistant, tool],
        tools=[WEATHER_TOOL],  # type: ignore[list-item]
    )
    assert second.choices[0].message.content == (
        "It is 15 degrees Celsius and foggy in San Francisco."
    )
    messages = sent(upstream, 1)["messages"]
    assert [m["role"] for m in messages] == ["user", "assistant", "user"]
    assert messages[1]["content"] == [
        {"type": "text", "text": "I'll check the current weather in San Francisco for you."},
        {
            "type": "tool_use",
            "id": "toolu_01A09q90qw90lq917835lq9",
            "name": "get_weather",
            "input": {"location": "San Francisco, CA", "unit": "celsius"},
        },
    ]
    assert messages[2]["content"] == [
        {
            "type": "tool_result",
            "tool_use_id": "toolu_01A09q90qw90lq917835lq9",
            "content": "15C, foggy",
        }
    ]


@pytest.mark.matrix("anthropic", "tool_stream")
def test_streamed_tool_calls_reassembled_by_the_sdk(
    client: openai.OpenAI, upstream: FakeUpstream
) -> None:
    stream_answer(upstream, "tool_use")
    with client.chat.completions.stream(
        model="claude",
        messages=ASK,
        tools=[WEATHER_TOOL],  # type: ignore[list-item]
    ) as stream:
        final = stream.get_final_completion()
    message = final.choices[0].message
    assert message.content == "Let me check the weather in both cities."
    calls = message.tool_calls or []
    assert [c.id for c in calls] == [
        "toolu_01T1x1fJ34qAmk2tNTrN7Up6",
        "toolu_01B2kQxM7cVz4pDyWq3sR8nE",
    ]
    arguments = [json.loads(c.function.arguments) for c in calls]  # type: ignore[union-attr]
    assert arguments == [
        {"location": "San Francisco, CA", "unit": "fahrenheit"},
        {"location": "Paris, FR"},
    ]
    assert final.choices[0].finish_reason == "tool_calls"


@pytest.mark.matrix("anthropic", "json_mode")
def test_json_mode(client: openai.OpenAI, upstream: FakeUpstream) -> None:
    answer(upstream, "json")
    properties = {"name": {"type": "string"}, "born": {"type": "integer"}}
    schema = {"type": "object", "properties": properties}
    reply = client.chat.completions.create(
        model="claude",
        messages=[{"role": "user", "content": "Who wrote the first program?"}],
        response_format={"type": "json_schema", "json_schema": {"name": "p", "schema": schema}},
    )
    content = json.loads(reply.choices[0].message.content or "")
    assert content == {"name": "Ada Lovelace", "born": 1815}
    assert reply.choices[0].finish_reason == "stop" and not reply.choices[0].message.tool_calls
    body = sent(upstream)
    assert body["tools"] == [{"name": "json_tool_call", "input_schema": schema}]
    assert body["tool_choice"] == {"type": "tool", "name": "json_tool_call"}


@pytest.mark.matrix("anthropic", "vision")
def test_image_input(client: openai.OpenAI, upstream: FakeUpstream) -> None:
    answer(upstream, "text")
    png = (
        "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR4"
        "nGNgYGD4DwABBAEAwS2OUAAAAABJRU5ErkJggg=="
    )
    client.chat.completions.create(
        model="claude",
        messages=[
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "What is in this image?"},
                    {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{png}"}},
                ],
            }
        ],
    )
    assert sent(upstream)["messages"][0]["content"] == [
        {"type": "text", "text": "What is in this image?"},
        {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": png}},
    ]


@pytest.mark.matrix("anthropic", "reasoning")
def test_reasoning(client: openai.OpenAI, upstream: FakeUpstream) -> None:
    answer(upstream, "thinking", times=1)
    stream_answer(upstream, "thinking")
    reply = client.chat.completions.create(model="claude", messages=ASK, reasoning_effort="low")
    assert sent(upstream)["thinking"] == {"type": "enabled", "budget_tokens": 1024}
    extra = reply.choices[0].message.model_extra or {}
    assert extra["reasoning_content"] == "The user asks for 27 * 453. 27 * 453 = 12231."
    assert [b["type"] for b in extra["thinking_blocks"]] == ["thinking", "redacted_thinking"]
    chunks = list(client.chat.completions.create(model="claude", messages=ASK, stream=True))
    extras = [c.choices[0].delta.model_extra or {} for c in chunks if c.choices]
    reasoning = "".join(e.get("reasoning_content", "") for e in extras)
    assert reasoning == "27 * 453 = 27 * 400 + 27 * 53 = 10800 + 1431 = 12231"


@pytest.mark.matrix("anthropic", "drop_params")
def test_drop_params(client: openai.OpenAI, upstream: FakeUpstream) -> None:
    with pytest.raises(openai.BadRequestError) as info:
        client.chat.completions.create(model="claude", messages=ASK, n=2)
    assert "does not support parameters: ['n']" in info.value.message
    assert upstream.requests == []
    answer(upstream, "text")
    client.chat.completions.create(
        model="claude", messages=ASK, n=2, presence_penalty=1, extra_body={"drop_params": True}
    )
    assert not {"n", "presence_penalty", "drop_params"} & set(sent(upstream))


def error_answer(
    up: FakeUpstream, status: int, name: str, headers: dict[str, str] | None = None
) -> None:
    body = fixture_json("anthropic_errors.json")[name]
    up.behave("status", status=status, json=body, headers=headers or {}, times=1)


@pytest.mark.matrix("anthropic", "errors")
def test_errors(client: openai.OpenAI, upstream: FakeUpstream) -> None:
    error_answer(upstream, 400, "prompt_too_long")
    with pytest.raises(openai.BadRequestError) as too_long:
        client.chat.completions.create(model="claude", messages=ASK)
    assert too_long.value.code == "context_length_exceeded"
    assert "prompt is too long: 208363 tokens" in too_long.value.message

    error_answer(upstream, 401, "authentication")
    with pytest.raises(openai.AuthenticationError) as auth:
        client.chat.completions.create(model="claude", messages=ASK)
    assert auth.value.status_code == 401 and "invalid x-api-key" in auth.value.message

    error_answer(upstream, 429, "rate_limit", {"retry-after": "7"})
    with pytest.raises(openai.RateLimitError) as limited:
        client.chat.completions.create(model="claude", messages=ASK)
    assert limited.value.response.headers["retry-after"] == "7"
    assert limited.value.type == "rate_limit_error"

    error_answer(upstream, 529, "overloaded")
    with pytest.raises(openai.InternalServerError) as overloaded:
        client.chat.completions.create(model="claude", messages=ASK)
    assert overloaded.value.status_code == 503
    assert overloaded.value.type == "service_unavailable"


def post_stream(gateway: Gateway) -> list[str]:
    response = httpx.post(
        gateway.v1 + "/chat/completions",
        json={"model": "claude", "messages": ASK, "stream": True},
        headers={"authorization": f"Bearer {MASTER_KEY}"},
        timeout=10,
    )
    assert response.status_code == 200
    return sse_frames(response.text)


@pytest.mark.matrix("anthropic", "errors")
def test_error_event_mid_stream_is_an_error_frame(gateway: Gateway, upstream: FakeUpstream) -> None:
    stream_answer(upstream, "error")
    frames = post_stream(gateway)
    assert json.loads(frames[1])["choices"][0]["delta"] == {"content": "Partial"}
    error = json.loads(frames[-1])["error"]
    assert error["type"] == "service_unavailable"
    assert error["message"] == "anthropicException - Overloaded"
    assert "[DONE]" not in frames


@pytest.mark.matrix("anthropic", "errors")
def test_upstream_closing_mid_event_is_an_error_frame(
    gateway: Gateway, upstream: FakeUpstream
) -> None:
    raw = fixture_bytes("anthropic_text.sse")
    cut = raw[: raw.index(b'"text":"Bonj') + 5]  # the connection drops inside an event
    head = (
        b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n"
    )
    upstream.behave("garbage", data=head + b"%x\r\n%s\r\n" % (len(cut), cut), times=1)
    frames = post_stream(gateway)
    assert json.loads(frames[0])["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    error = json.loads(frames[-1])["error"]
    assert error["type"] == "api_error"
    assert "[DONE]" not in frames


def test_text_completion_through_messages(client: openai.OpenAI, upstream: FakeUpstream) -> None:
    answer(upstream, "text", times=1)
    stream_answer(upstream, "text")
    reply = client.completions.create(model="claude", prompt="Say hi", max_tokens=30)
    assert reply.object == "text_completion"
    assert reply.choices[0].text == "Hi! My name is Claude."
    assert sent(upstream, 0)["messages"] == [
        {"role": "user", "content": [{"type": "text", "text": "Say hi"}]}
    ]
    assert sent(upstream, 0)["max_tokens"] == 30
    chunks = list(client.completions.create(model="claude", prompt="Say hi", stream=True))
    assert "".join(c.choices[0].text for c in chunks) == "Bonjour le monde — 你好世界 👋"


def test_supported_params_report_the_anthropic_set(gateway: Gateway) -> None:
    response = httpx.get(
        gateway.url + "/utils/supported_openai_params",
        params={"model": "claude"},
        headers={"authorization": f"Bearer {MASTER_KEY}"},
    )
    assert response.status_code == 200
    params = set(response.json())
    assert {"tools", "response_format", "reasoning_effort", "top_k", "stop"} <= params
    assert not {"n", "logprobs", "frequency_penalty", "seed"} & params
