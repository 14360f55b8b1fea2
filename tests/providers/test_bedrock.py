"""Bedrock: Converse translation units, and the openai SDK through tianji against a fake
Bedrock (a real HTTP server that checks nothing but records everything; each signed
request is re-signed by botocore to prove the Authorization header)."""

from __future__ import annotations

import base64
import json
import re
import struct
import tempfile
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import msgspec
import openai
import pytest

from tests.conftest import MASTER_KEY, Gateway, running_gateway
from tests.providers.fixtures.bedrock_eventstream import event, exception, load
from tests.providers.fixtures.bedrock_support import (
    AWS_KEY,
    AWS_SECRET,
    AWS_TOKEN,
    bedrock_call,
    botocore_authorization,
    deployment,
)
from tests.support.fake_upstream import FakeUpstream, Recorded
from tianji.errors import InvalidRequest, TianjiError, UnsupportedParams, UpstreamProtocolError
from tianji.providers import adapter_for, sigv4
from tianji.providers.base import Call
from tianji.providers.bedrock import BedrockAdapter
from tianji.providers.bedrock_response import ConverseStreamTranslator, chat_response
from tianji.providers.eventstream import Frame

pytestmark = pytest.mark.timeout(30)

MODEL_ID = "us.anthropic.claude-3-5-haiku-20241022-v1:0"
CHAT_PATH = "/model/us.anthropic.claude-3-5-haiku-20241022-v1%3A0/converse"
EVENTSTREAM = "application/vnd.amazon.eventstream"
PNG = base64.b64encode(b"\x89PNG\r\n\x1a\n fake pixels").decode()
WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
    },
}


def converse_answer(
    content: list[dict[str, Any]], stop: str = "end_turn", usage: dict[str, int] | None = None
) -> dict[str, Any]:
    return {
        "output": {"message": {"role": "assistant", "content": content}},
        "stopReason": stop,
        "usage": usage or {"inputTokens": 9, "outputTokens": 4, "totalTokens": 13},
        "metrics": {"latencyMs": 321},
    }


def _sent(call_body: dict[str, Any], **kw: Any) -> dict[str, Any]:
    request = adapter_for("bedrock").build_request(bedrock_call(body=call_body, **kw))
    decoded: dict[str, Any] = msgspec.json.decode(request.body)
    return decoded


# --------------------------------------------------------------------------- request units


def test_messages_merge_system_cache_points_and_leading_assistant() -> None:
    body = {
        "messages": [
            {
                "role": "system",
                "content": [
                    {"type": "text", "text": "Be terse.", "cache_control": {"type": "ephemeral"}},
                ],
            },
            {"role": "assistant", "content": "Earlier answer"},
            {"role": "user", "content": "one"},
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "two"},
                    {"type": "text", "text": " "},
                ],
            },
            {"role": "developer", "content": "Also polite."},
        ],
        "stop": "END",
        "max_completion_tokens": 50,
        "top_k": 20,
        "guardrailConfig": {"guardrailIdentifier": "g1", "guardrailVersion": "1"},
    }
    sent = _sent(body)
    assert sent["system"] == [
        {"text": "Be terse."},
        {"cachePoint": {"type": "default"}},
        {"text": "Also polite."},
    ]
    assert sent["messages"] == [
        {"role": "user", "content": [{"text": "."}]},
        {"role": "assistant", "content": [{"text": "Earlier answer"}]},
        {"role": "user", "content": [{"text": "one"}, {"text": "two"}]},
    ]
    assert sent["inferenceConfig"] == {"maxTokens": 50, "stopSequences": ["END"]}
    assert sent["additionalModelRequestFields"] == {"top_k": 20}
    assert sent["guardrailConfig"]["guardrailIdentifier"] == "g1"


