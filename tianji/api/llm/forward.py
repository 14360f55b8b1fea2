"""Forward-only routes (files, batches, assistants, threads, vector stores, ...).

The request is relayed to the default OpenAI or Azure deployment: method, path
(with its parameters), query and body unchanged, with the deployment's
credentials instead of the caller's key. `custom_llm_provider` (query or JSON
body) picks `openai` (default) or `azure`.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl, urlencode

import msgspec
from litestar import Request, Response
from litestar.response import Stream

from tianji.api.llm.relay import relay
from tianji.api.runtime import Runtime
from tianji.compile.model import Deployment, ModelTable, RoutePlan
from tianji.errors import InvalidRequest
from tianji.guards.auth import Identity
from tianji.providers import Call

__all__ = ["default_deployment", "make_forward_handler"]

_FORWARD_PROVIDERS = ("openai", "azure")


def default_deployment(models: ModelTable, provider: str | None) -> Deployment:
    wanted = (provider,) if provider else _FORWARD_PROVIDERS
    for name in wanted:
        for group in models.groups.values():
            for deployment in group.deployments:
                if deployment.provider.name == name and "forward" in deployment.provider.paths:
                    return deployment
    raise InvalidRequest(
        f"No deployment to forward this request to: configure an {' or '.join(wanted)} model.",
        param="custom_llm_provider",
    )


def make_forward_handler(plan: RoutePlan, runtime: Runtime) -> Any:
    async def handler(
        request: Request[Any, Any, Any], identity: Identity
    ) -> Response[bytes] | Stream:
        raw = await request.body()
        content_type = request.headers.get("content-type")
        query = [(k, v) for k, v in parse_qsl(request.url.query or "", keep_blank_values=True)]
        provider = next((v for k, v in query if k == "custom_llm_provider"), None)
        stream = False
        if raw and content_type and content_type.startswith("application/json"):
            try:
                data = msgspec.json.decode(raw)
            except msgspec.DecodeError:
                raise InvalidRequest(
                    "Malformed JSON in request body.", code="invalid_json"
                ) from None
            if isinstance(data, dict):
                provider = provider or data.get("custom_llm_provider")
                stream = data.get("stream") is True
        deployment = default_deployment(runtime.models, provider)
        path = plan.upstream_path.format(**request.path_params)
        kept = [(k, v) for k, v in query if k not in ("custom_llm_provider", "api-version")]
        call = Call(
            operation="forward",
            deployment=deployment,
            model=deployment.model,
            stream=stream,
            method=request.method,
            path=path,
            query=urlencode(kept),
            raw_body=raw,
            content_type=content_type,
            extra_headers=plan.upstream_headers,
        )
        return await relay(runtime, call, {"x-litellm-model-id": deployment.id})

    return handler
