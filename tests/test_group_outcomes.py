"""A group's outcomes are those of its batches appended one by one, whatever the group holds.

The writer first plans a group assuming none of its event ids is stored; a retry, a
conflict or an invalid batch in the group sends it back to the full reads. These tests hand
one group to the writer's commit directly (so what is grouped is fixed, not left to thread
timing) and compare every outcome with the same batches appended alone, in order.
"""

from __future__ import annotations

import asyncio
import sqlite3
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import msgspec
import pytest
from conftest import make_new_event

import events.sqlite as sqlite_module
import events.sqlite_group as sqlite_group_module
from events.envelope import AppendResult, NewEvent
from events.errors import (
    IdempotencyConflict,
    InvalidEvent,
    LedgerError,
    StoreError,
    TargetConflict,
    VersionConflict,
)
from events.groupcommit import AppendRequest
from events.payloads import EventCorrected, EventRetracted
from events.prepared import prepare_batch
from events.sqlite import SQLiteEventLog

Batch = tuple[Sequence[NewEvent], dict[str, int] | None]


def commit(
    log: SQLiteEventLog, batches: list[Batch], *, assume_new: bool | None = None
) -> list[AppendResult | LedgerError]:
    """Commit the batches as one group, as the writer thread would.

    With `assume_new` False: one attempt, its ids read first, as every group was before.
    """
    requests = [AppendRequest(prepare_batch(b), versions) for b, versions in batches]
    if assume_new is None:
        log._commit_group(requests, None)
    else:
        log._try_group(requests, None, assume_new=assume_new)
    outcomes: list[AppendResult | LedgerError] = []
    for request in requests:
        request.future.deliver()
        try:
            outcomes.append(request.future.result())
        except LedgerError as exc:
            outcomes.append(exc)
    return outcomes


def as_group(log: SQLiteEventLog, batches: list[Batch]) -> list[AppendResult | LedgerError]:
    return commit(log, batches)


def one_by_one(log: SQLiteEventLog, batches: list[Batch]) -> list[AppendResult | LedgerError]:
    """The reference: each batch alone, its ids read before it is planned."""
    return [commit(log, [batch], assume_new=False)[0] for batch in batches]


def shape(outcome: AppendResult | LedgerError) -> Any:
    """What must agree: the answer without the commit time."""
    if isinstance(outcome, LedgerError):
        return type(outcome).__name__, str(outcome)
    places = [(c.event_id, c.position, c.stream, c.stream_version) for c in outcome.events]
    return outcome.head, places, outcome.replayed


def copy(event: NewEvent) -> NewEvent:
    return msgspec.structs.replace(event)


Scenario = Callable[[list[NewEvent]], list[Batch]]


def fresh_only(stored: list[NewEvent]) -> list[Batch]:
    return [([make_new_event("a")], None), ([make_new_event("b"), make_new_event("a")], None)]


def a_retry_among_new(stored: list[NewEvent]) -> list[Batch]:
    return [
        ([make_new_event("a")], None),
        ([copy(stored[0])], None),
        ([make_new_event("b")], None),
    ]


def a_retry_with_stale_versions(stored: list[NewEvent]) -> list[Batch]:
    return [([make_new_event("a")], None), ([copy(stored[1])], {"s": 0})]


def a_half_stored_batch(stored: list[NewEvent]) -> list[Batch]:
    return [([copy(stored[0]), make_new_event("a")], None), ([make_new_event("a")], None)]


def a_conflict_and_an_invalid_batch(stored: list[NewEvent]) -> list[Batch]:
    return [
        ([make_new_event("a")], {"a": 5}),
        ([], None),
        ([make_new_event("a")], {"a": 0}),
    ]


def the_same_new_event_twice(stored: list[NewEvent]) -> list[Batch]:
    new = make_new_event("a")
    return [([new], None), ([copy(new)], None), ([copy(new)], {"a": 0})]


def a_retraction_of_a_stored_event_then_its_retry(stored: list[NewEvent]) -> list[Batch]:
    retraction = make_new_event(
        "s", data=EventRetracted(retracts=stored[0].event_id, reason="withdrawn")
    )
    return [([retraction], None), ([copy(retraction)], None), ([copy(stored[2])], None)]


def records_of_an_event_earlier_in_the_group(stored: list[NewEvent]) -> list[Batch]:
    new = make_new_event("a")
    replacement = {"id": "org-fixed", "name": "Fixed"}
    correction = EventCorrected(corrects=new.event_id, replacement=replacement, reason="typo")
    retraction = EventRetracted(retracts=new.event_id, reason="withdrawn")
    return [
        ([new], None),
        ([make_new_event("a", data=correction)], None),
        ([make_new_event("a", data=retraction)], None),
        ([make_new_event("a", data=retraction)], None),
        ([copy(new)], {"a": 0}),
    ]


