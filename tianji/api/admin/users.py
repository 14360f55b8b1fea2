"""The /user/* writes (routes.md §5.2, management-api.md §2): new, update,
bulk_update, delete. Reads are in user_reads.py, daily activity in
daily_activity.py; all of them are registered here as USER_OPERATIONS.

`/user/new` creates the user, their team and organization memberships and
(unless `auto_create_key: false`) their first key in one transaction: a
missing team or a taken email leaves nothing behind. `/user/delete` removes
the users' keys and memberships with them, also in one transaction.
"""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import msgspec

from tianji.api.admin.budget_rows import money
from tianji.api.admin.common import ValidationFailed, convert, endpoint
from tianji.api.admin.daily_activity import make_user_daily_activity
from tianji.api.admin.key_access import check_within_team
from tianji.api.admin.key_reads import shown_key
from tianji.api.admin.key_rows import KeyFields, key_values
from tianji.api.admin.user_access import (
    check_org_scope,
    check_user_manage,
    check_user_update,
    denied,
)
from tianji.api.admin.user_reads import make_user_info, make_user_list
from tianji.api.admin.user_rows import (
    ADMIN_ROLES,
    NewUserTeam,
    UserNew,
    UserUpdate,
    unset_values,
    user_values,
    users_out,
)
from tianji.api.runtime import Runtime
from tianji.compile.model import RoutePlan
from tianji.errors import NotFound, TianjiError
from tianji.guards.auth import Identity
from tianji.store import Actor, Conflict, Row, Store, hash_key, key_name
from tianji.store.people import join_team, rename_in_teams, unlink_user, users_by_email

__all__ = ["USER_OPERATIONS"]

Handler = Any
_BULK_LIMIT = 500


def _now() -> datetime:
    return datetime.now(UTC)


async def _check_email_free(store: Store, email: str | None, user_id: str | None = None) -> None:
    if email is None:
        return
    if any(row["user_id"] != user_id for row in await users_by_email(store, email)):
        raise Conflict(f"A user with email {email} already exists.", param="user_email")


# ---------------------------------------------------------------------------- new


def _team_entries(fields: UserNew) -> list[NewUserTeam]:
    entries = [NewUserTeam(team_id=t) if isinstance(t, str) else t for t in fields.teams or ()]
    if fields.team_id is not None and all(e.team_id != fields.team_id for e in entries):
        entries.append(NewUserTeam(team_id=fields.team_id))
    return entries


async def _check_new(identity: Identity, store: Store, fields: UserNew) -> list[NewUserTeam]:
    if fields.user_id == "":
        raise ValidationFailed("user_id must not be empty.", param="$.user_id")
    if fields.user_role in ADMIN_ROLES and not identity.is_admin:
        raise denied(identity, f"create a user with role {fields.user_role}")
    teams = _team_entries(fields)
    team_orgs = [(await store.teams.require(e.team_id))["organization_id"] for e in teams]
    check_org_scope(identity, fields.organizations or (), team_orgs)
    return teams


async def _first_key(store: Store, user: Row, fields: UserNew, who: Actor) -> dict[str, Any]:
    """The auto-created key and the generate-response fields that show it once."""
    plaintext = "sk-" + secrets.token_urlsafe(16)
    wanted = KeyFields(
        key_alias=fields.key_alias,
        duration=fields.duration,
        models=fields.models,
        aliases=fields.aliases,
        config=fields.config,
        permissions=fields.permissions,
        team_id=fields.team_id,
        guardrails=fields.guardrails,
        user_id=user["user_id"],
    )
    values = key_values(wanted, _now())
    if fields.team_id is not None:
        check_within_team(values, await store.teams.require(fields.team_id))
    row = {
        **values,
        "token": hash_key(plaintext),
        "key_name": key_name(plaintext),
        "created_by": who.changed_by,
        "updated_by": who.changed_by,
    }
    created = await store.keys.create(row, actor=who)
    shown = await shown_key(store, created)
    return {
        "key": plaintext,
        "token": plaintext,
        "token_id": created["token"],
        **shown,
        "duration": fields.duration,
    }


