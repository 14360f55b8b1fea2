"""The users named by a member entry (`{"user_id"|"user_email", "role"}`) of the
team and organization membership routes.

LiteLLM creates unknown users on the spot (management-api.md §3, §4): a user id
that does not exist becomes a new user with that id; an email that matches no
user (case-insensitively) becomes a new user with a fresh id and that email.
Call inside the membership's transaction, so a failed add creates nobody.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

from tianji.api.admin.common import ValidationFailed
from tianji.api.admin.user_rows import users_out
from tianji.errors import NotFound
from tianji.store import Actor, Row, Store
from tianji.store.people import users_by_email

__all__ = ["member_user_id", "resolve_user", "users_shown"]


async def member_user_id(store: Store, user_id: str | None, user_email: str | None) -> str:
    """The existing user a removal or update names, by id or by email (404 if none)."""
    if user_id:
        return user_id
    if user_email:
        found = await users_by_email(store, user_email)
        if not found:
            raise NotFound(f"No user with email {user_email}.", param="user_email")
        return str(found[0]["user_id"])
    raise ValidationFailed("Pass user_id or user_email.", param="$.user_id")


async def resolve_user(
    store: Store,
    user_id: str | None,
    user_email: str | None,
    *,
    new_role: str,
    actor: Actor,
    param: str = "$.member",
) -> Row:
    """The user with this id (else this email), created when unknown; 422 with neither."""
    if user_id:
        found = await store.users.get(user_id)
        if found is not None:
            return found
        row = {"user_id": user_id, "user_email": user_email, "user_role": new_role}
    elif user_email:
        matches = await users_by_email(store, user_email)
        if matches:
            return matches[0]
        row = {"user_id": str(uuid.uuid4()), "user_email": user_email, "user_role": new_role}
    else:
        raise ValidationFailed(
            "A member needs a user_id or a user_email.", param=f"{param}.user_id"
        )
    created = {**row, "created_by": actor.changed_by, "updated_by": actor.changed_by}
    return await store.users.insert(created, actor=actor)


async def users_shown(store: Store, user_ids: Sequence[str]) -> list[dict[str, Any]]:
    """Current UserRows of these users, in this order."""
    ids = list(dict.fromkeys(user_ids))
    rows = {row["user_id"]: row for row in await store.users.get_many(ids)}
    return await users_out(store, [rows[i] for i in ids if i in rows])
