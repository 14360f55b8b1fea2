"""Vertex AI: Gemini models (the Gemini wire format) and Claude models (the Anthropic
one, tianji.providers.vertex_claude) behind project/location URLs and OAuth2 tokens.

`https://{loc}-aiplatform.googleapis.com/v1/projects/{p}/locations/{loc}/publishers/
google/models/{m}:{method}` (`global` -> `https://aiplatform.googleapis.com`; an
`api_base` replaces the host part). Project and location come from litellm_params
`vertex_project` / `vertex_location`, else VERTEXAI_PROJECT / VERTEXAI_LOCATION (Go's
VERTEX_* too), else the credentials' project; location defaults to us-central1.

The token: adapters are pure, so minting it (an HTTP call) happens in
`prepare(call, send)`, which the relay awaits before `build_request`; it puts
`Authorization: Bearer <token>` into `call.extra_headers`. Tokens are cached
per credentials (tianji.providers.google_auth) and refreshed 5 min before expiry.

A model named `claude…` goes to the Anthropic publisher (`:rawPredict` /
`:streamRawPredict`) with Anthropic's body, parameter set and translation; every
other model is Gemini's.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

import msgspec

from tianji.compile.model import Deployment
from tianji.errors import TianjiError, UpstreamProtocolError
from tianji.providers.base import Call, Send, StreamTranslator
from tianji.providers.gemini import GeminiAdapter, embedding_inputs, embedding_list
from tianji.providers.google_auth import Credentials, TokenSource, load_credentials
from tianji.providers.openai_compat import apply_params
from tianji.providers.vertex_claude import (
    ANTHROPIC_CHAT_PARAMS,
    claude_body,
    claude_error,
    claude_path,
    claude_response,
    claude_stream,
    is_claude,
)
from tianji.spec.config import ModelParams
from tianji.upstream.types import UpstreamRequest

__all__ = ["DEFAULT_LOCATION", "VertexAdapter"]

DEFAULT_LOCATION = "us-central1"
_PROJECT_ENV = ("VERTEXAI_PROJECT", "VERTEX_PROJECT")
_LOCATION_ENV = ("VERTEXAI_LOCATION", "VERTEX_LOCATION")
_CREDENTIALS_ENV = ("VERTEXAI_CREDENTIALS", "GOOGLE_APPLICATION_CREDENTIALS")


def _env(names: tuple[str, ...]) -> str | None:
    return next((os.environ[n] for n in names if os.environ.get(n)), None)


def _not_configured(message: str) -> TianjiError:
    return TianjiError(f"vertex_ai: {message}", status=500, code="vertex_config")


class VertexAdapter(GeminiAdapter):
    name = "vertex_ai"

    def __init__(self) -> None:
        # Credentials source text -> parsed credentials, and credentials -> token source.
        self._credentials: dict[str, Credentials] = {}
        self._tokens: dict[Credentials, TokenSource] = {}

    def supported_params(self, deployment: Deployment, operation: str) -> frozenset[str]:
        """Claude models take Anthropic's parameters, Gemini models the provider's set."""
        if is_claude(deployment.model) and operation == "chat":
            return ANTHROPIC_CHAT_PARAMS
        return deployment.provider.params.get(operation, frozenset())

    def check(self, deployment: Deployment, env: Mapping[str, str]) -> list[str]:
        """Configuration problems `tianji check` reports for this deployment."""
        params = deployment.params
        problems = []
        credentials = params.vertex_credentials or any(env.get(n) for n in _CREDENTIALS_ENV)
        if not credentials:
            problems.append(
                "no credentials: set vertex_credentials or GOOGLE_APPLICATION_CREDENTIALS"
            )
        # Without an explicit project, the service-account file's project_id is used.
        project = params.vertex_project or any(env.get(n) for n in _PROJECT_ENV)
        if not project and not credentials:
            problems.append("no project: set vertex_project or VERTEXAI_PROJECT")
        return problems

    # --- credentials and token -------------------------------------------------------

    def credentials(self, params: ModelParams) -> Credentials:
        source = params.vertex_credentials or _env(_CREDENTIALS_ENV)
        if not source:
            raise _not_configured(
                "no credentials: set vertex_credentials (service-account JSON or its path) or "
                "GOOGLE_APPLICATION_CREDENTIALS (the metadata-server ADC is not supported)"
            )
        credentials = self._credentials.get(source)
        if credentials is None:
            credentials = self._credentials[source] = load_credentials(source)
        return credentials

    def token_source(self, call: Call) -> TokenSource:
        credentials = self.credentials(call.deployment.params)
        source = self._tokens.get(credentials)
        if source is None:
            source = TokenSource(credentials, provider=call.deployment.provider.name)
            self._tokens[credentials] = source
        return source

    async def prepare(self, call: Call, send: Send) -> None:
        """Mint (or reuse) the access token; the relay awaits this before build_request."""
        token = await self.token_source(call).token(send)
        kept = [(k, v) for k, v in call.extra_headers if k != "authorization"]
        call.extra_headers = (*kept, ("authorization", f"Bearer {token}"))

    # --- URL -------------------------------------------------------------------------

    def location(self, params: ModelParams) -> str:
        return params.vertex_location or _env(_LOCATION_ENV) or DEFAULT_LOCATION

    def project(self, params: ModelParams) -> str:
        project = params.vertex_project or _env(_PROJECT_ENV)
        if not project:
            project = self.credentials(params).project_id
        if not project:
            raise _not_configured("no project: set vertex_project or VERTEXAI_PROJECT")
        return project

    def base_url(self, call: Call) -> str:
        params = call.deployment.params
        if params.api_base:
            return call.deployment.api_base
        location = self.location(params)
        if location == "global":
            return "https://aiplatform.googleapis.com"
        return f"https://{location}-aiplatform.googleapis.com"

    def path_values(self, call: Call) -> dict[str, str]:
        params = call.deployment.params
        return {
            **super().path_values(call),
            "project": quote(self.project(params), safe=""),
            "location": quote(self.location(params), safe=""),
        }

    def headers(self, call: Call) -> list[tuple[str, str]]:
        if not any(name == "authorization" for name, _ in call.extra_headers):
            raise _not_configured(
                "no access token for this call: the relay must await VertexAdapter.prepare() "
                "before build_request()"
            )
        return super().headers(call)

    # --- Claude models: the Anthropic publisher ---------------------------------------

    def url(self, call: Call) -> str:
        if not is_claude(call.model):
            return super().url(call)
        params = call.deployment.params
        return self.base_url(call) + claude_path(call, self.project(params), self.location(params))

    def build_request(self, call: Call) -> UpstreamRequest:
        if not is_claude(call.model):
            return super().build_request(call)
        body = msgspec.json.encode(claude_body(call))
        return UpstreamRequest("POST", self.url(call), self.headers(call), body)

    def translate_response(self, call: Call, body: bytes) -> bytes | None:
        if is_claude(call.model):
            return claude_response(call, body)
        return super().translate_response(call, body)

    def stream_translator(self, call: Call) -> StreamTranslator | None:
        if is_claude(call.model):
            return claude_stream(call)
        return super().stream_translator(call)

    def error_from_status(
        self, call: Call, status: int, headers: Mapping[str, str], body: bytes
    ) -> TianjiError:
        anthropic_error = (
            claude_error(call, status, headers, body) if is_claude(call.model) else None
        )
        return anthropic_error or super().error_from_status(call, status, headers, body)

    # --- embeddings: the `:predict` API ---------------------------------------------

    def embedding_body(self, call: Call) -> dict[str, Any]:
        body = apply_params(call)
        task = body.get("task_type") or body.get("taskType")
        instances = []
        for text in embedding_inputs(call.deployment.provider.name, body.get("input")):
            instance: dict[str, Any] = {"content": text}
            if task:
                instance["task_type"] = task
            instances.append(instance)
        request: dict[str, Any] = {"instances": instances}
        if body.get("dimensions"):
            request["parameters"] = {"outputDimensionality": body["dimensions"]}
        return request

    def embedding_response(self, call: Call, data: Any) -> dict[str, Any]:
        predictions = data.get("predictions") if isinstance(data, dict) else None
        if not isinstance(predictions, list):
            raise UpstreamProtocolError(
                f"invalid response from {call.deployment.provider.name}: no predictions"
            )
        vectors: list[list[float]] = []
        tokens = 0
        for prediction in predictions:
            embeddings = prediction.get("embeddings") or {}
            vectors.append(embeddings.get("values") or [])
            tokens += int((embeddings.get("statistics") or {}).get("token_count") or 0)
        encoding = (call.body or {}).get("encoding_format")
        return embedding_list(call.model, vectors, tokens, encoding)
