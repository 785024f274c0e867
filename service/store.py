"""Opening the configured event log backend."""

from __future__ import annotations

from pathlib import Path

from events.errors import StoreError
from events.log import EventLog
from events.sqlite import SQLiteEventLog
from service.settings import Settings


def open_log(settings: Settings, *, must_exist: bool = False) -> EventLog:
    """The event log the settings name; `must_exist` refuses to create a new SQLite file."""
    if settings.is_postgres:
        msg = "the PostgreSQL backend is not part of this build yet; use a SQLite path"
        raise StoreError(msg)
    path = Path(settings.database)
    if must_exist and not path.exists():
        msg = (
            f"LEDGER_DATABASE (--database): no ledger at {path}"
            " (create one with `ledger seed` or `ledger append`)"
        )
        raise StoreError(msg)
    # an empty file or database is no ledger either: a command that only reads (must_exist)
    # does not make it one (SQLiteEventLog refuses before it writes anything)
    return SQLiteEventLog(path, synchronous=settings.synchronous, create=not must_exist)


_SQLITE_HEADER = b"SQLite format 3\x00"


def is_sqlite(path: Path) -> bool:
    """Whether the file at `path` is a SQLite database (by its 16-byte header)."""
    try:
        with path.open("rb") as file:
            return file.read(len(_SQLITE_HEADER)) == _SQLITE_HEADER
    except OSError:
        return False