_NO_KEY = {
    "key": None,
    "token": None,
    "token_id": None,
    "key_name": None,
    "key_alias": None,
    "expires": None,
    "duration": None,
}


async def _join(store: Store, user: Row, entry: NewUserTeam, who: Actor) -> None:
    """One `teams` entry; `max_budget_in_team` becomes the membership's own budget row."""
    budget_id = None
    if entry.max_budget_in_team is not None:
        budget = {
            "budget_id": str(uuid.uuid4()),
            "max_budget": money("max_budget_in_team", entry.max_budget_in_team),
            "created_by": who.changed_by,
            "updated_by": who.changed_by,
        }
        budget_id = (await store.budgets.insert(budget, actor=who))["budget_id"]
    await join_team(
        store, user, entry.team_id, role=entry.user_role, budget_id=budget_id, actor=who
    )


async def _create_user(
    store: Store, identity: Identity, fields: UserNew, who: Actor
) -> dict[str, Any]:
    teams = await _check_new(identity, store, fields)
    user_id = fields.user_id or str(uuid.uuid4())
    values = user_values(fields, _now())
    async with store.transaction():
        if await store.users.exists(user_id):
            raise Conflict(f"User already exists: {user_id}", param="user_id")
        await _check_email_free(store, fields.user_email)
        user = await store.users.insert(
            {
                **values,
                "user_id": user_id,
                "created_by": who.changed_by,
                "updated_by": who.changed_by,
            },
            actor=who,
        )
        for entry in teams:
            await _join(store, user, entry, who)
        for organization_id in dict.fromkeys(fields.organizations or ()):
            await store.org_members.add(user_id, organization_id, role="internal_user", actor=who)
        user = await store.users.require(user_id)
        issued = await _first_key(store, user, fields, who) if fields.auto_create_key else _NO_KEY
    (shown,) = await users_out(store, [user])
    return {
        **issued,
        **{name: shown[name] for name in ("user_id", "user_email", "user_role", "user_alias")},
        "teams": shown["teams"],
        "max_budget": shown["max_budget"],
        "model_max_budget": shown["model_max_budget"],
        "organization_memberships": shown["organization_memberships"],
        "created_at": shown["created_at"],
        "updated_at": shown["updated_at"],
    }


def make_user_new(plan: RoutePlan, runtime: Runtime) -> Handler:
    async def work(store: Store, request: Any, identity: Identity, data: Any, who: Actor) -> Any:
        return await _create_user(store, identity, convert(data, UserNew), who)

    return endpoint(runtime, work, optional=True)


# ---------------------------------------------------------------------------- update


async def _target(store: Store, fields: UserUpdate) -> Row:
    """By user_id, else by user_email (ignoring case); 422 with neither."""
    if fields.user_id:
        return await store.users.require(fields.user_id)
    if fields.user_email:
        found = await users_by_email(store, fields.user_email)
        if not found:
            raise NotFound(f"user not found: {fields.user_email}", param="user_email")
        return found[0]
    raise ValidationFailed("Either user_id or user_email must be provided.", param="$.user_id")


def _changing(fields: UserUpdate, user: Row) -> set[str]:
    """The names of the fields an update really changes (for the access check)."""
    names = {
        name
        for name in UserUpdate.__struct_fields__
        if getattr(fields, name) is not None and name not in ("user_id", "unset_fields")
    }
    if not fields.user_id:
        names.discard("user_email")  # it named the user; it is not a change
    if fields.user_role == user["user_role"]:
        names.discard("user_role")
    return names | set(fields.unset_fields or ())


async def update_user(
    store: Store, identity: Identity, fields: UserUpdate, who: Actor
) -> dict[str, Any]:
    async with store.transaction():
        user = await _target(store, fields)
        changing = _changing(fields, user)
        await check_user_update(identity, store, user, changing)
        values = user_values(fields, _now(), metadata=user["metadata"])
        values.update(unset_values(fields.unset_fields or ()))
        for name in ("user_email", "user_role"):
            if name not in changing:
                values.pop(name, None)
        email_changed = "user_email" in values and values["user_email"] != user["user_email"]
        if email_changed:
            await _check_email_free(store, values["user_email"], user["user_id"])
        if values:
            user = await store.users.update(user["user_id"], values, actor=who)
        if email_changed:
            await rename_in_teams(store, user["user_id"], values["user_email"], who)
    (shown,) = await users_out(store, [user])
    return shown


