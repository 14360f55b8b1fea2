"""Hugging Face: the Inference Providers router and dedicated Inference Endpoints
(providers.md §3.11).

Chat speaks OpenAI's wire format (router `/v1/chat/completions`, or TGI's Messages API
on a dedicated endpoint), so it is relayed untouched. On the router a model named
`provider/org/name` (`huggingface/together/deepseek-ai/DeepSeek-R1`) is sent as
`org/name:provider`, the router's way of choosing the inference provider. Embeddings
use the feature-extraction pipeline (`{"inputs": [...]}` -> one vector per input, or
one per token, then mean-pooled); rerank is TEI's `/rerank`.
"""

from __future__ import annotations

import base64
import dataclasses
import struct
import uuid
from typing import Any
from urllib.parse import quote, urlsplit

import msgspec

from tianji.errors import InvalidRequest
from tianji.providers.base import Call, StreamTranslator
from tianji.providers.errors import provider_error
from tianji.providers.openai_compat import OpenAICompatAdapter, apply_params
from tianji.tokens import count_text
from tianji.upstream.types import UpstreamRequest

__all__ = ["ROUTER_HOST", "HuggingFaceAdapter", "router_model"]

ROUTER_HOST = "router.huggingface.co"
_PROVIDER = "huggingface"
# Embedding fields that shape the answer here rather than upstream.
_LOCAL_FIELDS = ("model", "input", "encoding_format", "user")

_decode = msgspec.json.decode
_encode = msgspec.json.encode


def router_model(model: str) -> str:
    """`provider/org/name` -> `org/name:provider`; Hub ids (`org/name`) stay as they are."""
    parts = model.split("/")
    if len(parts) == 3 and ":" not in model:
        provider, org, name = parts
        return f"{org}/{name}:{provider}"
    return model


class HuggingFaceAdapter(OpenAICompatAdapter):
    name = _PROVIDER

    def build_request(self, call: Call) -> UpstreamRequest:
        if call.operation == "chat":
            if _on_router(call):
                call = dataclasses.replace(call, model=router_model(call.model))
            return super().build_request(call)
        body = apply_params(call)
        if call.operation == "embeddings":
            native = _embeddings_body(body)
        elif call.operation == "rerank":
            native = _rerank_body(body)
        else:
            raise InvalidRequest(f"huggingface does not serve {call.operation}")
        headers = self.headers(call, "application/json")
        return UpstreamRequest("POST", self.url(call), headers, _encode(native))

    def url(self, call: Call) -> str:
        base = call.deployment.api_base.removesuffix("/v1")
        path = call.deployment.provider.paths[call.operation]
        if call.operation == "embeddings":
            if not _on_router(call):
                return base  # a dedicated endpoint serves its one model at its root
            return base + path.replace("{model}", quote(call.model, safe="/"))
        return base + path

    def translate_response(self, call: Call, body: bytes) -> bytes | None:
        if call.operation == "chat":
            return None
        try:
            data = _decode(body)
        except msgspec.DecodeError:
            raise provider_error(_PROVIDER, 502, "invalid response from huggingface") from None
        request = call.body or {}
        if call.operation == "embeddings":
            return _encode(_embeddings_list(data, request, call.model))
        return _encode(_rerank_result(data, request))

    def stream_translator(self, call: Call) -> StreamTranslator | None:
        return None

    # error_from_status (inherited): the router answers OpenAI-style errors, TEI and TGI
    # `{"error": "...", "error_type": ...}`, which the OpenAI parser reads as the message.


def _on_router(call: Call) -> bool:
    return urlsplit(call.deployment.api_base).hostname == ROUTER_HOST


def _texts(raw: Any) -> list[str]:
    texts = [raw] if isinstance(raw, str) else raw
    if not isinstance(texts, list) or not all(isinstance(t, str) for t in texts):
        raise InvalidRequest(
            "huggingface embeddings take text inputs, not token ids", param="input"
        )
    return texts


def _embeddings_body(body: dict[str, Any]) -> dict[str, Any]:
    """`{"inputs": [...]}` plus the pipeline's own options (normalize, truncate, ...)."""
    extras = {k: v for k, v in body.items() if k not in _LOCAL_FIELDS}
    return {"inputs": _texts(body.get("input")), **extras}


def _embeddings_list(data: Any, request: dict[str, Any], model: str) -> dict[str, Any]:
    texts = _texts(request.get("input"))
    if not isinstance(data, list):
        raise provider_error(_PROVIDER, 502, "invalid response from huggingface: not a list")
    if len(texts) == 1 and data and _is_vector(data):
        data = [data]  # some servers unwrap a batch of one
    as_base64 = request.get("encoding_format") == "base64"
    items = []
    for index, item in enumerate(data):
        vector: list[float] = item if _is_vector(item) else _mean_pool(item)
        embedding = _base64(vector) if as_base64 else vector
        items.append({"object": "embedding", "index": index, "embedding": embedding})
    # The pipeline reports no token counts; this is tianji's own estimate.
    tokens = sum(count_text(text, model) for text in texts)
    return {
        "object": "list",
        "data": items,
        "model": model,
        "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
    }


def _is_vector(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(x, int | float) for x in value)


def _mean_pool(tokens: Any) -> list[float]:
    """Token-level output (one vector per token) -> one sentence vector."""
    if not isinstance(tokens, list) or not tokens or not all(_is_vector(t) for t in tokens):
        raise provider_error(_PROVIDER, 502, "invalid response from huggingface: not vectors")
    width = len(tokens[0])
    return [sum(t[i] for t in tokens) / len(tokens) for i in range(width)]


def _base64(vector: list[float]) -> str:
    return base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode()


def _rerank_body(body: dict[str, Any]) -> dict[str, Any]:
    documents = body.get("documents") or []
    texts = [d.get("text", "") if isinstance(d, dict) else str(d) for d in documents]
    native: dict[str, Any] = {"query": body.get("query", ""), "texts": texts}
    for key in ("truncate", "raw_scores"):
        if key in body:
            native[key] = body[key]
    return native


def _rerank_result(data: Any, request: dict[str, Any]) -> dict[str, Any]:
    """TEI `[{index, score}]` -> Cohere's `{results: [{index, relevance_score}]}`."""
    if not isinstance(data, list):
        raise provider_error(_PROVIDER, 502, "invalid response from huggingface: not a list")
    documents = request.get("documents") or []
    results = []
    for entry in data:
        index = int(entry.get("index", 0))
        item: dict[str, Any] = {"index": index, "relevance_score": entry.get("score")}
        if request.get("return_documents") and index < len(documents):
            document = documents[index]
            item["document"] = document if isinstance(document, dict) else {"text": document}
        results.append(item)
    results.sort(key=lambda r: -(r["relevance_score"] or 0.0))
    if isinstance(request.get("top_n"), int):
        results = results[: request["top_n"]]
    return {"id": f"rerank-{uuid.uuid4().hex}", "results": results, "meta": {}}
