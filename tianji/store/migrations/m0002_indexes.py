"""Composite and expression indexes Piccolo cannot declare portably.

Piccolo has single-column primary keys, and `constraints.Unique([a, b])` fails
on SQLite (it emits `ALTER TABLE ... ADD CONSTRAINT`). `CREATE UNIQUE INDEX`
works on SQLite and Postgres alike, and is what makes the identity of a
membership (and the daily-rollup upsert target) a database guarantee.
"""

from __future__ import annotations

from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.engine import engine_finder

ID = "2026-11-26T08:00:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "composite unique and expression indexes"

# (name, statement) in creation order.
INDEXES = (
    (
        "team_memberships_user_team_key",
        "CREATE UNIQUE INDEX team_memberships_user_team_key ON team_memberships (user_id, team_id)",
    ),
    (
        "organization_memberships_user_org_key",
        "CREATE UNIQUE INDEX organization_memberships_user_org_key "
        "ON organization_memberships (user_id, organization_id)",
    ),
    (
        "users_email_lower_key",
        "CREATE UNIQUE INDEX users_email_lower_key ON users (lower(user_email))",
    ),
    (
        "virtual_keys_user_team_idx",
        "CREATE INDEX virtual_keys_user_team_idx ON virtual_keys (user_id, team_id)",
    ),
    (
        "virtual_keys_reset_expires_idx",
        "CREATE INDEX virtual_keys_reset_expires_idx ON virtual_keys (budget_reset_at, expires)",
    ),
    (
        "spend_logs_start_request_idx",
        "CREATE INDEX spend_logs_start_request_idx ON spend_logs (start_time, request_id)",
    ),
    (
        "daily_spend_upsert_key",
        "CREATE UNIQUE INDEX daily_spend_upsert_key ON daily_spend "
        "(entity_type, entity_id, date, api_key, model, custom_llm_provider, endpoint)",
    ),
    (
        "daily_spend_type_date_idx",
        "CREATE INDEX daily_spend_type_date_idx ON daily_spend (entity_type, date)",
    ),
    (
        "audit_log_object_idx",
        "CREATE INDEX audit_log_object_idx ON audit_log (table_name, object_id)",
    ),
)


async def _create() -> None:
    engine = engine_finder()
    assert engine is not None
    for _, statement in INDEXES:
        await engine.run_ddl(statement)


async def _drop() -> None:
    engine = engine_finder()
    assert engine is not None
    for name, _ in reversed(INDEXES):
        await engine.run_ddl(f"DROP INDEX IF EXISTS {name}")


async def forwards() -> MigrationManager:
    manager = MigrationManager(migration_id=ID, app_name="tianji", description=DESCRIPTION)
    manager.add_raw(_create)
    manager.add_raw_backwards(_drop)
    return manager
