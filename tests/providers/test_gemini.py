"""The Gemini adapter: request translation, responses, streams fed byte by byte, errors
(unit), and end to end through the gateway with the openai SDK against a FakeUpstream
that speaks Gemini's wire format."""

from __future__ import annotations

import base64
import json
import re
import struct
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import msgspec
import openai
import pytest

from tests.conftest import MASTER_KEY, Gateway, running_gateway
from tests.support.fake_upstream import FakeUpstream
from tianji.compile.model import Deployment
from tianji.compile.pipeline import build
from tianji.errors import InvalidRequest, TianjiError, UnsupportedParams, UpstreamProtocolError
from tianji.providers import Call, adapter_for
from tianji.providers.gemini_parts import clean_schema

FIXTURES = Path(__file__).parent / "fixtures"
CALL_ID = re.compile(r"^call_[0-9a-f]{32}$")
SIGNATURE = (
    "CiQB0e2Kb5Yl2dcxBNu9MDSA6vHCxBqtVGG0MRwjDQRy1p5e0rgKXgHR7YpvRwX4Jk4gP1Zr4m9c0YlOe1a7Qd3t5XcX"
)


def fixture(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def _built(tmp_path: Path, params: str) -> Any:
    config = tmp_path / "c.yaml"
    config.write_text(f"model_list:\n  - model_name: m\n    litellm_params: {params}\n")
    built, problems = build(config, env={})
    assert built is not None, [p.render() for p in problems]
    return built


@pytest.fixture(scope="module")
def deployment(tmp_path_factory: pytest.TempPathFactory) -> Deployment:
    tmp_path = tmp_path_factory.mktemp("gemini-unit")
    built = _built(tmp_path, "{model: gemini/gemini-2.5-flash, api_key: gk-test}")
    d: Deployment = built.gateway.models.groups["m"].deployments[0]
    return d


OPENAI_CHAT = frozenset(
    {"logit_bias", "temperature", "top_p", "max_tokens", "n", "stop", "tools", "user"}
    | {"max_completion_tokens", "tool_choice", "response_format", "reasoning_effort", "seed"}
)


def _call(d: Deployment, body: dict[str, Any], **kw: Any) -> Call:
    kw.setdefault("openai_params", OPENAI_CHAT)
    return Call(kw.pop("operation", "chat"), d, d.model, body=body, **kw)


def _sent(d: Deployment, body: dict[str, Any], **kw: Any) -> Any:
    request = adapter_for("gemini").build_request(_call(d, body, **kw))
    return msgspec.json.decode(request.body)


# --------------------------------------------------------------------------- requests

WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather",
        "strict": True,
        "parameters": {
            "$schema": "http://json-schema.org/draft-07/schema#",
            "type": "object",
            "additionalProperties": False,
            "properties": {
                "city": {"type": "string"},
                "unit": {"$ref": "#/$defs/Unit"},
                "strict": {"type": ["boolean", "null"]},
            },
            "required": ["city"],
            "$defs": {"Unit": {"type": "string", "enum": ["celsius", "fahrenheit"]}},
        },
    },
}
TIME_TOOL = {
    "type": "function",
    "function": {"name": "get_time", "parameters": {"type": "object", "properties": {}}},
}
CONVERSATION = [
    {"role": "system", "content": "Be brief."},
    {"role": "developer", "content": [{"type": "text", "text": "Answer in French."}]},
    {
        "role": "user",
        "content": [
            {"type": "text", "text": "What is in this picture?"},
            {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}},
            {"type": "file", "file": {"file_id": "gs://bucket/report.pdf"}},
        ],
    },
    {"role": "user", "content": "And the weather?"},
    {
        "role": "assistant",
        "content": None,
        "tool_calls": [
            {
                "id": "call_a",
                "type": "function",
                "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'},
                "extra_content": {"google": {"thought_signature": "sig-1"}},
            },
            {"id": "call_b", "type": "function", "function": {"name": "get_time", "arguments": ""}},
        ],
    },
    {"role": "tool", "tool_call_id": "call_b", "content": "12:00"},
    {"role": "tool", "tool_call_id": "call_a", "content": '{"temp": 21}'},
    {"role": "user", "content": "Thanks"},
]


