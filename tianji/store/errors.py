"""Store errors as tianji errors (so the app answers them with the OpenAI envelope),
and the one place that reads database-driver exceptions.

    Conflict     409 conflict          duplicate id / alias / membership, object still in use
    NotFound     404 not_found_error   a referenced row is absent (tianji.errors.NotFound)
    Unavailable  503 no_db_connection  database unreachable, locked past the timeout, not migrated
"""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from tianji.errors import NotFound, TianjiError

__all__ = ["Conflict", "NotFound", "Unavailable", "translating_db_errors"]


class Conflict(TianjiError):
    status = 409
    type = "conflict"


class Unavailable(TianjiError):
    status = 503
    type = "no_db_connection"


def _postgres_error(exc: BaseException) -> TianjiError | None:
    try:
        import asyncpg  # type: ignore[import-untyped]
    except ImportError:  # pragma: no cover - asyncpg is a dependency
        return None
    if isinstance(exc, asyncpg.UniqueViolationError):
        return Conflict(f"Already exists: {exc.detail or exc}")
    if isinstance(exc, asyncpg.ForeignKeyViolationError):
        detail = str(exc.detail or exc)
        if "is not present" in detail:
            return NotFound(f"Referenced object not found: {detail}")
        return Conflict(f"Still referenced: {detail}")
    if isinstance(exc, asyncpg.UndefinedTableError):
        return Unavailable("The database schema is not migrated: run `tianji migrate`.")
    if isinstance(
        exc,
        asyncpg.PostgresConnectionError
        | asyncpg.InterfaceError
        | asyncpg.CannotConnectNowError
        | asyncpg.TooManyConnectionsError,
    ):
        return Unavailable(f"Database unavailable: {type(exc).__name__}")
    return None


def _sqlite_error(exc: BaseException) -> TianjiError | None:
    if isinstance(exc, sqlite3.IntegrityError):
        text = str(exc)
        if text.startswith("UNIQUE"):
            return Conflict(f"Already exists ({text}).")
        if text.startswith("FOREIGN KEY"):
            # SQLite does not say which side failed; repositories check references
            # first, so what is left is a delete of a row still referenced.
            return Conflict("Still referenced by another object.")
        return Conflict(text)
    if isinstance(exc, sqlite3.OperationalError):
        text = str(exc)
        if text.startswith("no such table"):
            return Unavailable("The database schema is not migrated: run `tianji migrate`.")
        return Unavailable(f"Database unavailable: {text}")
    return None


def translate(exc: BaseException) -> TianjiError | None:
    """The tianji error for a driver exception, or None when it is not a database error."""
    if isinstance(exc, TianjiError):
        return None
    found = _sqlite_error(exc) or _postgres_error(exc)
    if found is None and isinstance(exc, OSError | TimeoutError):
        found = Unavailable(f"Database unavailable: {type(exc).__name__}")
    return found


@asynccontextmanager
async def translating_db_errors() -> AsyncIterator[None]:
    try:
        yield
    except Exception as exc:
        mapped = translate(exc)
        if mapped is None:
            raise
        raise mapped from exc
