"""Upcasting: an old payload version is read in the current shape, never rewritten in the log."""

from __future__ import annotations

import contextlib
import json
import sqlite3
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from conformance import correction, event

from events.codec import GENESIS, canonical, chain_hash, data_hash
from events.dates import format_timestamp, utc_now
from events.envelope import Metadata, Source
from events.errors import CorruptEvent, InvalidEvent
from events.ids import uuid7
from events.intake import parse_event
from events.payloads import FacilityPlanAnnounced
from events.rows import COLUMNS, Row
from events.sqlite import SQLiteEventLog
from events.upcasters import current_version, register_upcaster, unregister_upcaster

TYPE = FacilityPlanAnnounced.TYPE
SOURCE = Source(url="urn:test:upcasting", quote="The plant would support commercial production.")
V1_DATA = {"org": "merck-kgaa", "site": "daejeon", "goal": "commercial production"}


def goal_to_purpose(data: dict[str, Any]) -> dict[str, Any]:
    """Version 1 called `purpose` `goal`."""
    upcast = {k: v for k, v in data.items() if k != "goal"}
    upcast["purpose"] = data["goal"]
    return upcast


def trim_purpose(data: dict[str, Any]) -> dict[str, Any]:
    """Version 2 kept the source's stray spaces around `purpose`; version 3 trims them."""
    return {**data, "purpose": data["purpose"].strip()}


Register = Callable[..., None]


@pytest.fixture
def upcasters() -> Iterator[Register]:
    """Register upcasting steps of `facility_plan_announced`; each is removed after the test."""
    registered: list[int] = []

    def register(*steps: Callable[[dict[str, Any]], dict[str, Any]]) -> None:
        for from_version, step in enumerate(steps, start=1):
            register_upcaster(TYPE, from_version, step)
            registered.append(from_version)

    yield register
    for from_version in reversed(registered):
        unregister_upcaster(TYPE, from_version)
    assert current_version(TYPE) == 1


def insert_old_row(path: Path, data: dict[str, Any], schema_version: int = 1) -> Row:
    """Append a row of an old schema version with sqlite3, hashed as the ledger would hash it."""
    with contextlib.closing(sqlite3.connect(path)) as conn:
        last = conn.execute(
            "SELECT position, hash, recorded_at FROM events ORDER BY position DESC LIMIT 1"
        ).fetchone()
        position, prev_hash, before = last or (0, GENESIS, "")
        data_bytes, source_bytes = canonical(data), canonical(SOURCE)
        metadata = canonical(Metadata())
        digest = data_hash(data_bytes, source_bytes)
        recorded_at = max(format_timestamp(utc_now()), before)
        event_id = uuid7()
        link = chain_hash(
            position=position + 1,
            event_id=event_id,
            stream="site-daejeon",
            stream_version=1,
            event_type=TYPE,
            schema_version=schema_version,
            occurred_on="2023-05",
            sequence=None,
            recorded_at=recorded_at,
            metadata=metadata,
            data_hash=digest,
            prev_hash=prev_hash,
        )
        row = Row(
            position + 1,
            event_id,
            "site-daejeon",
            1,
            TYPE,
            schema_version,
            "2023-05",
            None,
            recorded_at,
            data_bytes.decode(),
            source_bytes.decode(),
            metadata.decode(),
            digest,
            prev_hash,
            link,
        )
        marks = ", ".join("?" * len(COLUMNS))
        conn.execute(f"INSERT INTO events ({', '.join(COLUMNS)}) VALUES ({marks})", row)  # noqa: S608
        conn.commit()
    return row


@pytest.fixture
def old_row(db_path: Path) -> Row:
    """A closed ledger with two events, then a version-1 `facility_plan_announced` at position 3."""
    log = SQLiteEventLog(db_path)
    try:
        log.append([event("before"), event("before")])
    finally:
        log.close()
    return insert_old_row(db_path, V1_DATA)


def stored(path: Path, position: int) -> tuple[Any, ...]:
    """The raw stored columns of one row."""
    with contextlib.closing(sqlite3.connect(path)) as conn:
        return tuple(
            conn.execute(
                f"SELECT {', '.join(COLUMNS)} FROM events WHERE position = ?",  # noqa: S608
                (position,),
            ).fetchone()
        )


@pytest.fixture
def reopened(db_path: Path) -> Iterator[SQLiteEventLog]:
    """The ledger at `db_path`, opened after the old row was written."""
    log = SQLiteEventLog(db_path)
    try:
        yield log
    finally:
        log.close()


EXPECTED = FacilityPlanAnnounced(org="merck-kgaa", site="daejeon", purpose="commercial production")


