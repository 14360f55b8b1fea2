"""GET /model/info (and /v1, /v2 aliases) and GET /model_group/info: the
deployments and model groups the caller may use (management-api.md §8).

Read from the live model table (config and database deployments, as routed),
filtered like GET /v1/models (tianji.api.llm.models). No credential is shown.
They need no database: without one the config's deployments are listed.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from litestar import Request, Response

from tianji.api.admin.common import json_response, query_int
from tianji.api.admin.model_rows import deployment_item
from tianji.api.llm.models import shown_deployments, visible_models
from tianji.api.runtime import Runtime
from tianji.compile.model import Deployment, RoutePlan
from tianji.errors import NotFound
from tianji.guards.auth import Identity
from tianji.providers import supported_params

__all__ = ["make_model_group_info", "make_model_info"]

Handler = Any

# model_info.mode -> the operation whose OpenAI params the group supports.
_MODE_OPERATIONS = {
    "embedding": "embeddings",
    "completion": "text_completion",
    "image_generation": "image_generation",
    "audio_speech": "speech",
    "audio_transcription": "transcription",
    "moderation": "moderation",
    "rerank": "rerank",
    "responses": "responses",
}
_CAPABILITIES = (
    "supports_parallel_function_calling",
    "supports_vision",
    "supports_function_calling",
    "supports_reasoning",
    "supports_web_search",
)


# ---------------------------------------------------------------------------- /model/info


def _page(request: Request[Any, Any, Any], items: list[dict[str, Any]]) -> dict[str, Any]:
    """/v2/model/info: `?search=` (in model_name, any case), `?page=` and `?size=`."""
    search = (request.query_params.get("search") or "").lower()
    if search:
        items = [item for item in items if search in item["model_name"].lower()]
    page = query_int(request, "page", 1, low=1, high=1_000_000)
    size = query_int(request, "size", 50, low=1, high=1000)
    return {
        "data": items[(page - 1) * size : page * size],
        "total_count": len(items),
        "current_page": page,
        "total_pages": math.ceil(len(items) / size),
        "size": size,
    }


def make_model_info(plan: RoutePlan, runtime: Runtime) -> Handler:
    paginated = plan.path.startswith("/v2/")

    async def handler(request: Request[Any, Any, Any], identity: Identity) -> Response[bytes]:
        rows = runtime.model_sync.rows if runtime.model_sync is not None else {}
        groups = {g.name: g for g in (await visible_models(runtime, identity, plan)).values()}
        items = [
            deployment_item(deployment, rows.get(deployment.id))
            for group in groups.values()
            for deployment in shown_deployments(identity, group)
        ]
        wanted = request.query_params.get("litellm_model_id")
        if wanted:
            items = [item for item in items if item["model_info"]["id"] == wanted]
            if not items:
                raise NotFound(f"Model id = {wanted} not found.", param="litellm_model_id")
        return json_response(_page(request, items) if paginated else {"data": items})

    return handler


# ---------------------------------------------------------------------------- /model_group/info


def _first(deployments: Sequence[Deployment], name: str) -> Any:
    """The first value a deployment states: its model_info, else its litellm_params."""
    for deployment in deployments:
        value = deployment.model_info.get(name)
        if value is None:
            value = getattr(deployment.params, name, None)
        if value is not None:
            return value
    return None


def _largest(deployments: Sequence[Deployment], name: str) -> Any:
    values = [d.model_info.get(name) for d in deployments]
    numbers = [v for v in values if isinstance(v, int | float) and not isinstance(v, bool)]
    return max(numbers) if numbers else None


def _total(deployments: Sequence[Deployment], name: str) -> int | None:
    values = [getattr(d.params, name) for d in deployments if getattr(d.params, name) is not None]
    return sum(values) if values else None


def group_info(name: str, deployments: Sequence[Deployment]) -> dict[str, Any]:
    """A model group's capabilities: prices from the first deployment that states
    them, the largest token limits, summed tpm/rpm, a capability when any
    deployment has it, and the OpenAI params of its providers."""
    mode = _first(deployments, "mode")
    operation = _MODE_OPERATIONS.get(mode, "chat") if isinstance(mode, str) else "chat"
    params: set[str] = set()
    for deployment in deployments:
        params |= supported_params(deployment, operation)
    info: dict[str, Any] = {
        "model_group": name,
        "providers": list(dict.fromkeys(d.provider.name for d in deployments)),
        "max_input_tokens": _largest(deployments, "max_input_tokens"),
        "max_output_tokens": _largest(deployments, "max_output_tokens"),
        "input_cost_per_token": _first(deployments, "input_cost_per_token"),
        "output_cost_per_token": _first(deployments, "output_cost_per_token"),
        "mode": mode,
        "tpm": _total(deployments, "tpm"),
        "rpm": _total(deployments, "rpm"),
    }
    for capability in _CAPABILITIES:
        info[capability] = any(bool(d.model_info.get(capability)) for d in deployments)
    info["supported_openai_params"] = sorted(params)
    return info


def make_model_group_info(plan: RoutePlan, runtime: Runtime) -> Handler:
    async def handler(request: Request[Any, Any, Any], identity: Identity) -> Response[bytes]:
        visible = await visible_models(runtime, identity, plan)
        wanted = request.query_params.get("model_group")
        if wanted:
            if wanted not in visible:
                raise NotFound(f"Model group {wanted} not found.", param="model_group")
            groups = {visible[wanted].name: visible[wanted]}
        else:
            groups = {g.name: g for g in visible.values()}
        data = [group_info(name, shown_deployments(identity, g)) for name, g in groups.items()]
        return json_response({"data": data})

    return handler
