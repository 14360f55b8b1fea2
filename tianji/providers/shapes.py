"""Shapes shared by translating adapters: tolerant JSON decoding, error text,
OpenAI embedding lists (honouring `encoding_format`), the one rerank answer
(Cohere's `{"id", "results": [{"index", "relevance_score", "document"?}], "meta"}`),
and tool calls with made-up ids for providers that send none.
"""

from __future__ import annotations

import base64
import struct
import uuid
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

import msgspec

from tianji.errors import InvalidRequest, UpstreamProtocolError

__all__ = [
    "cached_usage",
    "decode_object",
    "document_texts",
    "embedding_inputs",
    "embedding_list",
    "error_message",
    "new_tool_call_id",
    "openai_tool_calls",
    "rerank_response",
    "tool_names_by_id",
    "upstream_shape",
]

_encode = msgspec.json.encode


def new_tool_call_id() -> str:
    """For providers that send no tool-call ids (providers.md §1)."""
    return f"call_{uuid.uuid4().hex}"


def decode_object(provider: str, body: bytes) -> dict[str, Any]:
    """An upstream JSON object, or the 502 anything else deserves."""
    try:
        data = msgspec.json.decode(body)
    except msgspec.DecodeError:
        data = None
    if not isinstance(data, dict):
        raise UpstreamProtocolError(f"invalid response from {provider}: not a JSON object")
    return data


@contextmanager
def upstream_shape(provider: str) -> Iterator[None]:
    """A missing key or a wrong type in an upstream answer is the provider's fault (502),
    not a tianji bug (500)."""
    try:
        yield
    except (KeyError, IndexError, TypeError, ValueError, AttributeError) as exc:
        raise UpstreamProtocolError(f"invalid response from {provider}: {exc!r}") from None


def error_message(body: bytes, *keys: str) -> str:
    """The first string found under `keys` in a JSON error body, else the text itself."""
    try:
        data = msgspec.json.decode(body)
    except msgspec.DecodeError:
        data = None
    if isinstance(data, dict):
        for key in keys:
            value = data.get(key)
            if isinstance(value, str) and value:
                return value
    text = body.decode("utf-8", "replace").strip()[:500]
    return text or "empty error response"


def embedding_inputs(provider: str, raw: Any) -> list[str]:
    """OpenAI `input` as texts; token-id arrays only OpenAI's own models understand."""
    if isinstance(raw, str):
        return [raw]
    if isinstance(raw, list) and all(isinstance(item, str) for item in raw):
        return list(raw)
    raise InvalidRequest(f"{provider} embeddings take text input, not token ids.", param="input")


def _as_base64(vector: Sequence[float]) -> str:
    # OpenAI's base64 encoding: little-endian float32, the layout numpy.frombuffer reads.
    return base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode()


def embedding_list(
    model: str, vectors: Sequence[Sequence[float]], prompt_tokens: int, encoding_format: Any
) -> bytes:
    as_base64 = encoding_format == "base64"
    data = [
        {
            "object": "embedding",
            "index": i,
            "embedding": _as_base64(vector) if as_base64 else list(vector),
        }
        for i, vector in enumerate(vectors)
    ]
    usage = {"prompt_tokens": prompt_tokens, "total_tokens": prompt_tokens}
    return _encode({"object": "list", "data": data, "model": model, "usage": usage})


def cached_usage(fresh: int, cache_read: int, cache_write: int, completion: int) -> dict[str, Any]:
    """OpenAI usage for providers that count cached prompt tokens apart (Anthropic,
    Bedrock): the prompt is fresh + cache reads + cache writes, the reads are
    `cached_tokens`, and both cache counts are copied as top-level fields (LiteLLM)."""
    prompt = fresh + cache_read + cache_write
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
        "prompt_tokens_details": {"cached_tokens": cache_read},
        "cache_read_input_tokens": cache_read,
        "cache_creation_input_tokens": cache_write,
    }


def document_texts(documents: Any) -> list[str]:
    """Rerank documents as the plain strings Cohere v2 and Voyage take: a `{"text"}`
    object gives its text, any other object its JSON."""
    if not isinstance(documents, list):
        raise InvalidRequest("'documents' must be a list.", param="documents")
    texts = []
    for doc in documents:
        if isinstance(doc, str):
            texts.append(doc)
        elif isinstance(doc, dict) and isinstance(doc.get("text"), str):
            texts.append(doc["text"])
        else:
            texts.append(_encode(doc).decode())
    return texts


def rerank_response(
    scored: Sequence[tuple[int, float]],
    texts: Sequence[str],
    *,
    return_documents: bool,
    meta: Mapping[str, Any],
    rerank_id: str | None = None,
) -> bytes:
    results = []
    for index, score in scored:
        result: dict[str, Any] = {"index": index, "relevance_score": score}
        if return_documents and 0 <= index < len(texts):
            result["document"] = {"text": texts[index]}
        results.append(result)
    return _encode({"id": rerank_id or str(uuid.uuid4()), "results": results, "meta": dict(meta)})


def tool_names_by_id(messages: Iterable[Mapping[str, Any]]) -> dict[str, str]:
    """tool_call_id -> function name, from the assistant turns of a conversation."""
    names: dict[str, str] = {}
    for message in messages:
        for tool_call in message.get("tool_calls") or ():
            function = tool_call.get("function") or {}
            if tool_call.get("id") and function.get("name"):
                names[tool_call["id"]] = function["name"]
    return names


def openai_tool_calls(calls: Iterable[Mapping[str, Any]], first_index: int = 0) -> list[Any]:
    """Provider tool calls (`{"function": {"name", "arguments": object}}` or flat
    `{"name", "arguments"}`) as OpenAI's, with an id made up where none was given."""
    out = []
    for offset, tool_call in enumerate(calls):
        function = tool_call.get("function") or tool_call
        arguments = function.get("arguments")
        if not isinstance(arguments, str):
            arguments = _encode(arguments if arguments is not None else {}).decode()
        out.append(
            {
                "index": first_index + offset,
                "id": tool_call.get("id") or new_tool_call_id(),
                "type": "function",
                "function": {"name": function.get("name"), "arguments": arguments},
            }
        )
    return out
