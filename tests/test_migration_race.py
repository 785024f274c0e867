"""Migrations of an older ledger file, applied once when several processes open it at once.

An old file here is one whose token table predates `m002_token_revision`; the processes
are real ones (spawned), each opening the token store and the event log, as a server and
a `ledger token …` command started together right after an upgrade would.
"""

from __future__ import annotations

import multiprocessing
import sqlite3
from pathlib import Path

import pytest
from sqlite_utils import Database

from events.errors import StoreError
from events.sqlite import SQLiteEventLog
from service.tokens import REVISION_TRIGGERS, TokenStore, migrations

OPENERS = 4
ROUNDS = 5


def _old_ledger(path: Path) -> None:
    """A ledger whose token table has only its first migration, with one token in it."""
    SQLiteEventLog(path).close()
    conn = sqlite3.connect(path, isolation_level=None)
    migrations.apply(Database(conn), stop_before="m002_token_revision")
    conn.execute(
        "INSERT INTO tokens (token_id, subject, scopes, token_hash, created_at) "
        "VALUES ('t1', 'old', 'append', 'h', '2026-01-01T00:00:00.000000Z')"
    )
    conn.close()


def _open(path: str, barrier: object, results: object) -> None:
    barrier.wait()  # type: ignore[attr-defined]
    try:
        SQLiteEventLog(path).close()
        TokenStore(path).close()
    except Exception as exc:  # noqa: BLE001 - reported to the test
        results.put(f"{type(exc).__name__}: {exc}")  # type: ignore[attr-defined]
    else:
        results.put("ok")  # type: ignore[attr-defined]


@pytest.mark.slow
def test_processes_opening_an_old_ledger_at_once_all_open_it(tmp_path: Path) -> None:
    ctx = multiprocessing.get_context("spawn")
    for round_no in range(ROUNDS):
        path = tmp_path / f"old-{round_no}.db"
        _old_ledger(path)
        barrier, results = ctx.Barrier(OPENERS), ctx.Queue()
        workers = [
            ctx.Process(target=_open, args=(str(path), barrier, results)) for _ in range(OPENERS)
        ]
        for worker in workers:
            worker.start()
        outcomes = [results.get(timeout=60) for _ in workers]
        for worker in workers:
            worker.join(timeout=60)
        assert outcomes == ["ok"] * OPENERS
        conn = sqlite3.connect(path)
        assert conn.execute("SELECT count(*) FROM token_revision").fetchone() == (1,)
        applied = [
            row[0]
            for row in conn.execute(
                "SELECT name FROM _sqlite_migrations WHERE migration_set = ?", (migrations.name,)
            )
        ]
        assert applied.count("m002_token_revision") == 1
        conn.close()


def test_an_old_token_is_still_taken_and_a_change_is_seen(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    _old_ledger(path)
    store = TokenStore(path)
    try:
        triggers = {
            row[0]
            for row in sqlite3.connect(path).execute(
                "SELECT name FROM sqlite_master WHERE type = 'trigger'"
            )
        }
        assert set(REVISION_TRIGGERS) <= triggers
        before = sqlite3.connect(path).execute("SELECT n FROM token_revision").fetchone()[0]
        conn = sqlite3.connect(path, isolation_level=None)
        conn.execute("UPDATE tokens SET revoked_at = '2026-01-02T00:00:00.000000Z'")
        conn.close()
        after = sqlite3.connect(path).execute("SELECT n FROM token_revision").fetchone()[0]
        assert after == before + 1
    finally:
        store.close()


def test_a_token_table_without_its_triggers_is_refused(tmp_path: Path) -> None:
    """A rebuilt table (sqlite-utils' `transform` drops triggers) would hide revocations."""
    path = tmp_path / "ledger.db"
    TokenStore(path).close()
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute(f"DROP TRIGGER {REVISION_TRIGGERS[1]}")
    conn.close()
    with pytest.raises(StoreError, match=REVISION_TRIGGERS[1]):
        TokenStore(path)
