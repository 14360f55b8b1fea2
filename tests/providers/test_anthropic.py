"""The anthropic adapter's requests, row by row of providers.md §3.1, each checked
against the `anthropic` SDK's request types too.

Responses and streams: test_anthropic_stream.py; through the gateway:
test_anthropic_gateway.py.
"""

from __future__ import annotations

import functools
import tempfile
from pathlib import Path
from typing import Any

import msgspec
import pytest
from anthropic.types.message_create_params import MessageCreateParamsNonStreaming

from tests.providers.anthropic_sdk_types import check_request_type, check_sdk_type
from tianji.compile.model import Deployment
from tianji.compile.pipeline import Built, build
from tianji.errors import InvalidRequest, UnsupportedParams
from tianji.providers import Call, adapter_for

FIXTURES = Path(__file__).parent / "fixtures"
MODEL = "claude-sonnet-4-5"
HI = {"role": "user", "content": [{"type": "text", "text": "Hi"}]}
CACHE = {"type": "ephemeral"}


def test_the_sdk_check_catches_mistakes() -> None:
    good = {"model": MODEL, "max_tokens": 5, "messages": [HI]}
    check_sdk_type(good, MessageCreateParamsNonStreaming)
    for bad in (
        {**good, "max_tokens": "5"},
        {"model": MODEL, "messages": [HI]},
        {**good, "stop": ["x"]},
        {**good, "messages": [{"role": "user", "content": [{"type": "image", "url": "x"}]}]},
        {**good, "tool_choice": {"type": "required"}},
    ):
        with pytest.raises(AssertionError):
            check_sdk_type(bad, MessageCreateParamsNonStreaming)


# --------------------------------------------------------------------------- requests


def _built(tmp_path: Path, extra: str, key: str = "sk-ant-api03-test") -> Built:
    config = tmp_path / "config.yaml"
    config.write_text(
        "model_list:\n  - model_name: claude\n    litellm_params:\n"
        f"      model: anthropic/{MODEL}\n      api_key: {key}\n{extra}"
    )
    built, problems = build(config, env={})
    assert built is not None, [p.render() for p in problems]
    return built


@functools.cache
def deployment(extra: str = "", key: str = "sk-ant-api03-test") -> Deployment:
    """The `claude` deployment; `extra` adds litellm_params lines (6-space indent)."""
    with tempfile.TemporaryDirectory() as tmp:
        return _built(Path(tmp), extra, key).gateway.models.groups["claude"].deployments[0]


@functools.cache
def openai_params(operation: str) -> frozenset[str]:
    """The OpenAI params of an operation, as the gateway passes them in Call."""
    with tempfile.TemporaryDirectory() as tmp:
        return _built(Path(tmp), "").gateway.providers["openai"].params[operation]


def make_call(d: Deployment, body: dict[str, Any], operation: str = "chat", **kw: Any) -> Call:
    return Call(
        operation,
        d,
        d.model,
        body={"model": "claude", **body},
        stream=bool(body.get("stream")),
        openai_params=openai_params(operation),
        **kw,
    )


def sent_body(d: Deployment, body: dict[str, Any], **kw: Any) -> dict[str, Any]:
    request = adapter_for("anthropic").build_request(make_call(d, body, **kw))
    sent: dict[str, Any] = msgspec.json.decode(request.body)
    return sent


def expected(messages: list[Any] | None = None, **fields: Any) -> dict[str, Any]:
    return {"model": MODEL, "messages": messages or [HI], "max_tokens": 4096, **fields}


def user(*blocks: dict[str, Any]) -> dict[str, Any]:
    return {"role": "user", "content": list(blocks)}


def text(value: str, **extra: Any) -> dict[str, Any]:
    return {"type": "text", "text": value, **extra}


WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Weather for a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
    },
}
WEATHER_SCHEMA = WEATHER_TOOL["function"]["parameters"]  # type: ignore[index]
ANTHROPIC_WEATHER = {
    "name": "get_weather",
    "description": "Weather for a city",
    "input_schema": WEATHER_SCHEMA,
}
ASK = {"role": "user", "content": "Hi"}
PNG = (
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR4"
    "nGNgYGD4DwABBAEAwS2OUAAAAABJRU5ErkJggg=="
)
CALL_1 = {
    "id": "toolu_1",
    "type": "function",
    "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'},
}
CALL_2 = {"id": "toolu_2", "type": "function", "function": {"name": "get_time", "arguments": ""}}
PERSON = {"type": "object", "properties": {"name": {"type": "string"}}}
THINKING = {"type": "thinking", "thinking": "Paris first.", "signature": "sig=="}
REDACTED = {"type": "redacted_thinking", "data": "opaque=="}

