"""Team logging callbacks (management-api.md §3): add (POST /team/callback with the
id in the body, POST /team/{team_id}/callback), read (GET /team/callback?team_id=,
GET /team/{team_id}/callback), remove one (DELETE /team/{team_id}/callback/{name}),
remove all (POST /team/{team_id}/disable_logging).

Callbacks live in the team's `metadata.logging` as LiteLLM keeps them
(`[{callback_name, callback_type, callback_vars}]`), every variable sealed at
rest (tianji.store.sealed). Reads show endpoints, hosts and project names and
redact everything secret-looking (keys, secrets, headers, tokens, webhook URLs).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Literal

import msgspec
from litestar import Request

from tianji.api.admin.common import ValidationFailed, convert, endpoint
from tianji.api.admin.group_access import check_manage_team
from tianji.api.admin.team_reads import shown_team, team_id_of
from tianji.api.admin.team_rows import REDACTED
from tianji.api.runtime import Runtime
from tianji.compile.model import RoutePlan
from tianji.errors import NotFound
from tianji.guards.auth import Identity
from tianji.store import Actor, Row, Store
from tianji.store.errors import Conflict
from tianji.store.sealed import seal, sealing_key, unseal

__all__ = ["CALLBACK_OPERATIONS", "CALLBACK_VARS", "sealed_logging"]

Handler = Any

# LiteLLM's per-team callback variables, and the generic API logger's.
CALLBACK_VARS = frozenset(
    {
        "langfuse_public_key",
        "langfuse_secret",
        "langfuse_secret_key",
        "langfuse_host",
        "langfuse_prompt_version",
        "gcs_bucket_name",
        "gcs_path_service_account",
        "langsmith_api_key",
        "langsmith_project",
        "langsmith_base_url",
        "langsmith_sampling_rate",
        "langsmith_tenant_id",
        "humanloop_api_key",
        "arize_api_key",
        "arize_space_key",
        "arize_space_id",
        "posthog_api_key",
        "posthog_host",
        "braintrust_api_key",
        "braintrust_project",
        "braintrust_host",
        "slack_webhook_url",
        "lunary_public_key",
        "turn_off_message_logging",
        "generic_api_endpoint",
        "generic_api_headers",
        "generic_api_log_format",
    }
)
_SECRET_MARKERS = ("key", "secret", "headers", "token", "password", "webhook", "service_account")

CallbackType = Literal["success", "failure", "success_and_failure"]


class _CallbackEntry(msgspec.Struct, kw_only=True):
    """One callback as LiteLLM keeps it in `metadata.logging`."""

    callback_name: str
    callback_type: CallbackType = "success_and_failure"
    callback_vars: dict[str, Any] = {}


class _CallbackAdd(_CallbackEntry, kw_only=True):
    team_id: str | None = None


def _check_vars(names: Iterable[str], path: str) -> None:
    unknown = sorted(set(names) - CALLBACK_VARS)
    if unknown:
        raise ValidationFailed(
            f"Unknown callback variables {unknown}; allowed: {sorted(CALLBACK_VARS)}",
            param=f"{path}.{unknown[0]}",
        )


def sealed_logging(
    raw: Any, key: bytes, current: Sequence[Mapping[str, Any]]
) -> list[dict[str, Any]]:
    """`metadata.logging` sent to /team/new or /team/update (LiteLLM's documented way
    to set team callbacks), checked and sealed. A variable sent back as REDACTED
    (a TeamRow echoed in an update) keeps its stored value."""
    if not isinstance(raw, list):
        raise ValidationFailed("metadata.logging must be a list.", param="$.metadata.logging")
    stored = {
        (e["callback_name"], e.get("callback_type"), name): value
        for e in current
        for name, value in (e.get("callback_vars") or {}).items()
    }
    entries = []
    for i, item in enumerate(raw):
        path = f"$.metadata.logging[{i}]"
        try:
            entry = msgspec.convert(item, _CallbackEntry)
        except msgspec.ValidationError as exc:
            raise ValidationFailed(f"Invalid callback at {path}: {exc}", param=path) from None
        _check_vars(entry.callback_vars, f"{path}.callback_vars")
        sealed = {}
        for name, value in entry.callback_vars.items():
            slot = (entry.callback_name, entry.callback_type, name)
            if value == REDACTED and slot in stored:
                sealed[name] = stored[slot]
            else:
                sealed[name] = seal(value, key) if isinstance(value, str) else value
        entries.append({**msgspec.structs.asdict(entry), "callback_vars": sealed})
    return entries


def _is_secret(name: str) -> bool:
    return any(marker in name for marker in _SECRET_MARKERS)


def _entries(team: Row) -> list[dict[str, Any]]:
    logging = (team["metadata"] or {}).get("logging")
    return [dict(e) for e in logging] if isinstance(logging, list) else []


def _names(entries: Sequence[Mapping[str, Any]], kind: str) -> list[str]:
    return [
        e["callback_name"]
        for e in entries
        if e.get("callback_type", "success_and_failure") in (kind, "success_and_failure")
    ]


def _summary(team_id: str, entries: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    return {
        "team_id": team_id,
        "success_callbacks": _names(entries, "success"),
        "failure_callbacks": _names(entries, "failure"),
    }


async def _save(store: Store, team: Row, entries: list[dict[str, Any]], who: Actor) -> Row:
    metadata = {**(team["metadata"] or {}), "logging": entries}
    return await store.teams.update(team["team_id"], {"metadata": metadata}, actor=who)


async def _team(
    store: Store, request: Request[Any, Any, Any], data: Any, identity: Identity
) -> Row:
    team = await store.teams.require(team_id_of(request, data))
    check_manage_team(identity, team, "manage the callbacks")
    return team


def make_team_callback_add(plan: RoutePlan, runtime: Runtime) -> Handler:
    master_key = runtime.gateway.settings.master_key

    async def work(
        store: Store, request: Request[Any, Any, Any], identity: Identity, data: Any, who: Actor
    ) -> Any:
        body = convert(data, _CallbackAdd)
        _check_vars(body.callback_vars, "$.callback_vars")
        team = await _team(store, request, data, identity)
        entries = _entries(team)
        if any(
            e["callback_name"] == body.callback_name
            and e.get("callback_type") == body.callback_type
            for e in entries
        ):
            raise Conflict(
                f"Team {team['team_id']} already has the {body.callback_type} callback "
                f"{body.callback_name!r}.",
                param="callback_name",
            )
        key = sealing_key(master_key)
        sealed = {
            name: seal(value, key) if isinstance(value, str) else value
            for name, value in body.callback_vars.items()
        }
        entry = {
            "callback_name": body.callback_name,
            "callback_type": body.callback_type,
            "callback_vars": sealed,
        }
        updated = await _save(store, team, [*entries, entry], who)
        return {"status": "success", "data": await shown_team(store, updated)}

    return endpoint(runtime, work)


def _shown_vars(entries: Sequence[Mapping[str, Any]], key: bytes) -> dict[str, Any]:
    shown: dict[str, Any] = {}
    for entry in entries:
        for name, value in (entry.get("callback_vars") or {}).items():
            if _is_secret(name) or not isinstance(value, str):
                shown[name] = REDACTED if _is_secret(name) else value
                continue
            try:
                shown[name] = unseal(value, key)
            except ValueError:  # sealed under another salt key: unreadable, not shown
                shown[name] = REDACTED
    return shown


def make_team_callback_get(plan: RoutePlan, runtime: Runtime) -> Handler:
    master_key = runtime.gateway.settings.master_key

    async def work(
        store: Store, request: Request[Any, Any, Any], identity: Identity, data: Any, who: Actor
    ) -> Any:
        team = await _team(store, request, data, identity)
        entries = _entries(team)
        shown = _summary(team["team_id"], entries)
        shown["callback_vars"] = _shown_vars(entries, sealing_key(master_key))
        return {"status": "success", "data": shown}

    return endpoint(runtime, work, body=False)


def make_team_callback_delete(plan: RoutePlan, runtime: Runtime) -> Handler:
    async def work(
        store: Store, request: Request[Any, Any, Any], identity: Identity, data: Any, who: Actor
    ) -> Any:
        team = await _team(store, request, data, identity)
        name = request.path_params["callback_name"]
        entries = _entries(team)
        kept = [e for e in entries if e["callback_name"] != name]
        if len(kept) == len(entries):
            raise NotFound(
                f"Team {team['team_id']} has no callback {name!r}.", param="callback_name"
            )
        await _save(store, team, kept, who)
        return {
            "status": "success",
            "message": f"Callback {name} removed from team {team['team_id']}",
            "data": _summary(team["team_id"], kept),
        }

    return endpoint(runtime, work, body=False)


def make_team_disable_logging(plan: RoutePlan, runtime: Runtime) -> Handler:
    async def work(
        store: Store, request: Request[Any, Any, Any], identity: Identity, data: Any, who: Actor
    ) -> Any:
        team = await _team(store, request, data, identity)
        await _save(store, team, [], who)
        return {
            "status": "success",
            "message": f"Logging disabled for team {team['team_id']}",
            "data": _summary(team["team_id"], []),
        }

    return endpoint(runtime, work, optional=True)


CALLBACK_OPERATIONS: Mapping[str, Any] = {
    "team_callback_add": make_team_callback_add,
    "team_callback_get": make_team_callback_get,
    "team_callback_delete": make_team_callback_delete,
    "team_disable_logging": make_team_disable_logging,
}
