"""Google AI Studio (the Gemini API): chat through `generateContent` /
`streamGenerateContent?alt=sse`, embeddings through `batchEmbedContents`.

URLs are `{api_base}{path}` with the path from providers.yaml (`{model}` filled in);
a streamed chat swaps `:generateContent` for `:streamGenerateContent?alt=sse`. The
key travels in the `x-goog-api-key` header (providers.yaml `auth`), never in
`?key=`, which would leak into access logs. Vertex AI (tianji.providers.vertex)
reuses all of this with its own URLs, auth and embedding API.
"""

from __future__ import annotations

import base64
import struct
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote, urlencode

import msgspec

from tianji.errors import InvalidRequest, TianjiError, UpstreamProtocolError
from tianji.providers.base import Call, StreamTranslator
from tianji.providers.gemini_request import chat_body
from tianji.providers.gemini_response import chat_completion, decode_json, error_from_body
from tianji.providers.gemini_stream import GeminiStreamTranslator
from tianji.providers.openai_compat import apply_params
from tianji.upstream.types import UpstreamRequest

__all__ = ["GeminiAdapter", "embedding_inputs", "embedding_list"]

_encode = msgspec.json.encode


def embedding_inputs(provider: str, raw: Any) -> list[str]:
    """Gemini embeds text only: token arrays cannot be sent."""
    inputs = [raw] if isinstance(raw, str) else raw
    if not isinstance(inputs, list) or not all(isinstance(x, str) for x in inputs) or not inputs:
        raise InvalidRequest(
            f"{provider} embeddings take a string or a list of strings (not token arrays)",
            param="input",
        )
    return inputs


def embedding_list(
    model: str, vectors: list[list[float]], tokens: int, encoding: str | None
) -> dict[str, Any]:
    """OpenAI's embedding list; base64 is little-endian float32, like OpenAI's."""
    data = []
    for i, vector in enumerate(vectors):
        value: Any = vector
        if encoding == "base64":
            value = base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode()
        data.append({"object": "embedding", "index": i, "embedding": value})
    usage = {"prompt_tokens": tokens, "total_tokens": tokens}
    return {"object": "list", "data": data, "model": model, "usage": usage}


class GeminiAdapter:
    name = "gemini"

    # --- URL and headers (Vertex overrides base_url and path_values) --------------

    def base_url(self, call: Call) -> str:
        return call.deployment.api_base

    def path_values(self, call: Call) -> dict[str, str]:
        return {"model": quote(call.model.removeprefix("models/"), safe="")}

    def url(self, call: Call) -> str:
        path = call.deployment.provider.paths[call.operation]
        for name, value in self.path_values(call).items():
            path = path.replace("{" + name + "}", value)
        query = list(call.deployment.query)
        if call.operation == "chat" and call.stream:
            path = path.replace(":generateContent", ":streamGenerateContent")
            query.insert(0, ("alt", "sse"))
        url = self.base_url(call) + path
        return f"{url}?{urlencode(query)}" if query else url

    def headers(self, call: Call) -> list[tuple[str, str]]:
        return [*call.deployment.headers, *call.extra_headers, ("content-type", "application/json")]

    # --- the adapter seam ----------------------------------------------------------

    def build_request(self, call: Call) -> UpstreamRequest:
        if call.operation == "chat":
            body = chat_body(call)
        elif call.operation == "embeddings":
            body = self.embedding_body(call)
        else:
            raise InvalidRequest(
                f"{call.deployment.provider.name} does not support {call.operation}"
            )
        return UpstreamRequest("POST", self.url(call), self.headers(call), _encode(body))

    def translate_response(self, call: Call, body: bytes) -> bytes | None:
        provider = call.deployment.provider.name
        data = decode_json(provider, body)
        if call.operation == "embeddings":
            return _encode(self.embedding_response(call, data))
        return _encode(chat_completion(provider, call.model, data))

    def stream_translator(self, call: Call) -> StreamTranslator | None:
        return GeminiStreamTranslator(call) if call.operation == "chat" else None

    def error_from_status(
        self, call: Call, status: int, headers: Mapping[str, str], body: bytes
    ) -> TianjiError:
        return error_from_body(call.deployment.provider.name, status, headers, body)

    # --- embeddings ----------------------------------------------------------------

    def embedding_body(self, call: Call) -> dict[str, Any]:
        body = apply_params(call)
        model = f"models/{call.model.removeprefix('models/')}"
        requests = []
        for text in embedding_inputs(call.deployment.provider.name, body.get("input")):
            item: dict[str, Any] = {"model": model, "content": {"parts": [{"text": text}]}}
            if body.get("dimensions"):
                item["outputDimensionality"] = body["dimensions"]
            task = body.get("task_type") or body.get("taskType")
            if task:
                item["taskType"] = task
            requests.append(item)
        return {"requests": requests}

    def embedding_response(self, call: Call, data: Any) -> dict[str, Any]:
        embeddings = data.get("embeddings") if isinstance(data, dict) else None
        if not isinstance(embeddings, list):
            raise UpstreamProtocolError(
                f"invalid response from {call.deployment.provider.name}: no embeddings"
            )
        vectors = [e.get("values") or [] for e in embeddings]
        tokens = int((data.get("usageMetadata") or {}).get("promptTokenCount") or 0)
        return embedding_list(call.model, vectors, tokens, _encoding(call))


def _encoding(call: Call) -> str | None:
    value = (call.body or {}).get("encoding_format")
    return value if isinstance(value, str) else None