class TestReadingOldRows:
    def test_every_read_upcasts(
        self, upcasters: Register, old_row: Row, reopened: SQLiteEventLog
    ) -> None:
        """`get`, `read`, `stream` and `iter_events` give the old row in the current shape."""
        upcasters(goal_to_purpose)
        got = reopened.get(old_row.event_id)
        assert got is not None
        assert got.data == EXPECTED
        assert got.schema_version == 2
        assert reopened.read(after=2) == [got]
        assert reopened.stream("site-daejeon") == ([got], 1)
        assert list(reopened.iter_events(after=2)) == [got]

    def test_the_stored_row_is_never_rewritten(
        self, upcasters: Register, old_row: Row, reopened: SQLiteEventLog, db_path: Path
    ) -> None:
        """Reading upcasts in memory only: the row keeps its version-1 bytes and the chain holds."""
        upcasters(goal_to_purpose)
        reopened.get(old_row.event_id)
        list(reopened.iter_events())
        assert stored(db_path, 3) == tuple(old_row)
        result = reopened.verify()
        assert (result.ok, result.head) == (True, 3)

    def test_export_keeps_the_old_version(
        self, upcasters: Register, old_row: Row, reopened: SQLiteEventLog, tmp_path: Path
    ) -> None:
        """An export carries the row as stored; an import of it keeps its hash and reads upcast."""
        upcasters(goal_to_purpose)
        lines = list(reopened.export_lines())
        record = json.loads(lines[2])
        assert (record["schema_version"], record["data"]) == (1, V1_DATA)
        copy = SQLiteEventLog(tmp_path / "copy.db")
        try:
            copy.import_lines(lines)
            assert list(copy.export_lines()) == lines
            got = copy.get(old_row.event_id)
            assert got is not None
            assert got.data == EXPECTED
        finally:
            copy.close()

    def test_steps_run_in_order(self, upcasters: Register, db_path: Path) -> None:
        """A version-1 row goes through every step up to the current version."""
        upcasters(goal_to_purpose, trim_purpose)
        SQLiteEventLog(db_path).close()
        row = insert_old_row(db_path, {**V1_DATA, "goal": "  commercial production "})
        log = SQLiteEventLog(db_path)
        try:
            got = log.get(row.event_id)
            assert got is not None
            assert (got.data, got.schema_version) == (EXPECTED, 3)
            assert log.verify().ok
        finally:
            log.close()

    def test_a_version_2_row_takes_only_the_later_steps(
        self, upcasters: Register, db_path: Path
    ) -> None:
        """A row of version 2 is not run through the step from version 1."""
        upcasters(goal_to_purpose, trim_purpose)
        SQLiteEventLog(db_path).close()
        v2 = {"org": "merck-kgaa", "site": "daejeon", "purpose": " commercial production"}
        row = insert_old_row(db_path, v2, schema_version=2)
        log = SQLiteEventLog(db_path)
        try:
            got = log.get(row.event_id)
            assert got is not None
            assert got.data == EXPECTED
        finally:
            log.close()

    def test_without_the_upcaster_the_old_shape_does_not_decode(
        self, old_row: Row, reopened: SQLiteEventLog
    ) -> None:
        """The upcaster is what makes the old row readable: without it, `goal` is unknown.

        The row is then one the store cannot read: `CorruptEvent` naming its position and field.
        """
        with pytest.raises(CorruptEvent) as caught:
            reopened.get(old_row.event_id)
        assert caught.value.position == old_row.position
        assert "$.data.goal" in str(caught.value)


class TestWritingWithAnUpcaster:
    def test_new_events_are_written_at_the_current_version(
        self, upcasters: Register, fresh_log: SQLiteEventLog, db_path: Path
    ) -> None:
        """An append stores the current schema version of its type."""
        upcasters(goal_to_purpose)
        result = fresh_log.append([event("site-daejeon", EXPECTED)])
        assert stored(db_path, result.events[0].position)[5] == 2
        got = fresh_log.get(result.events[0].event_id)
        assert got is not None
        assert (got.schema_version, got.data) == (2, EXPECTED)

    def test_an_old_event_can_be_corrected_in_the_current_shape(
        self, upcasters: Register, old_row: Row, reopened: SQLiteEventLog
    ) -> None:
        """A correction of a version-1 event takes a replacement of the current shape."""
        upcasters(goal_to_purpose)
        fixed = {"org": "merck-kgaa", "site": "daejeon", "purpose": "vaccines"}
        result = reopened.append([correction(old_row.event_id, fixed)])
        assert result.events[0].position == 4
        assert reopened.verify().ok

    def test_an_old_wire_event_is_upcast_at_intake(self, upcasters: Register) -> None:
        """A client may still send version 1; it is accepted in the current shape."""
        upcasters(goal_to_purpose)
        wire = {
            "stream": "site-daejeon",
            "type": TYPE,
            "schema_version": 1,
            "occurred_on": "2023-05",
            "data": V1_DATA,
            "source": {"url": "urn:x"},
        }
        assert parse_event(json.dumps(wire)).data == EXPECTED

    @pytest.mark.parametrize("version", [3, 1000])
    def test_a_version_newer_than_the_code_is_refused(
        self, upcasters: Register, version: int
    ) -> None:
        """A schema version this code does not know yet names `$.schema_version`."""
        upcasters(goal_to_purpose)
        wire = {
            "stream": "site-daejeon",
            "type": TYPE,
            "schema_version": version,
            "occurred_on": "2023-05",
            "data": {"org": "merck-kgaa"},
            "source": {"url": "urn:x"},
        }
        with pytest.raises(InvalidEvent) as caught:
            parse_event(json.dumps(wire))
        assert caught.value.path == "$.schema_version"
