"""The Piccolo app of tianji's store: its tables and migrations folder.

Used by Piccolo's migration machinery (and its CLI, to generate a migration:
`PICCOLO_CONF=tianji.store.piccolo_conf piccolo migrations new tianji --auto`).
"""

from __future__ import annotations

from pathlib import Path

from piccolo.conf.apps import AppConfig

from tianji.store.tables import ALL_TABLES

__all__ = ["APP_CONFIG", "APP_NAME"]

APP_NAME = "tianji"

APP_CONFIG = AppConfig(
    app_name=APP_NAME,
    migrations_folder_path=str(Path(__file__).parent / "migrations"),
    table_classes=list(ALL_TABLES),
    migration_dependencies=[],
    commands=[],
)
