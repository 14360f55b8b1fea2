"""The /model/* endpoints (routes.md §5.8, management-api.md §8): deployments
stored in the database, routed on every instance without a restart.

A write is checked like a config entry (unknown provider, missing credential:
400), stored with its credentials sealed, and then this instance's model table
is rebuilt before the answer (tianji.api.admin.model_sync), so the next request
routes with it; other instances follow through the change bus (Redis) or their
poll. Config-file deployments are read-only here (409): the file is their source.

Who may write: proxy_admin; a team admin for models scoped to a team they
administer (`model_info.team_id`), under a model name no one else uses.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any

from litestar import Request

from tianji.api.admin.common import BadRequest, ValidationFailed, convert, endpoint
from tianji.api.admin.model_reads import make_model_group_info, make_model_info
from tianji.api.admin.model_rows import (
    ModelDelete,
    ModelNew,
    ModelUpdate,
    chosen_params,
    merged,
    merged_params,
    model_out,
    stored_info,
    transform_secrets,
)
from tianji.api.admin.model_sync import ModelSync
from tianji.api.runtime import Runtime
from tianji.compile.model import RoutePlan
from tianji.errors import PermissionDenied
from tianji.guards.auth import Identity
from tianji.store import Actor, Conflict, Row, Store
from tianji.store.sealed import seal, unseal

__all__ = ["MODEL_OPERATIONS"]

Handler = Any


def _sync(runtime: Runtime) -> ModelSync:
    if runtime.model_sync is None:  # no store: require_store answers 503 first
        raise RuntimeError("database models need the store")
    return runtime.model_sync


def _check_writer(identity: Identity, team_id: str | None) -> None:
    """proxy_admin writes any model; a team admin only models of their teams."""
    if identity.is_admin or identity.administers_team(team_id):
        return
    raise PermissionDenied(
        f"role={identity.role} may only write models of teams they administer "
        "(set model_info.team_id).",
        code="403",
    )


async def _check_team(store: Store, team_id: Any) -> None:
    """A model scoped to a team names an existing one."""
    if team_id is None:
        return
    if not isinstance(team_id, str):
        raise ValidationFailed("model_info.team_id must be a string.", param="$.model_info.team_id")
    await store.teams.require(team_id)


def _check_name_free(
    runtime: Runtime, identity: Identity, name: str, team_id: str | None, model_id: str
) -> None:
    """A team admin's model may not join a group other deployments serve: it would
    take a share of everyone's traffic."""
    if identity.is_admin:
        return
    group = runtime.models.groups.get(name)
    if group is None:
        return
    if any(d.id != model_id and d.model_info.get("team_id") != team_id for d in group.deployments):
        raise Conflict(
            f"model_name {name!r} is served by deployments outside team {team_id}; "
            "choose another name.",
            param="model_name",
        )


def _check_not_configured(sync: ModelSync, model_id: str) -> None:
    if model_id in sync.config_ids:
        raise Conflict(
            f"Model {model_id} comes from the config file: change it there.", param="model_id"
        )


def _stored(
    sync: ModelSync,
    runtime: Runtime,
    identity: Identity,
    *,
    model_id: str,
    model_name: str,
    params: Mapping[str, Any],
    info: Mapping[str, Any],
) -> dict[str, Any]:
    """The columns of a checked, plannable model; its credentials sealed."""
    team_id = info.get("team_id")
    _check_name_free(runtime, identity, model_name, team_id, model_id)
    sync.plan(model_id, model_name, params, info)
    return {
        "model_name": model_name,
        "litellm_params": transform_secrets(params, lambda v: seal(v, sync.key)),
        "model_info": dict(info),
        "team_id": team_id,
    }


# ---------------------------------------------------------------------------- new


