"""The SQLite schema, created and migrated with sqlite-utils' recorded migrations."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from sqlite_utils import Database, Migrations

from events.errors import NotALedger, SchemaTooNew, StoreError

migrations = Migrations("partnership-ledger")


@migrations()
def m001_events(db: Database) -> None:
    """The log: one row per event; positions are the rowid; never updated, never deleted."""
    db["events"].create(  # type: ignore[union-attr]
        {
            "position": int,
            "event_id": str,
            "stream": str,
            "stream_version": int,
            "type": str,
            "schema_version": int,
            "occurred_on": str,
            "sequence": int,
            "recorded_at": str,
            "data": str,
            "source": str,
            "metadata": str,
            "data_hash": str,
            "prev_hash": str,
            "hash": str,
            "target": str,
        },
        pk="position",
        not_null={
            "event_id",
            "stream",
            "stream_version",
            "type",
            "schema_version",
            "occurred_on",
            "recorded_at",
            "data",
            "source",
            "metadata",
            "data_hash",
            "prev_hash",
            "hash",
        },
        strict=True,
    )
    events = db["events"]
    events.create_index(["event_id"], unique=True, index_name="events_event_id")  # type: ignore[union-attr]
    events.create_index(  # type: ignore[union-attr]
        ["stream", "stream_version"], unique=True, index_name="events_stream_version"
    )
    events.create_index(["target", "type"], index_name="events_target")  # type: ignore[union-attr]
    db.execute(
        "CREATE TRIGGER events_no_update BEFORE UPDATE ON events "
        "BEGIN SELECT RAISE(ABORT, 'the log is append-only'); END"
    )
    db.execute(
        "CREATE TRIGGER events_no_delete BEFORE DELETE ON events "
        "BEGIN SELECT RAISE(ABORT, 'the log is append-only'); END"
    )


@migrations()
def m002_partial_target_index(db: Database) -> None:
    """Index only rows with a target (corrections, retractions).

    A write of any other event then touches one index fewer; the retraction lookup
    (`target = ?`) still uses it.
    """
    db.execute("DROP INDEX events_target")
    db.execute("CREATE INDEX events_target ON events (target, type) WHERE target IS NOT NULL")


KNOWN = frozenset(m.name for m in migrations._migrations)  # noqa: SLF001 - the set's own list


def apply_locked(conn: sqlite3.Connection, pending: Migrations) -> None:
    """Apply a set's pending migrations, holding the write lock from the check to the last.

    Nothing pending (the usual open): no lock is taken. Otherwise the pending list is read
    again inside `BEGIN IMMEDIATE`, so two processes opening an older file at once do not
    both run a migration (the second would find its table already there); sqlite-utils
    nests each migration in a savepoint of this transaction. `conn` is in autocommit mode.
    """
    db = Database(conn)
    if db["_sqlite_migrations"].exists() and not pending.pending(db):
        return
    conn.execute("BEGIN IMMEDIATE")
    try:
        pending.apply(db)
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


def unopenable(path: Path, exc: sqlite3.Error) -> StoreError:
    """The error of a file SQLite could not open or write (a read-only file system, say)."""
    return StoreError(
        f"cannot open {path} for writing ({exc}); a ledger writes its file and, for the WAL,"
        " files beside it in the same directory"
    )


def check_file(conn: sqlite3.Connection, path: Path) -> bool:
    """Refuse a file that is not a ledger (nor empty), or has a newer schema; change nothing.

    Run before anything writes to the file (even `PRAGMA journal_mode = WAL`, which rewrites
    its header), so that another application's database is left exactly as it was. True for
    a ledger, False for an empty file or database (no table yet): one a ledger can be made in.
    """
    try:
        tables = {
            row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")
        }
    except sqlite3.OperationalError as exc:  # not "not a database": a file it cannot open
        raise unopenable(path, exc) from None
    except sqlite3.DatabaseError as exc:
        msg = f"{path} is not a ledger database ({exc})"
        raise NotALedger(msg) from None
    db = Database(conn)
    if tables:
        if "_sqlite_migrations" not in tables:
            msg = f"{path} is a SQLite database but not a ledger (no recorded migrations)"
            raise NotALedger(msg)
        if not migrations.applied(db):
            msg = f"{path} is a SQLite database but not a ledger"
            raise NotALedger(msg)
        refuse_newer(db, migrations, KNOWN, path)
    return bool(tables)


def refuse_newer(db: Database, applied_set: Migrations, known: frozenset[str], path: Path) -> None:
    """`SchemaTooNew` if `applied_set` has migrations recorded in `db` that are not `known`."""
    if not db["_sqlite_migrations"].exists():
        return
    unknown = {m.name for m in applied_set.applied(db)} - known
    if unknown:
        names = ", ".join(sorted(unknown))
        msg = f"{path} has a newer schema than this code knows (migrations {names})"
        raise SchemaTooNew(msg)


def prepare(conn: sqlite3.Connection, path: Path) -> None:
    """Check that the file is a ledger (or empty), refuse a newer schema, apply migrations."""
    check_file(conn, path)
    apply_locked(conn, migrations)
