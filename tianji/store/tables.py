"""The data model (management-api.md §12) as Piccolo tables.

Money is integer nano-USD (1 USD = 10**9) in every `spend`/`*_budget` column:
Piccolo's `SET x = x + $1` works only on integer columns, and floats would drift.
Lists are `Array(Text())` (a Postgres array; JSON text on SQLite) and objects
`JSONB` (JSON text on SQLite); read them with `.output(load_json=True)`.

Piccolo has single-column primary keys only, so memberships and the daily
rollup have a surrogate `id`; their identity (e.g. `(user_id, organization_id)`)
is a unique index created by a raw migration (migrations/*_indexes.py), which
works on SQLite and Postgres alike. `budget_id` references are RESTRICT: a
budget in use cannot be deleted; memberships CASCADE with their user/team/org.
"""

from __future__ import annotations

from typing import Any

from piccolo.columns import (
    JSONB,
    UUID,
    Array,
    BigInt,
    BigSerial,
    Boolean,
    ForeignKey,
    Integer,
    OnDelete,
    Text,
    Timestamptz,
    Varchar,
)
from piccolo.columns.defaults.timestamptz import TimestamptzNow
from piccolo.table import Table

__all__ = [
    "ALL_TABLES",
    "AuditLog",
    "Budget",
    "DailySpend",
    "DeletedVirtualKey",
    "DeprecatedKey",
    "EndUser",
    "ManagedObject",
    "Organization",
    "OrganizationMembership",
    "ProxyModel",
    "SpendLog",
    "Tag",
    "Team",
    "TeamMembership",
    "User",
    "VirtualKey",
]


def _nullable_nano() -> BigInt:
    return BigInt(null=True, default=None)


def _list() -> Array:
    return Array(base_column=Text(), default=list)


def _object() -> JSONB:
    return JSONB(default={})


def _when() -> Timestamptz:
    return Timestamptz(null=True, default=None)


class Stamped:
    """created_at / updated_at on every table."""

    created_at = Timestamptz(default=TimestamptzNow())
    updated_at = Timestamptz(default=TimestamptzNow())


class AdminWritten(Stamped):
    """Who created or last changed an admin-written row."""

    created_by = Text(null=True, default=None)
    updated_by = Text(null=True, default=None)


class Limits:
    """Budget and rate-limit columns shared by keys, users and teams."""

    max_budget = _nullable_nano()
    soft_budget = _nullable_nano()
    spend = BigInt(default=0)
    model_spend = _object()
    model_max_budget = _object()
    max_parallel_requests = Integer(null=True, default=None)
    tpm_limit = BigInt(null=True, default=None)
    rpm_limit = BigInt(null=True, default=None)
    budget_duration = Varchar(length=16, null=True, default=None)
    budget_reset_at = _when()


class Budget(AdminWritten, Table, tablename="budgets"):
    budget_id = Varchar(length=64, primary_key=True)
    max_budget = _nullable_nano()
    soft_budget = _nullable_nano()
    max_parallel_requests = Integer(null=True, default=None)
    tpm_limit = BigInt(null=True, default=None)
    rpm_limit = BigInt(null=True, default=None)
    model_max_budget = _object()
    budget_duration = Varchar(length=16, null=True, default=None)
    budget_reset_at = _when()
    allowed_models = _list()


class KeyColumns(Limits, AdminWritten):
    """Every column of a virtual key except `token` and `budget_id`
    (the deleted-keys copy keeps those without constraints)."""

    key_name = Varchar(length=32)
    key_alias = Text(null=True, default=None)
    expires = _when()
    models = _list()
    aliases = _object()
    config = _object()
    permissions = _object()
    metadata = _object()
    user_id = Text(null=True, default=None, index=True)
    team_id = Text(null=True, default=None, index=True)
    organization_id = Text(null=True, default=None)
    key_type = Varchar(length=16, default="default")
    blocked = Boolean(default=False)
    allowed_cache_controls = _list()
    allowed_routes = _list()
    allowed_passthrough_routes = _list()
    soft_budget_cooldown = Boolean(default=False)
    last_active = _when()


class VirtualKey(KeyColumns, Table, tablename="virtual_keys"):
    # sha256 hex of the plaintext; the plaintext is never stored.
    token = Varchar(length=64, primary_key=True)
    key_alias = Text(null=True, default=None, unique=True)
    budget_id = ForeignKey(Budget, null=True, default=None, on_delete=OnDelete.restrict)


