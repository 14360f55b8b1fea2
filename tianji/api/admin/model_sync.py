"""Database models, live: the runtime's model table = config deployments + the
deployments stored by POST /model/new, rebuilt without a restart.

`ModelSync.refresh()` reads every stored model, plans each like a config entry
(tianji.compile.models) and swaps `runtime.models` (and the model-access guard,
which knows the groups' access groups) in one step. It runs:

- at startup, before the first request;
- after each write on this instance (the model endpoints await it, so the next
  request already routes to the new deployment);
- when the store's change bus announces a model change: at once on every
  instance when `redis_url` is set;
- every `proxy_config_reload_interval_seconds` otherwise (a write made on another
  instance without Redis, or by hand in the database).

A stored row that no longer plans (an environment variable gone, a salt key
changed) is left out of the table with a warning; it never breaks routing.
Refreshes are serialised and skipped when the rows have not changed.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

import msgspec

from tianji.api.admin.common import BadRequest, ValidationFailed, convert
from tianji.api.admin.model_rows import resolve_env, transform_secrets
from tianji.api.runtime import Runtime
from tianji.compile.model import Deployment, ModelTable
from tianji.compile.models import assemble_table, plan_deployment
from tianji.errors import TianjiError
from tianji.guards.keys import ModelAccessGuard
from tianji.spec.config import ConfigSpec, ModelEntry
from tianji.store import Change, Row, Store
from tianji.store.sealed import sealing_key, unseal

__all__ = ["ModelSync"]

log = logging.getLogger("tianji.models")

_CHANGES = ("model", "*")


class ModelSync:
    def __init__(
        self,
        runtime: Runtime,
        *,
        config: ConfigSpec,
        env: Mapping[str, str],
        interval: float,
    ) -> None:
        self._runtime = runtime
        self._config = config
        self._env = env
        self.interval = interval
        self._config_table = runtime.gateway.models
        # Deployment ids of the config file: read-only through the API.
        self.config_ids = frozenset(
            d.id for group in self._config_table.groups.values() for d in group.deployments
        )
        # model_id -> stored row, as of the last refresh (for /model/info).
        self.rows: Mapping[str, Row] = MappingProxyType({})
        self._fingerprint: bytes | None = None
        self._key: bytes | None = None
        self._lock = asyncio.Lock()
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._subscribed = False

    @property
    def store(self) -> Store:
        store = self._runtime.store
        assert store is not None, "database models need the store"
        return store

    @property
    def key(self) -> bytes:
        """The key credentials are sealed with (TIANJI_SALT_KEY, ..., the master key)."""
        if self._key is None:
            self._key = sealing_key(self._runtime.gateway.settings.master_key)
        return self._key

    # ------------------------------------------------------------------ planning

    def plan(
        self,
        model_id: str,
        model_name: str,
        params: Mapping[str, Any],
        model_info: Mapping[str, Any],
    ) -> Deployment:
        """The deployment of plain (unsealed) params, with the startup checks:
        422 for a type error or an unknown field (with its JSON path), 400 for an
        unknown provider, no base URL, a missing credential or env variable."""
        if not model_name.strip():
            raise ValidationFailed("model_name must not be empty.", param="$.model_name")
        body = {
            "model_name": model_name,
            "litellm_params": resolve_env(params, self._env),
            "model_info": {**model_info, "id": model_id},
        }
        entry = convert(body, ModelEntry)
        deployment, problems = plan_deployment(
            entry, self._config, self._runtime.gateway.providers, env=self._env
        )
        if deployment is None:
            errors = [p for p in problems if p.severity == "error"]
            message = "; ".join(f"{p.path}: {p.message}" for p in errors)
            raise BadRequest(message or "invalid model", param=errors[0].path if errors else None)
        return deployment

    def _deployment_of(self, row: Row) -> Deployment | None:
        try:
            params = transform_secrets(row["litellm_params"] or {}, lambda v: unseal(v, self.key))
            return self.plan(row["model_id"], row["model_name"], params, row["model_info"] or {})
        except (TianjiError, ValueError) as exc:
            message = exc.message if isinstance(exc, TianjiError) else str(exc)
            log.warning("stored model %s left out of routing: %s", row["model_id"], message)
            return None

    # ------------------------------------------------------------------ the table

    async def refresh(self) -> bool:
        """Read the stored models and install the table they make with the config's;
        False when nothing changed since the last refresh."""
        async with self._lock:
            rows = sorted(await self.store.models.find(), key=lambda r: str(r["model_id"]))
            fingerprint = hashlib.sha256(msgspec.json.encode(rows, order="sorted")).digest()
            if fingerprint == self._fingerprint:
                return False
            stored = []
            for row in rows:
                if row["model_id"] in self.config_ids:
                    log.warning("stored model %s has a config deployment's id", row["model_id"])
                    continue
                deployment = self._deployment_of(row)
                if deployment is not None:
                    stored.append(deployment)
            configured = [d for g in self._config_table.groups.values() for d in g.deployments]
            self._install(assemble_table(self._config, [*configured, *stored]))
            self.rows = MappingProxyType({row["model_id"]: row for row in rows})
            self._fingerprint = fingerprint
            return True

    async def refresh_after_write(self) -> None:
        """After a committed write: this instance routes with it before answering.
        A failed read is retried by the background task rather than failing a
        request whose write is already committed."""
        try:
            await self.refresh()
        except TianjiError as exc:
            log.warning("model table not refreshed after a write: %s", exc.message)
            self._wake.set()

    def _install(self, table: ModelTable) -> None:
        # Plain assignments, no await between them: a request sees the old table
        # and guard or the new ones.
        runtime = self._runtime
        runtime.models = table
        if isinstance(runtime.guard, ModelAccessGuard):
            runtime.guard = ModelAccessGuard(table)

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        """Load the stored models (before serving), then follow changes."""
        if not self._subscribed:
            self.store.bus.subscribe(self._on_change)
            self._subscribed = True
        await self.refresh()
        if self._task is None:
            self._task = asyncio.create_task(self._follow(), name="tianji-model-reload")

    def _on_change(self, change: Change) -> None:
        if change.kind in _CHANGES:
            self._wake.set()

    async def _follow(self) -> None:
        timeout = self.interval if self.interval > 0 else None
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout)
            self._wake.clear()
            try:
                await self.refresh()
            except Exception as exc:  # the database is down: keep routing with what we have
                log.warning("could not reload the stored models: %s", exc)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
