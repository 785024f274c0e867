"""Concurrency: expected versions raced by threads and processes, gap-free positions, readers."""

from __future__ import annotations

import multiprocessing
import queue
import random
import threading
import time
from collections.abc import Sequence
from typing import Any

import pytest

from conformance.base import ConformanceBase
from conformance.builders import Opener, all_events, event, run_threads
from events.envelope import NewEvent
from events.errors import VersionConflict
from events.log import EventLog


def race_worker(  # noqa: PLR0913 - what a racing process needs, as Process args
    opener: Opener,
    name: str,
    batches: Sequence[NewEvent],
    streams: Sequence[str],
    barrier: Any,
    results: Any,
) -> None:
    """In a spawned process: open the log, then race the other process round by round."""
    log = opener()
    try:
        for number, (new, stream) in enumerate(zip(batches, streams, strict=True)):
            barrier.wait(timeout=60)
            try:
                log.append([new], expected_versions={stream: 0})
            except VersionConflict:
                outcome = "conflict"
            except Exception as exc:  # noqa: BLE001 - reported to the parent as it is
                outcome = f"error: {exc!r}"
            else:
                outcome = "won"
            results.put((name, number, outcome))
    finally:
        log.close()


class ExpectedVersions(ConformanceBase):
    """Optimistic concurrency: `expected_versions`, and one winner among racers."""

    def test_expected_version_zero_means_the_stream_must_not_exist(self, log: EventLog) -> None:
        """Version 0 creates a stream once; the second try is a conflict that reports version 1."""
        log.append([event("site-daejeon")], expected_versions={"site-daejeon": 0})
        with pytest.raises(VersionConflict) as caught:
            log.append([event("site-daejeon")], expected_versions={"site-daejeon": 0})
        assert (caught.value.stream, caught.value.expected, caught.value.actual) == (
            "site-daejeon",
            0,
            1,
        )
        assert log.head() == 1

    @pytest.mark.parametrize(("stored", "expected"), [(0, 1), (2, 1), (2, 3), (3, 0)])
    def test_a_wrong_expected_version_is_a_conflict(
        self, log: EventLog, stored: int, expected: int
    ) -> None:
        """A stream at another version than expected refuses the batch and says the actual one."""
        for _ in range(stored):
            log.append([event("site-songdo")])
        with pytest.raises(VersionConflict) as caught:
            log.append([event("site-songdo")], expected_versions={"site-songdo": expected})
        assert caught.value.actual == stored
        assert log.head() == stored

    @pytest.mark.parametrize("stored", [0, 1, 4])
    def test_the_right_expected_version_appends(self, log: EventLog, stored: int) -> None:
        """A batch expecting a stream's current version gets the next versions."""
        for _ in range(stored):
            log.append([event("site-songdo")])
        result = log.append(
            [event("site-songdo"), event("site-songdo")], expected_versions={"site-songdo": stored}
        )
        assert [c.stream_version for c in result.events] == [stored + 1, stored + 2]

    def test_expected_versions_may_name_streams_outside_the_batch(self, log: EventLog) -> None:
        """A batch may be conditional on a stream it does not write to."""
        log.append([event("guard")])
        with pytest.raises(VersionConflict):
            log.append([event("target")], expected_versions={"guard": 0})
        result = log.append([event("target")], expected_versions={"guard": 1})
        assert result.events[0].position == 2

    @pytest.mark.parametrize("expected", [0, 3])
    @pytest.mark.parametrize("separate_handles", [False, True], ids=["one-handle", "two-handles"])
    def test_one_winner_among_racing_threads(
        self, log: EventLog, expected: int, separate_handles: bool
    ) -> None:
        """Two threads appending with the same expected version: one wins, one conflicts."""
        rounds = 15
        other = self.open_again(log) if separate_handles else log
        try:
            handles = (log, other)
            for number in range(rounds):
                stream = f"race-{number}"
                for _ in range(expected):
                    log.append([event(stream)])
                outcomes: list[str] = []
                barrier = threading.Barrier(2)

                def work(
                    index: int,
                    stream: str = stream,
                    outcomes: list[str] = outcomes,
                    barrier: threading.Barrier = barrier,
                ) -> None:
                    barrier.wait(timeout=30)
                    try:
                        handles[index].append([event(stream)], expected_versions={stream: expected})
                    except VersionConflict:
                        outcomes.append("conflict")
                    else:
                        outcomes.append("won")

                run_threads(work, 2)
                assert sorted(outcomes) == ["conflict", "won"]
                assert log.stream(stream)[1] == expected + 1
        finally:
            if other is not log:
                other.close()
        assert log.head() == rounds * (expected + 1)
        assert log.verify().ok

    @pytest.mark.slow
    def test_one_winner_among_racing_processes(self, log: EventLog) -> None:
        """Two processes, each with its own handle, racing on new streams: one winner a round."""
        rounds = 8
        log.append([event("before")])  # this handle's view goes stale while the others write
        ctx = multiprocessing.get_context("spawn")
        barrier = ctx.Barrier(2)
        results = ctx.Queue()
        streams = [f"race-{n}" for n in range(rounds)]
        workers = [
            ctx.Process(
                target=race_worker,
                args=(
                    self.opener(log),
                    name,
                    [event(s) for s in streams],
                    streams,
                    barrier,
                    results,
                ),
            )
            for name in ("first", "second")
        ]
        for worker in workers:
            worker.start()
        outcomes: dict[int, list[str]] = {}
        try:
            for _ in range(2 * rounds):
                _name, number, outcome = results.get(timeout=90)
                outcomes.setdefault(number, []).append(outcome)
        finally:
            for worker in workers:
                worker.join(timeout=30)
                if worker.is_alive():
                    worker.kill()
        assert [w.exitcode for w in workers] == [0, 0]
        assert {n: sorted(o) for n, o in outcomes.items()} == {
            n: ["conflict", "won"] for n in range(rounds)
        }
        assert log.head() == rounds + 1
        after = log.append([event("after")])
        assert after.events[0].position == rounds + 2
        assert log.verify().ok


