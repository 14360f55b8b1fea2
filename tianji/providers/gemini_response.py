"""Gemini responses and errors -> OpenAI shapes (providers.md §3.2).

Shared by the whole-body translation and the stream translator: a candidate's
parts become message (or delta) fields, `finishReason` and `usageMetadata` map to
OpenAI's, and `{"error": {"code", "message", "status"}}` bodies become the
client's error through the one status table (tianji.providers.errors).
"""

from __future__ import annotations

import math
import time
import uuid
from collections.abc import Mapping
from typing import Any

import msgspec

from tianji.errors import TianjiError, UpstreamProtocolError
from tianji.providers.errors import CONTENT_POLICY, CONTEXT_LENGTH, provider_error
from tianji.providers.shapes import new_tool_call_id

__all__ = [
    "blocked_prompt_error",
    "chat_completion",
    "decode_json",
    "error_from_body",
    "finish_reason",
    "logprobs",
    "message_fields",
    "usage",
]

_FILTERED = frozenset(
    {"SAFETY", "RECITATION", "BLOCKLIST", "PROHIBITED_CONTENT", "SPII", "IMAGE_SAFETY"}
)
# google.rpc status -> HTTP status the client gets (DEADLINE_EXCEEDED is a timeout).
_RPC_STATUS = {
    "INVALID_ARGUMENT": 400,
    "FAILED_PRECONDITION": 400,
    "OUT_OF_RANGE": 400,
    "UNAUTHENTICATED": 401,
    "PERMISSION_DENIED": 403,
    "NOT_FOUND": 404,
    "RESOURCE_EXHAUSTED": 429,
    "INTERNAL": 500,
    "UNAVAILABLE": 503,
    "DEADLINE_EXCEEDED": 408,
}
# Gemini's wording for an over-long prompt, which the shared hints do not cover.
_CONTEXT_HINTS = ("exceeds the maximum number of tokens", "input token count")


def decode_json(provider: str, body: bytes) -> Any:
    try:
        return msgspec.json.decode(body)
    except msgspec.DecodeError:
        raise UpstreamProtocolError(
            f"invalid response from {provider}: the body is not valid JSON"
        ) from None


def finish_reason(reason: str | None, has_tool_calls: bool) -> str:
    if reason in _FILTERED:
        return "content_filter"
    if reason == "MAX_TOKENS":
        return "length"
    return "tool_calls" if has_tool_calls else "stop"


def message_fields(parts: list[Any], tool_index: int = 0) -> dict[str, Any]:
    """`content`, `reasoning_content`, `tool_calls` (indexed from `tool_index`),
    `images`/`audio` of a candidate's parts; only the fields that are present."""
    texts: list[str] = []
    thoughts: list[str] = []
    tool_calls: list[dict[str, Any]] = []
    images: list[dict[str, Any]] = []
    fields: dict[str, Any] = {}
    for part in parts:
        if not isinstance(part, dict):
            continue
        if isinstance(part.get("text"), str):
            if part["text"]:  # a signature-only or final empty part adds nothing
                (thoughts if part.get("thought") else texts).append(part["text"])
        elif isinstance(part.get("functionCall"), dict):
            tool_calls.append(_tool_call(part, tool_index + len(tool_calls)))
        else:
            inline = part.get("inlineData") or part.get("inline_data")
            if isinstance(inline, dict):
                mime = str(inline.get("mimeType") or inline.get("mime_type") or "")
                if mime.startswith("audio/"):
                    fields["audio"] = _audio(inline)
                else:
                    url = f"data:{mime};base64,{inline.get('data', '')}"
                    images.append({"type": "image_url", "image_url": {"url": url}})
    if texts:
        fields["content"] = "".join(texts)
    if thoughts:
        fields["reasoning_content"] = "".join(thoughts)
    if tool_calls:
        fields["tool_calls"] = tool_calls
    if images:
        fields["images"] = images
    return fields


def _tool_call(part: dict[str, Any], index: int) -> dict[str, Any]:
    call = part["functionCall"]
    arguments = msgspec.json.encode(call.get("args") or {}).decode()
    tool_call: dict[str, Any] = {
        "index": index,
        "id": new_tool_call_id(),
        "type": "function",
        "function": {"name": call.get("name", ""), "arguments": arguments},
    }
    if part.get("thoughtSignature"):
        # Google's OpenAI layer uses this field; tianji reads it back on the next turn.
        tool_call["extra_content"] = {"google": {"thought_signature": part["thoughtSignature"]}}
    return tool_call


def _audio(inline: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": f"audio_{uuid.uuid4().hex}",
        "data": inline.get("data", ""),
        "expires_at": int(time.time()) + 3600,
        "transcript": "",
    }