def test_request_translation(deployment: Deployment) -> None:
    sent = _sent(
        deployment,
        {
            "model": "m",
            "messages": CONVERSATION,
            "tools": [WEATHER_TOOL, TIME_TOOL],
            "tool_choice": {"type": "function", "function": {"name": "get_weather"}},
            "response_format": {
                "type": "json_schema",
                "json_schema": {"name": "w", "schema": {"type": "object"}},
            },
            "max_completion_tokens": 300,
            "temperature": 0.2,
            "top_p": 0.9,
            "stop": "END",
            "n": 2,
            "seed": 7,
            "reasoning_effort": "low",
            "top_k": 40,
            "safety_settings": [{"category": "HARM_CATEGORY_HATE_SPEECH", "threshold": "OFF"}],
            "cachedContent": "cachedContents/abc",
            "stream_options": {"include_usage": True},
        },
    )
    assert sent == {
        "systemInstruction": {"parts": [{"text": "Be brief."}, {"text": "Answer in French."}]},
        "contents": [
            {
                "role": "user",
                "parts": [
                    {"text": "What is in this picture?"},
                    {"inline_data": {"mime_type": "image/png", "data": "iVBORw0KGgo="}},
                    {
                        "file_data": {
                            "file_uri": "gs://bucket/report.pdf",
                            "mime_type": "application/pdf",
                        }
                    },
                    {"text": "And the weather?"},  # consecutive user turns merged
                ],
            },
            {
                "role": "model",
                "parts": [
                    {
                        "functionCall": {"name": "get_weather", "args": {"city": "Paris"}},
                        "thoughtSignature": "sig-1",
                    },
                    {"functionCall": {"name": "get_time", "args": {}}},
                ],
            },
            {
                "role": "user",
                "parts": [
                    {"functionResponse": {"name": "get_time", "response": {"content": "12:00"}}},
                    {"functionResponse": {"name": "get_weather", "response": {"temp": 21}}},
                    {"text": "Thanks"},
                ],
            },
        ],
        "tools": [
            {
                "functionDeclarations": [
                    {
                        "name": "get_weather",
                        "description": "Current weather",
                        "parameters": {
                            "type": "object",
                            "properties": {
                                "city": {"type": "string"},
                                "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
                                "strict": {"type": "boolean", "nullable": True},
                            },
                            "required": ["city"],
                        },
                    },
                    {"name": "get_time"},
                ]
            }
        ],
        "toolConfig": {
            "functionCallingConfig": {"mode": "ANY", "allowedFunctionNames": ["get_weather"]}
        },
        "generationConfig": {
            "maxOutputTokens": 300,
            "temperature": 0.2,
            "topP": 0.9,
            "topK": 40,
            "candidateCount": 2,
            "seed": 7,
            "stopSequences": ["END"],
            "responseMimeType": "application/json",
            "responseJsonSchema": {"type": "object"},
            "thinkingConfig": {"thinkingBudget": 1024, "includeThoughts": True},
        },
        "safetySettings": [{"category": "HARM_CATEGORY_HATE_SPEECH", "threshold": "OFF"}],
        "cachedContent": "cachedContents/abc",
    }


def test_url_and_key_header(deployment: Deployment) -> None:
    adapter = adapter_for("gemini")
    plain = adapter.build_request(_call(deployment, {"messages": []}))
    assert plain.url == (
        "https://generativelanguage.googleapis.com/v1beta/models/gemini-2.5-flash:generateContent"
    )
    streamed = adapter.build_request(_call(deployment, {"messages": []}, stream=True))
    assert streamed.url.endswith("/models/gemini-2.5-flash:streamGenerateContent?alt=sse")
    assert ("x-goog-api-key", "gk-test") in streamed.headers
    assert "key=" not in streamed.url and "authorization" not in dict(streamed.headers)


@pytest.mark.parametrize(
    ("choice", "config"),
    [
        ("auto", {"mode": "AUTO"}),
        ("none", {"mode": "NONE"}),
        ("required", {"mode": "ANY"}),
        (
            {"type": "function", "function": {"name": "f"}},
            {"mode": "ANY", "allowedFunctionNames": ["f"]},
        ),
    ],
)
def test_tool_choice(deployment: Deployment, choice: Any, config: Any) -> None:
    sent = _sent(deployment, {"messages": [], "tool_choice": choice})
    assert sent["toolConfig"] == {"functionCallingConfig": config}


@pytest.mark.parametrize(
    ("params", "thinking"),
    [
        ({"reasoning_effort": "none"}, {"thinkingBudget": 0}),
        ({"reasoning_effort": "medium"}, {"thinkingBudget": 2048, "includeThoughts": True}),
        ({"reasoning_effort": "high"}, {"thinkingBudget": 4096, "includeThoughts": True}),
        (
            {"thinking": {"type": "enabled", "budget_tokens": 777}},
            {"thinkingBudget": 777, "includeThoughts": True},
        ),
    ],
)
def test_thinking_config(deployment: Deployment, params: Any, thinking: Any) -> None:
    sent = _sent(deployment, {"messages": [], **params})
    assert sent["generationConfig"]["thinkingConfig"] == thinking


