"""What handlers share at run time: the compiled gateway and the live clients.

Built with the app; the upstream transport and the store (database, migrations,
Postgres pool, Redis invalidation channel) are opened in the app's startup hook
(on the serving event loop) and closed on shutdown, as is the follower of the
database's models (tianji.api.admin.model_sync). `tianji check` builds the app
without starting it, so it opens nothing.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from tianji.compile.model import CompiledGateway, ModelTable
from tianji.guards import AllowAll, CallGuard
from tianji.guards.auth import Authenticator
from tianji.router import Router
from tianji.store import Store
from tianji.upstream.mock import MockTransport
from tianji.upstream.types import Transport

if TYPE_CHECKING:
    from tianji.api.admin.model_sync import ModelSync

__all__ = ["Runtime"]


@dataclass
class Runtime:
    gateway: CompiledGateway
    auth: Authenticator
    router: Router
    # Operation -> every OpenAI param of that operation (the unsupported-param rule).
    openai_params: Mapping[str, frozenset[str]]
    guard: CallGuard = field(default_factory=AllowAll)
    http: Transport | None = None
    # The database of virtual keys, users, teams...; None without a master key.
    store: Store | None = None
    # Apply pending migrations at startup (`tianji serve --no-migrate` refuses instead).
    migrate_on_start: bool = True
    mock: Transport = field(default_factory=MockTransport)
    started_at: float = field(default_factory=time.time)
    # The model table requests are routed with: the config's, swapped whole (one
    # reference assignment, atomic for the event loop) when models change at run time.
    models: ModelTable = field(init=False)
    # Merges the database's models (POST /model/new) into `models`; None without a store.
    model_sync: ModelSync | None = None

    def __post_init__(self) -> None:
        self.models = self.gateway.models

    def transport_for(self, url: str) -> Transport:
        if url.startswith("mock:"):
            return self.mock
        if self.http is None:
            raise RuntimeError("the upstream transport is not open (app not started)")
        return self.http

    async def start(self) -> None:
        from tianji.upstream import HttpTransport

        if self.store is not None and not self.store.is_open:
            await self.store.open(migrate=self.migrate_on_start)
        if self.http is None:
            self.http = HttpTransport()
        if self.model_sync is not None:
            await self.model_sync.start()

    async def stop(self) -> None:
        if self.model_sync is not None:
            await self.model_sync.stop()
        if self.http is not None:
            await self.http.aclose()
            self.http = None
        if self.store is not None and self.store.is_open:
            await self.store.close()
