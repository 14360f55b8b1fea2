"""Piccolo's configuration module (`PICCOLO_CONF=tianji.store.piccolo_conf`).

Piccolo's migration manager finds its engine here, so `tianji.store.engine.bind`
replaces `DB` with the engine chosen from `general_settings.database_url` before
any migration runs. The default below is only for Piccolo's own CLI.
"""

from __future__ import annotations

from piccolo.conf.apps import AppRegistry
from piccolo.engine.base import Engine
from piccolo.engine.sqlite import SQLiteEngine

__all__ = ["APP_REGISTRY", "DB"]

DB: Engine = SQLiteEngine(path="tianji.db")  # type: ignore[type-arg]

APP_REGISTRY = AppRegistry(apps=["tianji.store.piccolo_app"])