def logprobs(candidate: Mapping[str, Any]) -> dict[str, Any] | None:
    result = candidate.get("logprobsResult")
    if not isinstance(result, dict):
        return None
    tops = result.get("topCandidates") or []
    content = []
    for i, chosen in enumerate(result.get("chosenCandidates") or []):
        alternatives = tops[i].get("candidates", []) if i < len(tops) else []
        entry = _logprob(chosen)
        entry["top_logprobs"] = [_logprob(alt) for alt in alternatives]
        content.append(entry)
    return {"content": content}


def _logprob(candidate: Mapping[str, Any]) -> dict[str, Any]:
    token = str(candidate.get("token", ""))
    return {
        "token": token,
        "logprob": candidate.get("logProbability", 0.0),
        "bytes": list(token.encode()),
    }


def usage(meta: Any) -> dict[str, Any]:
    meta = meta if isinstance(meta, dict) else {}
    prompt = int(meta.get("promptTokenCount") or 0) + int(meta.get("toolUsePromptTokenCount") or 0)
    thoughts = int(meta.get("thoughtsTokenCount") or 0)
    completion = int(meta.get("candidatesTokenCount") or 0) + thoughts
    prompt_details: dict[str, int] = {
        "cached_tokens": int(meta.get("cachedContentTokenCount") or 0)
    }
    for detail in meta.get("promptTokensDetails") or ():
        if isinstance(detail, dict) and detail.get("modality") == "AUDIO":
            prompt_details["audio_tokens"] = int(detail.get("tokenCount") or 0)
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": int(meta.get("totalTokenCount") or prompt + completion),
        "prompt_tokens_details": prompt_details,
        "completion_tokens_details": {"reasoning_tokens": thoughts},
    }


def blocked_prompt_error(provider: str, data: Mapping[str, Any]) -> TianjiError | None:
    """The 400 for a prompt Gemini refused outright (no candidates at all)."""
    feedback = data.get("promptFeedback") or {}
    reason = feedback.get("blockReason") if isinstance(feedback, dict) else None
    if data.get("candidates") or not reason:
        return None
    detail = feedback.get("blockReasonMessage") or "the prompt was blocked"
    return provider_error(provider, 400, f"{detail} (blockReason {reason})", code=CONTENT_POLICY)


def chat_completion(provider: str, model: str, data: Any) -> dict[str, Any]:
    """The OpenAI chat.completion for a whole generateContent response."""
    if not isinstance(data, dict):
        raise UpstreamProtocolError(f"invalid response from {provider}: not a JSON object")
    blocked = blocked_prompt_error(provider, data)
    if blocked is not None:
        raise blocked
    choices = []
    for i, candidate in enumerate(data.get("candidates") or ()):
        fields = message_fields((candidate.get("content") or {}).get("parts") or [])
        for call in fields.get("tool_calls", ()):
            del call["index"]  # `index` belongs to stream deltas only
        content: Any = fields.pop("content", None)
        images = fields.pop("images", None)
        if images:  # image output: content parts, the text first
            content = ([{"type": "text", "text": content}] if content else []) + images
        message = {"role": "assistant", "content": content, **fields}
        reason = finish_reason(candidate.get("finishReason"), "tool_calls" in fields)
        choice = {
            "index": candidate.get("index", i),
            "message": message,
            "logprobs": logprobs(candidate),
            "finish_reason": reason,
        }
        choices.append(choice)
    return {
        "id": data.get("responseId") or f"chatcmpl-{uuid.uuid4().hex}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": data.get("modelVersion") or model,
        "choices": choices,
        "usage": usage(data.get("usageMetadata")),
    }


def error_from_body(
    provider: str, status: int, headers: Mapping[str, str], body: bytes
) -> TianjiError:
    """`{"error": {"code", "message", "status", "details"}}` (or a list of them) -> error."""
    try:
        data = msgspec.json.decode(body)
    except msgspec.DecodeError:
        data = None
    if isinstance(data, list) and data:
        data = data[0]
    error = data.get("error") if isinstance(data, dict) else None
    if not isinstance(error, dict):
        text = body.decode("utf-8", "replace").strip()[:500]
        return provider_error(provider, status, text or "empty error response")
    message = str(error.get("message") or error.get("status") or "unknown error")
    mapped = _RPC_STATUS.get(str(error.get("status")), status)
    details = [d for d in error.get("details") or () if isinstance(d, dict)]
    if any(d.get("reason") == "API_KEY_INVALID" for d in details):
        mapped = 401  # Gemini answers a bad key with 400 INVALID_ARGUMENT
    code = CONTEXT_LENGTH if any(h in message.lower() for h in _CONTEXT_HINTS) else None
    return provider_error(
        provider,
        mapped,
        message,
        code=code,
        retry_after=headers.get("retry-after") or _retry_delay(details),
    )


def _retry_delay(details: list[dict[str, Any]]) -> str | None:
    """google.rpc.RetryInfo `retryDelay` ("37s", "0.5s") -> whole seconds."""
    for detail in details:
        delay = detail.get("retryDelay")
        if isinstance(delay, str) and delay.endswith("s"):
            try:
                return str(math.ceil(float(delay[:-1])))
            except ValueError:
                return None
    return None
