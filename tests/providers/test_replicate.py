"""Replicate: the create request, prediction answers, the output stream (fixture fed
1 byte at a time), the create -> poll / stream hook against a loopback server, and the
openai SDK through the gateway."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import msgspec
import openai
import pytest

from tests.conftest import MASTER_KEY, running_gateway
from tests.support.fake_upstream import FakeUpstream
from tests.support.providers import FIXTURES, sse_frames
from tianji.compile.model import Deployment
from tianji.compile.pipeline import build
from tianji.errors import TianjiError, UnsupportedParams, UpstreamProtocolError, UpstreamTimeout
from tianji.providers import Call, adapter_for
from tianji.providers.replicate import ReplicateAdapter, render_prompt
from tianji.providers.replicate_stream import PREDICTION_EVENT
from tianji.upstream import HttpTransport, Timeouts, UpstreamRequest, UpstreamResponse

pytestmark = pytest.mark.timeout(30)

frames = sse_frames
LLAMA = "meta/meta-llama-3-8b-instruct"
MESSAGES = [
    {"role": "system", "content": "Be brief."},
    {"role": "user", "content": "Name the capital of France."},
]
STREAMED = "The capital of France is Paris.\nBon voyage\u00a0!"
CHAT_PARAMS = frozenset({"temperature", "max_tokens", "stop", "tools", "stream", "top_p"})


def prediction(name: str, base: str = "https://api.replicate.com") -> dict[str, Any]:
    text = (FIXTURES / f"replicate_prediction_{name}.json").read_text()
    return json.loads(text.replace("{base}", base))  # type: ignore[no-any-return]


def deployment(tmp_path: Path, params: str) -> Deployment:
    config = tmp_path / "c.yaml"
    config.write_text(f"model_list:\n  - model_name: m\n    litellm_params: {params}\n")
    built, problems = build(config, env={})
    assert built is not None, [p.render() for p in problems]
    return built.gateway.models.groups["m"].deployments[0]


def chat_call(d: Deployment, body: dict[str, Any], **kw: Any) -> Call:
    return Call(
        "chat", d, d.model, body={"messages": MESSAGES, **body}, openai_params=CHAT_PARAMS, **kw
    )


def run_bytewise(call: Call, data: bytes) -> bytes:
    translator = adapter_for("replicate").stream_translator(call)
    assert translator is not None
    out = b"".join(translator.feed(data[i : i + 1]) for i in range(len(data)))
    return out + translator.close()


# --------------------------------------------------------------------------- requests


def test_create_request(tmp_path: Path) -> None:
    d = deployment(tmp_path, f"{{model: replicate/{LLAMA}, api_key: r8_secret, timeout: 20}}")
    request = adapter_for("replicate").build_request(
        chat_call(d, {"max_tokens": 64, "temperature": 0.2, "stop": ["\n\n", "END"], "top_k": 5})
    )
    assert request.url == f"https://api.replicate.com/v1/models/{LLAMA}/predictions"
    assert msgspec.json.decode(request.body) == {
        "input": {
            "prompt": "Name the capital of France.",
            "system_prompt": "Be brief.",
            "max_tokens": 64,
            "max_new_tokens": 64,
            "temperature": 0.2,
            "stop_sequences": "\n\n,END",
            "top_k": 5,
        }
    }
    headers = dict(request.headers)
    assert headers["authorization"] == "Bearer r8_secret" and headers["prefer"] == "wait=20"

    versioned = deployment(tmp_path, "{model: 'replicate/acme/tuned:5c7d5dc6dd8bf75c', api_key: k}")
    streamed = adapter_for("replicate").build_request(
        chat_call(versioned, {"stream": True}, stream=True)
    )
    assert streamed.url == "https://api.replicate.com/v1/predictions"
    sent = msgspec.json.decode(streamed.body)
    assert sent["version"] == "5c7d5dc6dd8bf75c" and sent["stream"] is True
    assert "prefer" not in dict(streamed.headers)

    with pytest.raises(UnsupportedParams) as info:
        adapter_for("replicate").build_request(chat_call(d, {"tools": []}))
    assert info.value.param == "tools"


def test_prompt_rendering_and_images(tmp_path: Path) -> None:
    conversation = [
        {"role": "system", "content": "S"},
        {"role": "user", "content": [{"type": "text", "text": "Hi"}]},
        {"role": "assistant", "content": "Hello!"},
        {"role": "user", "content": "Weather?"},
    ]
    assert render_prompt(conversation) == (
        "S",
        "User: Hi\nAssistant: Hello!\nUser: Weather?\nAssistant:",
    )
    d = deployment(tmp_path, "{model: replicate/black-forest-labs/flux-schnell, api_key: k}")
    request = adapter_for("replicate").build_request(
        Call("image_generation", d, d.model, body={"prompt": "a fox", "n": 2, "size": "1792x1024"})
    )
    assert msgspec.json.decode(request.body) == {
        "input": {"prompt": "a fox", "num_outputs": 2, "aspect_ratio": "7:4"}
    }


# --------------------------------------------------------------------------- answers


def test_prediction_answers(tmp_path: Path) -> None:
    d = deployment(tmp_path, f"{{model: replicate/{LLAMA}, api_key: k}}")
    adapter = adapter_for("replicate")
    done = msgspec.json.encode(prediction("succeeded"))
    chat = msgspec.json.decode(adapter.translate_response(chat_call(d, {}), done) or b"")
    assert chat["choices"][0]["message"]["content"] == "The capital of France is Paris."
    assert chat["choices"][0]["finish_reason"] == "stop"
    assert chat["usage"] == {"prompt_tokens": 23, "completion_tokens": 7, "total_tokens": 30}
    capped = msgspec.json.decode(
        adapter.translate_response(chat_call(d, {"max_tokens": 7}), done) or b""
    )
    assert capped["choices"][0]["finish_reason"] == "length"

    text_call = Call("text_completion", d, d.model, body={"prompt": "x"})
    text = msgspec.json.decode(adapter.translate_response(text_call, done) or b"")
    assert text["object"] == "text_completion" and text["choices"][0]["text"].endswith("Paris.")

    with pytest.raises(TianjiError) as info:
        adapter.translate_response(chat_call(d, {}), msgspec.json.encode(prediction("failed")))
    assert info.value.status == 502 and "CUDA out of memory" in info.value.message

    images = {**prediction("succeeded"), "output": ["https://replicate.delivery/x/out-0.webp"]}
    image_call = Call("image_generation", d, d.model, body={"prompt": "p"})
    answer = msgspec.json.decode(
        adapter.translate_response(image_call, msgspec.json.encode(images)) or b""
    )
    assert answer["data"] == [{"url": "https://replicate.delivery/x/out-0.webp"}]

    problem = msgspec.json.encode(
        {
            "title": "Invalid version",
            "detail": "The specified version does not exist",
            "status": 422,
        }
    )
    error = adapter.error_from_status(chat_call(d, {}), 422, {}, problem)
    assert error.status == 422 and "does not exist" in error.message


def stream_bytes(final: dict[str, Any] | None = None) -> bytes:
    data = (FIXTURES / "replicate_stream.sse").read_bytes()
    if final is not None:
        data += f"event: {PREDICTION_EVENT}\ndata: {json.dumps(final)}\n\n".encode()
    return data


def test_stream_fixture_bytewise(tmp_path: Path) -> None:
    d = deployment(tmp_path, f"{{model: replicate/{LLAMA}, api_key: k}}")
    body = {"stream": True, "stream_options": {"include_usage": True}}
    out = frames(
        run_bytewise(chat_call(d, body, stream=True), stream_bytes(prediction("succeeded")))
    )
    assert out[-1] == "[DONE]"
    chunks = out[:-1]
    assert chunks[0]["choices"][0]["delta"] == {"content": "The", "role": "assistant"}
    assert "".join(c["choices"][0]["delta"].get("content", "") for c in chunks if c["choices"]) == (
        STREAMED
    )
    assert chunks[-2]["choices"][0]["finish_reason"] == "stop"
    assert chunks[-1]["usage"] == {"prompt_tokens": 23, "completion_tokens": 7, "total_tokens": 30}

    bare = frames(run_bytewise(chat_call(d, {"stream": True}, stream=True), stream_bytes()))
    assert bare[-2]["choices"][0]["finish_reason"] == "stop" and "usage" not in bare[-2]

    translator = adapter_for("replicate").stream_translator(chat_call(d, {}, stream=True))
    assert translator is not None
    with pytest.raises(TianjiError, match="safety checker"):
        translator.feed(
            b'event: error\nid: 1:0\ndata: {"detail": "NSFW content flagged by safety checker"}\n\n'
        )
    cut = adapter_for("replicate").stream_translator(chat_call(d, {}, stream=True))
    assert cut is not None
    cut.feed(b"event: output\nid: 1:0\ndata: partial\n\n")
    with pytest.raises(UpstreamProtocolError):
        cut.close()


# --------------------------------------------------------------------------- hooks


def sender(transport: HttpTransport) -> Any:
    async def send(request: UpstreamRequest, timeouts: Timeouts) -> UpstreamResponse:
        return await transport.send(request, timeouts)

    return send


PREDICTION_PATH = "/v1/predictions/rrr4g6c7p5rmc0cmhyv8r1mzcm"


def script_prediction(up: FakeUpstream, polls: list[str]) -> None:
    """Create -> `starting`; then each GET answers the next of `polls`."""
    base = up.root_url
    up.behave("status", status=201, json=prediction("starting", base), match="/models/")
    for name in polls:
        up.behave("status", status=200, json=prediction(name, base), match=PREDICTION_PATH, times=1)


async def test_complete_creates_then_polls(tmp_path: Path, upstream: FakeUpstream) -> None:
    script_prediction(upstream, ["processing", "succeeded"])
    d = deployment(
        tmp_path, f"{{model: replicate/{LLAMA}, api_key: r8, api_base: '{upstream.base_url}'}}"
    )
    adapter = ReplicateAdapter(poll_interval=0.01)
    transport = HttpTransport()
    try:
        call = chat_call(d, {})
        response = await adapter.complete(call, sender(transport))
        assert response.status == 200
        chat = msgspec.json.decode(adapter.translate_response(call, await response.read()) or b"")
    finally:
        await transport.aclose()
    assert chat["choices"][0]["message"]["content"] == "The capital of France is Paris."
    seen = [(r.method, r.path) for r in upstream.requests]
    assert seen == [
        ("POST", f"/v1/models/{LLAMA}/predictions"),
        ("GET", PREDICTION_PATH),
        ("GET", PREDICTION_PATH),
    ]
    assert upstream.requests[0].headers["prefer"] == "wait=60"
    assert all(r.headers["authorization"] == "Bearer r8" for r in upstream.requests)


async def test_complete_gives_up_and_cancels(tmp_path: Path, upstream: FakeUpstream) -> None:
    script_prediction(upstream, [])
    upstream.behave(
        "status",
        status=200,
        json=prediction("processing", upstream.root_url),
        match=PREDICTION_PATH,
    )
    d = deployment(
        tmp_path,
        f"{{model: replicate/{LLAMA}, api_key: r8, timeout: 0.3, api_base: '{upstream.base_url}'}}",
    )
    transport = HttpTransport()
    try:
        with pytest.raises(UpstreamTimeout):
            await ReplicateAdapter(poll_interval=0.05).complete(chat_call(d, {}), sender(transport))
    finally:
        await transport.aclose()
    last = upstream.requests[-1]
    assert (last.method, last.path) == ("POST", PREDICTION_PATH + "/cancel")


async def test_complete_streams_then_reads_usage(tmp_path: Path, upstream: FakeUpstream) -> None:
    script_prediction(upstream, ["succeeded"])
    upstream.behave(
        "status",
        status=200,
        body=stream_bytes(),
        content_type="text/event-stream",
        match="/stream/",
    )
    d = deployment(
        tmp_path, f"{{model: replicate/{LLAMA}, api_key: r8, api_base: '{upstream.base_url}'}}"
    )
    adapter = ReplicateAdapter(poll_interval=0.01)
    body = {"stream": True, "stream_options": {"include_usage": True}}
    call = chat_call(d, body, stream=True)
    transport = HttpTransport()
    try:
        response = await adapter.complete(call, sender(transport))
        translator = adapter.stream_translator(call)
        assert translator is not None
        out = b"".join([translator.feed(chunk) async for chunk in response.iter_bytes()])
        out += translator.close()
    finally:
        await transport.aclose()
    chunks = frames(out)
    text = "".join(c["choices"][0]["delta"].get("content", "") for c in chunks[:-1] if c["choices"])
    assert text == STREAMED and chunks[-2]["usage"]["completion_tokens"] == 7
    stream_request = next(r for r in upstream.requests if "/stream/" in r.path)
    assert stream_request.method == "GET"
    assert stream_request.headers["accept"] == "text/event-stream"
    assert "stream" in upstream.requests[0].json and "prefer" not in upstream.requests[0].headers


# --------------------------------------------------------------------------- gateway


@pytest.mark.matrix("replicate", "chat")
@pytest.mark.matrix("replicate", "stream")
@pytest.mark.matrix("replicate", "usage")
def test_gateway_chat_and_stream(
    tmp_path: Path, upstream: FakeUpstream, monkeypatch: pytest.MonkeyPatch
) -> None:
    adapter = adapter_for("replicate")
    assert isinstance(adapter, ReplicateAdapter)
    monkeypatch.setattr(adapter, "poll_interval", 0.01)
    script_prediction(upstream, ["processing", "succeeded", "succeeded"])
    upstream.behave(
        "status",
        status=200,
        body=stream_bytes(),
        content_type="text/event-stream",
        match="/stream/",
    )
    config = f"""
