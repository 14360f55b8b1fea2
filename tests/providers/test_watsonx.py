"""watsonx.ai: request translation, answers and streams (fixtures fed 1 byte at a time),
the IAM token step against loopback servers, and the openai SDK through the gateway."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

import msgspec
import openai
import pytest

from tests.conftest import MASTER_KEY, Gateway, running_gateway
from tests.support.fake_upstream import FakeUpstream
from tests.support.providers import fixture, sse_frames
from tianji.compile.model import Deployment
from tianji.compile.pipeline import build
from tianji.errors import TianjiError, UnsupportedParams
from tianji.providers import Call, adapter_for
from tianji.providers.watsonx import WatsonxAdapter
from tianji.upstream import HttpTransport, Timeouts, UpstreamRequest, UpstreamResponse

pytestmark = pytest.mark.timeout(30)

frames = sse_frames
# An IAM access token is a JWT; an IBM Cloud API key has no dots.
TOKEN = "eyJhbGciOiJSUzI1NiJ9.eyJpYW1faWQiOiJJQk1pZC10ZXN0In0.c2lnbmF0dXJl"
API_KEY = "wx-apikey-0123456789abcdefABCDEF"
MESSAGES = [{"role": "user", "content": "Capital of France?"}]


def deployment(tmp_path: Path, params: str) -> Deployment:
    config = tmp_path / "c.yaml"
    config.write_text(f"model_list:\n  - model_name: m\n    litellm_params: {params}\n")
    built, problems = build(
        config, env={}, strict_env=False
    )  # translation tests: config checks elsewhere
    assert built is not None, [p.render() for p in problems]
    return built.gateway.models.groups["m"].deployments[0]


def make_call(d: Deployment, body: dict[str, Any], operation: str = "chat", **kw: Any) -> Call:
    openai_params = {
        "chat": frozenset({"temperature", "logit_bias", "max_completion_tokens", "stream"}),
        "embeddings": frozenset({"dimensions", "encoding_format", "user"}),
    }.get(operation, frozenset())
    return Call(operation, d, d.model, body=body, openai_params=openai_params, **kw)


def run_bytewise(call: Call, data: bytes, adapter: Any = None) -> bytes:
    translator = (adapter or adapter_for("watsonx")).stream_translator(call)
    assert translator is not None
    out = b"".join(translator.feed(data[i : i + 1]) for i in range(len(data)))
    return out + translator.close()


GRANITE = f"{{model: watsonx/ibm/granite-3-8b-instruct, api_key: {TOKEN}, project_id: proj-1}}"


# --------------------------------------------------------------------------- requests


def test_chat_request_translation(tmp_path: Path) -> None:
    d = deployment(
        tmp_path,
        f"{{model: watsonx/ibm/granite-3-8b-instruct, api_key: {TOKEN}, project_id: proj-1, "
        "api_base: 'https://eu-de.ml.cloud.ibm.com', temperature: 0.3}",
    )
    tool = {"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}
    body = {
        "model": "m",
        "messages": MESSAGES,
        "tools": [tool],
        "tool_choice": "required",
        "max_completion_tokens": 50,
        "stop": ["\n\n"],
        "time_limit": 3000,
    }
    request = adapter_for("watsonx").build_request(make_call(d, body))
    assert request.url == "https://eu-de.ml.cloud.ibm.com/ml/v1/text/chat?version=2024-03-13"
    sent = msgspec.json.decode(request.body)
    assert sent == {
        "model_id": "ibm/granite-3-8b-instruct",
        "project_id": "proj-1",
        "messages": MESSAGES,
        "tools": [tool],
        "tool_choice_option": "required",
        "max_tokens": 50,
        "stop": ["\n\n"],
        "time_limit": 3000,
        "temperature": 0.3,
    }
    assert ("authorization", f"Bearer {TOKEN}") in request.headers

    forced = {"type": "function", "function": {"name": "f"}}
    streamed = adapter_for("watsonx").build_request(
        make_call(d, {"messages": MESSAGES, "tool_choice": forced, "stream": True}, stream=True)
    )
    assert streamed.url.split("?")[0].endswith("/ml/v1/text/chat_stream")
    sent = msgspec.json.decode(streamed.body)
    assert sent["tool_choice"] == forced and "stream" not in sent


def test_space_deployment_and_params(tmp_path: Path) -> None:
    d = deployment(tmp_path, f"{{model: watsonx/deployment/dep-7, api_key: {TOKEN}}}")
    request = adapter_for("watsonx").build_request(make_call(d, {"messages": MESSAGES}))
    assert request.url.startswith("https://us-south.ml.cloud.ibm.com/ml/v1/deployments/dep-7/")
    assert "model_id" not in msgspec.json.decode(request.body)

    spaced = deployment(tmp_path, f"{{model: watsonx/ibm/g, api_key: {TOKEN}, space_id: sp-2}}")
    sent = msgspec.json.decode(
        adapter_for("watsonx").build_request(make_call(spaced, {"messages": MESSAGES})).body
    )
    assert sent["space_id"] == "sp-2" and "project_id" not in sent

    with pytest.raises(UnsupportedParams) as info:
        adapter_for("watsonx").build_request(make_call(spaced, {"messages": [], "logit_bias": {}}))
    assert info.value.param == "logit_bias"

    bare = deployment(tmp_path, f"{{model: watsonx/ibm/g, api_key: {TOKEN}}}")
    with pytest.raises(TianjiError, match="project_id or space_id"):
        adapter_for("watsonx").build_request(make_call(bare, {"messages": MESSAGES}))


def test_text_embeddings_and_rerank_requests(tmp_path: Path) -> None:
    d = deployment(tmp_path, GRANITE)
    adapter = adapter_for("watsonx")
    text = adapter.build_request(
        make_call(
            d,
            {
                "prompt": ["Say hi"],
                "max_tokens": 9,
                "temperature": 0.7,
                "stop": "END",
                "seed": 4,
                "top_k": 20,
            },
            "text_completion",
        )
    )
    assert "/ml/v1/text/generation?" in text.url
    assert msgspec.json.decode(text.body) == {
        "model_id": "ibm/granite-3-8b-instruct",
        "project_id": "proj-1",
        "input": "Say hi",
        "parameters": {
            "max_new_tokens": 9,
            "temperature": 0.7,
            "stop_sequences": ["END"],
            "random_seed": 4,
            "top_k": 20,
            "decoding_method": "sample",
        },
    }
    embed = adapter.build_request(make_call(d, {"input": "a b", "user": "u"}, "embeddings"))
    assert msgspec.json.decode(embed.body)["inputs"] == ["a b"]
    with pytest.raises(UnsupportedParams):
        adapter.build_request(make_call(d, {"input": "x", "dimensions": 8}, "embeddings"))
    rerank = adapter.build_request(
        make_call(d, {"query": "q", "documents": ["d0", {"text": "d1"}], "top_n": 1}, "rerank")
    )
    sent = msgspec.json.decode(rerank.body)
    assert sent["inputs"] == [{"text": "d0"}, {"text": "d1"}]
    assert sent["parameters"] == {"return_options": {"inputs": False, "top_n": 1}}


# --------------------------------------------------------------------------- answers


def test_answers_translated(tmp_path: Path) -> None:
    d = deployment(tmp_path, GRANITE)
    adapter = adapter_for("watsonx")
    chat = msgspec.json.decode(
        adapter.translate_response(make_call(d, {}), fixture("watsonx_chat.json")) or b""
    )
    assert chat["object"] == "chat.completion" and chat["model"] == "ibm/granite-3-8b-instruct"
    assert chat["choices"][0]["message"]["content"] == "Paris is the capital of France."
    assert chat["usage"]["total_tokens"] == 25 and "model_id" not in chat and "system" not in chat

    generated = {
        "model_id": "ibm/granite-13b",
        "results": [
            {
                "generated_text": "Hi!",
                "generated_token_count": 3,
                "input_token_count": 5,
                "stop_reason": "max_tokens",
            }
        ],
    }
    text = msgspec.json.decode(
        adapter.translate_response(
            make_call(d, {}, "text_completion"), msgspec.json.encode(generated)
        )
        or b""
    )
    assert text["choices"][0] == {
        "text": "Hi!",
        "index": 0,
        "logprobs": None,
        "finish_reason": "length",
    }
    assert text["usage"] == {"prompt_tokens": 5, "completion_tokens": 3, "total_tokens": 8}

    vectors = {
        "model_id": "ibm/slate",
        "results": [{"embedding": [0.5, -1.0]}],
        "input_token_count": 2,
    }
    embed_call = make_call(d, {"input": "x", "encoding_format": "base64"}, "embeddings")
    embedded = msgspec.json.decode(
        adapter.translate_response(embed_call, msgspec.json.encode(vectors)) or b""
    )
    assert embedded["data"][0]["embedding"] == "AAAAPwAAgL8="  # float32 LE of 0.5, -1.0
    assert embedded["usage"] == {"prompt_tokens": 2, "total_tokens": 2}

    ranked = {
        "results": [{"index": 1, "score": 0.9}, {"index": 0, "score": 0.1}],
        "input_token_count": 7,
    }
    rerank_call = make_call(
        d, {"query": "q", "documents": ["a", "b"], "return_documents": True}, "rerank"
    )
    result = msgspec.json.decode(
        adapter.translate_response(rerank_call, msgspec.json.encode(ranked)) or b""
    )
    assert result["results"] == [
        {"index": 1, "relevance_score": 0.9, "document": {"text": "b"}},
        {"index": 0, "relevance_score": 0.1, "document": {"text": "a"}},
    ]


# --------------------------------------------------------------------------- streams


def test_chat_stream_fixture_bytewise(tmp_path: Path) -> None:
    d = deployment(tmp_path, GRANITE)
    body = {"messages": MESSAGES, "stream": True, "stream_options": {"include_usage": True}}
    out = frames(run_bytewise(make_call(d, body, stream=True), fixture("watsonx_chat_stream.sse")))
    assert out[-1] == "[DONE]"
    chunks = out[:-1]
    assert all(c["object"] == "chat.completion.chunk" and "model_id" not in c for c in chunks)
    text = "".join(c["choices"][0]["delta"].get("content", "") for c in chunks if c["choices"])
    assert text == "Bonjour\u00a0! Je suis Granite — ravi de vous aider."
    assert chunks[0]["choices"][0]["delta"]["role"] == "assistant"
    assert [c["choices"][0]["finish_reason"] for c in chunks if c["choices"]][-1] == "stop"
    assert chunks[-1]["choices"] == [] and chunks[-1]["usage"]["total_tokens"] == 34

    quiet = frames(
        run_bytewise(
            make_call(d, {"messages": MESSAGES}, stream=True), fixture("watsonx_chat_stream.sse")
        )
    )
    assert all("usage" not in c for c in quiet[:-1])  # not asked: no usage chunk


def test_tool_call_stream_fixture(tmp_path: Path) -> None:
    d = deployment(tmp_path, GRANITE)
    out = frames(
        run_bytewise(make_call(d, {}, stream=True), fixture("watsonx_chat_tools_stream.sse"))
    )
    calls = [
        c["choices"][0]["delta"]["tool_calls"][0]
        for c in out[:-1]
        if c["choices"] and "tool_calls" in c["choices"][0]["delta"]
    ]
    assert (
        calls[0]["id"].startswith("chatcmpl-tool-")
        and calls[0]["function"]["name"] == "get_weather"
    )
    arguments = "".join(c["function"]["arguments"] for c in calls)
    assert json.loads(arguments) == {"city": "Paris", "unit": "celsius"}
    assert out[-2]["choices"][0]["finish_reason"] == "tool_calls"


def test_generation_stream_and_error_event(tmp_path: Path) -> None:
    d = deployment(tmp_path, GRANITE)
    body = {"prompt": "x", "stream": True, "stream_options": {"include_usage": True}}
    out = frames(
        run_bytewise(
            make_call(d, body, "text_completion", stream=True),
            fixture("watsonx_generation_stream.sse"),
        )
    )
    assert "".join(c["choices"][0]["text"] for c in out[:-2]) == "The sky is blue."
    assert out[-3]["choices"][0]["finish_reason"] == "stop"
    assert out[-2]["usage"] == {"prompt_tokens": 6, "completion_tokens": 6, "total_tokens": 12}

    translator = adapter_for("watsonx").stream_translator(make_call(d, {}, stream=True))
    assert translator is not None
    error = (
        b'event: error\ndata: {"errors":[{"code":"model_no_support","message":"overloaded"}],'
        b'"status_code":503}\n\n'
    )
    with pytest.raises(TianjiError) as info:
        translator.feed(error)
    assert info.value.status == 503 and "overloaded" in info.value.message
    garbled = adapter_for("watsonx").stream_translator(make_call(d, {}, stream=True))
    assert garbled is not None
    with pytest.raises(TianjiError) as bad:
        garbled.feed(b"event: message\ndata: [1, 2]\n\n")
    assert bad.value.status == 502


@pytest.mark.parametrize(
    ("status", "message", "expected_status", "expected_code"),
    [
        (
            400,
            "Token sequence length is longer than the specified maximum sequence length "
            "for this model (1336 > 512).",
            400,
            "context_length_exceeded",
        ),
        (401, "Failed to authenticate the request due to an expired token", 401, "401"),
        (429, "token_quota_reached", 429, "429"),
        (503, "Service unavailable", 503, "503"),
        (500, "Internal error", 502, "500"),
    ],
)
def test_error_statuses(
    tmp_path: Path, status: int, message: str, expected_status: int, expected_code: str
) -> None:
    d = deployment(tmp_path, GRANITE)
    body = msgspec.json.encode(
        {"errors": [{"code": "x", "message": message}], "trace": "t", "status_code": status}
    )
    error = adapter_for("watsonx").error_from_status(make_call(d, {}), status, {}, body)
    assert (error.status, error.code) == (expected_status, expected_code)
    assert error.message == f"watsonxException - {message}"


# --------------------------------------------------------------------------- IAM hook


def transport_send(transport: HttpTransport) -> Any:
    async def send(request: UpstreamRequest, timeouts: Timeouts) -> UpstreamResponse:
        return await transport.send(request, timeouts)

    return send


def iam_answer(token: str, expiration: int) -> dict[str, Any]:
    return {
        "access_token": token,
        "refresh_token": "not_supported",
        "token_type": "Bearer",
        "expires_in": 3600,
        "expiration": expiration,
        "scope": "ibm openid",
    }


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def iam() -> Iterator[FakeUpstream]:
    with FakeUpstream() as up:
        yield up


async def test_iam_token_cached_then_refreshed(tmp_path: Path, iam: FakeUpstream) -> None:
    clock = Clock(1_700_000_000)
    adapter = WatsonxAdapter(iam_url=iam.url("/identity/token"), clock=clock)
    d = deployment(tmp_path, f"{{model: watsonx/ibm/g, api_key: {API_KEY}, project_id: p}}")
    iam.behave("status", status=200, json=iam_answer("eyJ.first.tok", 1_700_003_600), times=1)
    iam.behave("status", status=200, json=iam_answer("eyJ.second.tok", 1_700_007_200), times=1)
    transport = HttpTransport()
    try:
        send = transport_send(transport)
        calls = [make_call(d, {"messages": MESSAGES}) for _ in range(3)]
        for call in calls:
            await adapter.prepare(call, send)
        await adapter.prepare(calls[0], send)  # a retried call: the header is replaced
        assert len(iam.requests) == 1
        assert calls[0].extra_headers == (("authorization", "Bearer eyJ.first.tok"),)
        exchange = iam.requests[0]
        assert exchange.method == "POST" and exchange.path == "/identity/token"
        assert dict(parse_qsl(exchange.body.decode())) == {
            "grant_type": "urn:ibm:params:oauth:grant-type:apikey",
            "apikey": API_KEY,
        }
        request = adapter.build_request(calls[2])
        auth = [v for k, v in request.headers if k == "authorization"]
        assert auth == ["Bearer eyJ.first.tok"]  # the API key itself never goes upstream

        clock.now = 1_700_003_600 - 59  # inside the last minute: refresh
        late = make_call(d, {"messages": MESSAGES})
        await adapter.prepare(late, send)
        assert len(iam.requests) == 2
        assert ("authorization", "Bearer eyJ.second.tok") in adapter.build_request(late).headers
    finally:
        await transport.aclose()


async def test_iam_concurrent_callers_share_one_exchange(tmp_path: Path) -> None:
    hits = 0

    async def slow_iam(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal hits
        await reader.readuntil(b"\r\n\r\n")
        hits += 1
        await asyncio.sleep(0.3)  # long enough for every caller to arrive meanwhile
        body = json.dumps(iam_answer("eyJ.shared.tok", 4_000_000_000)).encode()
        writer.write(
            b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n"
            b"content-length: %d\r\n\r\n%s" % (len(body), body)
        )
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(slow_iam, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    adapter = WatsonxAdapter(iam_url=f"http://127.0.0.1:{port}/identity/token")
    d = deployment(tmp_path, f"{{model: watsonx/ibm/g, api_key: {API_KEY}, project_id: p}}")
    transport = HttpTransport()
    try:
        calls = [make_call(d, {"messages": MESSAGES}) for _ in range(8)]
        await asyncio.gather(*(adapter.prepare(c, transport_send(transport)) for c in calls))
        assert hits == 1
        assert all(c.extra_headers == (("authorization", "Bearer eyJ.shared.tok"),) for c in calls)
    finally:
        await transport.aclose()
        server.close()
        await server.wait_closed()


async def test_iam_refusal_is_an_authentication_error(tmp_path: Path, iam: FakeUpstream) -> None:
    adapter = WatsonxAdapter(iam_url=iam.url("/identity/token"))
    d = deployment(tmp_path, f"{{model: watsonx/ibm/g, api_key: {API_KEY}, project_id: p}}")
    refusal = {
        "errorCode": "BXNIM0415E",
        "errorMessage": "Provided API key could not be found.",
        "context": {"requestId": "r-1"},
    }
    iam.behave("status", status=400, json=refusal)
    transport = HttpTransport()
    try:
        with pytest.raises(TianjiError) as info:
            await adapter.prepare(make_call(d, {"messages": MESSAGES}), transport_send(transport))
    finally:
        await transport.aclose()
    assert info.value.status == 401 and "could not be found" in info.value.message


def test_api_key_without_prepare_is_refused(tmp_path: Path) -> None:
    d = deployment(tmp_path, f"{{model: watsonx/ibm/g, api_key: {API_KEY}, project_id: p}}")
    with pytest.raises(TianjiError, match="prepare hook"):
        WatsonxAdapter().build_request(make_call(d, {"messages": MESSAGES}))


# --------------------------------------------------------------------------- gateway


def gateway_config(up: FakeUpstream, key_line: str = "") -> str:
    return f"""
