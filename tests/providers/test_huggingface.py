"""Hugging Face: the router's provider-suffix rule, feature-extraction embeddings, TEI
rerank, and the openai SDK through the gateway against a loopback endpoint."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import msgspec
import openai
import pytest

from tests.conftest import MASTER_KEY, Gateway, running_gateway
from tests.support.fake_upstream import FakeUpstream
from tianji.compile.model import Deployment
from tianji.compile.pipeline import build
from tianji.errors import InvalidRequest, UnsupportedParams
from tianji.providers import Call, adapter_for
from tianji.providers.huggingface import router_model

pytestmark = pytest.mark.timeout(30)

MESSAGES = [{"role": "user", "content": "hello hub"}]


def deployment(tmp_path: Path, params: str) -> Deployment:
    config = tmp_path / "c.yaml"
    config.write_text(f"model_list:\n  - model_name: m\n    litellm_params: {params}\n")
    built, problems = build(config, env={})
    assert built is not None, [p.render() for p in problems]
    return built.gateway.models.groups["m"].deployments[0]


def make_call(d: Deployment, body: dict[str, Any], operation: str = "chat") -> Call:
    openai_params = {
        "chat": frozenset({"temperature", "stream", "max_tokens"}),
        "embeddings": frozenset({"dimensions", "encoding_format", "user"}),
    }.get(operation, frozenset())
    return Call(operation, d, d.model, body=body, openai_params=openai_params)


def decoded(data: bytes | None) -> Any:
    assert data is not None
    return msgspec.json.decode(data)


# --------------------------------------------------------------------------- requests


@pytest.mark.parametrize(
    ("model", "sent"),
    [
        ("together/deepseek-ai/DeepSeek-R1", "deepseek-ai/DeepSeek-R1:together"),
        ("meta-llama/Llama-3.3-70B-Instruct", "meta-llama/Llama-3.3-70B-Instruct"),
        ("Qwen/QwQ-32B:nebius", "Qwen/QwQ-32B:nebius"),
        ("gpt2", "gpt2"),
    ],
)
def test_router_model_rule(model: str, sent: str) -> None:
    assert router_model(model) == sent


def test_chat_requests_router_and_dedicated(tmp_path: Path) -> None:
    d = deployment(tmp_path, "{model: huggingface/together/deepseek-ai/DeepSeek-R1, api_key: hf_x}")
    request = adapter_for("huggingface").build_request(
        make_call(d, {"model": "m", "messages": MESSAGES, "temperature": 0.1})
    )
    assert request.url == "https://router.huggingface.co/v1/chat/completions"
    assert decoded(request.body) == {
        "model": "deepseek-ai/DeepSeek-R1:together",
        "messages": MESSAGES,
        "temperature": 0.1,
    }
    assert ("authorization", "Bearer hf_x") in request.headers

    dedicated = deployment(
        tmp_path,
        "{model: huggingface/tgi/org/model, api_key: hf_x, "
        "api_base: 'https://abc123.us-east-1.aws.endpoints.huggingface.cloud/v1'}",
    )
    request = adapter_for("huggingface").build_request(make_call(dedicated, {"messages": []}))
    assert (
        request.url
        == "https://abc123.us-east-1.aws.endpoints.huggingface.cloud/v1/chat/completions"
    )
    assert decoded(request.body)["model"] == "tgi/org/model"  # no router: the name is as given


def test_embeddings_requests(tmp_path: Path) -> None:
    d = deployment(tmp_path, "{model: huggingface/BAAI/bge-small-en-v1.5, api_key: hf_x}")
    adapter = adapter_for("huggingface")
    request = adapter.build_request(
        make_call(d, {"input": ["a", "b"], "normalize": True, "user": "u"}, "embeddings")
    )
    assert request.url == (
        "https://router.huggingface.co/hf-inference/models/BAAI/bge-small-en-v1.5"
        "/pipeline/feature-extraction"
    )
    assert decoded(request.body) == {"inputs": ["a", "b"], "normalize": True}
    with pytest.raises(UnsupportedParams):
        adapter.build_request(make_call(d, {"input": "a", "dimensions": 4}, "embeddings"))
    with pytest.raises(InvalidRequest):
        adapter.build_request(make_call(d, {"input": [[1, 2, 3]]}, "embeddings"))

    tei = deployment(tmp_path, "{model: huggingface/e5, api_key: k, api_base: 'http://tei:8080'}")
    assert (
        adapter.build_request(make_call(tei, {"input": "a"}, "embeddings")).url == "http://tei:8080"
    )
    rerank = adapter.build_request(
        make_call(tei, {"query": "q", "documents": ["x", {"text": "y"}], "top_n": 1}, "rerank")
    )
    assert rerank.url == "http://tei:8080/rerank"
    assert decoded(rerank.body) == {"query": "q", "texts": ["x", "y"]}


def test_embeddings_answers_pooled_and_token_level(tmp_path: Path) -> None:
    d = deployment(tmp_path, "{model: huggingface/BAAI/bge-small-en-v1.5, api_key: hf_x}")
    adapter = adapter_for("huggingface")
    pooled = decoded(
        adapter.translate_response(
            make_call(d, {"input": ["one", "two words"]}, "embeddings"), b"[[0.1, 0.2], [0.3, 0.4]]"
        )
    )
    assert [e["embedding"] for e in pooled["data"]] == [[0.1, 0.2], [0.3, 0.4]]
    assert pooled["usage"]["prompt_tokens"] == 3  # tianji's own count: "one" + "two words"

    tokens = b"[[[1.0, 2.0], [3.0, 4.0]]]"  # one input, two token vectors -> their mean
    mean = decoded(adapter.translate_response(make_call(d, {"input": "x"}, "embeddings"), tokens))
    assert mean["data"][0]["embedding"] == [2.0, 3.0]

    unwrapped = decoded(
        adapter.translate_response(
            make_call(d, {"input": "x", "encoding_format": "base64"}, "embeddings"), b"[0.5, -1.0]"
        )
    )
    assert unwrapped["data"][0]["embedding"] == "AAAAPwAAgL8="


# --------------------------------------------------------------------------- gateway


def config(up: FakeUpstream) -> str:
    return f"""