def plain_batches_around_a_mismatched_type(stored: list[NewEvent]) -> list[Batch]:
    """Plain batches (placed without the record checks) around one the general path refuses."""
    new = make_new_event("a")
    mismatched = msgspec.structs.replace(make_new_event("b"), type="event_retracted")
    return [
        ([new, make_new_event("b")], None),
        ([mismatched], None),
        ([make_new_event("a"), make_new_event("a")], None),
        ([copy(new)], None),
    ]


SCENARIOS = [
    fresh_only,
    a_retry_among_new,
    a_retry_with_stale_versions,
    a_half_stored_batch,
    a_conflict_and_an_invalid_batch,
    the_same_new_event_twice,
    a_retraction_of_a_stored_event_then_its_retry,
    records_of_an_event_earlier_in_the_group,
    plain_batches_around_a_mismatched_type,
]


@pytest.mark.parametrize("scenario", SCENARIOS, ids=lambda s: s.__name__)
def test_a_group_answers_as_its_batches_appended_alone(tmp_path: Path, scenario: Scenario) -> None:
    stored = [make_new_event("s") for _ in range(3)]
    grouped, alone = SQLiteEventLog(tmp_path / "group.db"), SQLiteEventLog(tmp_path / "alone.db")
    try:
        for log in (grouped, alone):
            for event in stored:
                log.append([copy(event)])
        batches = scenario(stored)
        expected = one_by_one(alone, batches)
        got = as_group(grouped, batches)
        assert [shape(o) for o in got] == [shape(o) for o in expected]
        assert grouped.head() == alone.head()
        assert [e.event_id for e in grouped.read(limit=50)] == [
            e.event_id for e in alone.read(limit=50)
        ]
        assert grouped.verify().ok
    finally:
        grouped.close()
        alone.close()


def test_the_outcomes_include_each_kind(tmp_path: Path) -> None:
    """The scenarios above do reach replays, conflicts and invalid batches."""
    stored = [make_new_event("s") for _ in range(3)]
    log = SQLiteEventLog(tmp_path / "kinds.db")
    try:
        for event in stored:
            log.append([event])
        kinds: set[type[object]] = set()
        for scenario in SCENARIOS:
            for outcome in as_group(log, scenario(stored)):
                kinds.add(type(outcome))
                if isinstance(outcome, AppendResult) and outcome.replayed:
                    kinds.add(bool)
    finally:
        log.close()
    assert {
        AppendResult,
        bool,
        IdempotencyConflict,
        VersionConflict,
        InvalidEvent,
        TargetConflict,
    } <= kinds