class DeletedVirtualKey(KeyColumns, Table, tablename="deleted_virtual_keys"):
    id = UUID(primary_key=True)
    token = Varchar(length=64, index=True)
    budget_id = Varchar(length=64, null=True, default=None)
    deleted_at = Timestamptz(default=TimestamptzNow())
    deleted_by = Text(null=True, default=None)
    deleted_by_api_key = Varchar(length=64, null=True, default=None)


class DeprecatedKey(Stamped, Table, tablename="deprecated_keys"):
    """An old key hash still accepted until `revoke_at` (regenerate with a grace period)."""

    token = Varchar(length=64, primary_key=True)
    active_token_id = Varchar(length=64, index=True)
    revoke_at = Timestamptz()


class User(Limits, AdminWritten, Table, tablename="users"):
    user_id = Text(primary_key=True)
    user_alias = Text(null=True, default=None)
    # Unique case-insensitively: raw index on lower(user_email).
    user_email = Text(null=True, default=None)
    user_role = Varchar(length=32, default="internal_user")
    teams = _list()
    models = _list()
    metadata = _object()
    allowed_cache_controls = _list()
    blocked = Boolean(default=False)
    sso_user_id = Text(null=True, default=None, unique=True)


class Organization(AdminWritten, Table, tablename="organizations"):
    organization_id = Text(primary_key=True)
    organization_alias = Text()
    budget_id = ForeignKey(Budget, on_delete=OnDelete.restrict)
    metadata = _object()
    models = _list()
    spend = BigInt(default=0)
    model_spend = _object()
    # Not in LiteLLM's schema: lets an operator stop a whole organization at once.
    blocked = Boolean(default=False)


class Team(Limits, AdminWritten, Table, tablename="teams"):
    team_id = Text(primary_key=True)
    team_alias = Text(null=True, default=None)
    organization_id = ForeignKey(
        Organization, null=True, default=None, on_delete=OnDelete.restrict, index=True
    )
    # LiteLLM's view [{user_id, user_email, role}], kept in step with team_memberships.
    members_with_roles = JSONB(default=[])
    metadata = _object()
    models = _list()
    model_aliases = _object()
    blocked = Boolean(default=False)
    team_member_budget_id = ForeignKey(Budget, null=True, default=None, on_delete=OnDelete.restrict)


class TeamMembership(Stamped, Table, tablename="team_memberships"):
    """Unique (user_id, team_id) by raw index. `role` mirrors members_with_roles so
    "teams this user administers" is an indexed query, not a JSON scan."""

    id = BigSerial(primary_key=True)
    user_id = ForeignKey(User, on_delete=OnDelete.cascade)
    team_id = ForeignKey(Team, on_delete=OnDelete.cascade, index=True)
    role = Varchar(length=16, default="user")
    spend = BigInt(default=0)
    budget_id = ForeignKey(Budget, null=True, default=None, on_delete=OnDelete.restrict)


class OrganizationMembership(Stamped, Table, tablename="organization_memberships"):
    """Unique (user_id, organization_id) by raw index."""

    id = BigSerial(primary_key=True)
    user_id = ForeignKey(User, on_delete=OnDelete.cascade)
    organization_id = ForeignKey(Organization, on_delete=OnDelete.cascade, index=True)
    user_role = Varchar(length=32, default="internal_user")
    spend = BigInt(default=0)
    budget_id = ForeignKey(Budget, null=True, default=None, on_delete=OnDelete.restrict)


class EndUser(Stamped, Table, tablename="end_users"):
    user_id = Text(primary_key=True)
    alias = Text(null=True, default=None)
    spend = BigInt(default=0)
    allowed_model_region = Varchar(length=4, null=True, default=None)
    default_model = Text(null=True, default=None)
    budget_id = ForeignKey(Budget, null=True, default=None, on_delete=OnDelete.restrict)
    blocked = Boolean(default=False)
    metadata = _object()


class Tag(AdminWritten, Table, tablename="tags"):
    tag_name = Text(primary_key=True)
    description = Text(null=True, default=None)
    models = _list()
    model_info = _object()
    spend = BigInt(default=0)
    budget_id = ForeignKey(Budget, null=True, default=None, on_delete=OnDelete.restrict)