# (OpenAI request fields, Anthropic body expected) for each row of providers.md §3.1.
ROWS: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {
    "system_and_developer_joined": (
        {"messages": [{"role": "system", "content": "Be brief."},
                      {"role": "developer", "content": [text("Use French.")]}, ASK]},
        expected(system="Be brief.\n\nUse French."),
    ),
    "system_with_cache_control_is_blocks": (
        {"messages": [{"role": "system", "content": [text("Long manual", cache_control=CACHE)]},
                      {"role": "system", "content": "Be brief."}, ASK]},
        expected(system=[text("Long manual", cache_control=CACHE), text("Be brief.")]),
    ),
    "text_parts_keep_cache_control": (
        {"messages": [{"role": "user", "content": [text("a"), text("b", cache_control=CACHE)]}]},
        expected([user(text("a"), text("b", cache_control=CACHE))]),
    ),
    "image_data_url": (
        {"messages": [{"role": "user", "content": [
            text("What is it?"),
            {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG}"}}]}]},
        expected([user(text("What is it?"), {"type": "image", "source": {
            "type": "base64", "media_type": "image/png", "data": PNG}})]),
    ),
    "image_https_url": (
        {"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {
            "url": "https://example.com/cat.jpg", "detail": "high"}}]}]},
        expected([user({"type": "image", "source": {"type": "url",
                                                    "url": "https://example.com/cat.jpg"}})]),
    ),
    "pdf_file_part": (
        {"messages": [{"role": "user", "content": [{"type": "file", "file": {
            "filename": "paper.pdf", "file_data": "data:application/pdf;base64,JVBERi0xLjQ="}}]}]},
        expected([user({"type": "document", "title": "paper.pdf", "source": {
            "type": "base64", "media_type": "application/pdf", "data": "JVBERi0xLjQ="}})]),
    ),
    "tool_calls_and_merged_tool_results": (
        {"messages": [ASK, {"role": "assistant", "content": None, "tool_calls": [CALL_1, CALL_2]},
                      {"role": "tool", "tool_call_id": "toolu_1", "content": "18C"},
                      {"role": "tool", "tool_call_id": "toolu_2", "content": [text("noon")]},
                      {"role": "user", "content": "Thanks"}]},
        expected([HI,
                  {"role": "assistant", "content": [
                      {"type": "tool_use", "id": "toolu_1", "name": "get_weather",
                       "input": {"city": "Paris"}},
                      {"type": "tool_use", "id": "toolu_2", "name": "get_time", "input": {}}]},
                  user({"type": "tool_result", "tool_use_id": "toolu_1", "content": "18C"},
                       {"type": "tool_result", "tool_use_id": "toolu_2", "content": [text("noon")]},
                       text("Thanks"))]),
    ),
    "same_roles_merged_and_leading_user_turn": (
        {"messages": [{"role": "assistant", "content": "Earlier"},
                      {"role": "assistant", "content": "More"},
                      {"role": "user", "content": "a"}, {"role": "user", "content": "b"}]},
        expected([{"role": "user", "content": "."},
                  {"role": "assistant", "content": [text("Earlier"), text("More")]},
                  user(text("a"), text("b"))]),
    ),
    "thinking_blocks_first_in_assistant_turn": (
        {"messages": [ASK, {"role": "assistant", "content": "Checking.", "tool_calls": [CALL_1],
                            "thinking_blocks": [THINKING, REDACTED]},
                      {"role": "tool", "tool_call_id": "toolu_1", "content": "18C"}]},
        expected([HI,
                  {"role": "assistant", "content": [
                      THINKING, REDACTED, text("Checking."),
                      {"type": "tool_use", "id": "toolu_1", "name": "get_weather",
                       "input": {"city": "Paris"}}]},
                  user({"type": "tool_result", "tool_use_id": "toolu_1", "content": "18C"})]),
    ),
    "tools_to_input_schema": (
        {"messages": [ASK], "tools": [WEATHER_TOOL,
                                      {"type": "function", "function": {"name": "now"}}]},
        expected(tools=[ANTHROPIC_WEATHER,
                        {"name": "now", "input_schema": {"type": "object", "properties": {}}}]),
    ),
    "tool_choice_auto": (
        {"messages": [ASK], "tools": [WEATHER_TOOL], "tool_choice": "auto"},
        expected(tools=[ANTHROPIC_WEATHER], tool_choice={"type": "auto"}),
    ),
    "tool_choice_required": (
        {"messages": [ASK], "tools": [WEATHER_TOOL], "tool_choice": "required"},
        expected(tools=[ANTHROPIC_WEATHER], tool_choice={"type": "any"}),
    ),
    "tool_choice_none": (
        {"messages": [ASK], "tools": [WEATHER_TOOL], "tool_choice": "none"},
        expected(tools=[ANTHROPIC_WEATHER], tool_choice={"type": "none"}),
    ),
    "tool_choice_named_function": (
        {"messages": [ASK], "tools": [WEATHER_TOOL],
         "tool_choice": {"type": "function", "function": {"name": "get_weather"}}},
        expected(tools=[ANTHROPIC_WEATHER], tool_choice={"type": "tool", "name": "get_weather"}),
    ),
    "parallel_tool_calls_false": (
        {"messages": [ASK], "tools": [WEATHER_TOOL], "parallel_tool_calls": False},
        expected(tools=[ANTHROPIC_WEATHER],
                 tool_choice={"type": "auto", "disable_parallel_tool_use": True}),
    ),
    "parallel_false_with_required": (
        {"messages": [ASK], "tools": [WEATHER_TOOL], "tool_choice": "required",
         "parallel_tool_calls": False},
        expected(tools=[ANTHROPIC_WEATHER],
                 tool_choice={"type": "any", "disable_parallel_tool_use": True}),
    ),
    "response_format_json_schema": (
        {"messages": [ASK], "response_format": {"type": "json_schema", "json_schema": {
            "name": "person", "schema": PERSON}}},
        expected(tools=[{"name": "json_tool_call", "input_schema": PERSON}],
                 tool_choice={"type": "tool", "name": "json_tool_call"}),
    ),
    "response_format_json_object": (
        {"messages": [ASK], "response_format": {"type": "json_object"}},
        expected(tools=[{"name": "json_tool_call", "input_schema": {"type": "object"}}],
                 tool_choice={"type": "tool", "name": "json_tool_call"}),
    ),
    "json_mode_beside_client_tools_is_not_forced": (
        {"messages": [ASK], "tools": [WEATHER_TOOL], "response_format": {"type": "json_object"}},
        expected(tools=[ANTHROPIC_WEATHER,
                        {"name": "json_tool_call", "input_schema": {"type": "object"}}]),
    ),
    "max_completion_tokens": (
        {"messages": [ASK], "max_completion_tokens": 300},
        expected(max_tokens=300),
    ),
    "stop_string_to_list": (
        {"messages": [ASK], "stop": "END"},
        expected(stop_sequences=["END"]),
    ),
    "stop_list": (
        {"messages": [ASK], "stop": ["END", "\n\nHuman:"]},
        expected(stop_sequences=["END", "\n\nHuman:"]),
    ),
    "sampling": (
        {"messages": [ASK], "temperature": 0.2, "top_p": 0.9, "top_k": 40},
        expected(temperature=0.2, top_p=0.9, top_k=40),
    ),
    "user_to_metadata": (
        {"messages": [ASK], "user": "user-42", "metadata": {"trace": "x"}},
        expected(metadata={"user_id": "user-42"}),
    ),
    "reasoning_effort_to_thinking_budget": (
        {"messages": [ASK], "reasoning_effort": "medium"},
        expected(thinking={"type": "enabled", "budget_tokens": 2048}, max_tokens=4096 + 2048),
    ),
    "thinking_passed_through": (
        {"messages": [ASK], "thinking": {"type": "enabled", "budget_tokens": 5000},
         "max_tokens": 9000},
        expected(thinking={"type": "enabled", "budget_tokens": 5000}, max_tokens=9000),
    ),
    "web_search_options": (
        {"messages": [ASK], "web_search_options": {"search_context_size": "low", "user_location": {
            "type": "approximate", "approximate": {"city": "Paris", "country": "FR"}}}},
        expected(tools=[{"type": "web_search_20250305", "name": "web_search", "max_uses": 1,
                         "user_location": {"type": "approximate", "city": "Paris",
                                           "country": "FR"}}]),
    ),
    "stream": (
        {"messages": [ASK], "stream": True, "stream_options": {"include_usage": True}},
        expected(stream=True),
    ),
}  # fmt: skip


