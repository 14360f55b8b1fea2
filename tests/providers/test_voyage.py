"""Voyage AI through the gateway: embeddings with input_type, rerank normalised to
the one rerank shape, errors."""

from __future__ import annotations

import base64
import struct
from collections.abc import Iterator
from typing import Any

import httpx
import openai
import pytest

from tests.conftest import MASTER_KEY, Gateway, running_gateway
from tests.support.fake_upstream import FakeUpstream

pytestmark = pytest.mark.timeout(30)

VECTORS = [[0.5, -0.25, 0.125], [1.0, 0.0, -0.75]]  # exact in float32


def _b64(vector: list[float]) -> str:
    return base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode()


def embedding_answer(as_base64: bool) -> dict[str, Any]:
    data = [
        {"object": "embedding", "embedding": _b64(v) if as_base64 else v, "index": i}
        for i, v in enumerate(VECTORS)
    ]
    return {"object": "list", "data": data, "model": "voyage-3.5", "usage": {"total_tokens": 7}}


RERANK_ANSWER = {
    "object": "list",
    "data": [
        {"relevance_score": 0.84375, "index": 1, "document": "Voyage makes embeddings."},
        {"relevance_score": 0.21875, "index": 0, "document": "Paris is in France."},
    ],
    "model": "rerank-2.5",
    "usage": {"total_tokens": 26},
}


@pytest.fixture(scope="module")
def up() -> Iterator[FakeUpstream]:
    with FakeUpstream() as upstream:
        yield upstream


@pytest.fixture(scope="module")
def gw(up: FakeUpstream, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    config = f"""
model_list:
  - model_name: voyage-embed
    litellm_params: {{model: voyage/voyage-3.5, api_base: {up.base_url}}}
  - model_name: voyage-rerank
    litellm_params: {{model: voyage/rerank-2.5, api_base: {up.base_url}}}
general_settings: {{master_key: {MASTER_KEY}}}
"""
    env = {"VOYAGE_API_KEY": "vo-key"}
    with running_gateway(config, tmp_path_factory.mktemp("gw"), env=env) as gateway:
        yield gateway


@pytest.fixture
def client(gw: Gateway, up: FakeUpstream) -> openai.OpenAI:
    up.reset()
    return openai.OpenAI(base_url=gw.v1, api_key=MASTER_KEY, max_retries=0)


@pytest.mark.matrix("voyage", "embeddings")
def test_embeddings_with_input_type(client: openai.OpenAI, up: FakeUpstream) -> None:
    # The SDK asks for base64 by default: Voyage speaks the same encoding.
    up.behave("status", status=200, json=embedding_answer(True), times=1)
    result = client.embeddings.create(
        model="voyage-embed",
        input=["q1", "q2"],
        dimensions=256,
        user="u-1",
        extra_body={"input_type": "query"},
    )
    assert [d.embedding for d in result.data] == VECTORS
    assert (result.usage.prompt_tokens, result.usage.total_tokens) == (7, 7)
    seen = up.requests[0]
    assert seen.path == "/v1/embeddings" and seen.headers["authorization"] == "Bearer vo-key"
    assert seen.json == {
        "model": "voyage-3.5",
        "input": ["q1", "q2"],
        "output_dimension": 256,
        "encoding_format": "base64",
        "input_type": "query",
    }

    up.behave("status", status=200, json=embedding_answer(False), times=1)
    floats = client.embeddings.create(model="voyage-embed", input="d", encoding_format="float")
    assert floats.data[1].embedding == VECTORS[1]
    assert "encoding_format" not in up.requests[1].json  # float is Voyage's default


@pytest.mark.matrix("voyage", "rerank")
def test_rerank_is_normalised(gw: Gateway, up: FakeUpstream) -> None:
    up.reset()
    up.behave("status", status=200, json=RERANK_ANSWER, times=1)
    documents = ["Paris is in France.", "Voyage makes embeddings."]
    response = httpx.post(
        gw.v1 + "/rerank",
        headers={"authorization": f"Bearer {MASTER_KEY}"},
        json={
            "model": "voyage-rerank",
            "query": "embeddings vendor",
            "documents": documents,
            "top_n": 2,
            "return_documents": True,
        },
        timeout=5,
    )
    assert response.status_code == 200, response.text
    answer = response.json()
    assert isinstance(answer.pop("id"), str)
    assert answer == {
        "results": [
            {"index": 1, "relevance_score": 0.84375, "document": {"text": documents[1]}},
            {"index": 0, "relevance_score": 0.21875, "document": {"text": documents[0]}},
        ],
        "meta": {"billed_units": {"total_tokens": 26}, "tokens": {"input_tokens": 26}},
    }
    assert up.requests[0].path == "/v1/rerank"
    assert up.requests[0].json == {
        "model": "rerank-2.5",
        "query": "embeddings vendor",
        "documents": documents,
        "top_k": 2,
    }


@pytest.mark.matrix("voyage", "errors")
def test_errors_are_mapped(client: openai.OpenAI, up: FakeUpstream) -> None:
    up.behave("status", status=401, json={"detail": "Provided API key is invalid."}, times=1)
    with pytest.raises(openai.AuthenticationError, match="voyageException - Provided API key"):
        client.embeddings.create(model="voyage-embed", input="x")
    with pytest.raises(openai.BadRequestError, match="does not support"):
        client.chat.completions.create(
            model="voyage-embed", messages=[{"role": "user", "content": "x"}]
        )
