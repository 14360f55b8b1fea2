"""What tianji checks in LLM request bodies, per operation.

Only the fields tianji relies on (routing, streaming) or that a provider would
reject confusingly are typed; everything else passes through untouched.
"""

from __future__ import annotations

from typing import Any, Literal

import msgspec

__all__ = ["SCHEMAS"]


class _Lenient(msgspec.Struct, kw_only=True):
    model: str | None = None
    stream: bool | None = None
    stream_options: dict[str, Any] | None = None
    user: str | None = None
    drop_params: bool | None = None


class ChatMessage(msgspec.Struct, kw_only=True):
    role: Literal["system", "developer", "user", "assistant", "tool", "function"]
    content: str | list[dict[str, Any]] | None = None
    name: str | None = None
    tool_calls: list[dict[str, Any]] | None = None
    tool_call_id: str | None = None


class ChatRequest(_Lenient, kw_only=True):
    messages: list[ChatMessage]
    n: int | None = None
    max_tokens: int | None = None
    max_completion_tokens: int | None = None
    temperature: float | None = None
    top_p: float | None = None
    stop: str | list[str] | None = None
    tools: list[dict[str, Any]] | None = None
    tool_choice: str | dict[str, Any] | None = None
    response_format: dict[str, Any] | None = None


class CompletionRequest(_Lenient, kw_only=True):
    prompt: str | list[str | int | list[int]]
    max_tokens: int | None = None


class EmbeddingRequest(_Lenient, kw_only=True):
    input: str | list[str | int | list[int]]
    dimensions: int | None = None
    encoding_format: Literal["float", "base64"] | None = None


class ImageRequest(_Lenient, kw_only=True):
    prompt: str
    n: int | None = None
    size: str | None = None


class SpeechRequest(_Lenient, kw_only=True):
    input: str
    voice: str | dict[str, Any]


class ModerationRequest(_Lenient, kw_only=True):
    input: str | list[Any]


class RerankRequest(_Lenient, kw_only=True):
    query: str
    documents: list[str | dict[str, Any]]
    top_n: int | None = None


class ResponsesRequest(_Lenient, kw_only=True):
    input: str | list[Any] | None = None


SCHEMAS: dict[str, type[msgspec.Struct]] = {
    "chat": ChatRequest,
    "text_completion": CompletionRequest,
    "embeddings": EmbeddingRequest,
    "image_generation": ImageRequest,
    "speech": SpeechRequest,
    "moderation": ModerationRequest,
    "rerank": RerankRequest,
    "responses": ResponsesRequest,
}
