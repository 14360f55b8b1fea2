"""Endpoint factories of the native routes, by operation name (merged into tianji.api)."""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

from tianji.api.native.errors import anthropic_error_response
from tianji.api.native.gemini import make_gemini_handler
from tianji.api.native.messages import make_count_tokens_handler, make_messages_handler

__all__ = ["ERROR_RENDERERS", "OPERATIONS"]

OPERATIONS: Mapping[str, Any] = MappingProxyType(
    {
        "anthropic_messages": make_messages_handler,
        "anthropic_count_tokens": make_count_tokens_handler,
        "gemini_native": make_gemini_handler,
    }
)

# Operations whose clients expect another error envelope (Anthropic's), for the
# errors raised before the handler runs (auth, route permission).
ERROR_RENDERERS: Mapping[str, Any] = MappingProxyType(
    {
        "anthropic_messages": anthropic_error_response,
        "anthropic_count_tokens": anthropic_error_response,
    }
)
