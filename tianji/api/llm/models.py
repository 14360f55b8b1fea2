"""GET /models and /models/{model_id}: the model groups a caller may use."""

from __future__ import annotations

from typing import Any

import msgspec
from litestar import Request, Response

from tianji.api.runtime import Runtime
from tianji.compile.model import RoutePlan
from tianji.errors import NotFound
from tianji.guards.auth import Identity

__all__ = ["make_list_models", "make_retrieve_model"]


class ModelCard(msgspec.Struct):
    id: str
    object: str
    created: int
    owned_by: str


class ModelList(msgspec.Struct):
    object: str
    data: list[ModelCard]


def _cards(runtime: Runtime) -> dict[str, ModelCard]:
    models = runtime.models
    created = int(runtime.started_at)
    cards = {}
    for name in models.public_names():
        resolved = models.resolve(name)
        owner = resolved.group.owned_by if resolved else "tianji"
        cards[name] = ModelCard(name, "model", created, owner)
    return cards


def make_list_models(plan: RoutePlan, runtime: Runtime) -> Any:
    async def handler(request: Request[Any, Any, Any], identity: Identity) -> Response[bytes]:
        body = msgspec.json.encode(ModelList("list", list(_cards(runtime).values())))
        return Response(body, media_type="application/json")

    return handler


def make_retrieve_model(plan: RoutePlan, runtime: Runtime) -> Any:
    async def handler(request: Request[Any, Any, Any], identity: Identity) -> Response[bytes]:
        model_id = request.path_params["model_id"]
        card = _cards(runtime).get(model_id)
        if card is None:
            raise NotFound(
                f"The model '{model_id}' does not exist", param="model", code="model_not_found"
            )
        return Response(msgspec.json.encode(card), media_type="application/json")

    return handler