def make_user_update(plan: RoutePlan, runtime: Runtime) -> Handler:
    async def work(store: Store, request: Any, identity: Identity, data: Any, who: Actor) -> Any:
        shown = await update_user(store, identity, convert(data, UserUpdate), who)
        return {"user_id": shown["user_id"], "data": shown}

    return endpoint(runtime, work)


# ---------------------------------------------------------------------------- bulk update


class BulkUpdate(msgspec.Struct, kw_only=True):
    users: list[dict[str, Any]] | None = None
    all_users: bool | None = None
    user_updates: dict[str, Any] | None = None


async def _bulk_items(store: Store, identity: Identity, body: BulkUpdate) -> list[dict[str, Any]]:
    if body.all_users:
        if not identity.is_admin:
            raise denied(identity, "update all users")
        if body.user_updates is None:
            raise ValidationFailed("all_users needs user_updates.", param="$.user_updates")
        ids = sorted(row["user_id"] for row in await store.users.find())
        return [{**body.user_updates, "user_id": user_id} for user_id in ids]
    if body.users is None:
        raise ValidationFailed("Pass 'users' or 'all_users' with 'user_updates'.", param="$.users")
    if not body.users or len(body.users) > _BULK_LIMIT:
        raise ValidationFailed(
            f"users must hold 1 to {_BULK_LIMIT} entries, got {len(body.users)}.",
            param="$.users",
        )
    return body.users


async def _bulk_one(
    store: Store, identity: Identity, item: Mapping[str, Any], who: Actor
) -> dict[str, Any]:
    """One entry: its own transaction, its failure reported, not raised."""
    result: dict[str, Any] = {"user_id": item.get("user_id"), "user_email": item.get("user_email")}
    try:
        shown = await update_user(store, identity, convert(item, UserUpdate), who)
    except TianjiError as exc:
        return {**result, "success": False, "error": exc.message}
    return {**result, "user_id": shown["user_id"], "success": True, "updated_user": shown}


def make_user_bulk_update(plan: RoutePlan, runtime: Runtime) -> Handler:
    async def work(store: Store, request: Any, identity: Identity, data: Any, who: Actor) -> Any:
        items = await _bulk_items(store, identity, convert(data, BulkUpdate))
        results = [await _bulk_one(store, identity, item, who) for item in items]
        succeeded = sum(1 for r in results if r["success"])
        return {
            "results": results,
            "total_requested": len(results),
            "successful_updates": succeeded,
            "failed_updates": len(results) - succeeded,
        }

    return endpoint(runtime, work)


# ---------------------------------------------------------------------------- delete


class UserIds(msgspec.Struct, kw_only=True):
    user_ids: list[str]


def make_user_delete(plan: RoutePlan, runtime: Runtime) -> Handler:
    async def work(store: Store, request: Any, identity: Identity, data: Any, who: Actor) -> Any:
        ids = list(dict.fromkeys(convert(data, UserIds).user_ids))
        if not ids:
            raise ValidationFailed("user_ids must not be empty.", param="$.user_ids")
        async with store.transaction():
            users = await store.users.require_all(ids)  # 404 naming any missing
            for user in users:
                await check_user_manage(identity, store, user)
            for user_id in ids:
                await unlink_user(store, user_id, who)
            await store.users.delete(ids, actor=who)
        return {"deleted_users": ids, "count": len(ids)}

    return endpoint(runtime, work)


USER_OPERATIONS: Mapping[str, Any] = {
    "user_new": make_user_new,
    "user_info": make_user_info,
    "user_info_v2": make_user_info,
    "user_update": make_user_update,
    "user_bulk_update": make_user_bulk_update,
    "user_delete": make_user_delete,
    "user_list": make_user_list,
    "user_daily_activity": make_user_daily_activity,
}
