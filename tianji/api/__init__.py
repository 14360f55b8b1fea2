"""Endpoint factories by operation name: `operation:` in routes.yaml picks one.

A factory takes the route's plan and the runtime and returns an async handler
`(request, identity) -> response`; the build step mounts it on every path of the
plan, behind the route's auth. Each area (llm, native, passthrough, admin) keeps
its own registry.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Any

from tianji.api.admin import OPERATIONS as ADMIN_OPERATIONS
from tianji.api.health import make_health, make_liveliness, make_readiness, make_route_list
from tianji.api.llm.forward import make_forward_handler
from tianji.api.llm.models import make_list_models, make_retrieve_model
from tianji.api.llm.proxy import MULTIPART_OPERATIONS, make_model_handler
from tianji.api.native import ERROR_RENDERERS
from tianji.api.native import OPERATIONS as NATIVE_OPERATIONS
from tianji.api.passthrough import OPERATIONS as PASSTHROUGH_OPERATIONS
from tianji.api.runtime import Runtime
from tianji.api.utils import make_supported_params, make_token_counter
from tianji.compile.model import RoutePlan

__all__ = ["ERROR_RENDERERS", "MULTIPART_OPERATIONS", "OPERATIONS", "EndpointFactory"]

EndpointFactory = Callable[[RoutePlan, Runtime], Any]

_MODEL_OPERATIONS = (
    "chat",
    "text_completion",
    "embeddings",
    "image_generation",
    "image_edit",
    "image_variation",
    "speech",
    "transcription",
    "moderation",
    "rerank",
    "responses",
)

OPERATIONS: Mapping[str, EndpointFactory] = MappingProxyType(
    {
        **{op: make_model_handler for op in _MODEL_OPERATIONS},
        "forward": make_forward_handler,
        "list_models": make_list_models,
        "retrieve_model": make_retrieve_model,
        "supported_openai_params": make_supported_params,
        "token_counter": make_token_counter,
        "health": make_health,
        "liveliness": make_liveliness,
        "readiness": make_readiness,
        "route_list": make_route_list,
        **NATIVE_OPERATIONS,
        **PASSTHROUGH_OPERATIONS,
        **ADMIN_OPERATIONS,
    }
)