def test_tool_history_thinking_and_tool_choice_variants() -> None:
    history = [
        {"role": "user", "content": "weather?"},
        {
            "role": "assistant",
            "content": None,
            "thinking_blocks": [{"type": "thinking", "thinking": "hm", "signature": "sig"}],
            "tool_calls": [
                {
                    "id": "t1",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": '{"city":"Oslo"}'},
                },
                {
                    "id": "t2",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": '{"city":"Rome"}'},
                },
            ],
        },
        {"role": "tool", "tool_call_id": "t1", "content": "cold"},
        {"role": "tool", "tool_call_id": "t2", "content": [{"type": "text", "text": "warm"}]},
    ]
    sent = _sent({"messages": history, "tools": [WEATHER_TOOL], "tool_choice": "none"})
    assistant, results = sent["messages"][1:]
    assert assistant["content"][0] == {
        "reasoningContent": {"reasoningText": {"text": "hm", "signature": "sig"}}
    }
    assert assistant["content"][1]["toolUse"] == {
        "toolUseId": "t1",
        "name": "get_weather",
        "input": {"city": "Oslo"},
    }
    assert results == {
        "role": "user",
        "content": [
            {"toolResult": {"toolUseId": "t1", "content": [{"text": "cold"}]}},
            {"toolResult": {"toolUseId": "t2", "content": [{"text": "warm"}]}},
        ],
    }
    # tool_choice none with tool blocks in the history: tools stay listed, no choice.
    assert "toolChoice" not in sent["toolConfig"]
    spec = sent["toolConfig"]["tools"][0]["toolSpec"]
    assert spec["inputSchema"]["json"] == WEATHER_TOOL["function"]["parameters"]  # type: ignore[index]
    plain = [{"role": "user", "content": "hi"}]
    assert "toolConfig" not in _sent(
        {"messages": plain, "tools": [WEATHER_TOOL], "tool_choice": "none"}
    )
    choices = {
        "required": {"any": {}},
        "auto": {"auto": {}},
        json.dumps({"type": "function", "function": {"name": "get_weather"}}): {
            "tool": {"name": "get_weather"}
        },
    }
    for choice, expected in choices.items():
        value = json.loads(choice) if choice.startswith("{") else choice
        sent = _sent({"messages": plain, "tools": [WEATHER_TOOL], "tool_choice": value})
        assert sent["toolConfig"]["toolChoice"] == expected


def test_documents_images_and_refused_media() -> None:
    pdf = base64.b64encode(b"%PDF-1.7 fake").decode()
    content = [
        {"type": "text", "text": "Compare"},
        {"type": "image_url", "image_url": {"url": f"data:image/jpeg;base64,{PNG}"}},
        {"type": "image_url", "image_url": {"url": "s3://bucket/cat.JPG"}},
        {
            "type": "file",
            "file": {
                "file_data": f"data:application/pdf;base64,{pdf}",
                "filename": "Q3 report_v2.pdf",
            },
        },
        {"type": "file", "file": {"file_data": f"data:text/csv;base64,{pdf}"}},
    ]
    blocks = _sent({"messages": [{"role": "user", "content": content}]})["messages"][0]["content"]
    assert blocks[1] == {"image": {"format": "jpeg", "source": {"bytes": PNG}}}
    assert blocks[2]["image"]["source"] == {"s3Location": {"uri": "s3://bucket/cat.JPG"}}
    assert blocks[3]["document"] == {
        "format": "pdf",
        "name": "Q3 report v2",
        "source": {"bytes": pdf},
    }
    assert blocks[4]["document"]["name"] == "document 1"
    remote = [{"type": "image_url", "image_url": {"url": "https://example.com/cat.png"}}]
    with pytest.raises(InvalidRequest, match="data: URL"):
        _sent({"messages": [{"role": "user", "content": remote}]})


def test_reasoning_effort_is_claude_thinking_else_unsupported() -> None:
    body = {"messages": [{"role": "user", "content": "hi"}], "reasoning_effort": "medium"}
    assert _sent(body)["additionalModelRequestFields"] == {
        "thinking": {"type": "enabled", "budget_tokens": 2048}
    }
    with pytest.raises(UnsupportedParams, match="reasoning_effort"):
        _sent(body, model="amazon.nova-pro-v1:0")
    dropped = _sent(body, model="amazon.nova-pro-v1:0", drop_params=True)
    assert "additionalModelRequestFields" not in dropped


def test_unsupported_openai_param_follows_the_drop_rule() -> None:
    body = {"messages": [{"role": "user", "content": "hi"}], "n": 2}
    with pytest.raises(UnsupportedParams, match=r"\['n'\]"):
        _sent(body)
    assert _sent(body, drop_params=True) == {
        "messages": [{"role": "user", "content": [{"text": "hi"}]}]
    }


