"""Export then import: the same rows, hashes included; a tampered export is refused whole."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from conformance import correction, event, retraction, site, site_builtins

from events.codec import CANONICAL, chain_hash, data_hash
from events.errors import ChainBroken, InvalidEvent, LedgerError, StoreError, TargetConflict
from events.seed import seed_events
from events.sqlite import SQLiteEventLog

Lines = list[bytes]


@pytest.fixture
def exported(fresh_log: SQLiteEventLog) -> Lines:
    """The export of a log holding the seed, a correction, a retraction and a few more events."""
    fresh_log.append(seed_events())
    target = event("site-a", site("site-a"))
    fresh_log.append([target, event("other")])
    fresh_log.append([correction(target.event_id, site_builtins("5"))])
    fresh_log.append([retraction(target.event_id)])
    fresh_log.append([event("other") for _ in range(3)])
    lines = list(fresh_log.export_lines())
    assert len(lines) == fresh_log.head() == 17
    return lines


@pytest.fixture
def target(tmp_path: Path) -> Iterator[SQLiteEventLog]:
    """A second, empty log to import into."""
    log = SQLiteEventLog(tmp_path / "target.db")
    try:
        yield log
    finally:
        log.close()


def _line_with(lines: Lines, needle: bytes) -> int:
    return next(i for i, line in enumerate(lines) if needle in line)


def _change_data(lines: Lines) -> Lines:
    index = _line_with(lines, b'"amount":"160000000"')
    out = list(lines)
    out[index] = out[index].replace(b'"amount":"160000000"', b'"amount":"160000001"')
    return out


def _change_hash(lines: Lines) -> Lines:
    out = list(lines)
    record = json.loads(out[5])
    record["hash"] = ("1" if record["hash"][0] != "1" else "2") + record["hash"][1:]
    out[5] = json.dumps(record).encode() + b"\n"
    return out


def _rehash_last(lines: Lines, change: Callable[[dict[str, object]], None]) -> Lines:
    """Change the last line's data and recompute its hashes, as a careful forger would."""
    out = list(lines)
    record = json.loads(out[-1])
    change(record["data"])
    data = CANONICAL.encode(record["data"])
    source = CANONICAL.encode(record["source"])
    record["data_hash"] = data_hash(data, source)
    record["hash"] = chain_hash(
        position=record["position"],
        event_id=record["event_id"],
        stream=record["stream"],
        stream_version=record["stream_version"],
        event_type=record["type"],
        schema_version=record["schema_version"],
        occurred_on=record["occurred_on"],
        sequence=record["sequence"],
        recorded_at=record["recorded_at"],
        metadata=CANONICAL.encode(record["metadata"]),
        data_hash=record["data_hash"],
        prev_hash=record["prev_hash"],
    )
    out[-1] = json.dumps(record).encode() + b"\n"
    return out


TAMPERED: dict[str, tuple[Callable[[Lines], Lines], type[LedgerError], int | None]] = {
    "one byte of data": (_change_data, ChainBroken, 5),
    "one byte of a hash": (_change_hash, ChainBroken, 6),
    "the first line removed": (lambda ls: ls[1:], ChainBroken, 1),
    "a middle line removed": (lambda ls: ls[:7] + ls[8:], ChainBroken, 8),
    "two lines swapped": (lambda ls: [*ls[:3], ls[4], ls[3], *ls[5:]], ChainBroken, 4),
    "a line repeated": (lambda ls: [*ls[:10], ls[9], *ls[10:]], ChainBroken, 11),
    "a line that is not JSON": (lambda ls: [*ls[:-1], b"{not json\n"], InvalidEvent, None),
    "an unknown field": (
        lambda ls: [*ls[:-1], ls[-1].replace(b'{"data"', b'{"extra":1,"data"', 1)],
        InvalidEvent,
        None,
    ),
    "an invalid payload with recomputed hashes": (
        lambda ls: _rehash_last(ls, lambda data: data.update(id="Not A Slug")),
        InvalidEvent,
        None,
    ),
}


