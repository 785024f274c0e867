"""`SQLiteEventLog.append_awaited`: an append a coroutine awaits, committed by the writer."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any, TypeVar

import pytest
from conformance.builders import event, retraction, site

from events import awaitable
from events.envelope import AppendResult, NewEvent
from events.errors import (
    IdempotencyConflict,
    InvalidEvent,
    StoreError,
    TargetConflict,
    VersionConflict,
)
from events.sqlite import SQLiteEventLog

MakeEvent = Callable[..., NewEvent]
T = TypeVar("T")


def bounded(work: Coroutine[Any, Any, T]) -> Coroutine[Any, Any, T]:
    """A test's coroutine, failing (not hanging) if an outcome never reaches the loop."""
    return asyncio.wait_for(work, timeout=60)


@pytest.fixture
def log(db_path: Path) -> Any:
    log = SQLiteEventLog(db_path)
    yield log
    log.close()


def _spy_commits(log: SQLiteEventLog, monkeypatch: pytest.MonkeyPatch) -> list[tuple[int, str]]:
    """Record (group size, thread name) of every group the log commits."""
    seen: list[tuple[int, str]] = []
    commit = log._commit_group

    def spy(group: Any, ready: Any) -> None:
        seen.append((len(group), threading.current_thread().name))
        commit(group, ready)

    monkeypatch.setattr(log._writer, "_commit_group", spy)
    return seen


