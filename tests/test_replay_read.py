"""The lean replay read (`iter_replay`, `build_replayed`) and the chunked digests.

A replay through the lean read must give the very view a replay of whole `Event`s gives,
for every view coordinate, with corrections, retractions, backdated events and upcast
payloads; a digest hashed a chunk at a time must equal the hash of the whole encoding.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import gc
import hashlib
import sqlite3
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import msgspec
import pytest
from structlog.testing import capture_logs
from test_upcasting import EXPECTED, TYPE, V1_DATA, goal_to_purpose, insert_old_row

from events.codec import canonical
from events.envelope import Source
from events.errors import CorruptEvent
from events.ids import seed_id
from events.intake import new_event
from events.payloads import EventCorrected, EventRetracted, InvestmentCommitted
from events.replay import REPLAY_COLUMNS
from events.seed import DAEJEON, seed_events
from events.sqlite import SQLiteEventLog
from events.upcasters import register_upcaster, unregister_upcaster
from projections import Live, Projections, ViewSpec, build, build_replayed, digest_of
from projections.digests import CHUNK, list_digest
from service import projector
from service.projector import Projector

INVESTMENT = seed_id("investment-daejeon-2024")
INITIATIVE = seed_id("initiative-bio-venture-2023")
FIX = Source(url="urn:test:replay", quote="As reported later.")


def answers(proj: Projections) -> dict[str, Any]:
    """Everything a view answers, as builtins."""
    return msgspec.to_builtins(
        {
            "position": proj.position,
            "digests": proj.digests(),
            "organizations": proj.organizations(),
            "partnerships": proj.partnerships(),
            "sites": proj.capacity_sites(),
            "by_country": proj.capacity_summary("country"),
            "by_organization": proj.capacity_summary("organization"),
            "timeline": proj.timeline(),
        }
    )


@pytest.fixture(scope="module")
def history(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SQLiteEventLog]:
    """The seed, then a correction, a retraction and a backdated (re-dated) copy of an event."""
    log = SQLiteEventLog(tmp_path_factory.mktemp("replay") / "x.db")
    try:
        log.append(seed_events())
        original = log.get(INVESTMENT)
        assert original is not None
        assert isinstance(original.data, InvestmentCommitted)
        replacement = msgspec.structs.replace(
            original.data,
            amount=msgspec.structs.replace(original.data.amount, amount=Decimal(330_000_000)),
        )
        fix = EventCorrected(
            corrects=INVESTMENT,
            replacement=msgspec.to_builtins(replacement),
            reason="the release said 330",
        )
        gone = EventRetracted(retracts=INITIATIVE, reason="another company")
        for payload, day in ((fix, "2026-01-15"), (gone, "2026-01-16")):
            log.append([new_event(payload, stream=f"site-{DAEJEON}", occurred_on=day, source=FIX)])
        first = log.read(limit=1)[0]
        log.append([new_event(first.data, stream=first.stream, occurred_on="1999", source=FIX)])
        yield log
    finally:
        log.close()


def specs(log: SQLiteEventLog) -> list[ViewSpec]:
    middle = log.read(after=5, limit=1)[0].recorded_at
    return [
        ViewSpec(),
        ViewSpec(at_position=3),
        ViewSpec(at_position=log.head() - 1),
        ViewSpec(as_of=dt.date(2023, 6, 30)),
        ViewSpec(known_at=middle),
        ViewSpec(known_at=middle.replace(tzinfo=None), as_of=dt.date(2024, 12, 31)),
        ViewSpec(at_position=0),
    ]


class TestLeanReplay:
    def test_reads_only_what_a_replay_folds(self) -> None:
        """No hashes, metadata or stream version are read for a replay."""
        assert not {"metadata", "hash", "prev_hash", "data_hash", "stream_version"} & set(
            REPLAY_COLUMNS
        )

    def test_every_view_equals_the_replay_of_whole_events(self, history: SQLiteEventLog) -> None:
        """For every coordinate: the same answers and digests as `build(iter_events())`."""
        for spec in specs(history):
            upto = spec.at_position
            lean = build_replayed(history.iter_replay(upto=upto), spec)
            whole = build(history.iter_events(upto=upto), spec)
            assert answers(lean) == answers(whole), spec

    def test_derive_readies_the_same_answers(self, history: SQLiteEventLog) -> None:
        """`derive` computes every answer up front: the answers derived on first use."""
        ready = build_replayed(history.iter_replay())
        assert ready.derive() is ready
        assert answers(ready) == answers(build(history.iter_events()))

    def test_rows_carry_the_envelope_fields_the_folds_use(self, history: SQLiteEventLog) -> None:
        """Each lean row holds the same values as the event read whole."""
        for row, event in zip(history.iter_replay(), history.iter_events(), strict=True):
            assert row == (
                event.position,
                event.event_id,
                event.stream,
                event.type,
                event.occurred_on,
                event.sequence,
                event.recorded_at,
                event.source,
                event.data,
            )

    def test_live_rebuild_through_the_lean_read(self, history: SQLiteEventLog) -> None:
        """`Live.rebuild_replayed` gives the state `Live.rebuild` gives."""
        lean, whole = Live(), Live()
        lean.rebuild_replayed(history.iter_replay())
        whole.rebuild(history.iter_events())
        assert (lean.position, lean.frontier) == (whole.position, whole.frontier)
        assert answers(lean.projections()) == answers(whole.projections())

    def test_the_projector_rebuilds_and_builds_views_through_it(
        self, history: SQLiteEventLog
    ) -> None:
        """The service's projector (a backdated event forces a rebuild) answers as a replay does."""
        projector = Projector(history, None, 0)
        assert answers(projector.catch_up()) == answers(build(history.iter_events()))
        spec = ViewSpec(as_of=dt.date(2023, 6, 30))
        assert answers(projector.view(spec)) == answers(build(history.iter_events(), spec))