def test_region_url_bearer_key_and_fresh_signature(monkeypatch: pytest.MonkeyPatch) -> None:
    adapter = adapter_for("bedrock")
    arn = "arn:aws:bedrock:eu-central-1:123456789012:application-inference-profile/abc"
    call = bedrock_call(arn, region="eu-central-1", api_base=None, stream=True)
    request = adapter.build_request(call)
    assert request.url == (
        "https://bedrock-runtime.eu-central-1.amazonaws.com/model/"
        "arn%3Aaws%3Abedrock%3Aeu-central-1%3A123456789012%3Aapplication-inference-profile%2Fabc"
        "/converse-stream"
    )
    headers = dict(request.headers)
    assert headers["authorization"].startswith(f"AWS4-HMAC-SHA256 Credential={AWS_KEY}/")
    assert "/eu-central-1/bedrock/aws4_request" in headers["authorization"]
    assert headers["accept"] == EVENTSTREAM
    # Each attempt signs again (build_request runs per attempt) at the current time.
    monkeypatch.setattr(sigv4, "utc_now", lambda: datetime(2030, 1, 1, tzinfo=UTC))
    again = dict(adapter.build_request(call).headers)
    assert again["x-amz-date"] == "20300101T000000Z"
    assert again["authorization"] != headers["authorization"]
    # A Bedrock API key is sent as Bearer, without signing.
    keyed = bedrock_call(aws_access_key_id=None, aws_secret_access_key=None, api_key="bedrock-key")
    keyed_headers = dict(adapter.build_request(keyed).headers)
    assert keyed_headers["authorization"] == "Bearer bedrock-key"
    assert "x-amz-date" not in keyed_headers


def test_bedrock_api_key_from_the_environment() -> None:
    env = {"AWS_BEARER_TOKEN_BEDROCK": "bk", "AWS_REGION": "us-west-2"}
    target = deployment("bedrock/amazon.nova-lite-v1:0", env=env)
    body = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}
    call = Call("chat", target, target.model, body=body)
    headers = dict(adapter_for("bedrock").build_request(call).headers)
    assert headers["authorization"] == "Bearer bk"


def test_response_mapping_reasoning_tools_and_stop_reasons() -> None:
    content = [
        {"reasoningContent": {"reasoningText": {"text": "think", "signature": "s1"}}},
        {"reasoningContent": {"redactedContent": "b64=="}},
        {"text": "Let me look."},
        {"toolUse": {"toolUseId": "tu1", "name": "f", "input": {"a": [1, 2]}}},
    ]
    data = converse_answer(content, "tool_use")
    reply = chat_response("m", data, None)
    message = reply["choices"][0]["message"]
    assert message["content"] == "Let me look."
    assert message["reasoning_content"] == "think"
    assert message["thinking_blocks"] == [
        {"type": "thinking", "thinking": "think", "signature": "s1"},
        {"type": "redacted_thinking", "data": "b64=="},
    ]
    assert message["tool_calls"] == [
        {"id": "tu1", "type": "function", "function": {"name": "f", "arguments": '{"a":[1,2]}'}}
    ]
    assert reply["choices"][0]["finish_reason"] == "tool_calls"
    expected = {
        "end_turn": "stop",
        "stop_sequence": "stop",
        "max_tokens": "length",
        "model_context_window_exceeded": "length",
        "guardrail_intervened": "content_filter",
        "content_filtered": "content_filter",
    }
    for stop, finish in expected.items():
        answer = chat_response("m", converse_answer([{"text": "x"}], stop), None)
        assert answer["choices"][0]["finish_reason"] == finish
    with pytest.raises(UpstreamProtocolError):
        chat_response("m", {"output": {}}, None)


# --------------------------------------------------------------------------- stream units


def _on_exception(frame: Frame) -> TianjiError:
    adapter = adapter_for("bedrock")
    assert isinstance(adapter, BedrockAdapter)
    return adapter.stream_exception(frame)


def _input(fragment: str) -> dict[str, Any]:
    return {"toolUse": {"input": fragment}}


def _deltas(out: bytes) -> list[dict[str, Any]]:
    frames = [f for f in out.split(b"\n\n") if f.startswith(b"data: {")]
    chunks = [json.loads(f[6:]) for f in frames]
    return [c["choices"][0] if c["choices"] else {"usage": c["usage"]} for c in chunks]


