"""The conformance suite every `EventLog` backend passes (DESIGN §6), through the protocol only.

A backend's test module subclasses `EventLogConformance` once and gives `make_log` (a new,
empty log) and `opener` (a picklable callable opening another handle on the same store, in
another thread or another process).
"""

from __future__ import annotations

import abc
import itertools
import multiprocessing
import queue
import random
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any, NamedTuple

import msgspec
import pytest

from events.codec import GENESIS
from events.envelope import NewEvent, Source
from events.errors import (
    IdempotencyConflict,
    InvalidEvent,
    LedgerError,
    TargetConflict,
    VersionConflict,
)
from events.ids import uuid7
from events.log import EventLog
from events.payloads import (
    AnyPayload,
    EventCorrected,
    EventRetracted,
    Location,
    Money,
    OrganizationRegistered,
    SiteAcquired,
)

SOURCE = Source(url="urn:test:conformance", quote="The sentence that supports it.")
Opener = Callable[[], EventLog]


def event(  # noqa: PLR0913 - the envelope's fields
    stream: str,
    data: AnyPayload | None = None,
    *,
    event_id: str | None = None,
    occurred_on: str = "2024-05-31",
    sequence: int | None = None,
    source: Source = SOURCE,
) -> NewEvent:
    """A valid new event; by default an organization with a unique id."""
    if data is None:
        slug = uuid7()
        data = OrganizationRegistered(id=f"org-{slug}", name=f"Organization {slug}")
    return NewEvent(
        event_id=event_id or uuid7(),
        stream=stream,
        type=data.TYPE,
        occurred_on=occurred_on,
        sequence=sequence,
        data=data,
        source=source,
    )


def site(name: str = "east-syracuse", amount: str = "160000000") -> SiteAcquired:
    """A site acquisition with a price, the payload that corrections in this suite target."""
    return SiteAcquired(
        site=name,
        name="Former production facility",
        location=Location(city="East Syracuse", region="New York", country="US"),
        acquirer="lotte-biologics",
        seller="bristol-myers-squibb",
        price=Money(amount=Decimal(amount), currency="USD"),
    )


def correction(target: str, replacement: Mapping[str, Any], stream: str = "record") -> NewEvent:
    """A correction of `target` by `replacement` (plain JSON values)."""
    data = EventCorrected(corrects=target, replacement=dict(replacement), reason="a typo")
    return event(stream, data)


def retraction(target: str, stream: str = "record") -> NewEvent:
    """A retraction of `target`."""
    return event(stream, EventRetracted(retracts=target, reason="not true"))


def site_builtins(amount: str = "160000000") -> dict[str, Any]:
    """The plain JSON values of `site()`, for building replacements."""
    value: dict[str, Any] = msgspec.to_builtins(site(amount=amount))
    return value


def all_events(log: EventLog) -> list[Any]:
    """Every event of the log, in order, through `read` pages."""
    out: list[Any] = []
    while page := log.read(after=out[-1].position if out else 0, limit=500):
        out.extend(page)
    return out


class Prior(NamedTuple):
    """What a log holds before an atomicity case runs."""

    site: NewEvent
    retracted: NewEvent
    retraction: NewEvent


BatchCase = Callable[[Prior], tuple[list[NewEvent], dict[str, int] | None]]


def _mid(bad: NewEvent) -> list[NewEvent]:
    return [event("batch-a"), bad, event("batch-b")]