@pytest.mark.parametrize("row", list(ROWS))
def test_request_rows(row: str) -> None:
    body, want = ROWS[row]
    sent = sent_body(deployment(), body)
    assert sent == want
    check_request_type(sent)


def test_max_tokens_chain_and_deployment_defaults() -> None:
    configured = deployment("      max_tokens: 777\n      temperature: 0.3\n      top_k: 9\n")
    sent = sent_body(configured, {"messages": [ASK]})
    assert (sent["max_tokens"], sent["temperature"], sent["top_k"]) == (777, 0.3, 9)
    # The client's values win over the deployment's defaults, whichever name they use.
    sent = sent_body(configured, {"messages": [ASK], "max_completion_tokens": 50, "temperature": 1})
    assert (sent["max_tokens"], sent["temperature"]) == (50, 1)
    assert "max_completion_tokens" not in sent
    assert sent_body(deployment(), {"messages": [ASK]})["max_tokens"] == 4096


@pytest.mark.parametrize(
    ("param", "value"),
    [("n", 2), ("logprobs", True), ("frequency_penalty", 0.5), ("presence_penalty", 0.1),
     ("seed", 7), ("logit_bias", {"50256": -100})],
)  # fmt: skip
def test_unsupported_params_are_rejected_or_dropped(param: str, value: Any) -> None:
    body = {"messages": [ASK], param: value}
    with pytest.raises(UnsupportedParams) as info:
        sent_body(deployment(), body)
    assert info.value.status == 400 and info.value.param == param
    assert "anthropic does not support parameters" in info.value.message
    assert sent_body(deployment(), body, drop_params=True) == expected()