def test_other_generation_params(deployment: Deployment) -> None:
    sent = _sent(
        deployment,
        {
            "messages": [],
            "max_tokens": 50,
            "stop": ["a", "b"],
            "presence_penalty": 0.5,
            "frequency_penalty": 0.25,
            "logprobs": True,
            "top_logprobs": 3,
            "response_format": {"type": "json_object"},
            "modalities": ["text", "image"],
            "web_search_options": {},
        },
        openai_params=frozenset(),
    )
    assert sent["generationConfig"] == {
        "maxOutputTokens": 50,
        "presencePenalty": 0.5,
        "frequencyPenalty": 0.25,
        "stopSequences": ["a", "b"],
        "responseLogprobs": True,
        "logprobs": 3,
        "responseMimeType": "application/json",
        "responseModalities": ["TEXT", "IMAGE"],
    }
    assert sent["tools"] == [{"googleSearch": {}}]


@pytest.mark.parametrize(
    ("part", "expected"),
    [
        (
            {"type": "image_url", "image_url": "data:text/plain,hi%20there"},
            {"inline_data": {"mime_type": "text/plain", "data": "aGkgdGhlcmU="}},
        ),
        (
            {"type": "file", "file": {"file_data": "JVBERi0=", "filename": "a.pdf"}},
            {"inline_data": {"mime_type": "application/pdf", "data": "JVBERi0="}},
        ),
        (
            {"type": "file", "file": {"file_data": "data:application/pdf;base64,JVBERi0="}},
            {"inline_data": {"mime_type": "application/pdf", "data": "JVBERi0="}},
        ),
        (
            {"type": "image_url", "image_url": {"url": "https://youtu.be/abc"}},
            {"file_data": {"file_uri": "https://youtu.be/abc", "mime_type": "video/mp4"}},
        ),
        (
            {
                "type": "file",
                "file": {
                    "file_id": "https://generativelanguage.googleapis.com/v1beta/files/f1",
                    "format": "audio/mp3",
                },
            },
            {
                "file_data": {
                    "file_uri": "https://generativelanguage.googleapis.com/v1beta/files/f1",
                    "mime_type": "audio/mp3",
                }
            },
        ),
        (
            {"type": "input_audio", "input_audio": {"data": "UklGRg==", "format": "wav"}},
            {"inline_data": {"mime_type": "audio/wav", "data": "UklGRg=="}},
        ),
    ],
)
def test_media_parts(deployment: Deployment, part: Any, expected: Any) -> None:
    sent = _sent(deployment, {"messages": [{"role": "user", "content": [part]}]})
    assert sent["contents"] == [{"role": "user", "parts": [expected]}]


def test_tool_message_with_unknown_id_is_a_400(deployment: Deployment) -> None:
    messages = [{"role": "tool", "tool_call_id": "call_zzz", "content": "x"}]
    with pytest.raises(InvalidRequest, match="call_zzz"):
        _sent(deployment, {"messages": messages})


def test_unsupported_params_rule(deployment: Deployment) -> None:
    body = {"messages": [{"role": "user", "content": "hi"}], "logit_bias": {"1": 2}, "user": "u"}
    with pytest.raises(UnsupportedParams) as info:
        _sent(deployment, dict(body))
    assert info.value.param == "logit_bias"
    sent = _sent(deployment, dict(body), drop_params=True)
    assert "logit_bias" not in sent and "user" not in sent


def test_clean_schema_recursion_and_property_names() -> None:
    schema = {
        "type": "object",
        "properties": {
            "node": {"$ref": "#/definitions/Node"},
            "additionalProperties": {"type": "integer"},  # a property, not the keyword
            "kind": {"type": ["string", "integer"]},
        },
        "definitions": {
            "Node": {
                "type": "object",
                "properties": {"child": {"$ref": "#/definitions/Node"}},
                "additionalProperties": False,
            }
        },
    }
    assert clean_schema(schema) == {
        "type": "object",
        "properties": {
            "node": {
                "type": "object",
                "properties": {"child": {"type": "object", "description": ""}},
            },
            "additionalProperties": {"type": "integer"},
            "kind": {"anyOf": [{"type": "string"}, {"type": "integer"}]},
        },
    }


# --------------------------------------------------------------------------- responses


def _translate(d: Deployment, raw: bytes, body: dict[str, Any] | None = None) -> Any:
    call = _call(d, body or {"messages": []})
    out = adapter_for("gemini").translate_response(call, raw)
    assert out is not None
    return msgspec.json.decode(out)