BATCH_CASES: dict[str, tuple[BatchCase, type[LedgerError]]] = {
    "correction of an unknown id": (
        lambda _: (_mid(correction(uuid7(), site_builtins())), None),
        TargetConflict,
    ),
    "retraction of an unknown id": (lambda _: (_mid(retraction(uuid7())), None), TargetConflict),
    "retraction of an already retracted event": (
        lambda p: (_mid(retraction(p.retracted.event_id)), None),
        TargetConflict,
    ),
    "retraction of a retraction": (
        lambda p: (_mid(retraction(p.retraction.event_id)), None),
        TargetConflict,
    ),
    "the same retraction twice in the batch": (
        lambda p: (
            [event("batch-a"), retraction(p.site.event_id), retraction(p.site.event_id)],
            None,
        ),
        TargetConflict,
    ),
    "a replacement that does not validate": (
        lambda p: (_mid(correction(p.site.event_id, {**site_builtins(), "site": "Bad Id"})), None),
        InvalidEvent,
    ),
    "a version conflict on the middle event's stream": (
        lambda p: (_mid(event(p.site.stream)), {"batch-a": 0, p.site.stream: 7, "batch-b": 0}),
        VersionConflict,
    ),
    "an event id already stored with other content": (
        lambda p: (_mid(event("batch-m", event_id=p.site.event_id)), None),
        IdempotencyConflict,
    ),
    "an event id already stored, the rest new": (
        lambda p: (_mid(p.site), None),
        IdempotencyConflict,
    ),
    "a type that does not match its data": (
        lambda _: (_mid(msgspec.structs.replace(event("batch-m"), type="site_acquired")), None),
        InvalidEvent,
    ),
    "an event id twice in the batch": (
        lambda _: (_twice(), None),
        InvalidEvent,
    ),
}


def _twice() -> list[NewEvent]:
    first = event("batch-a")
    return [first, event("batch-m"), event("batch-b", event_id=first.event_id)]


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


