"""Anthropic: OpenAI chat and completions through the Messages API (providers.md §3.1).

URL `{api_base}/v1/messages` (providers.yaml `paths`); `api_base` replaces the
host part only, and a base that already ends in `/v1` (a common way to write a
proxy's address) or in `/v1/messages` is not given the path twice.

Auth is the `x-api-key` header from providers.yaml, except for Claude OAuth
tokens (`sk-ant-oat…`), which Anthropic only accepts as a Bearer token with the
`oauth-2025-04-20` beta. The translation itself lives in `anthropic_request`,
`anthropic_response` and `anthropic_stream`, so Claude on other clouds can reuse it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import urlencode

import msgspec

from tianji.compile.model import Deployment
from tianji.errors import InvalidRequest, TianjiError
from tianji.providers.anthropic_request import is_json_mode, messages_request
from tianji.providers.anthropic_response import (
    chat_completion,
    decode_message,
    error_from_body,
    text_completion,
)
from tianji.providers.anthropic_stream import AnthropicStream
from tianji.providers.base import Call
from tianji.providers.openai_compat import apply_params
from tianji.upstream.types import UpstreamRequest

__all__ = ["OAUTH_BETA", "AnthropicAdapter", "anthropic_body", "anthropic_headers"]

OAUTH_PREFIX = "sk-ant-oat"
OAUTH_BETA = "oauth-2025-04-20"
_encode = msgspec.json.encode


def anthropic_body(call: Call) -> dict[str, Any]:
    """The Messages request body (without `model`) for a chat or text_completion call."""
    assert call.body is not None
    client = dict(call.body)
    if client.get("n") == 1:
        del client["n"]  # OpenAI's default, not a request for several choices
    checked = apply_params(dataclasses.replace(call, body=client))
    if call.operation == "text_completion":
        checked["messages"] = [{"role": "user", "content": _prompt(checked.pop("prompt", None))}]
    return messages_request(
        checked,
        max_tokens=_max_tokens(call),
        openai_params=call.openai_params,
        stream=call.stream,
    )


def _prompt(prompt: Any) -> str:
    if isinstance(prompt, list) and len(prompt) == 1:
        prompt = prompt[0]
    if not isinstance(prompt, str):
        raise InvalidRequest(
            "anthropic completions take one text prompt (no batches or token arrays)",
            param="prompt",
        )
    return prompt


def _max_tokens(call: Call) -> int | None:
    """Request -> deployment default -> model_info max_output_tokens; None: the default."""
    body = call.body or {}
    params = call.deployment.params
    for value in (
        body.get("max_tokens"),
        body.get("max_completion_tokens"),
        params.max_tokens,
        params.max_completion_tokens,
        call.deployment.model_info.get("max_output_tokens"),
    ):
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    return None


def _json_mode(call: Call) -> bool:
    return is_json_mode({**call.deployment.request_defaults, **(call.body or {})})


class AnthropicAdapter:
    name = "anthropic"

    def url(self, call: Call) -> str:
        deployment = call.deployment
        base = deployment.api_base
        path = deployment.provider.paths[call.operation]
        if base.endswith(path):
            url = base
        elif base.endswith("/v1") and path.startswith("/v1/"):
            url = base + path[len("/v1") :]
        else:
            url = base + path
        return f"{url}?{urlencode(deployment.query)}" if deployment.query else url

    def build_request(self, call: Call) -> UpstreamRequest:
        body = {"model": call.model, **anthropic_body(call)}
        headers = anthropic_headers(call.deployment, call.extra_headers)
        headers.append(("content-type", "application/json"))
        return UpstreamRequest("POST", self.url(call), headers, _encode(body))

    def translate_response(self, call: Call, body: bytes) -> bytes | None:
        provider = call.deployment.provider.name
        message = decode_message(provider, body)
        if call.operation == "text_completion":
            return _encode(text_completion(message, model=call.model))
        return _encode(chat_completion(message, model=call.model, json_mode=_json_mode(call)))

    def stream_translator(self, call: Call) -> AnthropicStream:
        options = (call.body or {}).get("stream_options")
        return AnthropicStream(
            call.deployment.provider.name,
            call.model,
            include_usage=isinstance(options, dict) and bool(options.get("include_usage")),
            json_mode=_json_mode(call),
            text_completion=call.operation == "text_completion",
        )

    def error_from_status(
        self, call: Call, status: int, headers: Mapping[str, str], body: bytes
    ) -> TianjiError:
        return error_from_body(
            call.deployment.provider.name, status, body, headers.get("retry-after")
        )


def anthropic_headers(
    deployment: Deployment, extra: Iterable[tuple[str, str]] = ()
) -> list[tuple[str, str]]:
    """The deployment's headers (auth, anthropic-version, configured ones) plus `extra`;
    an OAuth token replaces the x-api-key header with Bearer and the OAuth beta."""
    headers = [*deployment.headers, *extra]
    key = deployment.api_key
    if key and key.startswith(OAUTH_PREFIX):
        auth_header = (deployment.provider.auth.name or "x-api-key").lower()
        headers = [(n, v) for n, v in headers if n != auth_header]
        headers += [("authorization", f"Bearer {key}"), ("anthropic-beta", OAUTH_BETA)]
    return _merged_betas(headers)


def _merged_betas(headers: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """Anthropic reads one `anthropic-beta` header (comma-separated): the OAuth beta and
    any the operator configured are sent together."""
    values = [v for n, v in headers if n == "anthropic-beta"]
    if len(values) < 2:
        return headers
    betas: list[str] = []
    for value in values:
        for beta in (b.strip() for b in value.split(",")):
            if beta and beta not in betas:
                betas.append(beta)
    kept = [(n, v) for n, v in headers if n != "anthropic-beta"]
    return [*kept, ("anthropic-beta", ",".join(betas))]
