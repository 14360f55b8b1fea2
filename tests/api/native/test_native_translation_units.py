"""Unit tests of the Anthropic <-> OpenAI translation and the raw-JSON model splice."""

from __future__ import annotations

import json
from pathlib import Path
from types import MappingProxyType
from typing import Any

import msgspec
import pytest

from tianji.api.native.anthropic_in import to_openai_request
from tianji.api.native.anthropic_out import (
    AnthropicStreamWriter,
    anthropic_usage,
    stop_reason,
    to_anthropic_message,
)
from tianji.api.native.rawjson import replace_string_field
from tianji.compile.model import ProviderKind
from tianji.errors import InvalidRequest
from tianji.spec.providers import Auth

OPENAI_CHAT = frozenset(
    {
        "max_tokens",
        "stop",
        "stream",
        "stream_options",
        "temperature",
        "top_p",
        "tools",
        "tool_choice",
        "parallel_tool_calls",
        "user",
        "reasoning_effort",
    }
)


def kind(adapter: str = "openai_compat", params: frozenset[str] = OPENAI_CHAT) -> ProviderKind:
    return ProviderKind(
        name="x", adapter=adapter, title="x", base_url=None, base_url_env=(), key_env=(),
        api_version_env=(), auth=Auth(), headers=MappingProxyType({}),
        param_headers=MappingProxyType({}), paths=MappingProxyType({"chat": "/chat/completions"}),
        params=MappingProxyType({"chat": params}), param_renames=MappingProxyType({}),
    )  # fmt: skip


def request(**fields: Any) -> dict[str, Any]:
    return {
        "model": "m",
        "max_tokens": 10,
        "messages": [{"role": "user", "content": "q"}],
        **fields,
    }


# --------------------------------------------------------------------------- request


def test_system_blocks_cache_control_only_for_translating_adapters() -> None:
    system = [
        {"type": "text", "text": "one"},
        {"type": "text", "text": "two", "cache_control": {"type": "ephemeral"}},
    ]
    plain = to_openai_request(request(system=system), kind())
    assert plain["messages"][0] == {"role": "system", "content": "one\ntwo"}
    kept = to_openai_request(request(system=system), kind("anthropic"))
    assert kept["messages"][0]["content"][1] == {
        "type": "text",
        "text": "two",
        "cache_control": {"type": "ephemeral"},
    }


def test_tool_choice_mapping_and_parallel_flag() -> None:
    tools = [{"name": "f", "input_schema": {"type": "object"}}]
    cases = {
        "auto": "auto",
        "any": "required",
        "none": "none",
    }
    for anthropic_type, openai_choice in cases.items():
        body = to_openai_request(request(tools=tools, tool_choice={"type": anthropic_type}), kind())
        assert body["tool_choice"] == openai_choice
    named = to_openai_request(
        request(
            tools=tools,
            tool_choice={"type": "tool", "name": "f", "disable_parallel_tool_use": True},
        ),
        kind(),
    )
    assert named["tool_choice"] == {"type": "function", "function": {"name": "f"}}
    assert named["parallel_tool_calls"] is False
    # A provider without parallel_tool_calls: the refinement is left out, not a 400.
    narrow = to_openai_request(
        request(tools=tools, tool_choice={"type": "any", "disable_parallel_tool_use": True}),
        kind(params=OPENAI_CHAT - {"parallel_tool_calls"}),
    )
    assert "parallel_tool_calls" not in narrow


def test_server_tools_are_refused_for_other_models() -> None:
    with pytest.raises(InvalidRequest, match="web_search_20250305"):
        to_openai_request(
            request(tools=[{"type": "web_search_20250305", "name": "web_search"}]), kind()
        )


def test_thinking_becomes_reasoning_effort_or_passes_through() -> None:
    for budget, effort in ((1024, "low"), (3000, "medium"), (32000, "high")):
        thinking = {"type": "enabled", "budget_tokens": budget}
        assert to_openai_request(request(thinking=thinking), kind())["reasoning_effort"] == effort
    thinking = {"type": "enabled", "budget_tokens": 2048}
    claude = to_openai_request(
        request(thinking=thinking), kind("bedrock", OPENAI_CHAT | {"thinking"})
    )
    assert claude["thinking"] == thinking
    assert "reasoning_effort" not in claude
    assert "reasoning_effort" not in to_openai_request(
        request(thinking={"type": "disabled"}), kind()
    )


PNG = {"type": "base64", "media_type": "image/png", "data": "AA=="}


