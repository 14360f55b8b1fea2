"""The OpenAI-compatible adapter: one adapter for every `adapter: openai_compat` entry.

The request body is the client's, with the deployment's model and defaults
applied; the response bytes and the stream are relayed untouched.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import urlencode

import msgspec

from tianji.errors import TianjiError, UnsupportedParams
from tianji.providers.base import Call, FormPart, StreamTranslator
from tianji.providers.errors import provider_error
from tianji.providers.multipart import encode_form
from tianji.upstream.types import UpstreamRequest

__all__ = ["OpenAICompatAdapter", "apply_params", "error_from_openai_body"]

_encode = msgspec.json.encode


def apply_params(call: Call) -> dict[str, Any]:
    """The body to send: deployment defaults under the client's values, renames,
    the unsupported-param rule (drop or 400), and the upstream model name."""
    assert call.body is not None
    deployment = call.deployment
    body = dict(call.body)
    for key, value in deployment.request_defaults.items():
        body.setdefault(key, value)
    supported = deployment.provider.params.get(call.operation)
    if supported is not None and call.openai_params:
        unsupported = [k for k in body if k in call.openai_params and k not in supported]
        if unsupported:
            drop = call.drop_params if call.drop_params is not None else deployment.drop_params
            if not drop:
                raise UnsupportedParams(
                    f"{deployment.provider.name} does not support parameters: {unsupported}. "
                    "To drop them, set drop_params=true (request, deployment or litellm_settings).",
                    param=unsupported[0],
                )
            for key in unsupported:
                del body[key]
    for key in deployment.params.additional_drop_params or ():
        body.pop(key, None)
    for old, new in deployment.provider.param_renames.items():
        if old in body:
            body.setdefault(new, body.pop(old))
    body.pop("drop_params", None)
    if "model" in body or call.operation != "forward":
        body["model"] = call.model
    return body


def error_from_openai_body(
    provider: str, status: int, headers: Mapping[str, str], body: bytes
) -> TianjiError:
    """An OpenAI-style upstream error as the client's error (tianji.providers.errors)."""
    message, kind, param, code = _parse_error(body)
    return provider_error(
        provider,
        status,
        message,
        type=kind,
        code=code,
        param=param,
        retry_after=headers.get("retry-after"),
    )


def _parse_error(body: bytes) -> tuple[str, str | None, str | None, str | None]:
    try:
        data = msgspec.json.decode(body)
    except msgspec.DecodeError:
        text = body.decode("utf-8", "replace").strip()[:500]
        return (text or "empty error response"), None, None, None
    error = data.get("error") if isinstance(data, dict) else None
    if isinstance(error, dict):
        code = error.get("code")
        return (
            str(error.get("message") or data),
            _str_or_none(error.get("type")),
            _str_or_none(error.get("param")),
            str(code) if code is not None else None,
        )
    if isinstance(error, str):
        return error, None, None, None
    message = data.get("message") if isinstance(data, dict) else None
    return str(message or data)[:500], None, None, None


def _str_or_none(value: Any) -> str | None:
    return value if isinstance(value, str) else None


class OpenAICompatAdapter:
    name = "openai_compat"

    def url(self, call: Call) -> str:
        deployment = call.deployment
        path = (
            call.path if call.operation == "forward" else deployment.provider.paths[call.operation]
        )
        url = deployment.api_base + path
        query = urlencode(deployment.query) if deployment.query else ""
        if call.query:
            query = f"{query}&{call.query}" if query else call.query
        return f"{url}?{query}" if query else url

    def headers(self, call: Call, content_type: str | None) -> list[tuple[str, str]]:
        headers = list(call.deployment.headers)
        headers += call.extra_headers
        if content_type:
            headers.append(("content-type", content_type))
        return headers

    def build_request(self, call: Call) -> UpstreamRequest:
        if call.form is not None:
            form = [p for p in call.form if p.name != "model"]
            form.insert(0, FormPart("model", call.model.encode()))
            body, content_type = encode_form(form)
            return UpstreamRequest("POST", self.url(call), self.headers(call, content_type), body)
        if call.body is not None:
            raw = _encode(apply_params(call))
            return UpstreamRequest(
                call.method, self.url(call), self.headers(call, "application/json"), raw
            )
        return UpstreamRequest(
            call.method, self.url(call), self.headers(call, call.content_type), call.raw_body
        )

    def translate_response(self, call: Call, body: bytes) -> bytes | None:
        return None

    def stream_translator(self, call: Call) -> StreamTranslator | None:
        return None

    def error_from_status(
        self, call: Call, status: int, headers: Mapping[str, str], body: bytes
    ) -> TianjiError:
        return error_from_openai_body(call.deployment.provider.name, status, headers, body)