def test_response_one_choice_per_candidate(deployment: Deployment) -> None:
    out = _translate(deployment, fixture("gemini_chat.json"))
    assert out["id"] == "TBQpaO3rHYyWz7IP-MCc6A0" and out["model"] == "gemini-2.5-pro"
    assert out["object"] == "chat.completion"
    first, second = out["choices"]
    assert first["message"] == {
        "role": "assistant",
        "content": 'There are three r\'s in "strawberry".',
        "reasoning_content": "Counting the letters of the word strawberry: s-t-r-a-w-b-e-r-r-y.",
    }
    assert first["finish_reason"] == "stop"
    assert (second["index"], second["finish_reason"]) == (1, "length")
    assert out["usage"] == {
        "prompt_tokens": 1040,
        "completion_tokens": 19 + 132,
        "total_tokens": 1191,
        "prompt_tokens_details": {"cached_tokens": 1024},
        "completion_tokens_details": {"reasoning_tokens": 132},
    }


def test_response_tool_call(deployment: Deployment) -> None:
    out = _translate(deployment, fixture("gemini_tool_call.json"))
    choice = out["choices"][0]
    assert choice["finish_reason"] == "tool_calls"
    (call,) = choice["message"]["tool_calls"]
    assert CALL_ID.match(call["id"])
    assert call["function"] == {
        "name": "get_weather",
        "arguments": '{"city":"Paris","unit":"celsius"}',
    }
    assert call["extra_content"] == {"google": {"thought_signature": SIGNATURE}}


@pytest.mark.parametrize(
    ("reason", "finish"),
    [
        ("STOP", "stop"),
        ("MAX_TOKENS", "length"),
        ("SAFETY", "content_filter"),
        ("RECITATION", "content_filter"),
        ("BLOCKLIST", "content_filter"),
        ("PROHIBITED_CONTENT", "content_filter"),
        ("SPII", "content_filter"),
        ("IMAGE_SAFETY", "content_filter"),
        ("MALFORMED_FUNCTION_CALL", "stop"),
        ("OTHER", "stop"),
    ],
)
def test_finish_reasons(deployment: Deployment, reason: str, finish: str) -> None:
    raw = {"candidates": [{"content": {"parts": [{"text": "x"}]}, "finishReason": reason}]}
    out = _translate(deployment, json.dumps(raw).encode())
    assert out["choices"][0]["finish_reason"] == finish


