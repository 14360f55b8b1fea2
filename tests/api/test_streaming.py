"""Streams relayed chunk by chunk, and every way a stream can fail."""

from __future__ import annotations

import json
import time

import httpx
import openai
import pytest

from tests.conftest import MASTER_KEY, Gateway
from tests.support.fake_upstream import FakeUpstream

pytestmark = pytest.mark.timeout(30)

AUTH = {"authorization": f"Bearer {MASTER_KEY}"}
STREAM = {
    "model": "gpt-4o-mini",
    "stream": True,
    "messages": [{"role": "user", "content": "one two three four"}],
}


def _frames(text: str) -> list[str]:
    return [f[len("data: ") :] for f in text.split("\n\n") if f.startswith("data: ")]


def test_stream_headers_and_frames(gateway: Gateway) -> None:
    with httpx.stream("POST", gateway.v1 + "/chat/completions", json=STREAM, headers=AUTH) as r:
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("text/event-stream")
        assert r.headers["cache-control"] == "no-cache"
        assert r.headers["x-accel-buffering"] == "no"
        frames = _frames(r.read().decode())
    assert frames[-1] == "[DONE]"
    words = "".join(json.loads(f)["choices"][0]["delta"].get("content") or "" for f in frames[:-1])
    assert words == "echo: one two three four"


def test_chunks_arrive_before_the_stream_ends(gateway: Gateway, upstream: FakeUpstream) -> None:
    upstream.stream_delay = 0.3
    with httpx.stream("POST", gateway.v1 + "/chat/completions", json=STREAM, headers=AUTH) as r:
        started = time.monotonic()
        chunks = r.iter_raw()
        first = next(chunks)
        first_at = time.monotonic() - started
        rest = b"".join(chunks)
        total = time.monotonic() - started
    assert b"chat.completion.chunk" in first
    assert b"[DONE]" in rest
    # Six events 0.3 s apart: the first arrived long before the last (never buffered whole).
    assert first_at < 0.5 < total


def test_upstream_closes_mid_stream(gateway: Gateway, upstream: FakeUpstream) -> None:
    upstream.behave("close_mid_stream", n=2)
    response = httpx.post(gateway.v1 + "/chat/completions", json=STREAM, headers=AUTH, timeout=10)
    assert response.status_code == 200
    frames = _frames(response.text)
    assert len(frames) == 3
    error = json.loads(frames[-1])["error"]
    assert error["type"] == "api_error"
    assert "[DONE]" not in response.text


def test_upstream_stalls_longer_than_stream_timeout(
    gateway: Gateway, upstream: FakeUpstream
) -> None:
    upstream.behave("stall_stream", n=1)
    started = time.monotonic()
    response = httpx.post(gateway.v1 + "/chat/completions", json=STREAM, headers=AUTH, timeout=10)
    elapsed = time.monotonic() - started
    frames = _frames(response.text)
    assert json.loads(frames[-1])["error"]["type"] == "timeout"
    assert 0.9 < elapsed < 5  # stream_timeout is 1 s
    # The stalled upstream connection was closed, not leaked.
    assert upstream.wait_for_disconnect(timeout=2)


def test_upstream_error_status_before_stream_is_a_json_error(
    gateway: Gateway, upstream: FakeUpstream
) -> None:
    upstream.behave("status", status=404, json={"error": {"message": "no such model"}})
    response = httpx.post(gateway.v1 + "/chat/completions", json=STREAM, headers=AUTH)
    assert response.status_code == 404
    assert "no such model" in response.json()["error"]["message"]


def test_sdk_sees_error_event_as_an_error(gateway: Gateway, upstream: FakeUpstream) -> None:
    upstream.behave("close_mid_stream", n=2)
    client = openai.OpenAI(base_url=gateway.v1, api_key=MASTER_KEY, max_retries=0)
    stream = client.chat.completions.create(
        model="gpt-4o-mini", messages=STREAM["messages"], stream=True
    )
    with pytest.raises(openai.APIError):
        list(stream)


def test_client_disconnect_closes_the_upstream(gateway: Gateway, upstream: FakeUpstream) -> None:
    upstream.behave("stream_forever", interval=0.05)
    with httpx.stream("POST", gateway.v1 + "/chat/completions", json=STREAM, headers=AUTH) as r:
        iterator = r.iter_raw()
        for _ in range(3):
            assert next(iterator)
    # The client went away mid-stream: the gateway must hang up on the upstream too.
    assert upstream.wait_for_disconnect(timeout=3)
    assert upstream.disconnects[0].phase == "streaming"
