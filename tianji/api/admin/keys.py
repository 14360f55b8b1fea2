"""The /key/* endpoints (routes.md §5.1) with LiteLLM's request and response shapes.

A key's plaintext appears once: in the generate / regenerate response. Every
other response and message shows `key_name` (`sk-...abcd`) or the reference
the caller sent. Writes go through the store's key repository (one
transaction each, audited, caches invalidated on every instance).
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from litestar import Request

from tianji.api.admin.common import (
    BadRequest,
    ValidationFailed,
    convert,
    displayed,
    endpoint,
)
from tianji.api.admin.durations import parse_duration
from tianji.api.admin.key_access import (
    check_create,
    check_manage,
    check_within_team,
)
from tianji.api.admin.key_bulk import make_key_bulk_update, make_key_reset_spend
from tianji.api.admin.key_reads import (
    find_key,
    make_key_aliases,
    make_key_health,
    make_key_info,
    make_key_info_v2,
    make_key_list,
    shown_key,
)
from tianji.api.admin.key_rows import (
    UNSETTABLE,
    KeyDelete,
    KeyGenerate,
    KeyRef,
    KeyRegenerate,
    KeyUpdate,
    key_values,
)
from tianji.api.runtime import Runtime
from tianji.compile.model import RoutePlan
from tianji.errors import NotFound, PermissionDenied
from tianji.guards.auth import Identity
from tianji.store import Actor, Row, Store, hash_key, key_name, token_of, usd_to_nano

__all__ = ["KEY_OPERATIONS"]

Handler = Any
_BULK_LIMIT = 500


def _now() -> datetime:
    return datetime.now(UTC)


def _new_plaintext() -> str:
    return "sk-" + secrets.token_urlsafe(16)


def _custom_key(value: str, param: str) -> str:
    if not value.startswith("sk-") or len(value) < 20:
        raise BadRequest(
            f"{param} must start with 'sk-' and be at least 20 characters.", param=param
        )
    return value


async def _issued(store: Store, plaintext: str, row: Row, duration: str | None) -> dict[str, Any]:
    """The generate / regenerate response: the only place a plaintext key appears."""
    shown = await shown_key(store, row)
    return {
        "key": plaintext,
        "token": plaintext,
        "token_id": row["token"],
        **shown,
        "duration": duration,
    }


# ---------------------------------------------------------------------------- generate


async def _generate(
    store: Store, identity: Identity, fields: KeyGenerate, who: Actor, *, service_account: bool
) -> dict[str, Any]:
    now = _now()
    plaintext = _custom_key(fields.key, "key") if fields.key else _new_plaintext()
    values = key_values(fields, now)
    if service_account:
        if values.get("team_id") is None:
            raise ValidationFailed(
                "team_id is required for a service account key.", param="$.team_id"
            )
        values.pop("user_id", None)
    elif (
        "user_id" not in values
        and not identity.is_admin
        and identity.user_id is not None
        and not identity.administers_team(values.get("team_id"))
    ):
        values["user_id"] = identity.user_id  # a user's key is theirs
    await check_create(
        identity,
        store,
        user_id=values.get("user_id"),
        team_id=values.get("team_id"),
        organization_id=values.get("organization_id"),
    )
    team = await store.teams.require(values["team_id"]) if values.get("team_id") else None
    check_within_team(values, team)
    token = hash_key(plaintext)
    row = {
        **values,
        "token": token,
        "key_name": key_name(plaintext),
        "created_by": who.changed_by,
        "updated_by": who.changed_by,
    }
    created = await store.keys.create(row, actor=who)
    return await _issued(store, plaintext, created, fields.duration)


def make_key_generate(plan: RoutePlan, runtime: Runtime) -> Handler:
    service_account = plan.operation == "key_service_account_generate"

    async def work(store: Store, request: Any, identity: Identity, data: Any, who: Actor) -> Any:
        fields = convert(data, KeyGenerate)
        return await _generate(store, identity, fields, who, service_account=service_account)

    return endpoint(runtime, work, optional=True)


# ---------------------------------------------------------------------------- update


async def _changes(
    store: Store, identity: Identity, row: Row, fields: KeyUpdate, now: datetime
) -> dict[str, Any]:
    """Stored values of an update (also used by regenerate), with its checks."""
    if (fields.temp_budget_increase is None) != (fields.temp_budget_expiry is None):
        raise ValidationFailed(
            "temp_budget_increase and temp_budget_expiry go together.", param="$.temp_budget_expiry"
        )
    values = key_values(fields, now, metadata=row["metadata"])
    if "user_id" in values and values["user_id"] != row["user_id"] and not identity.is_admin:
        raise PermissionDenied("Only proxy_admin may change a key's user_id.", code="403")
    moved = "team_id" in values and values["team_id"] != row["team_id"]
    if moved:
        await check_create(
            identity,
            store,
            user_id=values.get("user_id", row["user_id"]),
            team_id=values["team_id"],
            organization_id=values.get("organization_id", row["organization_id"]),
        )
    if fields.temp_budget_increase is not None and fields.temp_budget_expiry is not None:
        metadata = dict(values.get("metadata", row["metadata"]) or {})
        metadata["temp_budget_increase"] = usd_to_nano(fields.temp_budget_increase)
        metadata["temp_budget_expiry"] = fields.temp_budget_expiry.astimezone(UTC).isoformat()
        values["metadata"] = metadata
    for name in fields.unset_fields or ():
        if name not in UNSETTABLE:
            raise ValidationFailed(
                f"unset_fields: {name!r} cannot be unset (one of {sorted(UNSETTABLE)})",
                param="$.unset_fields",
            )
        values[name] = UNSETTABLE[name]
        if name == "budget_duration":
            values["budget_reset_at"] = None
    team_id = values.get("team_id", row["team_id"])
    team = await store.teams.require(team_id) if team_id else None
    check_within_team({**row, **values} if moved else values, team)
    return values


def make_key_update(plan: RoutePlan, runtime: Runtime) -> Handler:
    async def work(store: Store, request: Any, identity: Identity, data: Any, who: Actor) -> Any:
        fields = convert(data, KeyUpdate)
        row = await find_key(store, fields.key)
        await check_manage(identity, store, row)
        values = await _changes(store, identity, row, fields, _now())
        updated = await store.keys.change(row["token"], values, actor=who)
        return {"key": fields.key, **await shown_key(store, updated)}

    return endpoint(runtime, work)


# ---------------------------------------------------------------------------- regenerate


def make_key_regenerate(plan: RoutePlan, runtime: Runtime) -> Handler:
    master = runtime.gateway.settings.master_key

    async def work(
        store: Store, request: Request[Any, Any, Any], identity: Identity, data: Any, who: Actor
    ) -> Any:
        path_key = request.path_params.get("key")
        fields = convert({**data, "key": path_key} if path_key else data, KeyRegenerate)
        if not fields.key:
            raise ValidationFailed("key is required (in the body or the path).", param="$.key")
        if master is not None and secrets.compare_digest(fields.key, master):
            raise BadRequest(
                "The master key cannot be regenerated: it comes from the config "
                "(general_settings.master_key).",
                param="key",
            )
        row = await find_key(store, fields.key)
        await check_manage(identity, store, row)
        now = _now()
        plaintext = _custom_key(fields.new_key, "new_key") if fields.new_key else _new_plaintext()
        revoke_at = None
        if fields.grace_period:
            try:
                revoke_at = parse_duration(fields.grace_period).after(now)
            except ValueError as exc:
                raise BadRequest(str(exc), param="grace_period") from None
        values = await _changes(store, identity, row, fields, now)
        renewed = await store.keys.rekey(
            row["token"],
            hash_key(plaintext),
            key_name(plaintext),
            values,
            revoke_old_at=revoke_at,
            actor=who,
        )
        return await _issued(store, plaintext, renewed, fields.duration)

    return endpoint(runtime, work, optional=True)


# ---------------------------------------------------------------------------- delete


def make_key_delete(plan: RoutePlan, runtime: Runtime) -> Handler:
    async def work(store: Store, request: Any, identity: Identity, data: Any, who: Actor) -> Any:
        body = convert(data, KeyDelete)
        if body.keys is not None:
            sent = body.keys
            found = {r["token"]: r for r in await store.keys.get_many(map(token_of, sent))}
            missing = [displayed(k) for k in sent if token_of(k) not in found]
            rows = [found[token_of(k)] for k in sent if token_of(k) in found]
        elif body.key_aliases is not None:
            sent = body.key_aliases
            rows = await store.keys.find(key_alias=sent)
            missing = sorted(set(sent) - {r["key_alias"] for r in rows})
        else:
            raise ValidationFailed("Pass 'keys' or 'key_aliases'.", param="$.keys")
        if missing or not sent:
            raise NotFound(f"Keys not found: {missing}; nothing was deleted.", param="keys")
        for row in rows:
            await check_manage(identity, store, row)
        await store.keys.delete_keys([r["token"] for r in rows], actor=who)
        return {"deleted_keys": sent}

    return endpoint(runtime, work)


# ---------------------------------------------------------------------------- block


def make_key_block(plan: RoutePlan, runtime: Runtime) -> Handler:
    blocked = plan.operation == "key_block"

    async def work(store: Store, request: Any, identity: Identity, data: Any, who: Actor) -> Any:
        row = await find_key(store, convert(data, KeyRef).key)
        action = "blocked" if blocked else "unblocked"
        updated = await store.keys.change(
            row["token"], {"blocked": blocked}, actor=who, action=action
        )
        return await shown_key(store, updated)

    return endpoint(runtime, work)


KEY_OPERATIONS: Mapping[str, Any] = {
    "key_generate": make_key_generate,
    "key_service_account_generate": make_key_generate,
    "key_update": make_key_update,
    "key_regenerate": make_key_regenerate,
    "key_delete": make_key_delete,
    "key_block": make_key_block,
    "key_unblock": make_key_block,
    "key_bulk_update": make_key_bulk_update,
    "key_reset_spend": make_key_reset_spend,
    "key_info": make_key_info,
    "key_info_v2": make_key_info_v2,
    "key_list": make_key_list,
    "key_aliases": make_key_aliases,
    "key_health": make_key_health,
}