class SpendLog(Table, tablename="spend_logs"):
    request_id = Varchar(length=64, primary_key=True)
    call_type = Varchar(length=32)
    # The caller's key hash ("master_key" for the master key); never a provider key.
    api_key = Varchar(length=64, index=True)
    spend = BigInt(default=0)
    prompt_tokens = Integer(default=0)
    completion_tokens = Integer(default=0)
    total_tokens = Integer(default=0)
    cache_read_input_tokens = Integer(default=0)
    cache_creation_input_tokens = Integer(default=0)
    reasoning_tokens = Integer(default=0)
    start_time = Timestamptz(index=True)
    end_time = Timestamptz()
    completion_start_time = _when()
    request_duration_ms = Integer(default=0)
    model = Text(default="")
    model_id = Text(default="")
    model_group = Text(default="")
    custom_llm_provider = Text(default="")
    api_base = Text(default="")
    user_id = Text(null=True, default=None)
    team_id = Text(null=True, default=None, index=True)
    organization_id = Text(null=True, default=None)
    end_user = Text(null=True, default=None, index=True)
    request_tags = JSONB(default=[])
    metadata = _object()
    cache_hit = Boolean(default=False)
    cache_key = Text(null=True, default=None)
    requester_ip_address = Text(null=True, default=None)
    session_id = Text(null=True, default=None, index=True)
    status = Varchar(length=8, default="success")
    error_type = Text(null=True, default=None)
    error_message = Text(null=True, default=None)
    messages = JSONB(null=True, default=None)
    response = JSONB(null=True, default=None)


class DailySpend(Stamped, Table, tablename="daily_spend"):
    """One row per (entity, date, key, model, provider, endpoint): the upsert-increment
    target is a raw unique index over those columns, so they are NOT NULL ("" = none)."""

    id = BigSerial(primary_key=True)
    entity_type = Varchar(length=16)
    entity_id = Text()
    date = Varchar(length=10)
    api_key = Varchar(length=64, default="")
    model = Text(default="")
    model_group = Text(default="")
    custom_llm_provider = Text(default="")
    endpoint = Text(default="")
    prompt_tokens = BigInt(default=0)
    completion_tokens = BigInt(default=0)
    cache_read_input_tokens = BigInt(default=0)
    cache_creation_input_tokens = BigInt(default=0)
    spend = BigInt(default=0)
    api_requests = BigInt(default=0)
    successful_requests = BigInt(default=0)
    failed_requests = BigInt(default=0)


class ProxyModel(AdminWritten, Table, tablename="proxy_models"):
    model_id = Varchar(length=64, primary_key=True)
    model_name = Text(index=True)
    # Credentials inside are encrypted at rest by the model endpoints.
    litellm_params = _object()
    model_info = _object()
    team_id = Text(null=True, default=None)


class ManagedObject(Stamped, Table, tablename="managed_objects"):
    """Who created a forwarded object (file, batch, response, ...): ownership checks."""

    object_id = Text(primary_key=True)
    object_type = Varchar(length=16)
    api_key = Varchar(length=64)
    user_id = Text(null=True, default=None)
    team_id = Text(null=True, default=None)
    model_id = Text(default="")


class AuditLog(Table, tablename="audit_log"):
    id = UUID(primary_key=True)
    updated_at = Timestamptz(default=TimestamptzNow(), index=True)
    changed_by = Text()
    changed_by_api_key = Varchar(length=64, default="")
    action = Varchar(length=16)
    table_name = Varchar(length=32)
    object_id = Text()
    before_value = JSONB(null=True, default=None)
    updated_values = JSONB(null=True, default=None)


# Creation order (referenced tables first); also the order of the auto migration.
ALL_TABLES: tuple[type[Table], ...] = (
    Budget,
    VirtualKey,
    DeletedVirtualKey,
    DeprecatedKey,
    User,
    Organization,
    Team,
    TeamMembership,
    OrganizationMembership,
    EndUser,
    Tag,
    SpendLog,
    DailySpend,
    ProxyModel,
    ManagedObject,
    AuditLog,
)


def table_named(name: str) -> type[Table]:
    for table in ALL_TABLES:
        if table._meta.tablename == name:
            return table
    raise KeyError(name)


def primary_key(table: type[Table]) -> Any:
    return table._meta.primary_key