class TestAwaitedAppend:
    def test_concurrent_appends_share_groups_off_the_loop_thread(
        self, log: SQLiteEventLog, make_event: MakeEvent, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """16 coroutines appending at once: all land gap-free, in fewer groups, none on the loop."""
        groups = _spy_commits(log, monkeypatch)
        batches = [[make_event(f"s-{n}")] for n in range(16)]
        wakeups: list[object] = []

        async def main() -> tuple[list[AppendResult], str]:
            loop = asyncio.get_running_loop()
            call_soon_threadsafe = loop.call_soon_threadsafe

            def counted(callback: Any, *args: Any, **kwargs: Any) -> Any:
                wakeups.append(callback)
                return call_soon_threadsafe(callback, *args, **kwargs)

            monkeypatch.setattr(loop, "call_soon_threadsafe", counted)
            results = await asyncio.gather(*(log.append_awaited(batch) for batch in batches))
            return list(results), threading.current_thread().name

        results, loop_thread = asyncio.run(bounded(main()))
        assert [r.events[0].position for r in results] == list(range(1, 17))
        assert [r.events[0].event_id for r in results] == [b[0].event_id for b in batches]
        assert all(not r.replayed and r.head == r.events[0].position for r in results)
        assert log.head() == 16
        assert log.verify().ok
        assert sum(size for size, _ in groups) == 16
        assert len(groups) < 16  # grouped: the batches waited together
        assert {thread for _, thread in groups} == {log._writer._thread.name}
        assert loop_thread not in {thread for _, thread in groups}
        assert 1 <= len(wakeups) <= len(groups)  # one wake-up of the loop per group at most

    def test_conflicts_and_replays_reach_their_own_caller(
        self, log: SQLiteEventLog, make_event: MakeEvent
    ) -> None:
        """In one group, a conflict fails only its batch; a stored batch answers replayed."""
        stored = [make_event("kept")]
        first = log.append(stored)
        reused = make_event("other", event_id=stored[0].event_id)

        async def main() -> list[AppendResult | BaseException]:
            return await asyncio.gather(
                log.append_awaited([make_event("kept")], {"kept": 0}),
                log.append_awaited(stored),
                log.append_awaited([reused]),
                log.append_awaited([make_event("fresh")], {"fresh": 0}),
                return_exceptions=True,
            )

        conflict, replay, reuse, fresh = asyncio.run(bounded(main()))
        assert isinstance(conflict, VersionConflict)
        assert isinstance(replay, AppendResult)
        assert replay.replayed
        assert replay.events == first.events
        assert isinstance(reuse, IdempotencyConflict)
        assert isinstance(fresh, AppendResult)
        assert fresh.events[0].position == 2
        assert log.head() == 2

    def test_a_closed_log_refuses(self, db_path: Path, make_event: MakeEvent) -> None:
        """After close, an awaited append raises `StoreError` at once."""
        log = SQLiteEventLog(db_path)
        log.close()
        with pytest.raises(StoreError, match="closed"):
            asyncio.run(log.append_awaited([make_event()]))

    def test_close_finishes_appends_in_flight(self, db_path: Path, make_event: MakeEvent) -> None:
        """Appends queued when the log closes are committed and answered, not dropped."""
        log = SQLiteEventLog(db_path)

        async def main() -> list[AppendResult]:
            pending = [
                asyncio.ensure_future(log.append_awaited([make_event(f"c-{n}")])) for n in range(8)
            ]
            await asyncio.sleep(0)  # the tasks start: each batch is queued at that turn's end
            await asyncio.sleep(0)  # every batch is queued
            await asyncio.get_running_loop().run_in_executor(None, log.close)
            return list(await asyncio.gather(*pending))

        results = asyncio.run(bounded(main()))
        assert sorted(r.events[0].position for r in results) == list(range(1, 9))
        reopened = SQLiteEventLog(db_path)
        try:
            assert reopened.head() == 8
        finally:
            reopened.close()

    def test_a_failed_commit_fails_every_caller_of_the_group(
        self, log: SQLiteEventLog, make_event: MakeEvent, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """An error inside the commit reaches each awaiting caller as a `StoreError`."""

        def broken(group: Any, ready: Any) -> None:
            msg = "disk on fire"
            raise OSError(msg)

        monkeypatch.setattr(log._writer, "_commit_group", broken)

        async def main() -> list[AppendResult | BaseException]:
            batches = ([make_event()] for _ in range(3))
            return await asyncio.gather(
                *(log.append_awaited(b) for b in batches), return_exceptions=True
            )

        errors = asyncio.run(bounded(main()))
        assert all(isinstance(e, StoreError) and "disk on fire" in str(e) for e in errors)

    def test_an_outcome_for_a_closed_loop_is_dropped(self) -> None:
        """Delivering to a loop that is gone must not raise on the writer thread."""
        loop = asyncio.new_event_loop()
        outcome = awaitable.LoopOutcome(awaitable.LoopWaker(loop))
        loop.close()
        outcome.set_exception(StoreError("late"))
        outcome.deliver()
        outcome.wake()  # no exception


class TestWriterFailure:
    @pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")
    def test_a_writer_that_dies_fails_what_waits_instead_of_hanging(
        self, log: SQLiteEventLog, make_event: MakeEvent, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """If the writer thread ever died, its appends fail with a `StoreError`, none hangs."""
        writer = log._writer

        def broken(*_: Any) -> None:
            msg = "boom"
            raise RuntimeError(msg)

        monkeypatch.setattr(writer, "_commit", broken)

        async def main() -> list[Any]:
            with writer._busy:  # both queue behind a commit in progress
                first = asyncio.ensure_future(log.append_awaited([make_event("a")]))
                second = asyncio.ensure_future(log.append_awaited([make_event("b")]))
                await asyncio.sleep(0.05)
            return await asyncio.gather(first, second, return_exceptions=True)

        outcomes = asyncio.run(bounded(main()))
        assert [type(o) for o in outcomes] == [StoreError, StoreError]
        assert "writer stopped" in str(outcomes[0])
        with pytest.raises(StoreError, match="closed"):
            log.append([make_event("c")])
        assert log.head() == 0


class TestTwoHandlesThroughTheWriter:
    def test_turns_of_two_handles_keep_positions_versions_and_records_right(
        self, db_path: Path
    ) -> None:
        """Each awaited append starts from a head the other handle has moved on since.

        The writer plans a group from its handle's last commit, reads outside a transaction
        and writes it as one statement: the other handle's append in between must send it
        back to plan again, never let it store a gap, a fork of the chain, a stale stream
        version or a second retraction.
        """
        first, second = SQLiteEventLog(db_path), SQLiteEventLog(db_path)
        try:

            async def main() -> list[object]:
                outcomes: list[object] = []
                targets = []
                for turn in range(12):
                    handle = first if turn % 2 == 0 else second
                    target = event(f"site-{turn}", site(f"site-{turn}"))
                    result = await handle.append_awaited(
                        [target, event("shared")], {"shared": turn}
                    )
                    outcomes.append(result.head)
                    targets.append(target.event_id)
                for turn, target_id in enumerate(targets):  # each retracted by both, in turn
                    for handle in (first, second) if turn % 2 else (second, first):
                        try:
                            await handle.append_awaited([retraction(target_id)])
                        except TargetConflict:
                            outcomes.append("refused")
                        else:
                            outcomes.append("stored")
                return outcomes

            outcomes = asyncio.run(bounded(main()))
        finally:
            second.close()
        try:
            assert outcomes[:12] == [2 * (turn + 1) for turn in range(12)]
            assert outcomes[12:] == ["stored", "refused"] * 12
            assert first.head() == 24 + 12
            assert [e.stream_version for e in first.stream("shared")[0]] == list(range(1, 13))
            assert [e.position for e in first.iter_events()] == list(range(1, 37))
            assert first.verify().ok
        finally:
            first.close()


@pytest.mark.parametrize(
    "expected",
    [{b"kept": 0}, {5: 0}, {None: 0}, {"kept": True}, {"kept": "0"}],
    ids=["bytes-name", "int-name", "no-name", "bool-version", "text-version"],
)
def test_a_malformed_expected_versions_fails_only_its_own_batch(
    log: SQLiteEventLog, make_event: MakeEvent, expected: dict[Any, Any]
) -> None:
    """Through the Python API (HTTP checks these first): one bad entry, one caller refused.

    The three appends are queued in one turn of the loop, so they share a group: the
    others are stored, and the bad one is `InvalidEvent` naming the entry, not an error of
    the store that would fail the whole group.
    """

    async def main() -> list[AppendResult | BaseException]:
        futures = [
            log.append_future([make_event("one")]),
            log.append_future([make_event("kept")], expected),
            log.append_future([make_event("three")]),
        ]
        return await asyncio.gather(*futures, return_exceptions=True)

    first, bad, third = asyncio.run(bounded(main()))
    assert isinstance(bad, InvalidEvent)
    assert bad.path.startswith("$.expected_versions[")
    assert isinstance(first, AppendResult)
    assert isinstance(third, AppendResult)
    assert sorted([first.head, third.head]) == [1, 2]
    assert log.head() == 2
    assert log.verify().ok


def test_two_retractions_of_one_event_in_one_group_store_one(log: SQLiteEventLog) -> None:
    """Two retractions of one event in one group: the second sees the first, and is refused.

    Queued in one turn of the loop, they share a group, planned on the writer's optimistic
    path (its reads on their own, its rows one `INSERT`).
    """
    target = event("site-a", site())
    log.append([target])

    async def main() -> list[AppendResult | BaseException]:
        futures = [log.append_future([retraction(target.event_id)]) for _ in range(2)]
        return await asyncio.gather(*futures, return_exceptions=True)

    first, second = asyncio.run(bounded(main()))
    assert isinstance(first, AppendResult)
    assert isinstance(second, TargetConflict)
    assert log.head() == 2
    assert log.verify().ok
