"""SageMaker through tianji with the openai SDK, against a fake SageMaker runtime:
`sagemaker_chat/` (Messages API containers) and `sagemaker/` (TGI), plain and streamed
(AWS event-stream PayloadPart frames carrying pieces of the container's SSE)."""

from __future__ import annotations

import json
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import openai
import pytest

from tests.conftest import MASTER_KEY, Gateway, running_gateway
from tests.providers.fixtures.bedrock_eventstream import encode_frame, payload_part
from tests.providers.fixtures.bedrock_support import (
    AWS_KEY,
    AWS_SECRET,
    botocore_authorization,
)
from tests.support.fake_upstream import FakeUpstream, Recorded

pytestmark = pytest.mark.timeout(30)

EVENTSTREAM = "application/vnd.amazon.eventstream"
REGION = "us-west-2"


def _tgi_token(text: str, special: bool = False, details: dict[str, Any] | None = None) -> bytes:
    token = {"id": 7, "text": text, "logprob": -0.1, "special": special}
    event = {"index": 1, "token": token, "generated_text": None, "details": details}
    return b"data:" + json.dumps(event).encode() + b"\n\n"


def _split_into_parts(sse: bytes, size: int) -> bytes:
    """The container's bytes cut at arbitrary points, one PayloadPart per piece."""
    return b"".join(payload_part(sse[i : i + size]) for i in range(0, len(sse), size))


@pytest.fixture(scope="module")
def sagemaker() -> Iterator[tuple[Gateway, FakeUpstream]]:
    creds = f"""
      api_base: {{base}}
      aws_access_key_id: {AWS_KEY}
      aws_secret_access_key: {AWS_SECRET}
      aws_region_name: {REGION}"""
    with FakeUpstream() as up, tempfile.TemporaryDirectory() as tmp:
        base = creds.format(base=up.root_url)
        config = f"""
model_list:
  - model_name: llama
    litellm_params:
      model: sagemaker_chat/llama-3-endpoint{base}
  - model_name: tgi
    litellm_params:
      model: sagemaker/tgi-endpoint{base}
  - model_name: embed
    litellm_params:
      model: sagemaker/embed-endpoint{base}
general_settings:
  master_key: {MASTER_KEY}
"""
        with running_gateway(config, Path(tmp)) as gw:
            yield gw, up


@pytest.fixture
def up(sagemaker: tuple[Gateway, FakeUpstream]) -> FakeUpstream:
    sagemaker[1].reset()
    return sagemaker[1]


@pytest.fixture
def client(sagemaker: tuple[Gateway, FakeUpstream], up: FakeUpstream) -> openai.OpenAI:
    return openai.OpenAI(base_url=sagemaker[0].v1, api_key=MASTER_KEY, max_retries=0)


def _assert_signed(seen: Recorded, up: FakeUpstream) -> None:
    expected = botocore_authorization(seen, up.root_url, service="sagemaker", region=REGION)
    assert seen.headers["authorization"] == expected


def _openai_completion(text: str) -> dict[str, Any]:
    return {
        "id": "chatcmpl-container",
        "object": "chat.completion",
        "created": 1,
        "model": "tgi",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": text},
                "finish_reason": "stop",
            }
        ],
        "usage": {"prompt_tokens": 5, "completion_tokens": 2, "total_tokens": 7},
    }


@pytest.mark.matrix("sagemaker", "chat")
def test_messages_api_chat(client: openai.OpenAI, up: FakeUpstream) -> None:
    up.behave("status", status=200, json=_openai_completion("Hi there."), times=1)
    reply = client.chat.completions.create(
        model="llama", messages=[{"role": "user", "content": "Hello"}], max_tokens=20
    )
    assert reply.choices[0].message.content == "Hi there."
    assert reply.usage is not None and reply.usage.total_tokens == 7
    seen = up.requests[-1]
    assert seen.target == "/endpoints/llama-3-endpoint/invocations"
    assert seen.json["messages"] == [{"role": "user", "content": "Hello"}]
    assert seen.json["max_tokens"] == 20
    _assert_signed(seen, up)


@pytest.mark.matrix("sagemaker", "stream")
def test_messages_api_stream(client: openai.OpenAI, up: FakeUpstream) -> None:
    def chunk(delta: dict[str, Any], finish: str | None = None) -> bytes:
        body = {
            "id": "c1",
            "object": "chat.completion.chunk",
            "created": 1,
            "model": "m",
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
        }
        return b"data: " + json.dumps(body).encode() + b"\n\n"

    sse = (
        chunk({"role": "assistant", "content": ""})
        + chunk({"content": "Stream"})
        + chunk({"content": "ing ✓"})
        + chunk({}, "stop")
        + b"data: [DONE]\n\n"
    )
    up.behave("status", status=200, body=_split_into_parts(sse, 23), content_type=EVENTSTREAM)
    chunks = list(
        client.chat.completions.create(
            model="llama", messages=[{"role": "user", "content": "go"}], stream=True
        )
    )
    assert "".join(c.choices[0].delta.content or "" for c in chunks) == "Streaming ✓"
    assert chunks[-1].choices[0].finish_reason == "stop"
    seen = up.requests[-1]
    assert seen.target == "/endpoints/llama-3-endpoint/invocations-response-stream"
    assert seen.json["stream"] is True
    _assert_signed(seen, up)