class TestRoundTrip:
    def test_import_gives_identical_rows_and_hashes(
        self, fresh_log: SQLiteEventLog, exported: Lines, target: SQLiteEventLog
    ) -> None:
        """Every row imported has the hash it was exported with; the re-export is identical."""
        progress: list[int] = []
        assert target.import_lines(exported, progress=progress.append) == len(exported)
        assert sum(progress) == len(exported)
        assert list(target.export_lines()) == exported
        assert [(e.position, e.hash) for e in target.iter_events()] == [
            (e.position, e.hash) for e in fresh_log.iter_events()
        ]
        result = target.verify()
        assert (result.ok, result.head) == (True, len(exported))

    def test_import_accepts_any_json_spelling(
        self, exported: Lines, target: SQLiteEventLog
    ) -> None:
        """Lines with other key order and whitespace import to the same canonical rows."""
        respelled = [
            json.dumps(dict(reversed(json.loads(line).items())), indent=None).encode() + b"\n"
            for line in exported
        ]
        assert respelled != exported
        target.import_lines([b"\n", *respelled, b"  \n"])
        assert list(target.export_lines()) == exported

    def test_the_imported_log_goes_on(self, exported: Lines, target: SQLiteEventLog) -> None:
        """After an import, appends continue the chain and know the imported retractions."""
        target.import_lines(exported)
        retracted = json.loads(exported[-4])["data"]["retracts"]
        with pytest.raises(TargetConflict):
            target.append([retraction(retracted)])
        result = target.append([event("after-import")])
        assert result.events[0].position == len(exported) + 1
        assert target.verify().ok

    def test_export_hashes_are_the_stored_hashes(
        self, fresh_log: SQLiteEventLog, exported: Lines
    ) -> None:
        """Each export line carries its row's stored hashes, data hash over the data and source."""
        for line, stored in zip(exported, fresh_log.iter_events(), strict=True):
            record = json.loads(line)
            assert (record["position"], record["hash"], record["prev_hash"]) == (
                stored.position,
                stored.hash,
                stored.prev_hash,
            )
            body = b'{"data":%s,"source":%s}' % (
                CANONICAL.encode(record["data"]),
                CANONICAL.encode(record["source"]),
            )
            assert hashlib.sha256(body).hexdigest() == record["data_hash"] == stored.data_hash


class TestRefusedImports:
    @pytest.mark.parametrize("how", list(TAMPERED))
    def test_a_tampered_export_is_refused_whole(
        self, exported: Lines, target: SQLiteEventLog, how: str
    ) -> None:
        """A changed, missing, moved or invalid line refuses the import; the log stays empty."""
        tamper, error, position = TAMPERED[how]
        with pytest.raises(error) as caught:
            target.import_lines(tamper(exported))
        if position is not None:
            assert isinstance(caught.value, ChainBroken)
            assert caught.value.position == position
        assert target.head() == 0
        assert target.read() == []
        assert target.import_lines(exported) == len(exported)
        assert target.verify().ok

    def test_import_into_a_non_empty_log_is_refused(
        self, exported: Lines, target: SQLiteEventLog
    ) -> None:
        """A log that holds events refuses an import and keeps what it had."""
        target.append([event("mine")])
        before = list(target.export_lines())
        with pytest.raises(StoreError, match="empty"):
            target.import_lines(exported)
        assert list(target.export_lines()) == before

    def test_import_into_its_own_log_is_refused(
        self, fresh_log: SQLiteEventLog, exported: Lines
    ) -> None:
        """Importing a log's export into itself is refused (it is not empty)."""
        with pytest.raises(StoreError):
            fresh_log.import_lines(exported)
        assert fresh_log.head() == len(exported)


Record = dict[str, object]


