"""Voyage AI (embeddings, rerank), and the normalised embedding and rerank answers.

Voyage's embeddings are nearly OpenAI's (`dimensions` is `output_dimension`, usage
has only `total_tokens`). Its rerank takes `top_k` and answers `data[]`; tianji
answers every rerank in one shape, Cohere's:
`{"id", "results": [{"index", "relevance_score", "document"?: {"text"}}], "meta"}`.

The shapes themselves are in shapes.py, shared with the other adapters.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import msgspec

from tianji.errors import TianjiError
from tianji.providers.base import Call
from tianji.providers.errors import provider_error
from tianji.providers.openai_compat import OpenAICompatAdapter, apply_params
from tianji.providers.shapes import (
    decode_object,
    document_texts,
    error_message,
    rerank_response,
    upstream_shape,
)
from tianji.upstream.types import UpstreamRequest

__all__ = ["VoyageAdapter"]

_encode = msgspec.json.encode


class VoyageAdapter(OpenAICompatAdapter):
    name = "voyage"

    def build_request(self, call: Call) -> UpstreamRequest:
        body = apply_params(call)
        if call.operation == "rerank":
            body = self._rerank_body(body)
        elif call.operation == "embeddings":
            body.pop("user", None)  # accepted for OpenAI clients; Voyage has no such field
            if "dimensions" in body:
                body["output_dimension"] = body.pop("dimensions")
            if body.get("encoding_format") == "float":
                del body["encoding_format"]  # Voyage knows only base64; float is its default
        raw = _encode(body)
        return UpstreamRequest("POST", self.url(call), self.headers(call, "application/json"), raw)

    @staticmethod
    def _rerank_body(body: dict[str, Any]) -> dict[str, Any]:
        out = {
            "model": body.pop("model"),
            "query": body.pop("query", ""),
            "documents": document_texts(body.pop("documents", None)),
        }
        top_n = body.pop("top_n", None)
        if top_n is not None:
            out["top_k"] = top_n
        # Voyage returns documents itself; tianji adds them from the request instead.
        for cohere_only in ("return_documents", "rank_fields", "max_chunks_per_doc"):
            body.pop(cohere_only, None)
        return {**out, **body}

    def translate_response(self, call: Call, body: bytes) -> bytes | None:
        data = decode_object("voyage", body)
        with upstream_shape("voyage"):
            return self._translate(call, data)

    @staticmethod
    def _translate(call: Call, data: dict[str, Any]) -> bytes:
        usage = data.get("usage") or {}
        tokens = int(usage.get("total_tokens") or 0)
        if call.operation == "rerank":
            scored = [(int(d["index"]), float(d["relevance_score"])) for d in data.get("data", [])]
            return rerank_response(
                scored,
                document_texts((call.body or {}).get("documents", [])),
                return_documents=bool((call.body or {}).get("return_documents")),
                meta={"billed_units": {"total_tokens": tokens}, "tokens": {"input_tokens": tokens}},
            )
        data["usage"] = {"prompt_tokens": tokens, "total_tokens": tokens}
        return _encode(data)

    def error_from_status(
        self, call: Call, status: int, headers: Mapping[str, str], body: bytes
    ) -> TianjiError:
        message = error_message(body, "detail", "message", "error")
        return provider_error("voyage", status, message, retry_after=headers.get("retry-after"))