class EventLogConformance(abc.ABC):
    """Every guarantee of the `EventLog` protocol; subclass once per backend."""

    @abc.abstractmethod
    def make_log(self, tmp_path: Path) -> EventLog:
        """A new, empty log of the backend."""

    @abc.abstractmethod
    def opener(self, log: EventLog) -> Opener:
        """A picklable callable opening another handle on the same store as `log`."""

    def open_again(self, log: EventLog) -> EventLog:
        """Another handle on the same store (closed by the caller)."""
        return self.opener(log)()

    @pytest.fixture
    def log(self, tmp_path: Path) -> Iterator[EventLog]:
        """A new, empty log, closed after the test."""
        log = self.make_log(tmp_path)
        try:
            yield log
        finally:
            log.close()

    # -- the protocol, the empty log ---------------------------------------------------

    def test_is_an_event_log(self, log: EventLog) -> None:
        """The backend implements the `EventLog` protocol."""
        assert isinstance(log, EventLog)

    def test_empty_log(self, log: EventLog) -> None:
        """A new log has head 0, reads nothing and verifies."""
        assert log.head() == 0
        assert log.read() == []
        assert list(log.iter_events()) == []
        result = log.verify()
        assert (result.ok, result.head, result.checked) == (True, 0, 0)

    def test_empty_batch_is_refused(self, log: EventLog) -> None:
        """A batch without events is invalid."""
        with pytest.raises(InvalidEvent):
            log.append([])
        assert log.head() == 0

    # -- atomic batches ----------------------------------------------------------------

    @pytest.mark.parametrize("case", list(BATCH_CASES))
    def test_failing_event_in_a_batch_leaves_no_trace(self, log: EventLog, case: str) -> None:
        """A batch with one failing event writes none of its events and leaves no gap."""
        retracted = event("other")
        prior = Prior(
            event("site-east-syracuse", site()), retracted, retraction(retracted.event_id)
        )
        log.append([prior.site, prior.retracted, prior.retraction])
        head = log.head()
        build, error = BATCH_CASES[case]
        batch, expected = build(prior)

        with pytest.raises(error):
            log.append(batch, expected_versions=expected)

        assert log.head() == head
        assert log.read(after=head) == []
        prior_ids = {prior.site.event_id, prior.retracted.event_id, prior.retraction.event_id}
        for new in batch:
            if new.event_id not in prior_ids:
                assert log.get(new.event_id) is None
        assert log.stream("batch-a") == ([], 0)
        assert log.stream(prior.site.stream)[1] == 1
        assert log.verify().ok
        after = log.append([event("batch-a"), event("batch-b")])
        assert [c.position for c in after.events] == [head + 1, head + 2]

    def test_failing_appends_do_not_spoil_concurrent_ones(self, log: EventLog) -> None:
        """Valid appends racing invalid ones (perhaps in one commit group) all land, gap-free."""
        threads, rounds = 6, 20
        acked: list[int] = []
        refused: list[str] = []
        lock = threading.Lock()
        barrier = threading.Barrier(threads)

        def work(index: int) -> None:
            barrier.wait(timeout=30)
            for _ in range(rounds):
                new = event(f"mixed-{index}")
                bad = index % 2 == 1
                batch = [new, retraction(uuid7())] if bad else [new]
                try:
                    result = log.append(batch)
                except TargetConflict:
                    with lock:
                        refused.append(new.event_id)
                else:
                    with lock:
                        acked.extend(c.position for c in result.events)

        _run_threads(work, threads)
        total = (threads // 2) * rounds
        assert sorted(acked) == list(range(1, total + 1))
        assert len(refused) == (threads - threads // 2) * rounds
        assert all(log.get(event_id) is None for event_id in refused)
        assert log.head() == total
        assert log.verify().ok

    @pytest.mark.parametrize("index", [0, 2])
    def test_a_type_that_does_not_match_its_data_is_refused(
        self, log: EventLog, index: int
    ) -> None:
        """An event whose `type` is not its payload's tag is refused at `$[i].type`."""
        batch = [event("a"), event("b"), event("c")]
        batch[index] = msgspec.structs.replace(batch[index], type="memorandum_signed")
        with pytest.raises(InvalidEvent) as caught:
            log.append(batch)
        assert caught.value.path == f"$[{index}].type"
        assert log.head() == 0
        assert log.read() == []

    # -- optimistic concurrency ----------------------------------------------------------

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

                _run_threads(work, 2)
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

    # -- idempotency -----------------------------------------------------------------------

    @pytest.mark.parametrize("size", [1, 3])
    def test_a_replayed_batch_returns_the_original_places(self, log: EventLog, size: int) -> None:
        """The same event ids with the same content: same positions, `replayed`, nothing written."""
        log.append([event("before")])
        batch = [event("replayed", site(f"site-{n}")) for n in range(size)]
        first = log.append(batch)
        log.append([event("after")])

        again = log.append([msgspec.structs.replace(e) for e in batch])

        assert again.replayed
        assert not first.replayed
        assert again.events == first.events
        assert again.head == log.head() == size + 2
        assert log.stream("replayed")[1] == size

    def test_a_replay_with_the_same_expected_versions_is_still_a_replay(
        self, log: EventLog
    ) -> None:
        """A retried conditional batch answers its original places, not a version conflict."""
        new = event("conditional")
        first = log.append([new], expected_versions={"conditional": 0})
        again = log.append([new], expected_versions={"conditional": 0})
        assert again.replayed
        assert again.events == first.events
        assert log.head() == 1

    @pytest.mark.parametrize(
        "change",
        [
            {"data": site(amount="1")},
            {"type": "organization_registered", "data": OrganizationRegistered(id="o", name="O")},
            {"stream": "elsewhere"},
            {"occurred_on": "2024-05"},
            {"sequence": 1},
            {"source": Source(url="urn:test:conformance", quote="Another sentence.")},
            {"source": Source(url="urn:test:other", quote="The sentence that supports it.")},
        ],
        ids=["amount", "type", "stream", "occurred_on", "sequence", "quote", "url"],
    )
    def test_the_same_id_with_other_content_is_a_conflict(
        self, log: EventLog, change: dict[str, Any]
    ) -> None:
        """A stored event id sent again with other content is refused and nothing is written."""
        original = event("site-east-syracuse", site())
        log.append([original])
        with pytest.raises(IdempotencyConflict) as caught:
            log.append([msgspec.structs.replace(original, **change)])
        assert caught.value.event_id == original.event_id
        assert log.head() == 1
        stored = log.get(original.event_id)
        assert stored is not None
        assert (stored.data, stored.source, stored.stream) == (
            original.data,
            original.source,
            original.stream,
        )

    # -- concurrency: gap-free positions, readers ------------------------------------------

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

        _run_threads(work, threads)
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
            _run_threads(work, writers)
        finally:
            done.set()
            reader.join(timeout=90)
        assert not reader.is_alive()
        assert errors.empty()
        assert [p for p, _ in seen] == list(range(1, len(acked) + 1))
        assert {i for _, i in seen} == acked

    # -- reads -------------------------------------------------------------------------------

    def test_get_of_an_unknown_id_is_none(self, log: EventLog) -> None:
        """`get` answers None for an id never stored."""
        log.append([event("some")])
        assert log.get(uuid7()) is None

    def test_get_returns_the_envelope_as_sent(self, log: EventLog) -> None:
        """A stored event reads back with its content and the ledger-set fields."""
        sent = event("site-east-syracuse", site(), occurred_on="2022", sequence=1)
        result = log.append([event("first"), sent])
        stored = log.get(sent.event_id)
        assert stored is not None
        assert (stored.event_id, stored.stream, stored.type, stored.occurred_on) == (
            sent.event_id,
            sent.stream,
            "site_acquired",
            "2022",
        )
        assert (stored.sequence, stored.data, stored.source) == (1, sent.data, sent.source)
        assert (stored.position, stored.stream_version) == (2, 1)
        assert stored.recorded_at == result.events[1].recorded_at
        assert stored.recorded_at.utcoffset() is not None

    def test_stream_returns_versions_one_to_n(self, log: EventLog) -> None:
        """`stream` gives a stream's events with versions 1..n, not disturbed by other streams."""
        for n in range(5):
            log.append([event("mine"), event(f"other-{n}")])
        log.append([event("mine"), event("mine")])
        events, version = log.stream("mine")
        assert [e.stream_version for e in events] == list(range(1, 8))
        assert version == 7
        assert [e.position for e in events] == sorted(e.position for e in events)
        assert all(e.stream == "mine" for e in events)
        assert log.stream("nobody") == ([], 0)

    @pytest.mark.parametrize(
        ("kwargs", "expected"),
        [
            ({}, [1, 2, 3, 4, 5, 6]),
            ({"after": 2}, [3, 4, 5, 6]),
            ({"after": 6}, []),
            ({"limit": 2}, [1, 2]),
            ({"after": 1, "limit": 3}, [2, 3, 4]),
            ({"stream": "site-a"}, [1, 3, 5]),
            ({"stream": "site-a", "after": 1}, [3, 5]),
            ({"stream": "nobody"}, []),
            ({"types": ["site_acquired"]}, [1, 4]),
            ({"types": ["site_acquired", "event_retracted"]}, [1, 4, 6]),
            ({"types": ["event_corrected"]}, []),
            ({"stream": "site-a", "types": ["organization_registered"]}, [3, 5]),
            ({"stream": "site-a", "types": ["site_acquired"], "limit": 1}, [1]),
        ],
    )
    def test_read_filters(self, log: EventLog, kwargs: dict[str, Any], expected: list[int]) -> None:
        """`read` selects by position, stream and types, in order, at most `limit`."""
        first = event("site-a", site("site-a"))
        log.append([first, event("site-b"), event("site-a")])
        log.append([event("site-b", site("site-b")), event("site-a")])
        log.append([retraction(first.event_id, stream="site-b")])
        assert [e.position for e in log.read(**kwargs)] == expected

    @pytest.mark.parametrize(
        ("after", "upto", "expected"),
        [(0, None, range(1, 41)), (10, None, range(11, 41)), (5, 9, range(6, 10)), (40, None, [])],
    )
    def test_iter_events_yields_in_order(
        self, log: EventLog, after: int, upto: int | None, expected: Sequence[int]
    ) -> None:
        """`iter_events` yields every event after `after` (up to `upto`) in position order."""
        sent = [event(f"s-{n % 3}") for n in range(40)]
        for start in range(0, 40, 8):
            log.append(sent[start : start + 8])
        got = list(log.iter_events(after=after, upto=upto))
        assert [e.position for e in got] == list(expected)
        assert [e.event_id for e in got] == [sent[p - 1].event_id for p in expected]

    def test_the_chain_links_every_event_to_the_previous(self, log: EventLog) -> None:
        """Each event's `prev_hash` is its predecessor's `hash`; recorded_at never goes back."""
        for size in (1, 3, 2):
            log.append([event("chain") for _ in range(size)])
        events = list(log.iter_events())
        assert events[0].prev_hash == GENESIS
        for before, after in itertools.pairwise(events):
            assert after.prev_hash == before.hash
            assert after.recorded_at >= before.recorded_at
        assert len({e.hash for e in events}) == len(events)

    def test_a_reopened_log_holds_everything(self, log: EventLog) -> None:
        """What one handle appended, another handle opened later reads and extends."""
        sent = [event("kept") for _ in range(5)]
        log.append(sent)
        other = self.open_again(log)
        try:
            assert [e.event_id for e in other.iter_events()] == [e.event_id for e in sent]
            assert other.append([event("kept")]).events[0].stream_version == 6
        finally:
            other.close()
        assert log.head() == 6

    # -- corrections and retractions ---------------------------------------------------------

    def test_a_retraction_twice_is_a_target_conflict(self, log: EventLog) -> None:
        """An event retracted once cannot be retracted again."""
        target = event("site-a", site())
        log.append([target])
        log.append([retraction(target.event_id)])
        again = retraction(target.event_id)
        with pytest.raises(TargetConflict):
            log.append([again])
        assert log.get(again.event_id) is None
        assert log.head() == 2

    @pytest.mark.parametrize("kind", ["correction", "retraction"])
    def test_a_record_event_of_an_unknown_target_is_a_target_conflict(
        self, log: EventLog, kind: str
    ) -> None:
        """A correction or retraction of an id never stored is refused."""
        log.append([event("site-a", site())])
        bad = correction(uuid7(), site_builtins()) if kind == "correction" else retraction(uuid7())
        with pytest.raises(TargetConflict):
            log.append([bad])
        assert log.head() == 1

    @pytest.mark.parametrize(
        ("change", "path"),
        [
            ({"price": {"amount": "-1", "currency": "USD"}}, "price.amount"),
            ({"price": {"amount": "1", "currency": "usd"}}, "price.currency"),
            ({"location": {"country": "USA"}}, "location.country"),
            ({"acquirer": "Lotte Biologics"}, "acquirer"),
            ({"nickname": "x"}, "nickname"),
            ({"site": None}, "site"),
        ],
    )
    @pytest.mark.parametrize("index", [0, 1])
    def test_an_invalid_replacement_names_the_bad_field(
        self, log: EventLog, change: dict[str, Any], path: str, index: int
    ) -> None:
        """A replacement that does not validate against the target's type names its bad field."""
        target = event("site-a", site())
        log.append([target])
        replacement = {**site_builtins(), **change}
        batch = [event("before"), correction(target.event_id, replacement)][1 - index :]
        with pytest.raises(InvalidEvent) as caught:
            log.append(batch)
        assert caught.value.path == f"$[{index}].data.replacement.{path}"
        assert log.head() == 1

    def test_a_valid_correction_is_stored_normalized(self, log: EventLog) -> None:
        """A correction is stored with its replacement in the target type's full shape."""
        target = event("site-a", site())
        log.append([target])
        partial = {k: v for k, v in site_builtins("5").items() if k != "seller"}
        fix = correction(target.event_id, partial)
        log.append([fix])
        stored = log.get(fix.event_id)
        assert stored is not None
        assert isinstance(stored.data, EventCorrected)
        assert stored.data.replacement == {**site_builtins("5"), "seller": None}
        assert log.append([fix]).replayed

    def test_a_correction_and_its_target_may_share_a_batch(self, log: EventLog) -> None:
        """A batch may hold an event and its correction and retraction, in that order."""
        target = event("site-a", site())
        result = log.append(
            [target, correction(target.event_id, site_builtins("7")), retraction(target.event_id)]
        )
        assert [c.position for c in result.events] == [1, 2, 3]
        assert log.verify().ok


def _run_threads(work: Callable[[int], None], count: int) -> None:
    """Run `work(i)` on `count` threads and re-raise the first failure."""
    failures: queue.SimpleQueue[BaseException] = queue.SimpleQueue()

    def guarded(index: int) -> None:
        try:
            work(index)
        except BaseException as exc:  # noqa: BLE001 - handed to the test's thread
            failures.put(exc)

    threads = [threading.Thread(target=guarded, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not any(t.is_alive() for t in threads), "a worker thread hung"
    if not failures.empty():
        raise failures.get()