@pytest.mark.matrix("sagemaker", "chat")
def test_tgi_chat(client: openai.OpenAI, up: FakeUpstream) -> None:
    answer = [
        {"generated_text": " Paris.", "details": {"finish_reason": "length", "generated_tokens": 3}}
    ]
    up.behave("status", status=200, json=answer, times=1)
    reply = client.chat.completions.create(
        model="tgi",
        messages=[
            {"role": "system", "content": "Answer briefly."},
            {"role": "user", "content": "Capital of France?"},
        ],
        max_tokens=3,
        temperature=0,
        stop=["\n"],
        extra_body={"top_k": 5},
    )
    assert reply.choices[0].message.content == " Paris."
    assert reply.choices[0].finish_reason == "length"
    assert reply.usage is not None and reply.usage.completion_tokens == 3
    assert reply.usage.prompt_tokens > 0  # estimated: TGI does not report it
    seen = up.requests[-1]
    assert seen.target == "/endpoints/tgi-endpoint/invocations"
    assert seen.json == {
        "inputs": "Answer briefly.\nCapital of France?",
        "parameters": {
            "details": True,
            "return_full_text": False,
            "max_new_tokens": 3,
            "do_sample": False,
            "stop": ["\n"],
            "top_k": 5,
        },
        "stream": False,
    }
    _assert_signed(seen, up)


@pytest.mark.matrix("sagemaker", "stream")
@pytest.mark.matrix("sagemaker", "usage")
def test_tgi_stream(client: openai.OpenAI, up: FakeUpstream) -> None:
    details = {"finish_reason": "eos_token", "generated_tokens": 4, "seed": None}
    sse = (
        _tgi_token("Hello")
        + _tgi_token(" wor")
        + _tgi_token("ld")
        + _tgi_token("</s>", special=True, details=details)
    )
    up.behave("status", status=200, body=_split_into_parts(sse, 17), content_type=EVENTSTREAM)
    chunks = list(
        client.chat.completions.create(
            model="tgi",
            messages=[{"role": "user", "content": "Say hello world"}],
            stream=True,
            stream_options={"include_usage": True},
            temperature=0.7,
        )
    )
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "Hello world"
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens == 4
    seen = up.requests[-1]
    assert seen.target == "/endpoints/tgi-endpoint/invocations-response-stream"
    assert seen.json["stream"] is True
    assert seen.json["parameters"]["temperature"] == 0.7
    assert seen.json["parameters"]["do_sample"] is True


@pytest.mark.matrix("sagemaker", "errors")
def test_model_error_passes_on_the_container_status(
    client: openai.OpenAI, up: FakeUpstream
) -> None:
    body = {
        "ErrorCode": "CLIENT_ERROR_FROM_MODEL",
        "LogStreamArn": "arn:aws:logs:us-west-2:1:log-group:/aws/sagemaker/Endpoints/tgi",
        "Message": 'Received client error (422) from primary with message "..."',
        "OriginalMessage": "Input validation error: `temperature` must be strictly positive",
        "OriginalStatusCode": 422,
    }
    up.behave("status", status=424, json=body, headers={"x-amzn-errortype": "ModelError"}, times=1)
    with pytest.raises(openai.UnprocessableEntityError) as info:
        client.chat.completions.create(model="tgi", messages=[{"role": "user", "content": "x"}])
    assert "must be strictly positive" in info.value.message
    up.behave(
        "status",
        status=400,
        json={"message": "Endpoint tgi-endpoint not found."},
        headers={"x-amzn-errortype": "ValidationError"},
        times=1,
    )
    with pytest.raises(openai.BadRequestError, match="not found"):
        client.chat.completions.create(model="tgi", messages=[{"role": "user", "content": "x"}])


@pytest.mark.matrix("sagemaker", "errors")
def test_stream_error_frame(client: openai.OpenAI, up: FakeUpstream) -> None:
    headers = {
        ":exception-type": "ModelStreamError",
        ":content-type": "application/json",
        ":message-type": "exception",
    }
    failure = encode_frame(
        headers, json.dumps({"Message": "stream broken", "ErrorCode": "StreamBroken"}).encode()
    )
    frames = payload_part(_tgi_token("Hel")) + failure
    up.behave("status", status=200, body=frames, content_type=EVENTSTREAM, times=1)
    stream = client.chat.completions.create(
        model="tgi", messages=[{"role": "user", "content": "x"}], stream=True
    )
    text = ""
    with pytest.raises(openai.APIError, match="stream broken"):
        for chunk in stream:
            text += chunk.choices[0].delta.content or ""
    assert text == "Hel"


@pytest.mark.matrix("sagemaker", "drop_params")
def test_tgi_rejects_what_it_cannot_express(client: openai.OpenAI, up: FakeUpstream) -> None:
    tool = {"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}
    with pytest.raises(openai.BadRequestError, match=r"does not support parameters: \['tools'\]"):
        client.chat.completions.create(
            model="tgi", messages=[{"role": "user", "content": "x"}], tools=[tool]
        )
    assert up.requests == []


@pytest.mark.matrix("sagemaker", "embeddings")
def test_embeddings(client: openai.OpenAI, up: FakeUpstream) -> None:
    vectors = [[0.5, 0.25], [-1.0, 0.0]]
    up.behave("status", status=200, json={"embedding": vectors}, times=1)
    result = client.embeddings.create(model="embed", input=["first text", "second"])
    assert [d.embedding for d in result.data] == vectors
    assert result.usage.prompt_tokens > 0
    seen = up.requests[-1]
    assert seen.json == {"text_inputs": ["first text", "second"]}
    assert seen.target == "/endpoints/embed-endpoint/invocations"
    _assert_signed(seen, up)
