"""Anthropic responses and streams -> OpenAI, from realistic fixtures (providers.md §3.1).

Fixtures are checked against the `anthropic` SDK's response models first, so the
translator is tested on what Anthropic really sends; outputs are checked against
the `openai` SDK's models, so clients can parse them.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import msgspec
import pytest
from anthropic.types import Message, RawMessageStreamEvent
from openai.types import Completion
from openai.types.chat import ChatCompletion, ChatCompletionChunk
from pydantic import TypeAdapter

from tianji.errors import TianjiError, UpstreamProtocolError
from tianji.providers.anthropic_response import chat_completion, decode_message, text_completion
from tianji.providers.anthropic_stream import AnthropicStream

FIXTURES = Path(__file__).parent / "fixtures"
STREAMS = ["text", "tool_use", "thinking", "json_mode", "error"]
MESSAGES = ["text", "tool_use", "answer", "thinking", "json"]


def fixture(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def message(name: str) -> dict[str, Any]:
    return decode_message("anthropic", fixture(f"anthropic_message_{name}.json"))


def sse_events(raw: bytes) -> list[tuple[str, dict[str, Any]]]:
    events = []
    for block in raw.decode().split("\n\n"):
        lines = dict(line.split(": ", 1) for line in block.splitlines() if line)
        if lines:
            events.append((lines["event"], json.loads(lines["data"])))
    return events


@pytest.mark.parametrize("name", MESSAGES)
def test_message_fixtures_are_valid_sdk_messages(name: str) -> None:
    Message.model_validate(message(name))


@pytest.mark.parametrize("name", STREAMS)
def test_stream_fixtures_are_valid_sdk_events(name: str) -> None:
    adapter: TypeAdapter[Any] = TypeAdapter(RawMessageStreamEvent)
    events = sse_events(fixture(f"anthropic_{name}.sse"))
    assert events[0][0] == "message_start"
    for event, data in events:
        assert data["type"] == event
        if event not in ("ping", "error"):  # the SDK handles these two outside the union
            adapter.validate_python(data)


# --------------------------------------------------------------------------- whole responses


def test_text_message_and_cache_usage() -> None:
    out = chat_completion(message("text"), model="fallback", json_mode=False)
    ChatCompletion.model_validate(out)
    assert out["id"] == "msg_013Zva2CMHLNnXjNJJKqJ2EF"
    assert out["model"] == "claude-sonnet-4-5-20250929"
    assert out["choices"][0]["message"] == {
        "role": "assistant",
        "content": "Hi! My name is Claude.",
    }
    assert out["choices"][0]["finish_reason"] == "stop"
    assert out["usage"] == {
        "prompt_tokens": 2095 + 1800 + 512,
        "completion_tokens": 503,
        "total_tokens": 2095 + 1800 + 512 + 503,
        "prompt_tokens_details": {"cached_tokens": 1800},
        "cache_read_input_tokens": 1800,
        "cache_creation_input_tokens": 512,
    }


def test_tool_use_message() -> None:
    out = chat_completion(message("tool_use"), model="m", json_mode=False)
    ChatCompletion.model_validate(out)
    choice = out["choices"][0]
    assert choice["finish_reason"] == "tool_calls"
    assert (
        choice["message"]["content"] == "I'll check the current weather in San Francisco for you."
    )
    [call] = choice["message"]["tool_calls"]
    assert call["id"] == "toolu_01A09q90qw90lq917835lq9" and call["type"] == "function"
    assert call["function"]["name"] == "get_weather"
    assert json.loads(call["function"]["arguments"]) == {
        "location": "San Francisco, CA",
        "unit": "celsius",
    }


def test_thinking_message() -> None:
    out = chat_completion(message("thinking"), model="m", json_mode=False)
    reply = out["choices"][0]["message"]
    assert reply["content"] == "27 * 453 = 12,231"
    assert reply["reasoning_content"] == "The user asks for 27 * 453. 27 * 453 = 12231."
    assert [b["type"] for b in reply["thinking_blocks"]] == ["thinking", "redacted_thinking"]
    assert reply["thinking_blocks"][0]["signature"].startswith("WaUjzkypQ2mU")
    assert reply["thinking_blocks"][1]["data"].startswith("EmwKAhgB")


def test_json_mode_message_is_content() -> None:
    out = chat_completion(message("json"), model="m", json_mode=True)
    choice = out["choices"][0]
    assert json.loads(choice["message"]["content"]) == {"name": "Ada Lovelace", "born": 1815}
    assert "tool_calls" not in choice["message"] and choice["finish_reason"] == "stop"
    # Without response_format a tool named json_tool_call is just a tool.
    plain = chat_completion(message("json"), model="m", json_mode=False)["choices"][0]
    assert plain["finish_reason"] == "tool_calls" and plain["message"]["content"] is None


@pytest.mark.parametrize(
    ("stop_reason", "finish"),
    [("end_turn", "stop"), ("stop_sequence", "stop"), ("pause_turn", "stop"),
     ("max_tokens", "length"), ("tool_use", "tool_calls"), ("refusal", "content_filter")],
)  # fmt: skip
def test_stop_reasons(stop_reason: str, finish: str) -> None:
    body = {**message("text"), "stop_reason": stop_reason}
    assert (
        chat_completion(body, model="m", json_mode=False)["choices"][0]["finish_reason"] == finish
    )


def test_text_completion_response() -> None:
    out = text_completion({**message("text"), "stop_reason": "max_tokens"}, model="m")
    Completion.model_validate(out)
    assert out["object"] == "text_completion"
    assert out["choices"][0]["text"] == "Hi! My name is Claude."
    assert out["choices"][0]["finish_reason"] == "length"


def test_malformed_body_is_a_protocol_error() -> None:
    for body in (b"<html>", b'{"type": "message"}', b"[]"):
        with pytest.raises(UpstreamProtocolError) as info:
            decode_message("anthropic", body)
        assert info.value.status == 502


# --------------------------------------------------------------------------- streams


def translate(raw: bytes, *, one_byte: bool, **options: Any) -> bytes:
    stream = AnthropicStream("anthropic", "claude-x", include_usage=True, **options)
    pieces = [raw[i : i + 1] for i in range(len(raw))] if one_byte else [raw]
    return b"".join(stream.feed(p) for p in pieces) + stream.close()


def frames(out: bytes) -> list[Any]:
    assert out.endswith(b"data: [DONE]\n\n")
    texts = [f.removeprefix(b"data: ") for f in out.split(b"\n\n") if f]
    assert texts[-1] == b"[DONE]"
    return [msgspec.json.decode(t) for t in texts[:-1]]


def chunks(name: str, **options: Any) -> list[Any]:
    out = translate(fixture(f"anthropic_{name}.sse"), one_byte=False, **options)
    parsed = frames(out)
    for chunk in parsed:
        ChatCompletionChunk.model_validate(chunk)
    return parsed


def deltas(parsed: list[Any]) -> list[dict[str, Any]]:
    return [c["choices"][0]["delta"] for c in parsed if c["choices"]]


@pytest.mark.parametrize("name", ["text", "tool_use", "thinking", "json_mode"])
def test_one_byte_chunks_translate_like_the_whole_stream(name: str) -> None:
    raw = fixture(f"anthropic_{name}.sse")
    whole = frames(translate(raw, one_byte=False, json_mode=name == "json_mode"))
    split = frames(translate(raw, one_byte=True, json_mode=name == "json_mode"))
    for chunk in (*whole, *split):
        chunk.pop("created")  # the clock may tick between the two runs
    assert whole == split and len(whole) > 3


def test_text_stream() -> None:
    parsed = chunks("text")
    assert {c["id"] for c in parsed} == {"msg_01XFDUDYJgAACzvnptvVoYEL"}
    assert {c["model"] for c in parsed} == {"claude-sonnet-4-5-20250929"}
    assert deltas(parsed)[0] == {"role": "assistant", "content": ""}
    text = "".join(d.get("content", "") for d in deltas(parsed))
    assert text == "Bonjour le monde — 你好世界 👋"
    finishes = [c["choices"][0]["finish_reason"] for c in parsed if c["choices"]]
    assert finishes[-1] == "stop" and set(finishes[:-1]) == {None}
    assert parsed[-1]["choices"] == []
    assert parsed[-1]["usage"]["prompt_tokens"] == 21
    assert parsed[-1]["usage"]["completion_tokens"] == 12


def test_usage_chunk_only_when_asked() -> None:
    stream = AnthropicStream("anthropic", "m", include_usage=False)
    out = stream.feed(fixture("anthropic_text.sse")) + stream.close()
    assert b'"usage"' not in out and out.endswith(b"data: [DONE]\n\n")


def test_tool_use_stream_numbers_tools_among_themselves() -> None:
    parsed = chunks("tool_use")
    calls: dict[int, dict[str, Any]] = {}
    for delta in deltas(parsed):
        for call in delta.get("tool_calls", []):
            slot = calls.setdefault(call["index"], {"arguments": ""})
            slot.update({k: v for k, v in call.items() if k in ("id", "type")})
            slot["name"] = call["function"].get("name", slot.get("name"))
            slot["arguments"] += call["function"]["arguments"]
    assert sorted(calls) == [0, 1]  # Anthropic blocks 1 and 2
    assert calls[0]["id"] == "toolu_01T1x1fJ34qAmk2tNTrN7Up6" and calls[0]["name"] == "get_weather"
    assert json.loads(calls[0]["arguments"]) == {
        "location": "San Francisco, CA",
        "unit": "fahrenheit",
    }
    assert json.loads(calls[1]["arguments"]) == {"location": "Paris, FR"}
    assert parsed[-2]["choices"][0]["finish_reason"] == "tool_calls"
    assert parsed[-1]["usage"]["prompt_tokens_details"] == {"cached_tokens": 1024}
    assert parsed[-1]["usage"]["prompt_tokens"] == 472 + 1024


def test_thinking_stream() -> None:
    parsed = deltas(chunks("thinking"))
    reasoning = "".join(d.get("reasoning_content", "") for d in parsed)
    assert reasoning == "27 * 453 = 27 * 400 + 27 * 53 = 10800 + 1431 = 12231"
    blocks = [block for d in parsed for block in d.get("thinking_blocks", [])]
    signatures = [b["signature"] for b in blocks if b.get("signature")]
    assert signatures == ["EqQBCgIYAhIM1gbcDa9GJwZA2b3hGgxBdjrkzLoky3dl1pkiMOYds"]
    assert "".join(d.get("content", "") for d in parsed) == "27 * 453 = 12,231"


def test_json_mode_stream_is_content() -> None:
    parsed = chunks("json_mode", json_mode=True)
    assert not any("tool_calls" in d for d in deltas(parsed))
    content = "".join(d.get("content", "") for d in deltas(parsed))
    assert json.loads(content) == {"name": "Ada", "born": 1815}
    assert parsed[-2]["choices"][0]["finish_reason"] == "stop"


def test_error_event_raises_the_mapped_error() -> None:
    stream = AnthropicStream("anthropic", "m", include_usage=True)
    raw = fixture("anthropic_error.sse")
    cut = raw.index(b"event: error")
    before = stream.feed(raw[:cut])
    assert b"Partial" in before and b"[DONE]" not in before
    with pytest.raises(TianjiError) as info:
        stream.feed(raw[cut:])
    assert (info.value.status, info.value.type) == (503, "service_unavailable")
    assert info.value.message == "anthropicException - Overloaded"


def test_error_event_in_the_same_read_as_content() -> None:
    stream = AnthropicStream("anthropic", "m", include_usage=True)
    out = stream.feed(fixture("anthropic_error.sse"))
    assert b"Partial" in out  # what came before the error is not lost...
    with pytest.raises(TianjiError) as info:
        stream.close()  # ...and the error follows
    assert info.value.status == 503


@pytest.mark.parametrize(
    ("kind", "status", "error_type"),
    [("invalid_request_error", 400, "invalid_request_error"), ("api_error", 500, "api_error"),
     ("rate_limit_error", 429, "rate_limit_error"), ("permission_error", 403, "permission_denied")],
)  # fmt: skip
def test_error_event_types(kind: str, status: int, error_type: str) -> None:
    stream = AnthropicStream("anthropic", "m", include_usage=False)
    event = b'event: error\ndata: {"type":"error","error":{"type":"%s","message":"x"}}\n\n'
    with pytest.raises(TianjiError) as info:
        stream.feed(event % kind.encode())
    expected_status = 502 if status >= 500 else status  # provider_error: 5xx -> 502
    assert (info.value.status, info.value.type) == (expected_status, error_type)


def test_last_event_without_its_blank_line_still_counts() -> None:
    raw = fixture("anthropic_text.sse").rstrip(b"\n")
    stream = AnthropicStream("anthropic", "m", include_usage=False)
    out = stream.feed(raw) + stream.close()
    assert out.endswith(b"data: [DONE]\n\n")


@pytest.mark.parametrize(
    "cut_at", [b"event: content_block_delta", b'"text":"Bonj', b"message_stop"]
)
def test_truncated_stream_fails_on_close(cut_at: bytes) -> None:
    raw = fixture("anthropic_text.sse")
    stream = AnthropicStream("anthropic", "m", include_usage=True)
    out = stream.feed(raw[: raw.index(cut_at)])
    assert b"[DONE]" not in out
    with pytest.raises(UpstreamProtocolError, match="ended before message_stop"):
        stream.close()


def test_text_completion_stream() -> None:
    raw = fixture("anthropic_text.sse")
    out = translate(raw, one_byte=True, text_completion=True)
    parsed = frames(out)
    for chunk in parsed:
        assert chunk["object"] == "text_completion"
        if not chunk["choices"] or chunk["choices"][0]["finish_reason"]:
            Completion.model_validate(chunk)  # its finish_reason cannot be null
    text = "".join(c["choices"][0]["text"] for c in parsed if c["choices"])
    assert text == "Bonjour le monde — 你好世界 👋"
    assert parsed[-2]["choices"][0]["finish_reason"] == "stop"
    assert parsed[-1]["usage"]["completion_tokens"] == 12