def test_image_output_and_logprobs(deployment: Deployment) -> None:
    raw = {
        "candidates": [
            {
                "content": {
                    "parts": [
                        {"text": "A cat:"},
                        {"inlineData": {"mimeType": "image/png", "data": "AAA="}},
                    ]
                },
                "finishReason": "STOP",
                "logprobsResult": {
                    "topCandidates": [{"candidates": [{"token": "A", "logProbability": -0.1}]}],
                    "chosenCandidates": [{"token": "A", "logProbability": -0.1}],
                },
            }
        ]
    }
    choice = _translate(deployment, json.dumps(raw).encode())["choices"][0]
    assert choice["message"]["content"] == [
        {"type": "text", "text": "A cat:"},
        {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAA="}},
    ]
    top = {"token": "A", "logprob": -0.1, "bytes": [65]}
    assert choice["logprobs"] == {"content": [{**top, "top_logprobs": [top]}]}


def test_blocked_prompt_is_a_content_policy_400(deployment: Deployment) -> None:
    with pytest.raises(TianjiError) as info:
        _translate(deployment, fixture("gemini_blocked_prompt.json"))
    assert info.value.status == 400 and info.value.code == "content_policy_violation"
    assert "PROHIBITED_CONTENT" in info.value.message


# --------------------------------------------------------------------------- streams


def _frames(raw: bytes) -> list[Any]:
    frames = []
    for block in raw.split(b"\n\n"):
        if block:
            assert block.startswith(b"data: ")
            payload = block[6:]
            frames.append("[DONE]" if payload == b"[DONE]" else msgspec.json.decode(payload))
    return frames


def _stream(d: Deployment, raw: bytes, size: int, **body: Any) -> list[Any]:
    translator = adapter_for("gemini").stream_translator(
        _call(d, {"messages": [], "stream": True, **body}, stream=True)
    )
    assert translator is not None
    out = b"".join(translator.feed(raw[i : i + size]) for i in range(0, len(raw), size))
    return _frames(out + translator.close())


def _normalised(frames: list[Any]) -> list[Any]:
    """Tool-call ids are random and `created` is the clock: checked, then blanked."""
    for frame in frames:
        if isinstance(frame, dict):
            frame["created"] = 0
            for choice in frame["choices"]:
                for call in choice["delta"].get("tool_calls", ()):
                    assert CALL_ID.match(call["id"])
                    call["id"] = "call_x"
    return frames


@pytest.mark.parametrize(
    "name", ["gemini_stream_text.sse", "gemini_stream_tools.sse", "gemini_stream_safety.sse"]
)
def test_stream_fixture_byte_by_byte(deployment: Deployment, name: str) -> None:
    raw = fixture(name)
    whole = _normalised(_stream(deployment, raw, len(raw), stream_options={"include_usage": True}))
    bytewise = _normalised(_stream(deployment, raw, 1, stream_options={"include_usage": True}))
    assert bytewise == whole
    assert whole[-1] == "[DONE]" and whole[-2]["choices"] == []


def test_stream_text_and_thoughts(deployment: Deployment) -> None:
    frames = _stream(deployment, fixture("gemini_stream_text.sse"), 1)
    deltas = [f["choices"][0]["delta"] for f in frames[:-1]]
    assert deltas[0] == {
        "role": "assistant",
        "reasoning_content": (
            "**Greeting the user**\n\nThe user says hello in French; I should answer warmly."
        ),
    }
    assert "".join(d.get("content", "") for d in deltas) == (
        "Bonjour ! Ravi de vous voir — comment ça va ? 👋"
    )
    assert [f["choices"][0]["finish_reason"] for f in frames[:-1]][-1] == "stop"
    assert {f["id"] for f in frames[:-1]} == {"mRQpaL3aB4-Dz7IP2s7q8AQ"}
    assert frames[-1] == "[DONE]"  # no usage chunk: the client did not ask


def test_stream_usage_chunk(deployment: Deployment) -> None:
    frames = _stream(
        deployment, fixture("gemini_stream_text.sse"), 7, stream_options={"include_usage": True}
    )
    assert frames[-2]["usage"] == {
        "prompt_tokens": 31,
        "completion_tokens": 14 + 45,
        "total_tokens": 90,
        "prompt_tokens_details": {"cached_tokens": 16},
        "completion_tokens_details": {"reasoning_tokens": 45},
    }


def test_stream_tool_calls_whole(deployment: Deployment) -> None:
    frames = _stream(deployment, fixture("gemini_stream_tools.sse"), 1)
    calls = [c for f in frames[:-1] for c in f["choices"][0]["delta"].get("tool_calls", ())]
    assert [(c["index"], c["function"]["name"]) for c in calls] == [
        (0, "get_weather"),
        (1, "get_time"),
    ]
    assert json.loads(calls[1]["function"]["arguments"]) == {"timezone": "Europe/Paris"}
    assert calls[0]["extra_content"] == {"google": {"thought_signature": SIGNATURE}}
    assert frames[-2]["choices"][0]["finish_reason"] == "tool_calls"


def test_stream_safety_stop(deployment: Deployment) -> None:
    frames = _stream(deployment, fixture("gemini_stream_safety.sse"), 3)
    assert frames[-2]["choices"][0]["finish_reason"] == "content_filter"


def test_stream_truncated_is_an_error(deployment: Deployment) -> None:
    raw = fixture("gemini_stream_text.sse")
    cut = raw[: raw.rindex(b"data: ")]  # the last fragment (with finishReason) never came
    with pytest.raises(UpstreamProtocolError, match="finishReason"):
        _stream(deployment, cut, 5)


def test_stream_error_frame_is_raised(deployment: Deployment) -> None:
    error = {"error": {"code": 503, "message": "The model is overloaded.", "status": "UNAVAILABLE"}}
    raw = b"data: " + json.dumps(error).encode() + b"\r\n\r\n"
    with pytest.raises(TianjiError) as info:
        _stream(deployment, raw, 1)
    assert (info.value.status, info.value.type) == (503, "service_unavailable")


# --------------------------------------------------------------------------- errors


@pytest.mark.parametrize(
    ("status", "rpc", "message", "want_status", "want_type"),
    [
        (400, "INVALID_ARGUMENT", "bad field", 400, "invalid_request_error"),
        (400, "FAILED_PRECONDITION", "region", 400, "invalid_request_error"),
        (401, "UNAUTHENTICATED", "no creds", 401, "authentication_error"),
        (403, "PERMISSION_DENIED", "denied", 403, "permission_denied"),
        (404, "NOT_FOUND", "no model", 404, "not_found_error"),
        (500, "INTERNAL", "oops", 502, "api_error"),
        (503, "UNAVAILABLE", "overloaded", 503, "service_unavailable"),
        (504, "DEADLINE_EXCEEDED", "deadline", 408, "timeout"),
    ],
)
def test_error_status_table(
    deployment: Deployment, status: int, rpc: str, message: str, want_status: int, want_type: str
) -> None:
    body = json.dumps({"error": {"code": status, "message": message, "status": rpc}}).encode()
    error = adapter_for("gemini").error_from_status(_call(deployment, {}), status, {}, body)
    assert (error.status, error.type) == (want_status, want_type)
    assert error.message == f"geminiException - {message}"


def test_error_details(deployment: Deployment) -> None:
    adapter = adapter_for("gemini")
    call = _call(deployment, {})
    quota = adapter.error_from_status(call, 429, {}, fixture("gemini_error_quota.json"))
    assert (quota.status, quota.headers) == (429, {"retry-after": "37"})
    bad_key = adapter.error_from_status(call, 400, {}, fixture("gemini_error_bad_key.json"))
    assert (bad_key.status, bad_key.type) == (401, "authentication_error")
    long = json.dumps(
        {
            "error": {
                "code": 400,
                "message": "The input token count (1200000) exceeds the maximum number of "
                "tokens allowed (1048576).",
                "status": "INVALID_ARGUMENT",
            }
        }
    ).encode()
    assert adapter.error_from_status(call, 400, {}, long).code == "context_length_exceeded"


# --------------------------------------------------------------------------- end to end


@pytest.fixture(scope="module")
def gemini_up() -> Iterator[FakeUpstream]:
    with FakeUpstream() as up:
        yield up


@pytest.fixture(scope="module")
def gemini_gw(
    gemini_up: FakeUpstream, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Gateway]:
    config = f"""
model_list:
  - model_name: gem
    litellm_params:
      model: gemini/gemini-2.5-flash
      api_base: {gemini_up.root_url}
      api_key: gk-upstream-secret
      timeout: 5
  - model_name: gem-embed
    litellm_params:
      model: gemini/gemini-embedding-001
      api_base: {gemini_up.root_url}
      api_key: gk-upstream-secret
general_settings:
  master_key: {MASTER_KEY}
"""
    with running_gateway(config, tmp_path_factory.mktemp("gemini")) as gw:
        yield gw


@pytest.fixture
def up(gemini_up: FakeUpstream) -> FakeUpstream:
    gemini_up.reset()
    return gemini_up


@pytest.fixture
def client(gemini_gw: Gateway) -> openai.OpenAI:
    return openai.OpenAI(base_url=gemini_gw.v1, api_key=MASTER_KEY, max_retries=0, timeout=10)


def _answer(up: FakeUpstream, payload: Any, **kw: Any) -> None:
    up.behave("status", status=200, json=payload, times=1, **kw)


def _answer_stream(up: FakeUpstream, raw: bytes) -> None:
    up.behave("status", status=200, body=raw, content_type="text/event-stream", times=1)


HELLO = [{"role": "user", "content": "Bonjour"}]


@pytest.mark.matrix("gemini", "chat")
def test_e2e_plain_chat(up: FakeUpstream, client: openai.OpenAI) -> None:
    _answer(up, json.loads(fixture("gemini_chat.json")))
    reply = client.chat.completions.create(model="gem", messages=HELLO, n=2, temperature=0.3)
    assert reply.choices[0].message.content == 'There are three r\'s in "strawberry".'
    assert len(reply.choices) == 2
    sent = up.requests[-1]
    assert sent.path == "/v1beta/models/gemini-2.5-flash:generateContent"
    assert sent.headers["x-goog-api-key"] == "gk-upstream-secret" and sent.query == {}
    assert sent.json["contents"] == [{"role": "user", "parts": [{"text": "Bonjour"}]}]
    assert sent.json["generationConfig"] == {"temperature": 0.3, "candidateCount": 2}


@pytest.mark.matrix("gemini", "stream")
def test_e2e_stream(up: FakeUpstream, client: openai.OpenAI) -> None:
    _answer_stream(up, fixture("gemini_stream_text.sse"))
    chunks = list(client.chat.completions.create(model="gem", messages=HELLO, stream=True))
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "Bonjour ! Ravi de vous voir — comment ça va ? 👋"
    assert chunks[-1].choices[0].finish_reason == "stop"
    sent = up.requests[-1]
    assert sent.path == "/v1beta/models/gemini-2.5-flash:streamGenerateContent"
    assert sent.query == {"alt": "sse"}


@pytest.mark.matrix("gemini", "usage")
@pytest.mark.matrix("gemini", "cache_usage")
@pytest.mark.matrix("gemini", "reasoning")
def test_e2e_usage_cache_and_reasoning(up: FakeUpstream, client: openai.OpenAI) -> None:
    _answer(up, json.loads(fixture("gemini_chat.json")))
    reply = client.chat.completions.create(model="gem", messages=HELLO, reasoning_effort="high")
    assert up.requests[-1].json["generationConfig"]["thinkingConfig"] == {
        "thinkingBudget": 4096,
        "includeThoughts": True,
    }
    usage = reply.usage
    assert usage is not None
    assert (usage.prompt_tokens, usage.completion_tokens, usage.total_tokens) == (1040, 151, 1191)
    assert usage.prompt_tokens_details and usage.prompt_tokens_details.cached_tokens == 1024
    assert usage.completion_tokens_details
    assert usage.completion_tokens_details.reasoning_tokens == 132
    message = reply.choices[0].message.model_dump()
    assert message["reasoning_content"].startswith("Counting the letters")
    # Streamed: the usage chunk comes last when asked for.
    _answer_stream(up, fixture("gemini_stream_text.sse"))
    chunks = list(
        client.chat.completions.create(
            model="gem", messages=HELLO, stream=True, stream_options={"include_usage": True}
        )
    )
    assert chunks[-1].choices == [] and chunks[-1].usage is not None
    assert chunks[-1].usage.prompt_tokens_details
    assert chunks[-1].usage.prompt_tokens_details.cached_tokens == 16


WEATHER_CALL_FIRST = [{"role": "user", "content": "Weather in Paris?"}]


@pytest.mark.matrix("gemini", "tools")
@pytest.mark.matrix("gemini", "tool_result")
def test_e2e_tool_round_trip(up: FakeUpstream, client: openai.OpenAI) -> None:
    _answer(up, json.loads(fixture("gemini_tool_call.json")))
    first = client.chat.completions.create(
        model="gem", messages=WEATHER_CALL_FIRST, tools=[WEATHER_TOOL], tool_choice="auto"
    )
    assert first.choices[0].finish_reason == "tool_calls"
    tool_calls = first.choices[0].message.tool_calls
    assert tool_calls is not None
    call = tool_calls[0]
    assert CALL_ID.match(call.id) and call.function.name == "get_weather"  # type: ignore[union-attr]
    assert up.requests[-1].json["toolConfig"] == {"functionCallingConfig": {"mode": "AUTO"}}
    _answer(
        up, {"candidates": [{"content": {"parts": [{"text": "21°C"}]}, "finishReason": "STOP"}]}
    )
    second = client.chat.completions.create(
        model="gem",
        messages=[
            *WEATHER_CALL_FIRST,
            first.choices[0].message.model_dump(exclude_none=True),  # type: ignore[list-item]
            {"role": "tool", "tool_call_id": call.id, "content": '{"temp": 21}'},
        ],
        tools=[WEATHER_TOOL],
    )
    assert second.choices[0].message.content == "21°C"
    contents = up.requests[-1].json["contents"]
    assert contents[1] == {
        "role": "model",
        "parts": [
            {
                "functionCall": {
                    "name": "get_weather",
                    "args": {"city": "Paris", "unit": "celsius"},
                },
                "thoughtSignature": SIGNATURE,
            }
        ],
    }
    assert contents[2] == {
        "role": "user",
        "parts": [{"functionResponse": {"name": "get_weather", "response": {"temp": 21}}}],
    }


@pytest.mark.matrix("gemini", "tool_stream")
def test_e2e_streamed_tool_calls(up: FakeUpstream, client: openai.OpenAI) -> None:
    _answer_stream(up, fixture("gemini_stream_tools.sse"))
    calls: dict[int, dict[str, str]] = {}
    finish = None
    for chunk in client.chat.completions.create(
        model="gem", messages=WEATHER_CALL_FIRST, tools=[WEATHER_TOOL, TIME_TOOL], stream=True
    ):
        for choice in chunk.choices:
            finish = choice.finish_reason or finish
            for delta in choice.delta.tool_calls or ():
                entry = calls.setdefault(delta.index, {"id": "", "name": "", "arguments": ""})
                entry["id"] += delta.id or ""
                entry["name"] += (delta.function and delta.function.name) or ""
                entry["arguments"] += (delta.function and delta.function.arguments) or ""
    assert finish == "tool_calls"
    assert [(c["name"], json.loads(c["arguments"])) for c in calls.values()] == [
        ("get_weather", {"city": "Paris", "unit": "celsius"}),
        ("get_time", {"timezone": "Europe/Paris"}),
    ]
    assert all(CALL_ID.match(c["id"]) for c in calls.values())


@pytest.mark.matrix("gemini", "json_mode")
def test_e2e_json_mode(up: FakeUpstream, client: openai.OpenAI) -> None:
    _answer(
        up,
        {
            "candidates": [
                {"content": {"parts": [{"text": '{"ok": true}'}]}, "finishReason": "STOP"}
            ]
        },
    )
    schema = {"type": "object", "properties": {"ok": {"type": "boolean"}}, "required": ["ok"]}
    reply = client.chat.completions.create(
        model="gem",
        messages=HELLO,
        response_format={"type": "json_schema", "json_schema": {"name": "r", "schema": schema}},
    )
    assert json.loads(reply.choices[0].message.content or "") == {"ok": True}
    config = up.requests[-1].json["generationConfig"]
    assert config == {"responseMimeType": "application/json", "responseJsonSchema": schema}


@pytest.mark.matrix("gemini", "vision")
def test_e2e_image_input(up: FakeUpstream, client: openai.OpenAI) -> None:
    _answer(
        up,
        {"candidates": [{"content": {"parts": [{"text": "a red dot"}]}, "finishReason": "STOP"}]},
    )
    pixel = base64.b64encode(b"\x89PNG\r\n\x1a\n-fake-pixel").decode()
    reply = client.chat.completions.create(
        model="gem",
        messages=[
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "What is this?"},
                    {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{pixel}"}},
                    {"type": "image_url", "image_url": {"url": "gs://b/cat.jpg"}},
                ],
            }
        ],
    )
    assert reply.choices[0].message.content == "a red dot"
    assert up.requests[-1].json["contents"][0]["parts"] == [
        {"text": "What is this?"},
        {"inline_data": {"mime_type": "image/png", "data": pixel}},
        {"file_data": {"file_uri": "gs://b/cat.jpg", "mime_type": "image/jpeg"}},
    ]