def test_concurrent_retries_of_one_event_store_it_once(tmp_path: Path) -> None:
    """Sixteen threads sending the same events, in whatever groups: one copy each, replays."""
    log = SQLiteEventLog(tmp_path / "retries.db")
    events = [make_new_event(f"s-{n % 4}") for n in range(40)]
    results: list[list[AppendResult]] = [[] for _ in range(16)]

    def worker(index: int) -> None:
        for event in events:
            results[index].append(log.append([copy(event)]))

    try:
        threads = [threading.Thread(target=worker, args=(i,)) for i in range(16)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
        assert log.head() == len(events)
        for got in results:
            assert [r.events for r in got] == [r.events for r in results[0]]
        assert sum(not r.replayed for got in results for r in got) == len(events)
        assert log.verify().ok
    finally:
        log.close()


class TestAnotherWriter:
    """Another connection holding the write lock: appends wait for it, on either path."""

    @staticmethod
    def hold_write_lock(path: Path, seconds: float) -> threading.Thread:
        conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        conn.execute("BEGIN IMMEDIATE")

        def release() -> None:
            time.sleep(seconds)
            conn.execute("ROLLBACK")
            conn.close()

        thread = threading.Thread(target=release)
        thread.start()
        return thread

    def test_a_group_tells_the_previous_one_then_waits(self, tmp_path: Path) -> None:
        log = SQLiteEventLog(tmp_path / "locked.db")
        told: list[bool] = []
        try:
            log.append([make_new_event("s")])
            holder = self.hold_write_lock(log.path, 0.3)
            request = AppendRequest(prepare_batch([make_new_event("s")]), None)
            log._commit_group([request], lambda: told.append(True))
            holder.join()
            request.future.deliver()
            assert request.future.result().head == 2
            assert told  # before it waited for the lock
        finally:
            log.close()

    def test_an_inline_append_after_a_writer_group_still_waits(self, tmp_path: Path) -> None:
        """The writer thread's zero busy timeout does not leak into an inline append."""
        log = SQLiteEventLog(tmp_path / "locked.db")
        try:
            request = AppendRequest(prepare_batch([make_new_event("s")]), None)
            log._commit_group([request], lambda: None)
            request.future.deliver()
            request.future.result()
            holder = self.hold_write_lock(log.path, 0.3)
            assert log.append([make_new_event("s")]).head == 2
            holder.join()
            holder = self.hold_write_lock(log.path, 0.3)
            assert log.append([make_new_event("s"), make_new_event("t")]).head == 4
            holder.join()
            assert log.verify().ok
        finally:
            log.close()


class TestABatchThatFailsTheGroup:
    """A batch that breaks the whole attempt (not an outcome of its own) fails alone."""

    @pytest.mark.parametrize(
        "bad",
        [
            pytest.param(lambda: [object()], id="not-an-event"),
            pytest.param(lambda: [make_new_event("poison")], id="sqlite-refuses-the-row"),
        ],
    )
    def test_only_its_caller_hears_of_it(self, tmp_path: Path, bad: Callable[[], Any]) -> None:
        log = SQLiteEventLog(tmp_path / "poison.db")
        with sqlite3.connect(log.path) as conn:  # SQLite itself refuses one stream's rows
            conn.execute(
                "CREATE TRIGGER poison BEFORE INSERT ON events WHEN NEW.stream = 'poison'"
                " BEGIN SELECT RAISE(ABORT, 'poisoned'); END"
            )
        try:
            good = [[make_new_event(f"s-{n}")] for n in range(6)]
            requests = [AppendRequest(prepare_batch(b), None) for b in good[:3]]
            requests.append(AppendRequest(bad(), None))
            requests += [AppendRequest(prepare_batch(b), None) for b in good[3:]]
            log._commit_group(requests, None)
            for request in requests:
                request.future.deliver()
            poisoned = requests.pop(3)
            with pytest.raises(StoreError, match="append failed"):
                poisoned.future.result()
            heads = [request.future.result().head for request in requests]
            assert heads == [1, 2, 3, 4, 5, 6]  # in the group's order, no gap
            assert log.head() == 6
            assert log.verify().ok
        finally:
            log.close()

    def test_a_busy_database_is_one_answer_not_one_wait_per_batch(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """Busy past the timeout is the database's state: one failure, not one wait a batch."""
        monkeypatch.setattr(sqlite_module, "BUSY_TIMEOUT_MS", 200)
        monkeypatch.setattr(sqlite_group_module, "BUSY_TIMEOUT_MS", 200)
        log = SQLiteEventLog(tmp_path / "busy.db")
        other = sqlite3.connect(log.path, isolation_level=None, check_same_thread=False)
        try:
            log.append([make_new_event("warm")])
            other.execute("BEGIN IMMEDIATE")
            requests = [
                AppendRequest(prepare_batch([make_new_event(f"b-{n}")]), None) for n in range(8)
            ]
            attempts: list[int] = []
            try_group = log._try_group

            def counted(group: list[AppendRequest], *args: Any, **kwargs: Any) -> bool:
                attempts.append(len(group))
                return try_group(group, *args, **kwargs)

            log._try_group = counted  # type: ignore[method-assign]
            log._commit_group(requests, None)
            for request in requests:
                request.future.deliver()
                with pytest.raises(StoreError, match="locked"):
                    request.future.result()
            assert attempts == [8], attempts  # each attempt waits a whole busy timeout
        finally:
            other.execute("ROLLBACK")
            other.close()
            log.close()

    def test_through_the_awaited_path_too(self, tmp_path: Path) -> None:
        """Eight callers on one loop and a bad one among them: the eight are committed.

        The bad one a row SQLite refuses (a trigger), so it reaches the writer's group; a
        batch that is no events at all is refused before it queues (`InvalidEvent`).
        """
        log = SQLiteEventLog(tmp_path / "poison.db")
        with sqlite3.connect(log.path) as conn:
            conn.execute(
                "CREATE TRIGGER poison BEFORE INSERT ON events WHEN NEW.stream = 'poison'"
                " BEGIN SELECT RAISE(ABORT, 'poisoned'); END"
            )

        async def main() -> list[Any]:
            calls = [log.append_awaited([make_new_event(f"g-{n}")]) for n in range(8)]
            calls.insert(4, log.append_awaited([make_new_event("poison")]))
            calls.append(log.append_awaited([object()]))  # type: ignore[list-item]
            return await asyncio.wait_for(asyncio.gather(*calls, return_exceptions=True), 30)

        try:
            results = asyncio.run(main())
            assert isinstance(results.pop(), InvalidEvent)
            assert isinstance(results.pop(4), StoreError)
            assert sorted(r.head for r in results) == list(range(1, 9))
            assert log.verify().ok
        finally:
            log.close()