def test_documents_tool_result_images_and_assistant_thinking() -> None:
    messages = [
        {"role": "user", "content": [
            {"type": "document", "source": {"type": "base64", "media_type": "application/pdf",
                                            "data": "JVBERi0="}},
            {"type": "text", "text": "read it"},
        ]},
        {"role": "assistant", "content": [
            {"type": "thinking", "thinking": "hmm", "signature": "sig"},
            {"type": "text", "text": "calling"},
            {"type": "tool_use", "id": "t1", "name": "shot", "input": {}},
        ]},
        {"role": "user", "content": [
            {"type": "tool_result", "tool_use_id": "t1", "content": [
                {"type": "text", "text": "here"},
                {"type": "image", "source": PNG},
            ]},
        ]},
    ]  # fmt: skip
    plain = to_openai_request(request(messages=messages), kind())["messages"]
    assert plain[0]["content"][0] == {
        "type": "file",
        "file": {"file_data": "data:application/pdf;base64,JVBERi0="},
    }
    assert plain[1] == {
        "role": "assistant",
        "content": "calling",
        "tool_calls": [
            {"id": "t1", "type": "function", "function": {"name": "shot", "arguments": "{}"}}
        ],
    }
    assert plain[2] == {"role": "tool", "tool_call_id": "t1", "content": "here"}
    assert plain[3] == {
        "role": "user",
        "content": [{"type": "image_url", "image_url": {"url": "data:image/png;base64,AA=="}}],
    }
    native = to_openai_request(request(messages=messages), kind("anthropic"))["messages"]
    assert native[1]["thinking_blocks"] == [messages[1]["content"][0]]


def test_unknown_block_type_names_its_path() -> None:
    bad = [{"role": "user", "content": [{"type": "text", "text": "a"}, {"type": "hologram"}]}]
    with pytest.raises(InvalidRequest) as error:
        to_openai_request(request(messages=bad), kind())
    assert error.value.param == "messages[0].content[1]"


# --------------------------------------------------------------------------- response


def test_response_usage_and_stop_reasons() -> None:
    usage = {
        "prompt_tokens": 100,
        "completion_tokens": 7,
        "prompt_tokens_details": {"cached_tokens": 60},
    }
    assert anthropic_usage(usage) == {
        "input_tokens": 40,
        "output_tokens": 7,
        "cache_read_input_tokens": 60,
        "cache_creation_input_tokens": 0,
    }
    assert stop_reason("length", False) == "max_tokens"
    assert stop_reason("content_filter", False) == "refusal"
    assert stop_reason("stop", True) == "tool_use"
    assert stop_reason(None, False) == "end_turn"


def test_response_with_reasoning_and_tool_calls() -> None:
    openai = {
        "id": "chatcmpl-1",
        "model": "up",
        "choices": [{"index": 0, "finish_reason": "tool_calls", "message": {
            "role": "assistant", "content": "ok", "reasoning_content": "think",
            "tool_calls": [{"id": "c1", "type": "function",
                            "function": {"name": "f", "arguments": "{\"a\": 1}"}}],
        }}],
        "usage": {"prompt_tokens": 3, "completion_tokens": 2},
    }  # fmt: skip
    message = to_anthropic_message(openai, "m")
    assert message["id"] == "msg_chatcmpl-1"
    assert message["content"] == [
        {"type": "thinking", "thinking": "think", "signature": ""},
        {"type": "text", "text": "ok"},
        {"type": "tool_use", "id": "c1", "name": "f", "input": {"a": 1}},
    ]
    assert message["stop_reason"] == "tool_use"


# --------------------------------------------------------------------------- stream


def delta(**fields: Any) -> dict[str, Any]:
    return {"choices": [{"index": 0, "delta": fields}]}


def tool(index: int, arguments: str, **start: str) -> dict[str, Any]:
    """A tool-call delta; `start` (id, name) on the first one of a call."""
    call: dict[str, Any] = {"index": index, "function": {"arguments": arguments}}
    if start:
        call.update(id=start["id"], type="function")
        call["function"]["name"] = start["name"]
    return delta(tool_calls=[call])