def make_model_new(plan: RoutePlan, runtime: Runtime) -> Handler:
    async def work(store: Store, request: Any, identity: Identity, data: Any, who: Actor) -> Any:
        sync = _sync(runtime)
        body = convert(data, ModelNew)
        params = chosen_params(body.litellm_params, body.tianji_params)
        if params is None:
            raise ValidationFailed("litellm_params is required.", param="$.litellm_params")
        sent_id = (body.model_info or {}).get("id")
        model_id = str(sent_id) if sent_id else uuid.uuid4().hex
        info = stored_info(body.model_info)
        await _check_team(store, info.get("team_id"))
        _check_writer(identity, info.get("team_id"))
        _check_not_configured(sync, model_id)
        columns = _stored(
            sync,
            runtime,
            identity,
            model_id=model_id,
            model_name=body.model_name,
            params=params,
            info=info,
        )
        row = {
            **columns,
            "model_id": model_id,
            "created_by": who.changed_by,
            "updated_by": who.changed_by,
        }
        created = await store.models.insert(row, actor=who)
        await sync.refresh_after_write()
        return model_out(created)

    return endpoint(runtime, work)


# ---------------------------------------------------------------------------- update


def _update_id(request: Request[Any, Any, Any], body: ModelUpdate) -> str:
    model_id = (
        request.path_params.get("model_id") or body.model_id or (body.model_info or {}).get("id")
    )
    if not model_id:
        raise ValidationFailed("model_info.id is required.", param="$.model_info.id")
    return str(model_id)


async def _existing(store: Store, sync: ModelSync, model_id: str) -> Row:
    """The stored model; 409 for a config-file deployment, else 404 when absent."""
    row = await store.models.get(model_id)
    if row is None:
        _check_not_configured(sync, model_id)
        row = await store.models.require(model_id)
    return row


def _plain_params(sync: ModelSync, row: Row) -> dict[str, Any]:
    try:
        return transform_secrets(row["litellm_params"] or {}, lambda v: unseal(v, sync.key))
    except ValueError as exc:
        raise BadRequest(
            f"The stored credentials of model {row['model_id']} cannot be read ({exc}); "
            "send them again.",
            param="litellm_params",
        ) from None


def make_model_update(plan: RoutePlan, runtime: Runtime) -> Handler:
    async def work(
        store: Store, request: Request[Any, Any, Any], identity: Identity, data: Any, who: Actor
    ) -> Any:
        sync = _sync(runtime)
        body = convert(data, ModelUpdate)
        model_id = _update_id(request, body)
        row = await _existing(store, sync, model_id)
        _check_writer(identity, row["team_id"])
        patch = chosen_params(body.litellm_params, body.tianji_params) or {}
        params = merged_params(_plain_params(sync, row), patch)
        info = merged(row["model_info"] or {}, stored_info(body.model_info))
        if info.get("team_id") != row["team_id"]:
            await _check_team(store, info.get("team_id"))
            _check_writer(identity, info.get("team_id"))
        columns = _stored(
            sync,
            runtime,
            identity,
            model_id=model_id,
            model_name=body.model_name or row["model_name"],
            params=params,
            info=info,
        )
        updated = await store.models.update(model_id, columns, actor=who)
        await sync.refresh_after_write()
        return model_out(updated)

    return endpoint(runtime, work)


# ---------------------------------------------------------------------------- delete


def make_model_delete(plan: RoutePlan, runtime: Runtime) -> Handler:
    async def work(store: Store, request: Any, identity: Identity, data: Any, who: Actor) -> Any:
        sync = _sync(runtime)
        body = convert(data, ModelDelete)
        model_id = body.id or body.model_id
        if not model_id:
            raise ValidationFailed("id is required.", param="$.id")
        row = await _existing(store, sync, model_id)
        _check_writer(identity, row["team_id"])
        await store.models.delete([model_id], actor=who)
        await sync.refresh_after_write()
        return {"message": f"Model: {model_id} deleted successfully"}

    return endpoint(runtime, work)


MODEL_OPERATIONS: Mapping[str, Any] = {
    "model_new": make_model_new,
    "model_update": make_model_update,
    "model_delete": make_model_delete,
    "model_info": make_model_info,
    "model_group_info": make_model_group_info,
}
