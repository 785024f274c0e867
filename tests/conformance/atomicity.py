"""Atomic batches (one failing event writes nothing) and idempotent retries by `event_id`."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable
from typing import Any, NamedTuple

import msgspec
import pytest

from conformance.base import ConformanceBase
from conformance.builders import correction, event, retraction, run_threads, site, site_builtins
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
from events.payloads import AnyPayload, EventCorrected, Location, OrganizationRegistered


class Prior(NamedTuple):
    """What a log holds before an atomicity case runs."""

    site: NewEvent
    retracted: NewEvent
    retraction: NewEvent


BatchCase = Callable[[Prior], tuple[list[NewEvent], dict[str, int] | None]]


def _mid(bad: NewEvent) -> list[NewEvent]:
    return [event("batch-a"), bad, event("batch-b")]


def _record_of_a_correction(
    prior: Prior, record: Callable[[str], NewEvent]
) -> tuple[list[NewEvent], None]:
    """A correction of the site, then a correction or retraction of that correction."""
    first = correction(prior.site.event_id, site_builtins("2"))
    return [event("batch-a"), first, record(first.event_id)], None


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
    "correction of a retracted event": (
        lambda p: (
            _mid(correction(p.retracted.event_id, msgspec.to_builtins(p.retracted.data))),
            None,
        ),
        TargetConflict,
    ),
    "a retraction and a correction of one event in the batch": (
        lambda p: (
            [
                event("batch-a"),
                retraction(p.site.event_id),
                correction(p.site.event_id, site_builtins()),
            ],
            None,
        ),
        TargetConflict,
    ),
    "correction of a correction": (
        lambda p: _record_of_a_correction(p, lambda c: correction(c, site_builtins("1"))),
        TargetConflict,
    ),
    "retraction of a correction": (
        lambda p: _record_of_a_correction(p, retraction),
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


class AtomicBatches(ConformanceBase):
    """A batch is written whole or not at all, and leaves no gap in the positions."""

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

        run_threads(work, threads)
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

    @pytest.mark.parametrize(
        ("data", "path"),
        [
            (OrganizationRegistered(id="Not An Id!", name="X"), "$[1].data.id"),
            (OrganizationRegistered(id="org-x", name=""), "$[1].data.name"),
            (
                msgspec.structs.replace(site(), location=Location(country="us")),
                "$[1].data.location.country",
            ),
            (  # crosses to the writer process pickled (its replacement is untyped)
                EventCorrected(corrects=str(uuid.uuid4()), replacement={"name": "x"}, reason=""),
                "$[1].data.reason",
            ),
        ],
        ids=["pattern", "length", "nested-pattern", "correction-length"],
    )
    def test_a_payload_built_in_python_that_would_not_read_back_is_refused(
        self, log: EventLog, data: AnyPayload, path: str
    ) -> None:
        """A payload's constraints are checked on append, not only when JSON is decoded.

        msgspec does not check them when a payload is made in Python: stored, such an
        event made every read of its position a `CorruptEvent`, for good.
        """
        log.append([event("before")])
        kind = type(data).TYPE
        batch = [event("a"), msgspec.structs.replace(event("b"), type=kind, data=data)]
        with pytest.raises(InvalidEvent) as caught:
            log.append(batch)
        assert caught.value.path == path
        assert log.head() == 1
        assert [e.stream for e in log.read()] == ["before"]  # and the log reads whole
        assert log.verify().ok


class Idempotency(ConformanceBase):
    """The same event ids with the same content replay; with other content they conflict."""

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