def openai_stream() -> bytes:
    base = {"id": "chatcmpl-7", "object": "chat.completion.chunk", "model": "up"}
    chunks = [
        delta(role="assistant", reasoning_content="plan"),
        delta(content="Hé"),
        delta(content="llo"),
        tool(0, '{"x"', id="c1", name="f"),
        tool(0, ":1}"),
        tool(1, "{}", id="c2", name="g"),
        {"choices": [{"index": 0, "delta": {}, "finish_reason": "tool_calls"}]},
        {"choices": [], "usage": {"prompt_tokens": 9, "completion_tokens": 4}},
    ]
    frames = [f"data: {json.dumps({**base, **c}, ensure_ascii=False)}\r\n\r\n" for c in chunks]
    return ("".join(frames) + "data: [DONE]\r\n\r\n").encode()


def events(raw: bytes) -> list[tuple[str, dict[str, Any]]]:
    out = []
    for frame in raw.decode().split("\n\n"):
        if frame:
            kind_line, data_line = frame.split("\n")
            out.append((kind_line[len("event: ") :], json.loads(data_line[len("data: ") :])))
    return out


def test_stream_writer_fed_one_byte_at_a_time() -> None:
    writer = AnthropicStreamWriter("m", input_tokens=5)
    data = openai_stream()
    raw = b"".join(writer.feed(data[i : i + 1]) for i in range(len(data))) + writer.close()
    got = events(raw)
    assert [k for k, _ in got] == [
        "message_start",
        "content_block_start", "content_block_delta", "content_block_stop",  # thinking
        "content_block_start", "content_block_delta", "content_block_delta", "content_block_stop",
        "content_block_start", "content_block_delta", "content_block_delta", "content_block_stop",
        "content_block_start", "content_block_delta",  # second tool
        "content_block_stop", "message_delta", "message_stop",
    ]  # fmt: skip
    assert got[0][1]["message"]["usage"] == {"input_tokens": 5, "output_tokens": 0}
    assert got[1][1]["content_block"]["type"] == "thinking"
    assert got[6][1]["delta"] == {"type": "text_delta", "text": "llo"}
    assert got[8][1] == {
        "type": "content_block_start",
        "index": 2,
        "content_block": {"type": "tool_use", "id": "c1", "name": "f", "input": {}},
    }
    partial = [
        e["delta"]["partial_json"] for k, e in got if e.get("index") == 2 and k.endswith("delta")
    ]
    assert "".join(partial) == '{"x":1}'
    assert got[-2][1]["delta"]["stop_reason"] == "tool_use"
    assert got[-2][1]["usage"]["output_tokens"] == 4
    assert got[-2][1]["usage"]["input_tokens"] == 9


def test_stream_writer_reports_a_truncated_stream() -> None:
    writer = AnthropicStreamWriter("m")
    data = openai_stream()
    cut = data.index(b"finish_reason")  # ends before the finish chunk
    raw = writer.feed(data[:cut]) + writer.close()
    kind_, payload = events(raw)[-1]
    assert kind_ == "error"
    assert payload["error"]["type"] == "api_error"
    assert "ended before it finished" in payload["error"]["message"]


def test_stream_writer_turns_an_error_chunk_into_an_error_event() -> None:
    writer = AnthropicStreamWriter("m")
    raw = writer.feed(b'data: {"error": {"message": "quota", "code": 429}}\n\n')
    assert events(raw) == [
        ("error", {"type": "error", "error": {"type": "rate_limit_error", "message": "quota"}})
    ]
    assert writer.close() == b""
    relayed = AnthropicStreamWriter("m").feed(
        b'data: {"error": {"message": "busy", "type": "service_unavailable", "code": "503"}}\n\n'
    )
    assert events(relayed)[0][1]["error"] == {"type": "overloaded_error", "message": "busy"}


# --------------------------------------------------------------------------- raw JSON


@pytest.mark.parametrize(
    "raw",
    [
        b'{"model":"a","x":1}',
        b'{ "x" : {"model": "nested"}, "list": ["model", "}"], "model" : "a" }',
        b'{"s": "quote \\" and \\\\", "model":"a"}',
        b'{"m\\u006fdel":"a"}',
    ],
)
def test_replace_string_field_touches_only_the_top_level_value(raw: bytes) -> None:
    out = replace_string_field(raw, "model", "b/c\u00e9")
    decoded = msgspec.json.decode(out)
    assert decoded["model"] == "b/c\u00e9"
    assert {k: v for k, v in decoded.items() if k != "model"} == {
        k: v for k, v in msgspec.json.decode(raw).items() if k != "model"
    }
    before, after = raw.split(b'"a"', 1) if raw.count(b'"a"') == 1 else (raw, b"")
    assert out.startswith(before) and out.endswith(after)


def test_replace_string_field_requires_the_field(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        replace_string_field(b'{"x": {"model": "a"}}', "model", "b")