def _forged(lines: Lines, change: Callable[[list[Record]], None]) -> Lines:
    """Change records, then recompute every hash and link, as a careful forger would.

    The chain alone cannot tell such an export from a real one.
    """
    records: list[Record] = [json.loads(line) for line in lines]
    change(records)
    prev = "0" * 64
    out: Lines = []
    for position, record in enumerate(records, start=1):
        record["position"], record["prev_hash"] = position, prev
        record["data_hash"] = data_hash(
            CANONICAL.encode(record["data"]), CANONICAL.encode(record["source"])
        )
        record["hash"] = prev = chain_hash(
            position=position,
            event_id=str(record["event_id"]),
            stream=str(record["stream"]),
            stream_version=int(str(record["stream_version"])),
            event_type=str(record["type"]),
            schema_version=int(str(record["schema_version"])),
            occurred_on=str(record["occurred_on"]),
            sequence=record["sequence"],  # type: ignore[arg-type]
            recorded_at=str(record["recorded_at"]),
            metadata=CANONICAL.encode(record["metadata"]),
            data_hash=str(record["data_hash"]),
            prev_hash=str(record["prev_hash"]),
        )
        out.append(CANONICAL.encode(record) + b"\n")
    return out


def _set(index: int, **fields: object) -> Callable[[list[Record]], None]:
    return lambda records: records[index].update(fields)


def _retract_again(records: list[Record]) -> None:
    again = {**records[-4], "event_id": "01900000-0000-7000-8000-0000000000aa"}
    again["stream_version"] = int(str(records[-4]["stream_version"])) + 1
    again["recorded_at"] = records[-1]["recorded_at"]
    records.append(again)


def _retract_unknown(records: list[Record]) -> None:
    data = records[-4]["data"]
    assert isinstance(data, dict)
    data["retracts"] = "01900000-0000-7000-8000-0000000000bb"


FORGED: dict[str, tuple[Callable[[list[Record]], None], int, str]] = {
    "an id that is not a UUID": (_set(3, event_id="x"), 4, "$.event_id"),
    "a stream name append refuses": (_set(3, stream="Not A Stream"), 4, "$.stream"),
    "an impossible date": (_set(3, occurred_on="2024-02-30"), 4, "$.occurred_on"),
    "a gap in a stream's versions": (_set(16, stream_version=9), 17, "$.stream_version"),
    "recorded_at going back": (
        _set(12, recorded_at="2001-01-01T00:00:00.000000Z"),
        13,
        "$.recorded_at",
    ),
    "recorded_at in another form": (
        _set(16, recorded_at="2999-01-01T00:00:00Z"),
        17,
        "$.recorded_at",
    ),
    "an id used twice": (
        lambda records: records[16].update(event_id=records[2]["event_id"]),
        17,
        "$.event_id",
    ),
    "a retraction of an unknown event": (_retract_unknown, 14, "$.data"),
    "a schema version nothing upcasts from": (_set(3, schema_version=0), 4, "$"),
    "a second retraction of one event": (_retract_again, 18, "$.data"),
}


class TestForgedImports:
    @pytest.mark.parametrize("how", list(FORGED))
    def test_what_append_refuses_import_refuses(
        self, exported: Lines, target: SQLiteEventLog, how: str
    ) -> None:
        """A valid chain over a row append would refuse: line and field named, nothing stored.

        The same export, unforged, then imports.
        """
        change, line, path = FORGED[how]
        forged = _forged(exported, change)
        assert forged != exported
        with pytest.raises(InvalidEvent) as caught:
            target.import_lines(forged)
        assert str(caught.value).startswith(f"line {line}: {path}:"), str(caught.value)
        assert target.head() == 0
        assert _forged(exported, lambda _records: None) == exported
        assert target.import_lines(exported) == len(exported)
        assert target.verify().ok


def test_a_ledger_whose_clock_ran_fast_imports_as_it_was(
    exported: Lines, target: SQLiteEventLog
) -> None:
    """Rows recorded ahead of this machine's clock import as they were exported.

    `recorded_at` never goes back, so a ledger whose clock once ran fast stamped every later
    row that late, and verifies; the imported log stamps its appends as it would have.
    """
    ahead = "2999-01-01T00:00:00.000000Z"
    forged = _forged(exported, lambda records: records[-1].update(recorded_at=ahead))
    assert target.import_lines(forged) == len(exported)
    assert target.verify().ok
    after = target.append([event("after-import")])
    assert after.events[0].recorded_at.year == 2999