class TestProjectorRefusesASnapshotOfAnotherLog:
    """A snapshot is of one log, refused (a warning, then a replay) if it is of another.

    That is: at a position past the log's head, or whose chain hash there is not the log's.
    """

    @pytest.mark.parametrize("kind", ["ahead of the log", "another log"])
    def test_refused_and_replayed(self, tmp_path: Path, kind: str) -> None:
        snapshot = tmp_path / "live.snapshot"
        first = SQLiteEventLog(tmp_path / "first.db")
        try:
            first.append(seed_events())
            Projector(first, snapshot, 0).snapshot()
        finally:
            first.close()
        second = SQLiteEventLog(tmp_path / "second.db")
        try:
            second.append(seed_events()[:5])  # a backup restored from earlier, say
            if kind == "another log":  # as long as the first, another last five events
                extra = [
                    new_event(e.data, stream=e.stream, occurred_on="2030", source=FIX)
                    for e in seed_events()[:5]
                ]
                second.append(extra)
                assert second.head() == len(seed_events())
            with capture_logs() as logs:
                started = Projector(second, snapshot, 0)
            refusals = [entry for entry in logs if entry["event"] == "snapshot_rejected"]
            assert [entry["reason"] for entry in refusals] == [kind]
            assert answers(started.catch_up()) == answers(build(second.iter_events()))
        finally:
            second.close()

    def test_the_same_log_is_trusted(self, tmp_path: Path) -> None:
        """The snapshot of this very log loads (the anchor is its chain hash at the position)."""
        snapshot = tmp_path / "live.snapshot"
        log = SQLiteEventLog(tmp_path / "ledger.db")
        try:
            log.append(seed_events())
            Projector(log, snapshot, 0).snapshot()
            with capture_logs() as logs:
                started = Projector(log, snapshot, 0)
            assert [entry["event"] for entry in logs if "snapshot" in entry["event"]] == [
                "snapshot loaded"
            ]
            assert started.position == log.head()
        finally:
            log.close()


