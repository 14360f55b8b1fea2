"""Claude on Vertex AI: the Anthropic Messages API behind Vertex's URLs and OAuth token
(providers.md §3.2, last paragraph).

`{base}/v1/projects/{p}/locations/{loc}/publishers/anthropic/models/{m}:rawPredict`
(`:streamRawPredict` when streaming). The body is the Anthropic one without `model`
(the URL names it) plus `"anthropic_version": "vertex-2023-10-16"`; no `x-api-key` and
no `anthropic-version` header: the Bearer token VertexAdapter.prepare() mints is the
auth. Responses, streams and Anthropic-shaped errors are translated by the Anthropic
adapter itself; this module only adapts the call and the wire envelope.

Parameters: the vertex_ai provider entry carries the Gemini parameter set, but Claude
accepts Anthropic's. The unsupported-param rule reads `deployment.provider.params`, so
`claude_call()` hands the Anthropic translation a copy of the call whose provider
reports ANTHROPIC_CHAT_PARAMS for chat. That set mirrors providers.yaml
`param_sets.anthropic_chat` (a test keeps the two equal).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote, urlencode

import msgspec

from tianji.errors import InvalidRequest, TianjiError
from tianji.providers.anthropic import AnthropicAdapter, anthropic_body
from tianji.providers.anthropic_stream import AnthropicStream
from tianji.providers.base import Call

__all__ = [
    "ANTHROPIC_CHAT_PARAMS",
    "VERTEX_ANTHROPIC_VERSION",
    "claude_body",
    "claude_call",
    "claude_error",
    "claude_path",
    "claude_response",
    "claude_stream",
    "is_claude",
]

VERTEX_ANTHROPIC_VERSION = "vertex-2023-10-16"

# providers.yaml `param_sets.anthropic_chat` (providers.md §5, "Anthropic (direct, Vertex, ...)").
ANTHROPIC_CHAT_PARAMS = frozenset(
    {
        "stream", "stream_options", "stop", "temperature", "top_p", "max_tokens",
        "max_completion_tokens", "tools", "tool_choice", "parallel_tool_calls",
        "response_format", "user", "reasoning_effort", "thinking", "web_search_options",
        "metadata", "top_k",
    }
)  # fmt: skip

# The translation entry points (response, stream, error) read only the call: one
# stateless instance serves every Vertex deployment.
_ANTHROPIC = AnthropicAdapter()


def is_claude(model: str) -> bool:
    """Vertex names Anthropic's models `claude-…` (e.g. `claude-sonnet-4-5@20250929`)."""
    return model.startswith("claude")


def claude_call(call: Call) -> Call:
    """The call with Anthropic's chat parameter set in place of the provider's (Gemini's)."""
    if call.operation != "chat":
        raise InvalidRequest(
            f"{call.deployment.provider.name}: Claude models support chat only, "
            f"not {call.operation}"
        )
    provider = call.deployment.provider
    params = {**provider.params, "chat": ANTHROPIC_CHAT_PARAMS}
    provider = dataclasses.replace(provider, params=params)
    deployment = dataclasses.replace(call.deployment, provider=provider)
    return dataclasses.replace(call, deployment=deployment)


def claude_path(call: Call, project: str, location: str) -> str:
    """The rawPredict path; `@` stays literal, as in Vertex's model ids (`name@version`)."""
    method = "streamRawPredict" if call.stream else "rawPredict"
    path = (
        f"/v1/projects/{quote(project, safe='')}/locations/{quote(location, safe='')}"
        f"/publishers/anthropic/models/{quote(call.model, safe='@')}:{method}"
    )
    query = call.deployment.query
    return f"{path}?{urlencode(query)}" if query else path


def claude_body(call: Call) -> dict[str, Any]:
    """The Anthropic Messages body (no `model`) with Vertex's `anthropic_version`."""
    return {**anthropic_body(claude_call(call)), "anthropic_version": VERTEX_ANTHROPIC_VERSION}


def claude_response(call: Call, body: bytes) -> bytes:
    translated = _ANTHROPIC.translate_response(call, body)
    assert translated is not None  # the Anthropic adapter always translates
    return translated


def claude_stream(call: Call) -> AnthropicStream:
    return _ANTHROPIC.stream_translator(call)


def claude_error(
    call: Call, status: int, headers: Mapping[str, str], body: bytes
) -> TianjiError | None:
    """Errors Anthropic itself raised (`{"type":"error",...}`, e.g. 529 overloaded) through
    the Anthropic mapping; None for Vertex's own (google.rpc-shaped) errors, such as
    quota or permission ones, which the Gemini mapping reads better."""
    try:
        data = msgspec.json.decode(body)
    except msgspec.DecodeError:
        return None
    if isinstance(data, dict) and data.get("type") == "error":
        return _ANTHROPIC.error_from_status(call, status, headers, body)
    return None
