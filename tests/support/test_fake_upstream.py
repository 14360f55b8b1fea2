"""Tests of the fake OpenAI-compatible upstream itself, through httpx and the openai SDK."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import openai
import pytest

from .fake_upstream import FakeUpstream, fake_embedding

pytestmark = pytest.mark.timeout(10)


@pytest.fixture
def up() -> Iterator[FakeUpstream]:
    with FakeUpstream() as server:
        yield server


@pytest.fixture
def client(up: FakeUpstream) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(base_url=up.base_url, api_key="x", max_retries=0, timeout=5) as sdk:
        yield sdk


def _user(text: str) -> list[Any]:
    return [{"role": "user", "content": text}]


def _sse_payloads(lines: Iterator[str]) -> list[str]:
    return [line.removeprefix("data: ") for line in lines if line.startswith("data: ")]


def _raw_exchange(up: FakeUpstream, data: bytes) -> bytes:
    """Send raw bytes and read until the server closes the connection."""
    with socket.create_connection(("127.0.0.1", up.port), timeout=2) as sock:
        sock.sendall(data)
        received = b""
        while chunk := sock.recv(65536):
            received += chunk
    return received


# ---------------------------------------------------------------- default answers


def test_chat_completion_echoes_last_user_message(up: FakeUpstream, client: openai.OpenAI) -> None:
    messages: list[Any] = [{"role": "system", "content": "be brief"}, *_user("hello there")]
    reply = client.chat.completions.create(model="gpt-4o-mini", messages=messages)

    assert reply.choices[0].message.content == "echo: hello there"
    assert reply.choices[0].finish_reason == "stop"
    assert reply.model == "gpt-4o-mini"
    assert reply.usage is not None
    assert (reply.usage.prompt_tokens, reply.usage.completion_tokens) == (4, 3)
    seen = up.last_request
    assert (seen.method, seen.path) == ("POST", "/v1/chat/completions")
    assert seen.headers["authorization"] == "Bearer x"
    assert seen.json["messages"] == messages


def test_streamed_chat_is_reassembled_by_sdk(client: openai.OpenAI) -> None:
    stream = client.chat.completions.create(
        model="m",
        messages=_user("one two three"),
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)

    assert chunks[0].choices[0].delta.role == "assistant"
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "echo: one two three"
    assert chunks[-2].choices[0].finish_reason == "stop"
    assert chunks[-1].choices == []
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens == 4


def test_stream_wire_format_is_chunked_sse(up: FakeUpstream) -> None:
    up.stream_delay = 0.02
    body = {"model": "m", "messages": _user("a b"), "stream": True}
    started = time.monotonic()
    with httpx.stream("POST", up.url("/v1/chat/completions"), json=body) as response:
        payloads = _sse_payloads(response.iter_lines())

    assert response.headers["transfer-encoding"] == "chunked"
    assert response.headers["content-type"].startswith("text/event-stream")
    assert payloads[-1] == "[DONE]"
    chunks = [json.loads(p) for p in payloads[:-1]]
    assert [c["choices"][0]["delta"].get("content") for c in chunks] == [
        "",
        "echo:",
        " a",
        " b",
        None,
    ]
    assert "usage" not in chunks[0]  # no include_usage: no usage field, no usage chunk
    assert time.monotonic() - started >= 5 * 0.02


def test_embeddings_in_base64_and_float(up: FakeUpstream, client: openai.OpenAI) -> None:
    result = client.embeddings.create(model="text-embedding-3-small", input=["cat", "dog"])
    assert [d.embedding for d in result.data] == [fake_embedding("cat"), fake_embedding("dog")]
    assert up.last_request.json["encoding_format"] == "base64"  # the SDK's default

    body = {"model": "e", "input": "cat", "dimensions": 40, "encoding_format": "float"}
    data = httpx.post(up.url("/v1/embeddings"), json=body).json()
    assert data["data"][0]["embedding"] == fake_embedding("cat", 40)


def test_other_openai_endpoints_through_the_sdk(up: FakeUpstream, client: openai.OpenAI) -> None:
    audio = ("clip.wav", b"x" * 10, "audio/wav")
    transcript = client.audio.transcriptions.create(model="whisper-1", file=audio)
    assert transcript.text == "transcribed clip.wav (10 bytes)"
    assert [p.name for p in up.last_request.form()] == ["model", "file"]

    speech = client.audio.speech.create(model="tts-1", voice="alloy", input="hi")
    assert speech.content == b"ID3fake-audio:hi"
    assert speech.response.headers["content-type"] == "audio/mpeg"

    assert (client.images.generate(prompt="cat", model="dall-e-3").data or [])[0].url
    assert [r.flagged for r in client.moderations.create(input=["ok", "flag-me"]).results] == [
        False,
        True,
    ]
    assert client.responses.create(model="gpt-4o", input="yo").output_text == "echo: yo"
    assert client.completions.create(model="m", prompt="p").choices[0].text == "echo: p"
    assert "gpt-4o-mini" in [m.id for m in client.models.list().data]


def test_rerank_and_generic_echo(up: FakeUpstream) -> None:
    rerank = {"model": "r", "query": "red apple", "documents": ["green pear", "red apple"]}
    data = httpx.post(up.url("/v1/rerank"), json=rerank).json()
    assert data["results"] == [
        {"index": 1, "relevance_score": 1.0},
        {"index": 0, "relevance_score": 0.0},
    ]

    echoed = httpx.post(up.url("/v1/batches?limit=2"), json={"a": 1}).json()
    assert echoed == {
        "object": "echo",
        "method": "POST",
        "path": "/v1/batches",
        "query": {"limit": "2"},
        "body": {"a": 1},
    }


def test_azure_style_path_uses_deployment_as_model(up: FakeUpstream) -> None:
    url = up.url("/openai/deployments/dep-1/chat/completions?api-version=2024-10-21")
    data = httpx.post(url, json={"messages": _user("hi")}).json()

    assert data["model"] == "dep-1"
    assert data["choices"][0]["message"]["content"] == "echo: hi"
    assert up.last_request.query == {"api-version": "2024-10-21"}


def test_chunked_request_body_is_recorded(up: FakeUpstream) -> None:
    def body() -> Iterator[bytes]:
        yield b'{"model": "m", '
        yield b'"messages": [{"role": "user", "content": "chunky"}]}'

    response = httpx.post(up.url("/v1/chat/completions"), content=body())

    assert response.json()["choices"][0]["message"]["content"] == "echo: chunky"
    assert up.last_request.headers["transfer-encoding"] == "chunked"
    assert up.last_request.json["messages"][0]["content"] == "chunky"


def test_pipelined_requests_on_a_raw_socket(up: FakeUpstream) -> None:
    get = b"GET /v1/models HTTP/1.1\r\nHost: x\r\n\r\n"
    post = b"POST /v1/x HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}"

    received = _raw_exchange(up, get + post)

    assert received.count(b"HTTP/1.1 200 OK") == 2
    assert b'"object": "echo"' in received
    assert [r.path for r in up.requests] == ["/v1/models", "/v1/x"]
    assert up.connections_opened == 1


# ---------------------------------------------------------------- scripted behaviours


def test_status_429_raises_rate_limit_error_once(up: FakeUpstream, client: openai.OpenAI) -> None:
    error = {
        "error": {"message": "slow down", "type": "rate_limit_error", "code": "rate_limit_exceeded"}
    }
    behaviour = up.behave("status", status=429, json=error, headers={"retry-after": "1"}, times=1)

    with pytest.raises(openai.RateLimitError) as caught:
        client.chat.completions.create(model="m", messages=_user("hi"))
    assert caught.value.response.headers["retry-after"] == "1"
    assert caught.value.code == "rate_limit_exceeded"

    ok = client.chat.completions.create(model="m", messages=_user("again"))
    assert ok.choices[0].message.content == "echo: again"
    assert behaviour.hits == 1 and len(up.requests) == 2


def test_behaviour_match_and_times(up: FakeUpstream) -> None:
    up.behave("status", status=503, match="/embeddings", times=2)
    up.behave("status", status=418, body="teapot")
    embed = {"model": "e", "input": "x"}

    codes = [httpx.post(up.url("/v1/embeddings"), json=embed).status_code for _ in range(3)]
    teapot = httpx.get(up.url("/v1/models"))

    assert codes == [503, 503, 418]
    assert (teapot.status_code, teapot.text) == (418, "teapot")
    up.clear_behaviours()
    assert httpx.get(up.url("/v1/models")).status_code == 200


def test_behave_rejects_unknown_kind_and_option(up: FakeUpstream) -> None:
    with pytest.raises(ValueError, match="unknown behaviour"):
        up.behave("explode")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="delay"):
        up.behave("status", delay=1)


def test_invalid_json(up: FakeUpstream, client: openai.OpenAI) -> None:
    up.behave("invalid_json")

    response = httpx.post(up.url("/v1/chat/completions"), json={})
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    with pytest.raises(json.JSONDecodeError):
        response.json()
    with pytest.raises(ValueError):  # the SDK lets the JSONDecodeError through
        client.chat.completions.create(model="m", messages=_user("hi"))


def test_slow_delays_and_notices_client_giving_up(up: FakeUpstream) -> None:
    up.behave("slow", delay=0.2, times=1)
    started = time.monotonic()
    assert httpx.get(up.url("/v1/models")).status_code == 200
    assert time.monotonic() - started >= 0.2

    up.behave("slow", delay=30, times=1)
    with pytest.raises(httpx.ReadTimeout):
        httpx.get(up.url("/v1/models"), timeout=0.2)
    assert up.wait_for_disconnect(timeout=2)
    assert up.disconnects[0].phase == "waiting"


def test_close_mid_stream_breaks_the_sdk_stream(up: FakeUpstream, client: openai.OpenAI) -> None:
    up.behave("close_mid_stream", n=2)
    received = []
    stream = client.chat.completions.create(model="m", messages=_user("x y"), stream=True)

    with pytest.raises(openai.APIConnectionError):
        for chunk in stream:
            received.append(chunk.choices[0].delta.content)
    assert received == ["", "echo:"]


def test_close_mid_stream_with_reset(up: FakeUpstream) -> None:
    up.behave("close_mid_stream", n=1, reset=True)
    body = {"model": "m", "messages": _user("x"), "stream": True}
    with (
        pytest.raises((httpx.RemoteProtocolError, httpx.ReadError)),
        httpx.stream("POST", up.url("/v1/chat/completions"), json=body) as response,
    ):
        list(response.iter_lines())


def test_stall_stream_hits_client_timeout(up: FakeUpstream, client: openai.OpenAI) -> None:
    up.behave("stall_stream", n=1)
    started = time.monotonic()
    stream = client.with_options(timeout=0.5).chat.completions.create(
        model="m", messages=_user("x"), stream=True
    )

    with pytest.raises(openai.APITimeoutError):
        for chunk in stream:
            assert chunk.choices[0].delta.role == "assistant"
    assert time.monotonic() - started < 2
    assert up.wait_for_disconnect(timeout=2)
    assert (up.disconnects[0].phase, up.disconnects[0].events_sent) == ("streaming", 1)


def test_close_before_response_and_garbage(up: FakeUpstream) -> None:
    up.behave("close_before_response", times=1)
    up.behave("garbage", times=1)

    with pytest.raises(httpx.RemoteProtocolError):
        httpx.post(up.url("/v1/chat/completions"), json={})
    with pytest.raises(httpx.RemoteProtocolError):
        httpx.post(up.url("/v1/chat/completions"), json={})
    assert len(up.requests) == 2
    assert up.disconnects == []  # the server chose to close: not a client disconnect


def test_disconnect_noticed_when_client_drops_stream_forever(up: FakeUpstream) -> None:
    up.behave("stream_forever", interval=0.05)
    body = {"model": "m", "messages": _user("x"), "stream": True}

    events: list[str] = []
    with httpx.stream("POST", up.url("/v1/chat/completions"), json=body) as response:
        for line in response.iter_lines():
            events += [line] if line.startswith("data: ") else []
            if len(events) == 3:
                break
    closed_at = time.monotonic()

    assert up.wait_for_disconnect(timeout=2)
    disconnect = up.disconnects[0]
    assert disconnect.phase == "streaming" and disconnect.events_sent >= 3
    assert disconnect.at - closed_at < 2


# ---------------------------------------------------------------- connections and lifecycle


def test_keep_alive_reuses_one_connection(up: FakeUpstream) -> None:
    with httpx.Client(base_url=up.base_url) as http:
        for _ in range(3):
            assert http.get("/models").status_code == 200
    assert up.connections_opened == 1
    assert {r.connection for r in up.requests} == {1}

    with httpx.Client(base_url=up.base_url, headers={"connection": "close"}) as http:
        for _ in range(2):
            response = http.get("/models")
            assert response.headers["connection"] == "close"
    assert up.connections_opened == 3


def test_stop_closes_connections_and_ends_thread() -> None:
    before = {t.ident for t in threading.enumerate()}
    up = FakeUpstream().start()
    up.behave("stall_stream", n=1)
    sock = socket.create_connection(("127.0.0.1", up.port), timeout=2)
    sock.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n")
    assert up.wait_for_requests(1)
    time.sleep(0.1)  # let the head and first event go out

    up.stop()
    up.stop()  # idempotent

    received = b""
    with sock:
        while chunk := sock.recv(65536):
            received += chunk
    assert received.startswith(b"HTTP/1.1 200 OK")
    assert {t.ident for t in threading.enumerate()} <= before
    assert up.disconnects == []  # stopping the server is not a client disconnect


async def test_works_from_an_async_test_with_its_own_loop() -> None:
    with FakeUpstream() as up:
        async with httpx.AsyncClient(base_url=up.base_url) as http:
            body = {"model": "m", "messages": _user("async"), "stream": True}
            async with http.stream("POST", "/chat/completions", json=body) as response:
                payloads = [p async for p in response.aiter_lines() if p.startswith("data: ")]
    assert payloads[-1] == "data: [DONE]"
    assert len(payloads) == 5
