"""watsonx.ai bodies other than the chat request: chat and text-generation answers,
embeddings and rerank, each in both directions (providers.md §3.6)."""

from __future__ import annotations

import base64
import struct
import time
import uuid
from typing import Any

from tianji.errors import InvalidRequest

__all__ = [
    "chat_completion",
    "embeddings_body",
    "embeddings_list",
    "generation_body",
    "rerank_body",
    "rerank_result",
    "text_completion",
    "text_finish_reason",
]

# OpenAI completion params -> watsonx `parameters` names.
_GENERATION_RENAMES = {"max_tokens": "max_new_tokens", "seed": "random_seed"}
_LENGTH_REASONS = frozenset({"max_tokens", "token_limit", "time_limit"})


def _usage(prompt: int, completion: int) -> dict[str, int]:
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
    }


def chat_completion(data: dict[str, Any], model: str) -> dict[str, Any]:
    """The answer is OpenAI-shaped already; `model_id` and watsonx's extras go."""
    usage = data.get("usage") or _usage(0, 0)
    return {
        "id": data.get("id") or f"chatcmpl-{uuid.uuid4().hex}",
        "object": "chat.completion",
        "created": data.get("created") or int(time.time()),
        "model": data.get("model") or data.get("model_id") or model,
        "choices": data.get("choices") or [],
        "usage": usage,
    }


# --- text generation ---------------------------------------------------------------------


def generation_body(body: dict[str, Any]) -> dict[str, Any]:
    """OpenAI completion body -> `{input, parameters}`; provider extras (top_k,
    repetition_penalty, ...) go to `parameters` as they are."""
    prompt = body.pop("prompt", "")
    if isinstance(prompt, list):
        if len(prompt) != 1 or not isinstance(prompt[0], str):
            raise InvalidRequest("watsonx text generation takes one prompt string", param="prompt")
        prompt = prompt[0]
    body.pop("stream", None)
    body.pop("stream_options", None)
    parameters: dict[str, Any] = {}
    for key, value in body.items():
        if key == "stop":
            parameters["stop_sequences"] = [value] if isinstance(value, str) else value
        else:
            parameters[_GENERATION_RENAMES.get(key, key)] = value
    temperature = parameters.get("temperature")
    if isinstance(temperature, int | float):
        # watsonx ignores temperature unless it samples; 0 means greedy in OpenAI's terms.
        parameters.setdefault("decoding_method", "sample" if temperature > 0 else "greedy")
    native: dict[str, Any] = {"input": prompt}
    if parameters:
        native["parameters"] = parameters
    return native


def text_finish_reason(stop_reason: Any) -> str | None:
    if stop_reason in (None, "not_finished"):
        return None
    return "length" if stop_reason in _LENGTH_REASONS else "stop"


def text_completion(data: dict[str, Any], model: str) -> dict[str, Any]:
    choices = []
    prompt = completion = 0
    for index, result in enumerate(data.get("results") or ()):
        prompt += int(result.get("input_token_count") or 0)
        completion += int(result.get("generated_token_count") or 0)
        choices.append(
            {
                "text": result.get("generated_text") or "",
                "index": index,
                "logprobs": None,
                "finish_reason": text_finish_reason(result.get("stop_reason")) or "stop",
            }
        )
    return {
        "id": f"cmpl-{uuid.uuid4().hex}",
        "object": "text_completion",
        "created": int(time.time()),
        "model": data.get("model_id") or model,
        "choices": choices,
        "usage": _usage(prompt, completion),
    }


# --- embeddings --------------------------------------------------------------------------


def embeddings_body(body: dict[str, Any]) -> dict[str, Any]:
    raw = body.pop("input")
    inputs = [raw] if isinstance(raw, str) else raw
    if not all(isinstance(item, str) for item in inputs):
        raise InvalidRequest("watsonx embeddings take text inputs, not token ids", param="input")
    body.pop("encoding_format", None)  # applied to the answer
    body.pop("user", None)
    native: dict[str, Any] = {"inputs": inputs}
    if body:
        native["parameters"] = body  # truncate_input_tokens, return_options
    return native


def embeddings_list(data: dict[str, Any], model: str, encoding: Any) -> dict[str, Any]:
    items = []
    for index, result in enumerate(data.get("results") or ()):
        vector = result.get("embedding") or []
        if encoding == "base64":
            vector = base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode()
        items.append({"object": "embedding", "index": index, "embedding": vector})
    tokens = int(data.get("input_token_count") or 0)
    return {
        "object": "list",
        "data": items,
        "model": data.get("model_id") or model,
        "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
    }


# --- rerank ------------------------------------------------------------------------------


def rerank_body(body: dict[str, Any]) -> dict[str, Any]:
    documents = body.get("documents") or []
    texts = [d.get("text", "") if isinstance(d, dict) else str(d) for d in documents]
    options: dict[str, Any] = {"inputs": False}
    if isinstance(body.get("top_n"), int):
        options["top_n"] = body["top_n"]
    return {
        "query": body.get("query", ""),
        "inputs": [{"text": text} for text in texts],
        "parameters": {"return_options": options},
    }


def rerank_result(data: dict[str, Any], request: dict[str, Any]) -> dict[str, Any]:
    """`results[{index, score}]` -> Cohere's `results[{index, relevance_score, document?}]`."""
    documents = request.get("documents") or []
    results = []
    for result in data.get("results") or ():
        index = int(result.get("index", 0))
        item: dict[str, Any] = {"index": index, "relevance_score": result.get("score")}
        if request.get("return_documents") and index < len(documents):
            document = documents[index]
            item["document"] = document if isinstance(document, dict) else {"text": document}
        results.append(item)
    results.sort(key=lambda r: -(r["relevance_score"] or 0.0))
    top_n = request.get("top_n")
    if isinstance(top_n, int):
        results = results[:top_n]
    tokens = int(data.get("input_token_count") or 0)
    return {
        "id": f"rerank-{uuid.uuid4().hex}",
        "results": results,
        "meta": {"tokens": {"input_tokens": tokens}},
    }
