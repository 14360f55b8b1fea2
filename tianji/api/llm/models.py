"""GET /models and /models/{model_id}: the model groups a caller may use.

The access rule is the one calls are checked with (guards.md §2: the key's,
team's, user's and organization's model lists, through the model-access
guard), so a listing never shows a model the caller would be refused, nor hides
one it may call. /model/info and /model_group/info filter with the same helpers.
Deployments scoped to a team (`model_info.team_id`) show only to that team.
"""

from __future__ import annotations

from typing import Any

import msgspec
from litestar import Request, Response

from tianji.api.runtime import Runtime
from tianji.compile.model import Deployment, ModelGroup, RoutePlan
from tianji.errors import AuthenticationFailed, NotFound
from tianji.guards.auth import Identity
from tianji.guards.keys import ModelAccessGuard

__all__ = [
    "make_list_models",
    "make_retrieve_model",
    "shown_deployments",
    "usable",
    "visible_models",
]

# Allow-list entries that are rules, not model names.
_SPECIAL_ENTRIES = frozenset({"all-proxy-models", "all-team-models", "no-default-models"})


class ModelCard(msgspec.Struct):
    id: str
    object: str
    created: int
    owned_by: str


class ModelList(msgspec.Struct):
    object: str
    data: list[ModelCard]


async def usable(
    runtime: Runtime,
    identity: Identity,
    plan: RoutePlan,
    group: str,
    requested: str | None = None,
) -> bool:
    """Would a call to `requested` (served by `group`) pass the model-access guard?"""
    guard = runtime.guard
    if not isinstance(guard, ModelAccessGuard):
        return True
    try:
        await guard.before_call(identity, plan, group, requested=requested)
    except AuthenticationFailed:
        return False
    return True


def _team_allows(identity: Identity, deployment: Deployment) -> bool:
    team_id = deployment.model_info.get("team_id")
    if not team_id or identity.reads_everything:
        return True
    return team_id == identity.team_id or team_id in identity.team_roles


def shown_deployments(identity: Identity, group: ModelGroup) -> tuple[Deployment, ...]:
    """The group's deployments this caller may see (team-scoped ones: their team's)."""
    return tuple(d for d in group.deployments if _team_allows(identity, d))


async def visible_models(
    runtime: Runtime, identity: Identity, plan: RoutePlan
) -> dict[str, ModelGroup]:
    """Public name -> group, for every name the caller may call: the groups and
    aliases of the table, and the names of their allow-lists that a wildcard
    group serves (a key allowed `openai/gpt-4` sees it when `openai/*` serves it)."""
    models = runtime.models
    visible: dict[str, ModelGroup] = {}
    for name in models.public_names():
        resolved = models.resolve(name)
        if resolved is None or not shown_deployments(identity, resolved.group):
            continue
        if await usable(runtime, identity, plan, resolved.group.name, name):
            visible[name] = resolved.group
    listed = (*identity.models, *identity.team_models, *identity.user_models, *identity.org_models)
    for name in dict.fromkeys(listed):
        if name in visible or name in _SPECIAL_ENTRIES or "*" in name:
            continue
        resolved = models.resolve(name)
        if resolved is None or not resolved.group.is_wildcard:
            continue
        if shown_deployments(identity, resolved.group) and await usable(
            runtime, identity, plan, resolved.group.name, name
        ):
            visible[name] = resolved.group
    return visible


async def _cards(runtime: Runtime, identity: Identity, plan: RoutePlan) -> dict[str, ModelCard]:
    created = int(runtime.started_at)
    visible = await visible_models(runtime, identity, plan)
    return {
        name: ModelCard(name, "model", created, group.owned_by) for name, group in visible.items()
    }


def make_list_models(plan: RoutePlan, runtime: Runtime) -> Any:
    async def handler(request: Request[Any, Any, Any], identity: Identity) -> Response[bytes]:
        cards = await _cards(runtime, identity, plan)
        body = msgspec.json.encode(ModelList("list", list(cards.values())))
        return Response(body, media_type="application/json")

    return handler


def make_retrieve_model(plan: RoutePlan, runtime: Runtime) -> Any:
    async def handler(request: Request[Any, Any, Any], identity: Identity) -> Response[bytes]:
        model_id = request.path_params["model_id"]
        card = (await _cards(runtime, identity, plan)).get(model_id)
        if card is None:
            raise NotFound(
                f"The model '{model_id}' does not exist", param="model", code="model_not_found"
            )
        return Response(msgspec.json.encode(card), media_type="application/json")

    return handler