def test_n_1_is_the_default_and_extras_are_forwarded() -> None:
    sent = sent_body(deployment(), {"messages": [ASK], "n": 1, "container": "ctr_1"})
    assert sent == expected(container="ctr_1")
    check_request_type(sent)


@pytest.mark.parametrize(
    ("api_base", "url"),
    [
        (None, "https://api.anthropic.com/v1/messages"),
        ("https://proxy.example", "https://proxy.example/v1/messages"),
        ("https://proxy.example/anthropic/", "https://proxy.example/anthropic/v1/messages"),
        ("https://proxy.example/v1", "https://proxy.example/v1/messages"),
        ("https://proxy.example/v1/messages", "https://proxy.example/v1/messages"),
    ],
)
def test_urls(api_base: str | None, url: str) -> None:
    d = deployment(f"      api_base: {api_base}\n" if api_base else "")
    assert adapter_for("anthropic").build_request(make_call(d, {"messages": [ASK]})).url == url


def test_api_key_headers() -> None:
    request = adapter_for("anthropic").build_request(make_call(deployment(), {"messages": [ASK]}))
    headers = dict(request.headers)
    assert headers["x-api-key"] == "sk-ant-api03-test"
    assert headers["anthropic-version"] == "2023-06-01"
    assert headers["content-type"] == "application/json"
    assert "authorization" not in headers and "anthropic-beta" not in headers


def test_oauth_token_is_bearer_with_the_oauth_beta() -> None:
    d = deployment(
        "      headers: {anthropic-beta: prompt-caching-2024-07-31}\n", "sk-ant-oat01-abc"
    )
    headers = adapter_for("anthropic").build_request(make_call(d, {"messages": [ASK]})).headers
    names = [name for name, _ in headers]
    assert "x-api-key" not in names and names.count("anthropic-beta") == 1
    found = dict(headers)
    assert found["authorization"] == "Bearer sk-ant-oat01-abc"
    assert found["anthropic-beta"] == "prompt-caching-2024-07-31,oauth-2025-04-20"
    assert found["anthropic-version"] == "2023-06-01"


@pytest.mark.parametrize(
    ("message", "param"),
    [
        ({"role": "assistant", "tool_calls": [{**CALL_1, "function": {
            "name": "f", "arguments": "{not json"}}]},
         "messages[1].tool_calls[0].function.arguments"),
        ({"role": "tool", "content": "x"}, "messages[1].tool_call_id"),
        ({"role": "function", "name": "f", "content": "x"}, "messages[1].role"),
        ({"role": "user", "content": [{"type": "file", "file": {"file_id": "file-1"}}]},
         "messages[1].content[0]"),
        ({"role": "user", "content": [{"type": "input_audio", "input_audio": {}}]},
         "messages[1].content[0]"),
        ({"role": "user", "content": [{"type": "image_url", "image_url": {
            "url": "data:image/png,raw"}}]}, "messages[1].content[0]"),
    ],
)  # fmt: skip
def test_untranslatable_messages_are_400(message: dict[str, Any], param: str) -> None:
    with pytest.raises(InvalidRequest) as info:
        sent_body(deployment(), {"messages": [ASK, message]})
    assert info.value.status == 400 and info.value.param == param


def test_text_completion_request() -> None:
    d = deployment()
    sent = sent_body(
        d, {"prompt": "Say hi", "max_tokens": 20, "stop": ["\n"]}, operation="text_completion"
    )
    assert sent == expected([user(text("Say hi"))], max_tokens=20, stop_sequences=["\n"])
    assert (
        adapter_for("anthropic")
        .build_request(make_call(d, {"prompt": "x"}, "text_completion"))
        .url.endswith("/v1/messages")
    )
    with pytest.raises(UnsupportedParams):
        sent_body(d, {"prompt": "x", "echo": True}, operation="text_completion")
    with pytest.raises(InvalidRequest):
        sent_body(d, {"prompt": ["a", "b"]}, operation="text_completion")
