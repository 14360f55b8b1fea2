"""The OpenAI-compatible family through the gateway, end to end: what the upstream
received (path, Azure's deployment path and api-version, auth header, model name,
the body untouched) and what the openai SDK (or httpx, for rerank) got back.

Azure images and audio, Groq chat and audio, OpenAI tools (plain and streamed),
tool results, JSON mode and vision relayed untouched, Jina and Mistral embeddings,
Together and Jina rerank in the one Cohere shape, and drop_params on a provider
whose param set is narrower than OpenAI's.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

from tests.conftest import MASTER_KEY, Gateway, running_gateway
from tests.support.fake_upstream import FakeUpstream, fake_embedding
from tianji.spec.loader import default_spec_dir

pytestmark = pytest.mark.timeout(30)

AZURE_VERSION = "2024-10-21"
AUDIO = b"RIFF\x24\x00\x00\x00WAVEfmt " + bytes(300)
MESSAGES: list[Any] = [{"role": "user", "content": "What is the weather in Paris?"}]
WEATHER_TOOL: Any = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather for a city.",
        "parameters": {
            "type": "object",
            "properties": {
                "city": {"type": "string"},
                "unit": {"type": "string", "enum": ["c", "f"]},
            },
            "required": ["city", "unit"],
            "additionalProperties": False,
        },
        "strict": True,
    },
}
TOOL_CALL = {
    "id": "call_9f2a",
    "type": "function",
    "function": {"name": "get_weather", "arguments": '{"city":"Paris","unit":"c"}'},
}


def _config(up: FakeUpstream) -> str:
    root, v1 = up.root_url, up.base_url

    def entry(name: str, model: str, base: str, extra: str = "") -> str:
        return (
            f"  - model_name: {name}\n"
            f"    litellm_params: {{model: {model}, api_base: '{base}'{extra}}}\n"
        )

    azure = f", api_key: az-secret, api_version: '{AZURE_VERSION}'"
    return (
        "model_list:\n"
        + entry("az-image", "azure/dalle3-prod", root, azure)
        + entry("az-tts", "azure/tts-hd-prod", root, azure)
        + entry("az-whisper", "azure/whisper-prod", root, azure)
        + entry("groq-chat", "groq/llama-3.3-70b-versatile", f"{root}/openai/v1", ", api_key: gsk")
        + entry("groq-tts", "groq/playai-tts", f"{root}/openai/v1", ", api_key: gsk")
        + entry("groq-whisper", "groq/whisper-large-v3", f"{root}/openai/v1", ", api_key: gsk")
        + entry("gpt", "openai/gpt-4o-2024-08-06", v1, ", api_key: sk-up")
        + entry("jina-emb", "jina_ai/jina-embeddings-v3", v1, ", api_key: jina_k")
        + entry("jina-rerank", "jina_ai/jina-reranker-v2-base-multilingual", v1,
                ", api_key: jina_k")
        + entry("mistral-emb", "mistral/mistral-embed", v1, ", api_key: mis_k")
        + entry("together-rerank", "together_ai/Salesforce/Llama-Rank-V1", v1,
                ", api_key: tog_k")
        + f"general_settings:\n  master_key: {MASTER_KEY}\n"
    )  # fmt: skip


@pytest.fixture
def gateway(upstream: FakeUpstream, tmp_path: Path) -> Iterator[Gateway]:
    with running_gateway(_config(upstream), tmp_path) as gw:
        yield gw


def client(gw: Gateway) -> openai.OpenAI:
    return openai.OpenAI(base_url=gw.v1, api_key=MASTER_KEY, max_retries=0)


def assert_azure(seen: Any, deployment: str, op: str) -> None:
    assert seen.path == f"/openai/deployments/{deployment}/{op}"
    assert seen.query == {"api-version": AZURE_VERSION}
    assert seen.headers["api-key"] == "az-secret"
    assert "authorization" not in seen.headers


# --------------------------------------------------------------------------- azure


@pytest.mark.matrix("azure", "images")
def test_azure_images(gateway: Gateway, upstream: FakeUpstream) -> None:
    result = client(gateway).images.generate(
        model="az-image", prompt="a cat", size="1024x1024", response_format="b64_json"
    )
    assert result.data is not None
    assert base64.b64decode(result.data[0].b64_json or "") == b"fake-png:a cat"
    seen = upstream.last_request
    assert_azure(seen, "dalle3-prod", "images/generations")
    assert seen.json == {
        "model": "dalle3-prod",
        "prompt": "a cat",
        "size": "1024x1024",
        "response_format": "b64_json",
    }


@pytest.mark.matrix("azure", "speech")
def test_azure_speech(gateway: Gateway, upstream: FakeUpstream) -> None:
    audio = client(gateway).audio.speech.create(
        model="az-tts", voice="alloy", input="Bonjour", response_format="mp3", speed=1.25
    )
    assert audio.content == b"ID3fake-audio:Bonjour"
    assert audio.response.headers["content-type"] == "audio/mpeg"
    seen = upstream.last_request
    assert_azure(seen, "tts-hd-prod", "audio/speech")
    assert seen.json == {
        "model": "tts-hd-prod",
        "voice": "alloy",
        "input": "Bonjour",
        "response_format": "mp3",
        "speed": 1.25,
    }


@pytest.mark.matrix("azure", "transcription")
def test_azure_transcription(gateway: Gateway, upstream: FakeUpstream) -> None:
    text = client(gateway).audio.transcriptions.create(
        model="az-whisper", file=("memo.wav", AUDIO, "audio/wav"), language="fr"
    )
    assert text.text == f"transcribed memo.wav ({len(AUDIO)} bytes)"
    seen = upstream.last_request
    assert_azure(seen, "whisper-prod", "audio/transcriptions")
    form = {p.name: p for p in seen.form()}
    # The deployment name replaces the client's model, in the path and in the form.
    assert form["model"].data == b"whisper-prod"
    assert form["file"].data == AUDIO and form["file"].filename == "memo.wav"
    assert form["file"].content_type == "audio/wav"
    assert form["language"].data == b"fr"


# --------------------------------------------------------------------------- groq


def assert_groq(seen: Any, op: str) -> None:
    assert seen.path == f"/openai/v1/{op}"
    assert seen.headers["authorization"] == "Bearer gsk"


@pytest.mark.matrix("groq", "chat")
def test_groq_chat(gateway: Gateway, upstream: FakeUpstream) -> None:
    reply = client(gateway).chat.completions.create(
        model="groq-chat", messages=MESSAGES, temperature=0.2, max_completion_tokens=64
    )
    assert reply.choices[0].message.content == "echo: What is the weather in Paris?"
    assert reply.model == "llama-3.3-70b-versatile"
    seen = upstream.last_request
    assert_groq(seen, "chat/completions")
    assert seen.json == {
        "model": "llama-3.3-70b-versatile",
        "messages": MESSAGES,
        "temperature": 0.2,
        "max_completion_tokens": 64,
    }


@pytest.mark.matrix("groq", "speech")
def test_groq_speech(gateway: Gateway, upstream: FakeUpstream) -> None:
    wav = b"RIFFgroq-wav" + bytes(40)
    upstream.behave("status", status=200, body=wav, content_type="audio/wav")
    audio = client(gateway).audio.speech.create(
        model="groq-tts", voice="Fritz-PlayAI", input="Hello", response_format="wav"
    )
    assert audio.content == wav and audio.response.headers["content-type"] == "audio/wav"
    seen = upstream.last_request
    assert_groq(seen, "audio/speech")
    assert seen.json == {
        "model": "playai-tts",
        "voice": "Fritz-PlayAI",
        "input": "Hello",
        "response_format": "wav",
    }


@pytest.mark.matrix("groq", "transcription")
def test_groq_transcription(gateway: Gateway, upstream: FakeUpstream) -> None:
    text = client(gateway).audio.transcriptions.create(
        model="groq-whisper", file=("a.wav", AUDIO, "audio/wav"), response_format="text"
    )
    # response_format=text: the bare text, relayed as text/plain.
    assert text == f"transcribed a.wav ({len(AUDIO)} bytes)"
    seen = upstream.last_request
    assert_groq(seen, "audio/transcriptions")
    form = {p.name: p.data for p in seen.form()}
    assert form["model"] == b"whisper-large-v3" and form["response_format"] == b"text"
    assert form["file"] == AUDIO


# --------------------------------------------------------------------------- openai chat features


def _completion_with_tool_call() -> dict[str, Any]:
    message = {"role": "assistant", "content": None, "refusal": None, "tool_calls": [TOOL_CALL]}
    return {
        "id": "chatcmpl-tools1",
        "object": "chat.completion",
        "created": 1_700_000_000,
        "model": "gpt-4o-2024-08-06",
        "system_fingerprint": "fp_tools",
        "choices": [{"index": 0, "message": message, "logprobs": None,
                     "finish_reason": "tool_calls"}],
        "usage": {"prompt_tokens": 82, "completion_tokens": 18, "total_tokens": 100},
    }  # fmt: skip


@pytest.mark.matrix("openai", "tools")
def test_openai_tools_round_trip(gateway: Gateway, upstream: FakeUpstream) -> None:
    upstream.behave("status", status=200, json=_completion_with_tool_call())
    choice: Any = {"type": "function", "function": {"name": "get_weather"}}
    reply = client(gateway).chat.completions.create(
        model="gpt",
        messages=MESSAGES,
        tools=[WEATHER_TOOL],
        tool_choice=choice,
        parallel_tool_calls=False,
    )
    assert reply.choices[0].finish_reason == "tool_calls"
    call = (reply.choices[0].message.tool_calls or [])[0]
    assert call.model_dump() == TOOL_CALL
    seen = upstream.last_request
    assert seen.path == "/v1/chat/completions"
    assert seen.headers["authorization"] == "Bearer sk-up"
    assert seen.json == {
        "model": "gpt-4o-2024-08-06",
        "messages": MESSAGES,
        "tools": [WEATHER_TOOL],
        "tool_choice": choice,
        "parallel_tool_calls": False,
    }


@pytest.mark.matrix("openai", "tool_result")
def test_openai_tool_result_relayed(gateway: Gateway, upstream: FakeUpstream) -> None:
    conversation: list[Any] = [
        *MESSAGES,
        {"role": "assistant", "content": None, "tool_calls": [TOOL_CALL]},
        {"role": "tool", "tool_call_id": "call_9f2a", "content": '{"temp_c": 18, "sky": "clear"}'},
        {"role": "user", "content": "So, jacket or not?"},
    ]
    reply = client(gateway).chat.completions.create(
        model="gpt", messages=conversation, tools=[WEATHER_TOOL]
    )
    assert reply.choices[0].message.content == "echo: So, jacket or not?"
    sent = upstream.last_request.json
    assert sent["messages"] == conversation and sent["tools"] == [WEATHER_TOOL]


def _tool_stream() -> bytes:
    """A streamed answer with two parallel tool calls, as OpenAI sends it: the id and
    name in the first delta of each call, the arguments in fragments, then the finish
    chunk and the usage chunk (stream_options.include_usage)."""
    base = {"id": "chatcmpl-ts1", "object": "chat.completion.chunk", "created": 1_700_000_000,
            "model": "gpt-4o-2024-08-06", "system_fingerprint": "fp_ts", "usage": None}  # fmt: skip

    def chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
        choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}
        return {**base, "choices": [choice]}

    def call_delta(index: int, **fields: Any) -> dict[str, Any]:
        return {"tool_calls": [{"index": index, **fields}]}

    frames = [
        chunk({"role": "assistant", "content": None, "refusal": None}),
        chunk(call_delta(0, id="call_a1", type="function",
                         function={"name": "get_weather", "arguments": ""})),
        chunk(call_delta(0, function={"arguments": '{"city'})),
        chunk(call_delta(0, function={"arguments": '":"Paris",'})),
        chunk(call_delta(0, function={"arguments": '"unit":"c"}'})),
        chunk(call_delta(1, id="call_b2", type="function",
                         function={"name": "get_weather", "arguments": ""})),
        chunk(call_delta(1, function={"arguments": '{"city":"Oslo","unit":"c"}'})),
        chunk({}, "tool_calls"),
        {**base, "choices": [],
         "usage": {"prompt_tokens": 82, "completion_tokens": 40, "total_tokens": 122}},
    ]  # fmt: skip
    body = b"".join(f"data: {json.dumps(f)}\n\n".encode() for f in frames)
    return body + b"data: [DONE]\n\n"


@pytest.mark.matrix("openai", "tool_stream")
def test_openai_streamed_tool_calls(gateway: Gateway, upstream: FakeUpstream) -> None:
    body = _tool_stream()
    upstream.behave("status", status=200, body=body, content_type="text/event-stream")
    with client(gateway).chat.completions.stream(
        model="gpt",
        messages=MESSAGES,
        tools=[WEATHER_TOOL],
        stream_options={"include_usage": True},
    ) as stream:
        final = stream.get_final_completion()
    calls = final.choices[0].message.tool_calls or []
    assert [(c.id, c.function.name, c.function.arguments) for c in calls] == [
        ("call_a1", "get_weather", '{"city":"Paris","unit":"c"}'),
        ("call_b2", "get_weather", '{"city":"Oslo","unit":"c"}'),
    ]
    assert final.choices[0].finish_reason == "tool_calls"
    assert final.usage is not None and final.usage.total_tokens == 122
    sent = upstream.last_request.json
    assert sent["stream"] is True and sent["tools"] == [WEATHER_TOOL]

    # And byte for byte: the stream is relayed untouched.
    with httpx.Client(timeout=5) as http:
        raw = http.post(
            f"{gateway.v1}/chat/completions",
            headers={"authorization": f"Bearer {MASTER_KEY}"},
            json={"model": "gpt", "messages": MESSAGES, "tools": [WEATHER_TOOL], "stream": True},
        )
    assert raw.status_code == 200 and raw.content == body
    assert raw.headers["content-type"].startswith("text/event-stream")


@pytest.mark.matrix("openai", "json_mode")
def test_openai_json_mode_forwarded(gateway: Gateway, upstream: FakeUpstream) -> None:
    schema = {
        "type": "json_schema",
        "json_schema": {
            "name": "weather",
            "strict": True,
            "schema": {
                "type": "object",
                "properties": {"city": {"type": "string"}},
                "required": ["city"],
                "additionalProperties": False,
            },
        },
    }
    formats: list[Any] = [{"type": "json_object"}, schema]
    for response_format in formats:
        reply = client(gateway).chat.completions.create(
            model="gpt",
            messages=MESSAGES,
            response_format=response_format,
        )
        assert reply.choices[0].message.content == "echo: What is the weather in Paris?"
        assert upstream.last_request.json["response_format"] == response_format


@pytest.mark.matrix("openai", "vision")
def test_openai_vision_forwarded(gateway: Gateway, upstream: FakeUpstream) -> None:
    pixel = base64.b64encode(b"\x89PNG\r\n\x1a\n" + bytes(16)).decode()
    content = [
        {"type": "text", "text": "Describe both"},
        {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{pixel}"}},
        {"type": "image_url",
         "image_url": {"url": "https://example.com/cat.jpg", "detail": "low"}},
    ]  # fmt: skip
    messages: list[Any] = [{"role": "user", "content": content}]
    reply = client(gateway).chat.completions.create(model="gpt", messages=messages)
    assert reply.choices[0].message.content == "echo: Describe both"
    # Not fetched, not re-encoded: the parts reach an OpenAI upstream as the client sent them.
    assert upstream.last_request.json["messages"] == messages
    assert len(upstream.requests) == 1


# --------------------------------------------------------------------------- embeddings


@pytest.mark.matrix("jina_ai", "embeddings")
def test_jina_embeddings(gateway: Gateway, upstream: FakeUpstream) -> None:
    result = client(gateway).embeddings.create(
        model="jina-emb",
        input=["first passage", "second passage"],
        dimensions=16,
        encoding_format="float",
        extra_body={"input_type": "retrieval.passage", "task": "retrieval.passage"},
    )
    assert [d.embedding for d in result.data] == [
        fake_embedding("first passage", 16),
        fake_embedding("second passage", 16),
    ]
    seen = upstream.last_request
    assert seen.path == "/v1/embeddings"
    assert seen.headers["authorization"] == "Bearer jina_k"
    assert seen.json == {
        "model": "jina-embeddings-v3",
        "input": ["first passage", "second passage"],
        "dimensions": 16,
        "encoding_format": "float",
        "input_type": "retrieval.passage",
        "task": "retrieval.passage",
    }


@pytest.mark.matrix("mistral", "embeddings")
def test_mistral_embeddings(gateway: Gateway, upstream: FakeUpstream) -> None:
    # The SDK asks for base64 by default and decodes it; both directions are untouched.
    result = client(gateway).embeddings.create(model="mistral-emb", input="bonjour")
    assert result.data[0].embedding == fake_embedding("bonjour")
    assert result.model == "mistral-embed"
    seen = upstream.last_request
    assert seen.path == "/v1/embeddings"
    assert seen.headers["authorization"] == "Bearer mis_k"
    assert seen.json == {"model": "mistral-embed", "input": "bonjour", "encoding_format": "base64"}
    # OpenAI's `dimensions` is Mistral's `output_dimension` (a param_renames entry).
    client(gateway).embeddings.create(model="mistral-emb", input="x", dimensions=256)
    assert upstream.last_request.json["output_dimension"] == 256
    assert "dimensions" not in upstream.last_request.json


# --------------------------------------------------------------------------- rerank

DOCUMENTS = [
    "Paris is the capital of France.",
    "Berlin is the capital of Germany.",
    "The Seine flows through Paris.",
]
# Each provider's own /v1/rerank answer (Together: object/id/usage; Jina: usage only).
TOGETHER_RERANK = {
    "object": "rerank",
    "id": "oGs6Zt9-62bZhn-8fa9c7b1a9f4c6e1",
    "model": "Salesforce/Llama-Rank-V1",
    "results": [
        {"index": 0, "relevance_score": 0.9170, "document": {"text": DOCUMENTS[0]}},
        {"index": 2, "relevance_score": 0.4125, "document": {"text": DOCUMENTS[2]}},
    ],
    "usage": {"prompt_tokens": 112, "completion_tokens": 0, "total_tokens": 112},
}
JINA_RERANK = {
    "model": "jina-reranker-v2-base-multilingual",
    "usage": {"total_tokens": 57},
    "results": [
        {"index": 0, "document": {"text": DOCUMENTS[0]}, "relevance_score": 0.8671},
        {"index": 2, "document": {"text": DOCUMENTS[2]}, "relevance_score": 0.2083},
    ],
}


@pytest.mark.matrix("together_ai", "rerank")
@pytest.mark.matrix("jina_ai", "rerank")
@pytest.mark.parametrize(
    ("model", "native", "upstream_model", "key"),
    [
        ("together-rerank", TOGETHER_RERANK, "Salesforce/Llama-Rank-V1", "tog_k"),
        ("jina-rerank", JINA_RERANK, "jina-reranker-v2-base-multilingual", "jina_k"),
    ],
)
def test_rerank_has_the_one_shape(
    gateway: Gateway,
    upstream: FakeUpstream,
    model: str,
    native: dict[str, Any],
    upstream_model: str,
    key: str,
) -> None:
    upstream.behave("status", status=200, json=native)
    request = {"model": model, "query": "capital of France", "documents": DOCUMENTS,
               "top_n": 2, "return_documents": True}  # fmt: skip
    with httpx.Client(timeout=5) as http:
        response = http.post(
            f"{gateway.url}/v1/rerank",
            headers={"authorization": f"Bearer {MASTER_KEY}"},
            json=request,
        )
    assert response.status_code == 200
    answer = response.json()
    assert [(r["index"], r["relevance_score"]) for r in answer["results"]] == [
        (r["index"], r["relevance_score"]) for r in native["results"]
    ]
    assert all(isinstance(r["relevance_score"], float) for r in answer["results"])
    seen = upstream.last_request
    assert seen.path == "/v1/rerank"
    assert seen.headers["authorization"] == f"Bearer {key}"
    assert seen.json == {**request, "model": upstream_model}


# --------------------------------------------------------------------------- drop_params


def _narrow_providers(tmp_path: Path, upstream: FakeUpstream) -> Path:
    """The shipped providers.yaml plus `narrowai`, an OpenAI-compatible provider whose
    chat param set is narrower than OpenAI's (no shipped OA entry narrows it)."""
    shipped = (default_spec_dir() / "providers.yaml").read_text()
    assert "param_sets:\n" in shipped
    path = tmp_path / "providers.yaml"
    path.write_text(
        shipped.replace(
            "param_sets:\n",
            "param_sets:\n  narrow_chat: [max_tokens, stream, stream_options, temperature]\n",
        )
        + f"""
  narrowai:
    title: Narrow AI
    base_url: {upstream.base_url}
    key_env: [NARROWAI_API_KEY]
    operations: [chat]
    params: {{chat: narrow_chat}}
"""
    )
    return path