@pytest.mark.matrix("gemini", "errors")
def test_e2e_safety(up: FakeUpstream, client: openai.OpenAI) -> None:
    _answer_stream(up, fixture("gemini_stream_safety.sse"))
    chunks = list(client.chat.completions.create(model="gem", messages=HELLO, stream=True))
    assert chunks[-1].choices[0].finish_reason == "content_filter"
    _answer(up, json.loads(fixture("gemini_blocked_prompt.json")))
    with pytest.raises(openai.BadRequestError) as info:
        client.chat.completions.create(model="gem", messages=HELLO)
    assert info.value.code == "content_policy_violation"
    assert (
        isinstance(info.value.body, dict) and info.value.body["type"] == "content_policy_violation"
    )


@pytest.mark.matrix("gemini", "errors")
def test_e2e_errors(up: FakeUpstream, client: openai.OpenAI) -> None:
    up.behave("status", status=429, body=fixture("gemini_error_quota.json"), times=1)
    with pytest.raises(openai.RateLimitError) as limited:
        client.chat.completions.create(model="gem", messages=HELLO)
    assert limited.value.response.headers["retry-after"] == "37"
    assert "exceeded your current quota" in limited.value.message
    up.behave("status", status=400, body=fixture("gemini_error_bad_key.json"), times=1)
    with pytest.raises(openai.AuthenticationError) as denied:
        client.chat.completions.create(model="gem", messages=HELLO)
    assert "gk-upstream-secret" not in str(denied.value.body)
    deadline = {
        "error": {"code": 504, "message": "Deadline expired", "status": "DEADLINE_EXCEEDED"}
    }
    up.behave("status", status=504, json=deadline, times=1)
    with pytest.raises(openai.APIStatusError) as timed_out:
        client.chat.completions.create(model="gem", messages=HELLO)
    assert timed_out.value.status_code == 408