@pytest.mark.parametrize("name", ["bedrock_stream_text.bin", "bedrock_stream_tools.bin"])
def test_translator_gives_the_same_chunks_fed_one_byte_at_a_time(name: str) -> None:
    data = load(name)
    call = bedrock_call(body={"messages": [], "stream_options": {"include_usage": True}})

    def run(size: int) -> bytes:
        translator = ConverseStreamTranslator(call, "m", None, _on_exception)
        out = b"".join(translator.feed(data[i : i + size]) for i in range(0, len(data), size))
        return out + translator.close()

    whole, bytewise = run(len(data)), run(1)
    assert _deltas(whole) == _deltas(bytewise)
    assert whole.endswith(b"data: [DONE]\n\n") and bytewise.count(b"[DONE]") == 1
    assert "usage" in _deltas(whole)[-1]


def test_truncated_stream_is_a_protocol_error() -> None:
    data = load("bedrock_stream_text.bin")
    translator = ConverseStreamTranslator(bedrock_call(), "m", None, _on_exception)
    translator.feed(data[: len(data) // 2])
    with pytest.raises(UpstreamProtocolError):
        translator.close()


# --------------------------------------------------------------------------- end to end


@pytest.fixture(scope="module")
def bedrock() -> Iterator[tuple[Gateway, FakeUpstream]]:
    with FakeUpstream() as up, tempfile.TemporaryDirectory() as tmp:
        config = f"""
model_list:
  - model_name: claude
    litellm_params:
      model: bedrock/converse/{MODEL_ID}
      api_base: {up.root_url}
      aws_access_key_id: {AWS_KEY}
      aws_secret_access_key: {AWS_SECRET}
      aws_session_token: "{AWS_TOKEN}"
      aws_region_name: eu-central-1
  - model_name: titan
    litellm_params:
      model: bedrock/amazon.titan-embed-text-v2:0
      api_base: {up.root_url}
      aws_access_key_id: {AWS_KEY}
      aws_secret_access_key: {AWS_SECRET}
      aws_region_name: us-west-2
  - model_name: cohere-embed
    litellm_params:
      model: bedrock/cohere.embed-multilingual-v3
      api_base: {up.root_url}
      aws_access_key_id: {AWS_KEY}
      aws_secret_access_key: {AWS_SECRET}
general_settings:
  master_key: {MASTER_KEY}
"""
        with running_gateway(config, Path(tmp)) as gw:
            yield gw, up


@pytest.fixture
def gw(bedrock: tuple[Gateway, FakeUpstream]) -> Gateway:
    bedrock[1].reset()
    return bedrock[0]


@pytest.fixture
def up(bedrock: tuple[Gateway, FakeUpstream]) -> FakeUpstream:
    return bedrock[1]


@pytest.fixture
def client(gw: Gateway) -> openai.OpenAI:
    return openai.OpenAI(base_url=gw.v1, api_key=MASTER_KEY, max_retries=0)


def _assert_signed(seen: Recorded, up: FakeUpstream, region: str = "eu-central-1") -> None:
    token = seen.headers.get("x-amz-security-token")
    expected = botocore_authorization(
        seen, up.root_url, service="bedrock", region=region, token=token
    )
    assert seen.headers["authorization"] == expected
    assert "content-type" in re.search(r"SignedHeaders=([^,]+)", expected).group(1)  # type: ignore[union-attr]


def _stream(up: FakeUpstream, data: bytes) -> None:
    up.behave("status", status=200, body=data, content_type=EVENTSTREAM, times=1)


@pytest.mark.matrix("bedrock", "chat")
def test_plain_chat(client: openai.OpenAI, up: FakeUpstream) -> None:
    up.behave("status", status=200, json=converse_answer([{"text": "Bonjour."}]), times=1)
    reply = client.chat.completions.create(
        model="claude",
        messages=[
            {"role": "system", "content": "Answer in French."},
            {"role": "user", "content": "Hello"},
        ],
        max_tokens=64,
        temperature=0.2,
    )
    assert reply.choices[0].message.content == "Bonjour."
    assert reply.choices[0].finish_reason == "stop"
    assert reply.model == MODEL_ID  # the converse/ route prefix is not part of the id
    seen = up.requests[-1]
    assert seen.target == CHAT_PATH
    assert seen.json == {
        "messages": [{"role": "user", "content": [{"text": "Hello"}]}],
        "system": [{"text": "Answer in French."}],
        "inferenceConfig": {"maxTokens": 64, "temperature": 0.2},
    }
    assert seen.headers["x-amz-security-token"] == AWS_TOKEN
    _assert_signed(seen, up)


@pytest.mark.matrix("bedrock", "stream")
@pytest.mark.matrix("bedrock", "usage")
@pytest.mark.matrix("bedrock", "cache_usage")
def test_converse_stream(client: openai.OpenAI, up: FakeUpstream, gw: Gateway) -> None:
    _stream(up, load("bedrock_stream_text.bin"))
    chunks = list(
        client.chat.completions.create(
            model="claude",
            messages=[{"role": "user", "content": "Hi"}],
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "Hello from Bedrock ✓"
    assert chunks[0].choices[0].delta.role == "assistant"
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"
    usage = chunks[-1].usage
    assert usage is not None and not chunks[-1].choices
    assert (usage.prompt_tokens, usage.completion_tokens, usage.total_tokens) == (131, 6, 137)
    assert usage.prompt_tokens_details is not None
    assert usage.prompt_tokens_details.cached_tokens == 100
    assert (usage.model_extra or {})["cache_creation_input_tokens"] == 20
    seen = up.requests[-1]
    assert seen.target == CHAT_PATH + "-stream"
    assert seen.headers["accept"] == EVENTSTREAM
    _assert_signed(seen, up)
    # Without include_usage, no usage chunk; the stream still ends with [DONE] as SSE.
    _stream(up, load("bedrock_stream_text.bin"))
    raw = httpx.post(
        gw.v1 + "/chat/completions",
        headers={"authorization": f"Bearer {MASTER_KEY}"},
        json={"model": "claude", "messages": [{"role": "user", "content": "Hi"}], "stream": True},
        timeout=10,
    )
    assert raw.status_code == 200
    assert raw.text.endswith("data: [DONE]\n\n") and '"usage"' not in raw.text


def test_translated_stream_is_labelled_as_sse(gw: Gateway, up: FakeUpstream) -> None:
    _stream(up, load("bedrock_stream_text.bin"))
    raw = httpx.post(
        gw.v1 + "/chat/completions",
        headers={"authorization": f"Bearer {MASTER_KEY}"},
        json={"model": "claude", "messages": [{"role": "user", "content": "Hi"}], "stream": True},
        timeout=10,
    )
    assert raw.headers["content-type"].startswith("text/event-stream")


@pytest.mark.matrix("bedrock", "tools")
@pytest.mark.matrix("bedrock", "tool_result")
def test_tool_call_round_trip(client: openai.OpenAI, up: FakeUpstream) -> None:
    tool_use = {
        "toolUseId": "tooluse_kZJMlvQmRJ6eAyJE5GIl7Q",
        "name": "get_weather",
        "input": {"city": "Lyon"},
    }
    up.behave(
        "status", status=200, json=converse_answer([{"toolUse": tool_use}], "tool_use"), times=1
    )
    messages: list[Any] = [{"role": "user", "content": "Weather in Lyon?"}]
    first = client.chat.completions.create(
        model="claude", messages=messages, tools=[WEATHER_TOOL], tool_choice="auto"
    )
    choice = first.choices[0]
    assert choice.finish_reason == "tool_calls"
    call = choice.message.tool_calls[0]  # type: ignore[index]
    assert call.id == tool_use["toolUseId"] and call.function.name == "get_weather"  # type: ignore[union-attr]
    assert json.loads(call.function.arguments) == {"city": "Lyon"}  # type: ignore[union-attr]
    sent = up.requests[-1].json
    assert sent["toolConfig"] == {
        "tools": [
            {
                "toolSpec": {
                    "name": "get_weather",
                    "description": "Current weather",
                    "inputSchema": {"json": WEATHER_TOOL["function"]["parameters"]},
                }
            }
        ],  # type: ignore[index]
        "toolChoice": {"auto": {}},
    }
    up.behave("status", status=200, json=converse_answer([{"text": "Sunny, 24°C."}]), times=1)
    messages += [
        choice.message.model_dump(exclude_none=True),
        {"role": "tool", "tool_call_id": call.id, "content": '{"temp": 24}'},
    ]
    second = client.chat.completions.create(model="claude", messages=messages, tools=[WEATHER_TOOL])
    assert second.choices[0].message.content == "Sunny, 24°C."
    sent = up.requests[-1].json
    assert sent["messages"][1] == {"role": "assistant", "content": [{"toolUse": tool_use}]}
    assert sent["messages"][2] == {
        "role": "user",
        "content": [
            {
                "toolResult": {
                    "toolUseId": tool_use["toolUseId"],
                    "content": [{"text": '{"temp": 24}'}],
                }
            }
        ],
    }
    _assert_signed(up.requests[-1], up)


@pytest.mark.matrix("bedrock", "tool_stream")
def test_streamed_tool_calls_reassembled(client: openai.OpenAI, up: FakeUpstream) -> None:
    _stream(up, load("bedrock_stream_tools.bin"))
    stream = client.chat.completions.create(
        model="claude",
        messages=[{"role": "user", "content": "Paris and Rome?"}],
        tools=[WEATHER_TOOL],
        stream=True,
    )
    calls: dict[int, dict[str, str]] = {}
    text, finish = "", None
    for chunk in stream:
        delta = chunk.choices[0].delta
        text += delta.content or ""
        finish = chunk.choices[0].finish_reason or finish
        for part in delta.tool_calls or []:
            slot = calls.setdefault(part.index, {"id": "", "name": "", "arguments": ""})
            slot["id"] += part.id or ""
            slot["name"] += (part.function.name or "") if part.function else ""
            slot["arguments"] += (part.function.arguments or "") if part.function else ""
    assert text == "Checking both." and finish == "tool_calls"
    assert [(c["id"], c["name"]) for _, c in sorted(calls.items())] == [
        ("tooluse_Paris01", "get_weather"),
        ("tooluse_Rome002", "get_weather"),
    ]
    assert json.loads(calls[0]["arguments"]) == {"city": "Paris", "unit": "c"}
    assert json.loads(calls[1]["arguments"]) == {"city": "Rome"}


@pytest.mark.matrix("bedrock", "json_mode")
def test_json_mode_is_a_forced_tool(client: openai.OpenAI, up: FakeUpstream) -> None:
    schema = {"type": "object", "properties": {"name": {"type": "string"}}, "required": ["name"]}
    answer = [{"toolUse": {"toolUseId": "t", "name": "json_tool_call", "input": {"name": "Ada"}}}]
    up.behave("status", status=200, json=converse_answer(answer, "tool_use"), times=1)
    reply = client.chat.completions.create(
        model="claude",
        messages=[{"role": "user", "content": "Who wrote the first program?"}],
        response_format={
            "type": "json_schema",
            "json_schema": {"name": "person", "schema": schema},
        },
    )
    assert json.loads(reply.choices[0].message.content or "") == {"name": "Ada"}
    assert reply.choices[0].finish_reason == "stop" and not reply.choices[0].message.tool_calls
    config = up.requests[-1].json["toolConfig"]
    assert config["toolChoice"] == {"tool": {"name": "json_tool_call"}}
    assert config["tools"][0]["toolSpec"]["inputSchema"] == {"json": schema}
    # Streamed, the tool's input fragments are the content.
    start = {"toolUse": {"toolUseId": "t", "name": "json_tool_call"}}
    usage = {"inputTokens": 1, "outputTokens": 2, "totalTokens": 3}
    frames = b"".join(
        [
            event("messageStart", {"role": "assistant"}),
            event("contentBlockStart", {"contentBlockIndex": 0, "start": start}),
            event("contentBlockDelta", {"contentBlockIndex": 0, "delta": _input('{"name": ')}),
            event("contentBlockDelta", {"contentBlockIndex": 0, "delta": _input('"Ada"}')}),
            event("messageStop", {"stopReason": "tool_use"}),
            event("metadata", {"usage": usage, "metrics": {"latencyMs": 1}}),
        ]
    )
    _stream(up, frames)
    chunks = list(
        client.chat.completions.create(
            model="claude",
            messages=[{"role": "user", "content": "Who?"}],
            response_format={"type": "json_object"},
            stream=True,
        )
    )
    assert json.loads("".join(c.choices[0].delta.content or "" for c in chunks)) == {"name": "Ada"}
    assert chunks[-1].choices[0].finish_reason == "stop"
    assert up.requests[-1].json["toolConfig"]["tools"][0]["toolSpec"]["inputSchema"] == {
        "json": {"type": "object"}
    }


@pytest.mark.matrix("bedrock", "vision")
def test_image_input(client: openai.OpenAI, up: FakeUpstream) -> None:
    up.behave("status", status=200, json=converse_answer([{"text": "A cat."}]), times=1)
    reply = client.chat.completions.create(
        model="claude",
        messages=[
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "What is this?"},
                    {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG}"}},
                ],
            }
        ],
    )
    assert reply.choices[0].message.content == "A cat."
    assert up.requests[-1].json["messages"][0]["content"] == [
        {"text": "What is this?"},
        {"image": {"format": "png", "source": {"bytes": PNG}}},
    ]


@pytest.mark.matrix("bedrock", "usage")
@pytest.mark.matrix("bedrock", "cache_usage")
def test_usage_with_cache_tokens(client: openai.OpenAI, up: FakeUpstream) -> None:
    usage = {
        "inputTokens": 12,
        "outputTokens": 7,
        "totalTokens": 1519,
        "cacheReadInputTokens": 1200,
        "cacheWriteInputTokens": 300,
    }
    up.behave("status", status=200, json=converse_answer([{"text": "ok"}], usage=usage), times=1)
    reply = client.chat.completions.create(
        model="claude",
        messages=[
            {
                "role": "user",
                "content": [
                    {
                        "type": "text",
                        "text": "long context",
                        "cache_control": {"type": "ephemeral"},
                    },
                    {"type": "text", "text": "question"},
                ],
            }
        ],
    )
    assert reply.usage is not None
    assert (reply.usage.prompt_tokens, reply.usage.completion_tokens) == (1512, 7)
    assert reply.usage.total_tokens == 1519
    assert reply.usage.prompt_tokens_details.cached_tokens == 1200  # type: ignore[union-attr]
    extra = reply.usage.model_extra or {}
    assert (extra["cache_read_input_tokens"], extra["cache_creation_input_tokens"]) == (1200, 300)
    assert up.requests[-1].json["messages"][0]["content"] == [
        {"text": "long context"},
        {"cachePoint": {"type": "default"}},
        {"text": "question"},
    ]


@pytest.mark.matrix("bedrock", "reasoning")
def test_reasoning_stream(client: openai.OpenAI, up: FakeUpstream) -> None:
    _stream(up, load("bedrock_stream_reasoning.bin"))
    chunks = list(
        client.chat.completions.create(
            model="claude",
            messages=[{"role": "user", "content": "Hi"}],
            reasoning_effort="low",
            stream=True,
        )
    )
    extras = [c.choices[0].delta.model_extra or {} for c in chunks]
    reasoning = "".join(e.get("reasoning_content") or "" for e in extras)
    assert reasoning == "The user greets; answer briefly."
    signatures = [b["signature"] for e in extras for b in e.get("thinking_blocks") or []]
    assert signatures == ["EqoBCkgIAxABGAIiQ..."]
    assert "".join(c.choices[0].delta.content or "" for c in chunks) == "Hi!"
    assert up.requests[-1].json["additionalModelRequestFields"] == {
        "thinking": {"type": "enabled", "budget_tokens": 1024}
    }


@pytest.mark.matrix("bedrock", "errors")
@pytest.mark.parametrize(
    ("frames", "kind", "text", "before"),
    [
        (
            load("bedrock_stream_exception.bin"),
            "api_error",
            "modelStreamErrorException: Model produced an invalid sequence",
            "Partial",
        ),
        (
            event("messageStart", {"role": "assistant"})
            + exception("throttlingException", "Too many tokens, please wait."),
            "rate_limit_error",
            "throttlingException: Too many tokens",
            "",
        ),
    ],
)
def test_exception_frame_mid_stream_is_an_error_frame(
    gw: Gateway, up: FakeUpstream, frames: bytes, kind: str, text: str, before: str
) -> None:
    _stream(up, frames)
    client = openai.OpenAI(base_url=gw.v1, api_key=MASTER_KEY, max_retries=0)
    stream = client.chat.completions.create(
        model="claude", messages=[{"role": "user", "content": "Hi"}], stream=True
    )
    received = ""
    with pytest.raises(openai.APIError) as info:
        for chunk in stream:
            received += chunk.choices[0].delta.content or ""
    # The text sent before the exception frame reaches the client, then the error.
    assert received == before
    assert text in info.value.message
    assert isinstance(info.value.body, dict) and info.value.body["type"] == kind


@pytest.mark.matrix("bedrock", "errors")
def test_throttling_is_429(client: openai.OpenAI, up: FakeUpstream) -> None:
    up.behave(
        "status",
        status=429,
        json={"message": "Too many requests, please wait before trying again."},
        headers={
            "x-amzn-errortype": "ThrottlingException:http://internal.amazon.com/coral/com.amazon.bedrock/"
        },
        times=1,
    )
    with pytest.raises(openai.RateLimitError) as info:
        client.chat.completions.create(model="claude", messages=[{"role": "user", "content": "x"}])
    assert info.value.body == {
        "message": "bedrockException - ThrottlingException: "
        "Too many requests, please wait before trying again.",
        "type": "rate_limit_error",
        "param": None,
        "code": "429",
    }


@pytest.mark.matrix("bedrock", "errors")
def test_input_too_long_is_context_length_exceeded(client: openai.OpenAI, up: FakeUpstream) -> None:
    up.behave(
        "status",
        status=400,
        json={"message": "Input is too long for requested model."},
        headers={
            "x-amzn-errortype": "ValidationException:http://internal.amazon.com/coral/com.amazon.bedrock/"
        },
        times=1,
    )
    with pytest.raises(openai.BadRequestError) as info:
        client.chat.completions.create(model="claude", messages=[{"role": "user", "content": "x"}])
    assert info.value.code == "context_length_exceeded"
    # Other statuses follow the x-amzn-errortype table whatever the HTTP status says.
    up.behave(
        "status",
        status=400,
        json={"message": "no access"},
        headers={"x-amzn-errortype": "AccessDeniedException"},
        times=1,
    )
    with pytest.raises(openai.PermissionDeniedError):
        client.chat.completions.create(model="claude", messages=[{"role": "user", "content": "x"}])


@pytest.mark.matrix("bedrock", "drop_params")
def test_drop_params(client: openai.OpenAI, up: FakeUpstream) -> None:
    with pytest.raises(openai.BadRequestError, match="does not support parameters"):
        client.chat.completions.create(
            model="claude", messages=[{"role": "user", "content": "x"}], logit_bias={"1": 1}
        )
    up.behave("status", status=200, json=converse_answer([{"text": "ok"}]), times=1)
    client.chat.completions.create(
        model="claude",
        messages=[{"role": "user", "content": "x"}],
        logit_bias={"1": 1},
        extra_body={"drop_params": True},
    )
    assert "logit_bias" not in json.dumps(up.requests[-1].json)


@pytest.mark.matrix("bedrock", "embeddings")
def test_embeddings_titan_and_cohere(client: openai.OpenAI, up: FakeUpstream) -> None:
    vector = [0.5, -0.25, 0.125]
    up.behave("status", status=200, json={"embedding": vector, "inputTextTokenCount": 3}, times=1)
    result = client.embeddings.create(model="titan", input="hello there", dimensions=256)
    assert result.data[0].embedding == vector  # base64 float32 round trip, exact here
    assert result.usage.prompt_tokens == 3
    seen = up.requests[-1]
    assert seen.target == "/model/amazon.titan-embed-text-v2%3A0/invoke"
    assert seen.json == {"inputText": "hello there", "dimensions": 256}
    _assert_signed(seen, up, region="us-west-2")
    with pytest.raises(openai.BadRequestError, match="one input per request"):
        client.embeddings.create(model="titan", input=["a", "b"])
    vectors = [[0.25, 0.5], [1.0, -1.0]]
    up.behave(
        "status",
        status=200,
        json={
            "embeddings": vectors,
            "id": "e1",
            "texts": ["a", "b"],
            "response_type": "embeddings_floats",
        },
        times=1,
    )
    result = client.embeddings.create(
        model="cohere-embed",
        input=["a", "b"],
        encoding_format="float",
        extra_body={"input_type": "search_query"},
    )
    assert [d.embedding for d in result.data] == vectors
    assert up.requests[-1].json == {"texts": ["a", "b"], "input_type": "search_query"}
    packed = base64.b64encode(struct.pack("<2f", 0.25, 0.5)).decode()
    raw = adapter_for("bedrock").translate_response(
        bedrock_call(
            "cohere.embed-english-v3",
            operation="embeddings",
            body={"input": "a", "encoding_format": "base64"},
        ),
        json.dumps({"embeddings": {"float": [[0.25, 0.5]]}}).encode(),
    )
    assert json.loads(raw or b"")["data"][0]["embedding"] == packed