class ConcurrentAppends(ConformanceBase):
    """Concurrent appends get gap-free positions; a tailing reader sees each one once."""

    def test_concurrent_appends_get_positions_one_to_n(self, log: EventLog) -> None:
        """4 threads x 250 single appends: positions exactly 1..1000, stream versions gap-free."""
        threads, each = 4, 250
        acked: dict[str, int] = {}
        lock = threading.Lock()

        def work(index: int) -> None:
            for _ in range(each):
                new = event(f"shared-{index % 2}")
                result = log.append([new])
                with lock:
                    acked[new.event_id] = result.events[0].position

        run_threads(work, threads)
        total = threads * each
        assert sorted(acked.values()) == list(range(1, total + 1))
        assert log.head() == total
        stored = all_events(log)
        assert [e.position for e in stored] == list(range(1, total + 1))
        assert {e.event_id: e.position for e in stored} == acked
        for name in ("shared-0", "shared-1"):
            events, version = log.stream(name)
            assert [e.stream_version for e in events] == list(range(1, total // 2 + 1))
            assert version == total // 2
        result = log.verify()
        assert (result.ok, result.head, result.checked) == (True, total, total)

    def test_a_tailing_reader_misses_nothing_and_sees_nothing_twice(self, log: EventLog) -> None:
        """A reader of `read(after=N)` during appends sees every position once, in order."""
        writers, each = 3, 60
        acked: set[str] = set()
        lock = threading.Lock()
        done = threading.Event()
        seen: list[tuple[int, str]] = []
        errors: queue.SimpleQueue[str] = queue.SimpleQueue()

        def tail() -> None:
            deadline = time.monotonic() + 60
            last = 0
            while time.monotonic() < deadline:
                finished = done.is_set()
                page = log.read(after=last, limit=7)
                for e in page:
                    if e.position != last + 1:
                        errors.put(f"read after {last} gave position {e.position}")
                    last = e.position
                    seen.append((e.position, e.event_id))
                if finished and not page:
                    return

        def work(index: int) -> None:
            rng = random.Random(index)
            for _ in range(each):
                batch = [event(f"tail-{index}") for _ in range(rng.randint(1, 3))]
                log.append(batch)
                with lock:
                    acked.update(e.event_id for e in batch)

        reader = threading.Thread(target=tail)
        reader.start()
        try:
            run_threads(work, writers)
        finally:
            done.set()
            reader.join(timeout=90)
        assert not reader.is_alive()
        assert errors.empty()
        assert [p for p, _ in seen] == list(range(1, len(acked) + 1))
        assert {i for _, i in seen} == acked