model_list:
  - model_name: llama
    litellm_params: {{model: replicate/{LLAMA}, api_base: '{upstream.base_url}', api_key: r8}}
general_settings:
  master_key: {MASTER_KEY}
"""
    with running_gateway(config, tmp_path) as gw:
        client = openai.OpenAI(base_url=gw.v1, api_key=MASTER_KEY, max_retries=0)
        reply = client.chat.completions.create(model="llama", messages=MESSAGES, max_tokens=64)
        assert reply.choices[0].message.content == "The capital of France is Paris."
        assert reply.usage is not None and reply.usage.total_tokens == 30
        chunks = list(
            client.chat.completions.create(
                model="llama",
                messages=MESSAGES,
                stream=True,
                stream_options={"include_usage": True},
            )
        )
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == STREAMED
    assert chunks[-1].usage is not None and chunks[-1].usage.prompt_tokens == 23


@pytest.mark.matrix("replicate", "errors")
def test_gateway_errors(tmp_path: Path, upstream: FakeUpstream) -> None:
    upstream.behave(
        "status",
        status=401,
        json={
            "title": "Unauthenticated",
            "detail": "You did not pass a valid authentication token",
            "status": 401,
        },
    )
    config = f"""
model_list:
  - model_name: llama
    litellm_params: {{model: replicate/{LLAMA}, api_base: '{upstream.base_url}', api_key: bad}}
general_settings:
  master_key: {MASTER_KEY}
"""
    with running_gateway(config, tmp_path) as gw:
        client = openai.OpenAI(base_url=gw.v1, api_key=MASTER_KEY, max_retries=0)
        with pytest.raises(openai.AuthenticationError) as info:
            client.chat.completions.create(model="llama", messages=MESSAGES)
    assert "valid authentication token" in info.value.message
