"""The hash chain at the API level: `verify()` finds any change made behind the log's back."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from conformance import event, retraction, site

from events.codec import GENESIS, chain_hash
from events.rows import SELECT_COLUMNS, Row, check
from events.sqlite import SQLiteEventLog

EVENTS = 12


def _flip(text: str) -> str:
    """The same text with one character in its middle replaced by another."""
    middle = len(text) // 2
    replacement = "1" if text[middle] != "1" else "2"
    return text[:middle] + replacement + text[middle + 1 :]


TAMPERINGS: dict[str, tuple[str, Callable[[Any], Any]]] = {
    "data": ("data", _flip),
    "data, whitespace only": ("data", lambda d: "{ " + d[1:]),
    "source": ("source", _flip),
    "metadata": ("metadata", lambda m: m.replace('"tags":[]', '"tags":["x"]')),
    "hash": ("hash", _flip),
    "data_hash": ("data_hash", _flip),
    "prev_hash": ("prev_hash", _flip),
    "recorded_at": ("recorded_at", lambda t: t[:-2] + ("1Z" if t[-2] != "1" else "2Z")),
    "event_id": ("event_id", _flip),
    "stream": ("stream", lambda s: s + "x"),
    "stream_version": ("stream_version", lambda v: v + 100),
    "type": ("type", lambda t: "memorandum_signed" if t == "site_acquired" else "site_acquired"),
    "schema_version": ("schema_version", lambda v: v + 1),
    "occurred_on": ("occurred_on", lambda o: "2021" if o != "2021" else "2020"),
    "sequence": ("sequence", lambda s: 5 if s is None else s + 1),
}


@pytest.fixture
def filled(db_path: Path) -> Path:
    """A closed ledger of `EVENTS` site acquisitions (and one retraction) that verifies."""
    log = SQLiteEventLog(db_path)
    try:
        first = event("site-0", site("site-0"))
        log.append([first])
        for n in range(1, EVENTS - 1, 2):
            log.append([event(f"site-{n}", site(f"site-{n}")), event("other")])
        log.append([retraction(first.event_id)])
        assert log.head() == EVENTS
        assert log.verify().ok
    finally:
        log.close()
    return db_path


def tamper(path: Path, position: int, column: str, change: Callable[[Any], Any]) -> None:
    """Change one column of one row, dropping the append-only triggers as a tamperer would."""
    conn = sqlite3.connect(path)
    try:
        conn.execute("DROP TRIGGER IF EXISTS events_no_update")
        conn.execute("DROP TRIGGER IF EXISTS events_no_delete")
        (value,) = conn.execute(
            f"SELECT {column} FROM events WHERE position = ?",  # noqa: S608 - a column name of ours
            (position,),
        ).fetchone()
        changed = change(value)
        assert changed != value
        conn.execute(
            f"UPDATE events SET {column} = ? WHERE position = ?",  # noqa: S608 - a column name of ours
            (changed, position),
        )
        conn.commit()
    finally:
        conn.close()


def verify(path: Path) -> Any:
    """The verification of a freshly opened log on `path`."""
    log = SQLiteEventLog(path)
    try:
        return log.verify()
    finally:
        log.close()


class TestIntactChain:
    def test_an_untouched_log_verifies(self, filled: Path) -> None:
        """A log nobody touched verifies over all its events."""
        result = verify(filled)
        assert (result.ok, result.head, result.checked, result.first_bad_position) == (
            True,
            EVENTS,
            EVENTS,
            None,
        )

    def test_progress_counts_every_event(self, filled: Path) -> None:
        """`verify` reports progress once per event checked."""
        log = SQLiteEventLog(filled)
        calls: list[int] = []
        try:
            log.verify(progress=calls.append)
        finally:
            log.close()
        assert sum(calls) == EVENTS

    @pytest.mark.parametrize(
        "statement",
        ["UPDATE events SET data = data || ' '", "DELETE FROM events WHERE position = 3"],
    )
    def test_triggers_forbid_update_and_delete(self, filled: Path, statement: str) -> None:
        """The table itself refuses UPDATE and DELETE."""
        conn = sqlite3.connect(filled)
        try:
            with pytest.raises(sqlite3.IntegrityError, match="append-only"):
                conn.execute(statement)
        finally:
            conn.close()
        assert verify(filled).ok


class TestTampering:
    @pytest.mark.parametrize("position", [1, 6, EVENTS])
    @pytest.mark.parametrize("what", list(TAMPERINGS))
    def test_a_changed_column_is_found_at_its_position(
        self, filled: Path, what: str, position: int
    ) -> None:
        """Changing one column of one row makes `verify` fail at exactly that position."""
        column, change = TAMPERINGS[what]
        tamper(filled, position, column, change)
        result = verify(filled)
        assert result.ok is False
        assert result.first_bad_position == position
        assert result.checked == position - 1
        assert result.head == position - 1
        assert result.reason

    def test_a_tampered_log_stays_readable(self, filled: Path) -> None:
        """Tampering is reported by `verify`, not by refusing to read the changed row."""
        tamper(filled, 4, "recorded_at", TAMPERINGS["recorded_at"][1])
        log = SQLiteEventLog(filled)
        try:
            assert [e.position for e in log.iter_events()] == list(range(1, EVENTS + 1))
            assert log.verify().first_bad_position == 4
        finally:
            log.close()

    @pytest.mark.parametrize("position", [1, 5, EVENTS])
    def test_a_deleted_row_is_found(self, filled: Path, position: int) -> None:
        """Removing a row breaks the chain where it was."""
        conn = sqlite3.connect(filled)
        try:
            conn.execute("DROP TRIGGER events_no_delete")
            conn.execute("DELETE FROM events WHERE position = ?", (position,))
            conn.commit()
        finally:
            conn.close()
        result = verify(filled)
        if position == EVENTS:
            assert (result.ok, result.head) == (True, EVENTS - 1)  # a cut tail is a shorter chain
        else:
            assert (result.ok, result.first_bad_position) == (False, position)

    def test_a_consistently_rewritten_row_breaks_the_next_link(self, filled: Path) -> None:
        """Rewriting a row consistently still breaks the link to the following row."""
        conn = sqlite3.connect(filled)
        try:
            conn.execute("DROP TRIGGER events_no_update")
            select = f"SELECT {SELECT_COLUMNS} FROM events ORDER BY position"  # noqa: S608 - constant
            rows = [Row(*r) for r in conn.execute(select)]
            assert rows[0].prev_hash == GENESIS
            assert check(rows[0], 1, GENESIS) is None
            first = rows[0]
            forged = first._replace(recorded_at="2000-01-01T00:00:00.000000Z")
            new_hash = chain_hash(
                position=forged.position,
                event_id=forged.event_id,
                stream=forged.stream,
                stream_version=forged.stream_version,
                event_type=forged.type,
                schema_version=forged.schema_version,
                occurred_on=forged.occurred_on,
                sequence=forged.sequence,
                recorded_at=forged.recorded_at,
                metadata=forged.metadata.encode(),
                data_hash=forged.data_hash,
                prev_hash=forged.prev_hash,
            )
            conn.execute(
                "UPDATE events SET recorded_at = ?, hash = ? WHERE position = 1",
                (forged.recorded_at, new_hash),
            )
            conn.commit()
        finally:
            conn.close()
        result = verify(filled)
        assert (result.ok, result.first_bad_position) == (False, 2)
        assert result.reason is not None
        assert "prev_hash" in result.reason