model_list:
  - model_name: hf-chat
    litellm_params:
      model: huggingface/meta-llama/Llama-3.3-70B-Instruct
      api_base: {up.root_url}/v1
      api_key: hf_secret
  - model_name: hf-embed
    litellm_params:
      model: huggingface/BAAI/bge-small-en-v1.5
      api_base: {up.root_url}/tei
      api_key: hf_secret
general_settings:
  master_key: {MASTER_KEY}
"""


@pytest.fixture
def gateway(upstream: FakeUpstream, tmp_path: Path) -> Iterator[Gateway]:
    with running_gateway(config(upstream), tmp_path) as gw:
        yield gw


def client(gw: Gateway) -> openai.OpenAI:
    return openai.OpenAI(base_url=gw.v1, api_key=MASTER_KEY, max_retries=0)


@pytest.mark.matrix("huggingface", "chat")
@pytest.mark.matrix("huggingface", "stream")
@pytest.mark.matrix("huggingface", "usage")
def test_gateway_chat_plain_and_stream(gateway: Gateway, upstream: FakeUpstream) -> None:
    reply = client(gateway).chat.completions.create(model="hf-chat", messages=MESSAGES)
    assert reply.choices[0].message.content == "echo: hello hub"
    assert reply.usage is not None and reply.usage.total_tokens > 0
    seen = upstream.last_request
    assert seen.path == "/v1/chat/completions"
    assert seen.json["model"] == "meta-llama/Llama-3.3-70B-Instruct"
    assert seen.headers["authorization"] == "Bearer hf_secret"

    stream = client(gateway).chat.completions.create(
        model="hf-chat", messages=MESSAGES, stream=True, stream_options={"include_usage": True}
    )
    chunks = list(stream)
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == (
        "echo: hello hub"
    )
    assert chunks[-1].usage is not None


@pytest.mark.matrix("huggingface", "embeddings")
def test_gateway_embeddings(gateway: Gateway, upstream: FakeUpstream) -> None:
    upstream.behave("status", status=200, json=[[0.25, 0.5, 0.75], [1.0, 0.0, -1.0]], times=1)
    result = client(gateway).embeddings.create(model="hf-embed", input=["first", "second"])
    assert [e.embedding for e in result.data] == [[0.25, 0.5, 0.75], [1.0, 0.0, -1.0]]
    assert result.usage.prompt_tokens == 2
    seen = upstream.last_request
    assert seen.path == "/tei" and seen.json == {"inputs": ["first", "second"]}


@pytest.mark.matrix("huggingface", "rerank")
@pytest.mark.matrix("huggingface", "errors")
def test_gateway_rerank_and_errors(gateway: Gateway, upstream: FakeUpstream) -> None:
    upstream.behave(
        "status",
        status=200,
        json=[{"index": 1, "score": 0.98}, {"index": 0, "score": 0.02}],
        times=1,
    )
    answer = httpx.post(
        f"{gateway.url}/rerank",
        headers={"authorization": f"Bearer {MASTER_KEY}"},
        json={
            "model": "hf-embed",
            "query": "capital",
            "documents": ["snow", "Paris"],
            "top_n": 1,
            "return_documents": True,
        },
        timeout=10,
    )
    assert answer.status_code == 200, answer.text
    assert answer.json()["results"] == [
        {"index": 1, "relevance_score": 0.98, "document": {"text": "Paris"}}
    ]
    assert upstream.last_request.path == "/tei/rerank"

    overloaded = {"error": "Model is overloaded", "error_type": "overloaded"}
    upstream.behave("status", status=503, json=overloaded, times=1)
    with pytest.raises(openai.InternalServerError) as info:
        client(gateway).embeddings.create(model="hf-embed", input="x")
    assert info.value.status_code == 503 and "Model is overloaded" in info.value.message