@pytest.mark.matrix("gemini", "drop_params")
def test_e2e_unsupported_param(up: FakeUpstream, client: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as info:
        client.chat.completions.create(model="gem", messages=HELLO, logit_bias={"1": 1})
    assert "logit_bias" in info.value.message and up.requests == []
    _answer(up, {"candidates": [{"content": {"parts": [{"text": "ok"}]}, "finishReason": "STOP"}]})
    reply = client.chat.completions.create(
        model="gem", messages=HELLO, logit_bias={"1": 1}, extra_body={"drop_params": True}
    )
    assert reply.choices[0].message.content == "ok"
    assert "logit_bias" not in up.requests[-1].json


@pytest.mark.matrix("gemini", "embeddings")
def test_e2e_embeddings(up: FakeUpstream, client: openai.OpenAI) -> None:
    _answer(up, json.loads(fixture("gemini_embed.json")))
    result = client.embeddings.create(
        model="gem-embed", input=["hello", "world"], dimensions=4, encoding_format="float"
    )
    assert [d.embedding for d in result.data] == [
        [0.013168523, -0.008711934, -0.046782676, 0.00069968984],
        [-0.0215, 0.0316, 0.0078, -0.0402],
    ]
    sent = up.requests[-1]
    assert sent.path == "/v1beta/models/gemini-embedding-001:batchEmbedContents"
    assert sent.json == {
        "requests": [
            {
                "model": "models/gemini-embedding-001",
                "content": {"parts": [{"text": text}]},
                "outputDimensionality": 4,
            }
            for text in ("hello", "world")
        ]
    }
    # The SDK's default asks for base64: little-endian float32, decoded by the SDK.
    _answer(up, json.loads(fixture("gemini_embed.json")))
    packed = client.embeddings.create(model="gem-embed", input=["hello", "world"])
    expected = struct.unpack("<4f", struct.pack("<4f", -0.0215, 0.0316, 0.0078, -0.0402))
    assert packed.data[1].embedding == pytest.approx(list(expected))
