"""The audit log: one row per management write, inside the write's transaction.

Values are stored as JSON with key-like fields masked (a key hash, a custom
key, provider credentials): the audit log is read by admin viewers, who must
not learn a secret from it.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any

from piccolo.table import Table

from tianji.store.repo import Actor, Repository
from tianji.store.tables import AuditLog

if TYPE_CHECKING:
    from tianji.store.store import Store

__all__ = ["MASK", "AuditRepository", "masked"]

MASK = "***"

_SECRET_MARKERS = ("secret", "password", "credential")


def _is_secret(name: str) -> bool:
    lowered = name.lower()
    if lowered == "key" or lowered.endswith(("_key", "-key")):
        return not lowered.startswith("cache_")
    if lowered == "token" or lowered.endswith("_token"):
        return True
    return any(marker in lowered for marker in _SECRET_MARKERS)


def masked(value: Any) -> Any:
    """JSON-safe copy of `value` with secret-looking fields replaced by MASK."""
    if isinstance(value, Mapping):
        return {
            str(k): (MASK if _is_secret(str(k)) and v is not None else masked(v))
            for k, v in value.items()
        }
    if isinstance(value, list | tuple):
        return [masked(v) for v in value]
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, uuid.UUID):
        return str(value)
    return value


class AuditRepository(Repository):
    def __init__(self, store: Store) -> None:
        super().__init__(store, AuditLog, kind="audit", label="audit entry")

    async def record(
        self,
        actor: Actor,
        action: str,
        table: type[Table],
        object_id: Any,
        before: Mapping[str, Any] | None,
        updated: Mapping[str, Any] | None,
    ) -> None:
        entry = AuditLog(
            id=uuid.uuid4(),
            changed_by=actor.changed_by,
            changed_by_api_key=actor.api_key,
            action=action,
            table_name=table._meta.tablename,
            object_id=str(object_id),
            before_value=masked(before) if before is not None else None,
            updated_values=masked(updated) if updated is not None else None,
        )
        await self.store.run(AuditLog.insert(entry))