@pytest.mark.matrix("openai_compat", "drop_params")
def test_drop_params_on_a_narrower_provider(upstream: FakeUpstream, tmp_path: Path) -> None:
    config = f"""
model_list:
  - model_name: strict
    litellm_params: {{model: narrowai/n-1}}
  - model_name: lenient
    litellm_params: {{model: narrowai/n-1, drop_params: true}}
general_settings: {{master_key: {MASTER_KEY}}}
"""
    providers = _narrow_providers(tmp_path, upstream)
    env = {"NARROWAI_API_KEY": "narrow-secret"}
    with running_gateway(config, tmp_path, providers=providers, env=env) as gw:
        sdk = client(gw)
        extras: dict[str, Any] = {"tools": [WEATHER_TOOL], "seed": 7, "temperature": 0.5}
        with pytest.raises(openai.BadRequestError) as refused:
            sdk.chat.completions.create(model="strict", messages=MESSAGES, **extras)
        assert "narrowai does not support parameters" in refused.value.message
        assert "'tools'" in refused.value.message and "'seed'" in refused.value.message
        assert len(upstream.requests) == 0

        by_request = sdk.chat.completions.create(
            model="strict", messages=MESSAGES, extra_body={"drop_params": True}, **extras
        )
        by_deployment = sdk.chat.completions.create(model="lenient", messages=MESSAGES, **extras)
        assert by_request.choices[0].message.content == by_deployment.choices[0].message.content

        with httpx.Client(timeout=5) as http:
            supported = http.get(
                f"{gw.url}/utils/supported_openai_params",
                params={"model": "strict"},
                headers={"authorization": f"Bearer {MASTER_KEY}"},
            )
        assert supported.json() == ["max_tokens", "stream", "stream_options", "temperature"]
    for seen in upstream.requests:
        assert seen.json == {"model": "n-1", "messages": MESSAGES, "temperature": 0.5}
        assert seen.headers["authorization"] == "Bearer narrow-secret"
    assert len(upstream.requests) == 2