class TestProjectorMerges:
    def test_a_backdated_tail_after_a_snapshot_is_merged_not_rebuilt(
        self, db_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """A start from a snapshot whose tail holds a backdated event and a correction."""
        log = SQLiteEventLog(db_path)
        snapshot = db_path.with_name("live.snapshot")
        try:
            log.append(seed_events())
            Projector(log, snapshot, 0).snapshot()
            first = log.read(limit=1)[0]
            late = new_event(first.data, stream=first.stream, occurred_on="1999", source=FIX)
            original = log.get(INVESTMENT)
            assert original is not None
            fix = EventCorrected(
                corrects=INVESTMENT,
                replacement=msgspec.to_builtins(original.data),
                reason="restated",
            )
            log.append([late, new_event(fix, stream="record", occurred_on="2026", source=FIX)])

            def no_rebuild(*_: object) -> None:
                msg = "rebuilt from the log"
                raise AssertionError(msg)

            monkeypatch.setattr(Projector, "_rebuild", no_rebuild)
            started = Projector(log, snapshot, 0)
            assert started.position == log.head()
            assert answers(started.catch_up()) == answers(build(log.iter_events()))
        finally:
            log.close()

    @pytest.mark.parametrize(("after", "rebuilt"), [(1, False), (2, False), (3, True)])
    def test_a_tail_longer_than_a_merge_is_rebuilt_from_the_log(
        self, db_path: Path, monkeypatch: pytest.MonkeyPatch, after: int, rebuilt: bool
    ) -> None:
        """Live folding meets a backdated event: a short tail merges, a long one rebuilds."""
        monkeypatch.setattr(projector, "MERGE_AT_MOST", 3)
        log = SQLiteEventLog(db_path)
        try:
            log.append(seed_events())
            live = Projector(log, None, 0)
            live.catch_up()
            first = log.read(limit=1)[0]
            late = new_event(first.data, stream=first.stream, occurred_on="1999", source=FIX)
            tail = [late] + [
                new_event(first.data, stream=f"s-{n}", occurred_on="2030", source=FIX)
                for n in range(after)
            ]
            log.append(tail)
            rebuilds: list[int] = []
            rebuild = Projector._rebuild

            def counted(self: Projector, *args: Any) -> None:
                rebuilds.append(log.head())
                rebuild(self, *args)

            monkeypatch.setattr(Projector, "_rebuild", counted)
            assert answers(live.catch_up()) == answers(build(log.iter_events()))
            assert bool(rebuilds) == rebuilt
        finally:
            log.close()

    def test_a_large_start_freezes_the_heap(
        self, history: SQLiteEventLog, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """Once a large state is loaded, the collector no longer walks it (`gc.freeze`)."""
        monkeypatch.setattr(projector, "FREEZE_FROM", 1)
        try:
            started = Projector(history, None, 0)
            started.warm()  # what the service runs on a thread once started
            assert gc.get_freeze_count() > 0
            assert answers(started.catch_up()) == answers(build(history.iter_events()))
        finally:
            gc.unfreeze()


class TestLeanReadOfStoredRows:
    def test_an_old_payload_version_is_upcast(self, db_path: Path) -> None:
        """A version-1 row reads in the current shape, as through `iter_events`."""
        SQLiteEventLog(db_path).close()
        insert_old_row(db_path, V1_DATA)
        register_upcaster(TYPE, 1, goal_to_purpose)
        log = SQLiteEventLog(db_path)
        try:
            (row,) = log.iter_replay()
            assert row[-1] == EXPECTED
            assert answers(build_replayed(log.iter_replay())) == answers(build(log.iter_events()))
        finally:
            log.close()
            unregister_upcaster(TYPE, 1)

    def test_a_bad_stored_payload_names_its_field(self, db_path: Path) -> None:
        """A row whose data no longer fits the schema fails as `iter_events` fails.

        Both say which stored position, and which field, as a `CorruptEvent` (exit 1, 503).
        """
        log = SQLiteEventLog(db_path)
        try:
            log.append(seed_events()[:3])
        finally:
            log.close()
        with contextlib.closing(sqlite3.connect(db_path)) as conn:
            conn.execute("DROP TRIGGER IF EXISTS events_no_update")  # as a tamperer would
            conn.execute("UPDATE events SET data = '{\"id\": 7}' WHERE position = 2")
            conn.commit()
        log = SQLiteEventLog(db_path)
        try:
            with pytest.raises(CorruptEvent) as lean:
                list(log.iter_replay())
            with pytest.raises(CorruptEvent) as whole:
                list(log.iter_events())
            assert str(lean.value) == str(whole.value)
            assert lean.value.position == 2
            assert "$.data.id" in str(lean.value)
        finally:
            log.close()


class TestChunkedDigests:
    @pytest.mark.parametrize("size", [0, 1, 2, CHUNK - 1, CHUNK, CHUNK + 1, 2 * CHUNK + 3])
    def test_a_list_digest_is_the_hash_of_the_whole_encoding(self, size: int) -> None:
        """Fed a chunk at a time, from a list or an iterator: the same bytes as one buffer."""
        items = [{"n": n, "text": f"entry {n}", "amount": Decimal(n) / 7} for n in range(size)]
        expected = hashlib.sha256(canonical(items)).hexdigest()
        assert list_digest(items) == expected == digest_of(items)
        assert list_digest(iter(items)) == expected
        assert list_digest(tuple(items)) == expected