model_list:
  - model_name: granite
    litellm_params:
      model: watsonx/ibm/granite-3-8b-instruct
      api_base: {up.root_url}
      project_id: proj-1
      timeout: 5
      {key_line}
general_settings:
  master_key: {MASTER_KEY}
"""


@pytest.fixture
def token_gateway(upstream: FakeUpstream, tmp_path: Path) -> Iterator[Gateway]:
    with running_gateway(gateway_config(upstream), tmp_path, env={"WATSONX_TOKEN": TOKEN}) as gw:
        yield gw


def client(gw: Gateway) -> openai.OpenAI:
    return openai.OpenAI(base_url=gw.v1, api_key=MASTER_KEY, max_retries=0)


@pytest.mark.matrix("watsonx", "chat")
@pytest.mark.matrix("watsonx", "usage")
def test_gateway_chat(token_gateway: Gateway, upstream: FakeUpstream) -> None:
    upstream.behave(
        "status", status=200, body=fixture("watsonx_chat.json"), content_type="application/json"
    )
    reply = client(token_gateway).chat.completions.create(
        model="granite", messages=MESSAGES, max_tokens=20
    )
    assert reply.choices[0].message.content == "Paris is the capital of France."
    assert reply.usage is not None and reply.usage.prompt_tokens == 17
    seen = upstream.last_request
    assert seen.path == "/ml/v1/text/chat" and seen.query == {"version": "2024-03-13"}
    assert seen.headers["authorization"] == f"Bearer {TOKEN}"
    assert seen.json["model_id"] == "ibm/granite-3-8b-instruct" and seen.json["max_tokens"] == 20


@pytest.mark.matrix("watsonx", "stream")
@pytest.mark.matrix("watsonx", "tool_stream")
def test_gateway_stream(token_gateway: Gateway, upstream: FakeUpstream) -> None:
    upstream.behave(
        "status",
        status=200,
        body=fixture("watsonx_chat_stream.sse"),
        content_type="text/event-stream",
        match="/chat_stream",
        times=1,
    )
    upstream.behave(
        "status",
        status=200,
        body=fixture("watsonx_chat_tools_stream.sse"),
        content_type="text/event-stream",
        match="/chat_stream",
        times=1,
    )
    chunks = list(
        client(token_gateway).chat.completions.create(
            model="granite", messages=MESSAGES, stream=True, stream_options={"include_usage": True}
        )
    )
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "Bonjour\u00a0! Je suis Granite — ravi de vous aider."
    assert chunks[-1].usage is not None and chunks[-1].usage.total_tokens == 34
    assert upstream.last_request.path == "/ml/v1/text/chat_stream"

    tool_chunks = list(
        client(token_gateway).chat.completions.create(
            model="granite", messages=MESSAGES, stream=True
        )
    )
    calls = [
        c.choices[0].delta.tool_calls[0]
        for c in tool_chunks
        if c.choices and c.choices[0].delta.tool_calls
    ]
    assert calls[0].function is not None and calls[0].function.name == "get_weather"
    assert tool_chunks[-1].choices[0].finish_reason == "tool_calls"


@pytest.mark.matrix("watsonx", "errors")
def test_gateway_errors(token_gateway: Gateway, upstream: FakeUpstream) -> None:
    too_long = {
        "errors": [
            {
                "code": "invalid_input_argument",
                "message": "Token sequence length "
                "is longer than the specified maximum sequence length for this model (9000 > "
                "8192).",
            }
        ],
        "trace": "abc",
        "status_code": 400,
    }
    upstream.behave("status", status=400, json=too_long, times=1)
    with pytest.raises(openai.BadRequestError) as bad:
        client(token_gateway).chat.completions.create(model="granite", messages=MESSAGES)
    assert bad.value.code == "context_length_exceeded"
    quota = {
        "errors": [{"code": "token_quota_reached", "message": "Quota exceeded"}],
        "status_code": 429,
    }
    upstream.behave("status", status=429, json=quota, headers={"retry-after": "7"}, times=1)
    with pytest.raises(openai.RateLimitError) as limited:
        client(token_gateway).chat.completions.create(model="granite", messages=MESSAGES)
    assert "Quota exceeded" in limited.value.message
    assert limited.value.response.headers.get("retry-after") == "7"


@pytest.mark.matrix("watsonx", "chat")
def test_gateway_exchanges_the_api_key_once(
    upstream: FakeUpstream, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The IAM endpoint is the same loopback server here, on its own path.
    adapter = adapter_for("watsonx")
    assert isinstance(adapter, WatsonxAdapter)
    monkeypatch.setattr(adapter, "iam_url", upstream.url("/identity/token"))
    upstream.behave(
        "status", status=200, json=iam_answer("eyJ.gw.tok", 4_000_000_000), match="/identity/"
    )
    upstream.behave(
        "status", status=200, body=fixture("watsonx_chat.json"), content_type="application/json"
    )
    config = gateway_config(upstream, f"api_key: {API_KEY}")
    with running_gateway(config, tmp_path) as gw:
        for _ in range(2):
            client(gw).chat.completions.create(model="granite", messages=MESSAGES)
    paths = [r.path for r in upstream.requests]
    assert paths == ["/identity/token", "/ml/v1/text/chat", "/ml/v1/text/chat"]
    assert upstream.last_request.headers["authorization"] == "Bearer eyJ.gw.tok"
