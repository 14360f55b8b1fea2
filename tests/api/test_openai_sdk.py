"""The official openai SDK through tianji: sync and async, plain and streamed,
base_url with and without /v1, and AzureOpenAI against the deployment paths."""

from __future__ import annotations

import openai
import pytest

from tests.conftest import MASTER_KEY, Gateway
from tests.support.fake_upstream import FakeUpstream

pytestmark = pytest.mark.timeout(30)

MESSAGES = [{"role": "user", "content": "hello gateway"}]


def _assert_upstream_saw_deployment(upstream: FakeUpstream) -> None:
    seen = upstream.last_request
    assert seen is not None
    # The deployment's model and key went upstream, never the client's master key.
    assert seen.json["model"] == "gpt-4o-mini-upstream"
    assert seen.headers["authorization"] == "Bearer sk-upstream-secret"


@pytest.mark.matrix("openai", "chat")
@pytest.mark.matrix("openai", "usage")
@pytest.mark.parametrize("suffix", ["/v1", ""])
def test_sync_plain(gateway: Gateway, upstream: FakeUpstream, suffix: str) -> None:
    client = openai.OpenAI(base_url=gateway.url + suffix, api_key=MASTER_KEY, max_retries=0)
    reply = client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    assert reply.choices[0].message.content == "echo: hello gateway"
    assert reply.usage is not None and reply.usage.total_tokens > 0
    _assert_upstream_saw_deployment(upstream)


@pytest.mark.matrix("openai", "stream")
@pytest.mark.parametrize("suffix", ["/v1", ""])
def test_sync_stream(gateway: Gateway, upstream: FakeUpstream, suffix: str) -> None:
    client = openai.OpenAI(base_url=gateway.url + suffix, api_key=MASTER_KEY, max_retries=0)
    stream = client.chat.completions.create(
        model="gpt-4o-mini",
        messages=MESSAGES,
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "echo: hello gateway"
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens == 3
    _assert_upstream_saw_deployment(upstream)


@pytest.mark.parametrize("suffix", ["/v1", ""])
async def test_async_plain_and_stream(
    gateway: Gateway, upstream: FakeUpstream, suffix: str
) -> None:
    client = openai.AsyncOpenAI(base_url=gateway.url + suffix, api_key=MASTER_KEY, max_retries=0)
    reply = await client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    assert reply.choices[0].message.content == "echo: hello gateway"
    stream = await client.chat.completions.create(
        model="gpt-4o-mini", messages=MESSAGES, stream=True
    )
    text = "".join([c.choices[0].delta.content or "" async for c in stream if c.choices])
    assert text == "echo: hello gateway"
    await client.close()


def test_wildcard_group_sends_the_captured_model(gateway: Gateway, upstream: FakeUpstream) -> None:
    client = openai.OpenAI(base_url=gateway.v1, api_key=MASTER_KEY, max_retries=0)
    client.chat.completions.create(model="openai/gpt-4.1-nano", messages=MESSAGES)
    assert upstream.last_request is not None
    assert upstream.last_request.json["model"] == "gpt-4.1-nano"


@pytest.mark.matrix("azure", "chat")
@pytest.mark.matrix("azure", "stream")
@pytest.mark.parametrize("prefix", ["openai/deployments", "engines"])
def test_azure_client_against_deployment_paths(
    gateway: Gateway, upstream: FakeUpstream, prefix: str
) -> None:
    if prefix == "openai/deployments":
        client: openai.OpenAI = openai.AzureOpenAI(
            azure_endpoint=gateway.url, api_key=MASTER_KEY, api_version="2024-10-21", max_retries=0
        )
    else:
        client = openai.OpenAI(
            base_url=f"{gateway.url}/engines/gpt-4o-mini", api_key=MASTER_KEY, max_retries=0
        )
    # The path names the model; the body's model (if any) is overridden by it.
    reply = client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    assert reply.choices[0].message.content == "echo: hello gateway"
    _assert_upstream_saw_deployment(upstream)
    streamed = client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, stream=True)
    assert "".join(c.choices[0].delta.content or "" for c in streamed if c.choices) == (
        "echo: hello gateway"
    )


@pytest.mark.matrix("azure", "embeddings")
def test_azure_embeddings_path(gateway: Gateway, upstream: FakeUpstream) -> None:
    client = openai.AzureOpenAI(
        azure_endpoint=gateway.url, api_key=MASTER_KEY, api_version="2024-10-21", max_retries=0
    )
    result = client.embeddings.create(model="gpt-4o-mini", input=["a", "b"])
    assert len(result.data) == 2
    assert upstream.last_request is not None and upstream.last_request.path.endswith("/embeddings")


@pytest.mark.matrix("openai", "embeddings")
@pytest.mark.matrix("openai", "speech")
@pytest.mark.matrix("openai", "transcription")
@pytest.mark.matrix("openai", "images")
def test_other_operations(gateway: Gateway, upstream: FakeUpstream, tmp_path) -> None:
    client = openai.OpenAI(base_url=gateway.v1, api_key=MASTER_KEY, max_retries=0)
    emb = client.embeddings.create(model="gpt-4o-mini", input="some text")
    assert len(emb.data[0].embedding) == 8
    speech = client.audio.speech.create(model="gpt-4o-mini", voice="alloy", input="say this")
    assert speech.content == b"ID3fake-audio:say this"
    audio = tmp_path / "clip.mp3"
    audio.write_bytes(b"\x00" * 1234)
    with audio.open("rb") as fh:
        text = client.audio.transcriptions.create(model="gpt-4o-mini", file=fh)
    assert text.text == "transcribed clip.mp3 (1234 bytes)"
    form = upstream.last_request.form()  # type: ignore[union-attr]
    assert {p.name: p.data for p in form}["model"] == b"gpt-4o-mini-upstream"
    image = client.images.generate(model="gpt-4o-mini", prompt="a cat")
    assert image.data and image.data[0].url
    mod = client.moderations.create(model="gpt-4o-mini", input="flag-me please")
    assert mod.results[0].flagged is True
    completion = client.completions.create(model="gpt-4o-mini", prompt="hi there")
    assert completion.choices[0].text
    response = client.responses.create(model="gpt-4o-mini", input="hello gateway")
    assert "echo" in response.output_text


def test_call_ids_are_unique_per_response(gateway: Gateway) -> None:
    client = openai.OpenAI(base_url=gateway.v1, api_key=MASTER_KEY, max_retries=0)
    ids = set()
    for _ in range(5):
        raw = client.chat.completions.with_raw_response.create(
            model="gpt-4o-mini", messages=MESSAGES
        )
        ids.add(raw.headers["x-litellm-call-id"])
        assert raw.headers["x-litellm-model-group"] == "gpt-4o-mini"
    assert len(ids) == 5
