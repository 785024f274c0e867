"""The caller-side part of an append gives exactly the rows the reference encoding gives."""

from __future__ import annotations

import string

import msgspec
import pytest
from conftest import make_new_event
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from events.codec import CANONICAL, GENESIS
from events.envelope import Metadata, NewEvent, Source
from events.errors import InvalidEvent
from events.payloads import EventCorrected, OrganizationRegistered
from events.prepared import PreparedBatch, placed, prepare_batch
from events.rows import encode_new, place
from events.seed import seed_events
from events.sqlite import SQLiteEventLog
from events.upcasters import current_version

SETTINGS = settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
texts = st.text(min_size=1, max_size=30)
slugs = st.text(string.ascii_lowercase + string.digits, min_size=1, max_size=12)


def reference_and_prepared(
    event: NewEvent, position: int, stream_version: int, recorded_at: str, prev_hash: str
) -> tuple[object, object]:
    batch = prepare_batch([event])
    assert isinstance(batch, PreparedBatch)
    reference = place(
        encode_new(event),
        position=position,
        stream_version=stream_version,
        schema_version=current_version(event.type),
        recorded_at=recorded_at,
        prev_hash=prev_hash,
    )
    fast = placed(
        batch.parts[0],
        event,
        position=position,
        stream_version=stream_version,
        recorded_at=recorded_at,
        recorded_json=CANONICAL.encode(recorded_at),
        prev_hash=prev_hash,
    )
    return reference, fast


class TestPlacedIsPlace:
    def test_every_seed_event(self) -> None:
        prev = GENESIS
        for position, event in enumerate(seed_events(), start=1):
            reference, fast = reference_and_prepared(
                event, position, position, "2025-01-01T00:00:00.000000Z", prev
            )
            assert fast == reference
            prev = reference.hash  # type: ignore[attr-defined]

    @SETTINGS
    @given(
        event_id=st.uuids().map(str),  # a header the ledger takes (`events.header`)
        stream=slugs,
        name=texts,
        sequence=st.none() | st.integers(0, 1_000_000),
        tags=st.lists(texts, max_size=3).map(tuple),
        quote=st.none() | texts,
        position=st.integers(1, 10**12),
        stream_version=st.integers(1, 10**9),
        prev_hash=st.sampled_from([GENESIS, "ab" * 32]),
    )
    def test_any_envelope(  # noqa: PLR0913 - one argument per drawn field
        self,
        event_id: str,
        stream: str,
        name: str,
        sequence: int | None,
        tags: tuple[str, ...],
        quote: str | None,
        position: int,
        stream_version: int,
        prev_hash: str,
    ) -> None:
        event = NewEvent(
            event_id=event_id,
            stream=stream,
            type=OrganizationRegistered.TYPE,
            occurred_on="2024-05",
            sequence=sequence,
            data=OrganizationRegistered(id="org-x", name=name, country="KR"),
            source=Source(url="urn:x", quote=quote),
            metadata=Metadata(recorded_by='ünï "code"\n', tags=tags),
        )
        reference, fast = reference_and_prepared(
            event, position, stream_version, "2026-11-29T16:48:20.685890Z", prev_hash
        )
        assert fast == reference


class TestThroughTheLog:
    def test_what_is_not_events_is_the_callers_mistake(self, fresh_log: SQLiteEventLog) -> None:
        """Not a `NewEvent`, or one without a payload: `InvalidEvent` naming it.

        It was the `StoreError` of a failing disk, which a pipeline would retry (a review).
        """
        good = make_new_event("s")
        for batch, path in [
            ([good, object()], "$[1]"),
            ([{"stream": "x"}], "$[0]"),
            ([msgspec.structs.replace(good, data=None)], "$[0].data"),
            ("not a batch", "$"),
        ]:
            with pytest.raises(InvalidEvent) as caught:
                prepare_batch(batch)  # type: ignore[arg-type]
            assert caught.value.path == path
            with pytest.raises(InvalidEvent):
                fresh_log.append(batch)  # type: ignore[arg-type]
        with pytest.raises(InvalidEvent):  # an iterator is read once, and checked
            fresh_log.append(e for e in [good, object()])  # type: ignore[arg-type, misc]
        assert fresh_log.head() == 0

    def test_a_batch_that_cannot_be_prepared_still_fails_as_before(
        self, fresh_log: SQLiteEventLog
    ) -> None:
        """Events whose header cannot be placed go to the writer unprepared, which says why."""
        bad = msgspec.structs.replace(make_new_event("s"), stream=123)
        unprepared = prepare_batch([bad])
        assert not isinstance(unprepared, PreparedBatch)
        with pytest.raises(InvalidEvent) as caught:
            fresh_log.append([bad])
        assert caught.value.path.startswith("$[0].stream")
        assert fresh_log.head() == 0

    def test_a_correction_is_stored_as_normalized_not_as_prepared(
        self, fresh_log: SQLiteEventLog
    ) -> None:
        first = make_new_event("s")
        fresh_log.append([first])
        given = {"name": "Renamed", "id": "org-renamed"}  # defaults left out: normalizing adds them
        correction = make_new_event(
            "s", data=EventCorrected(corrects=first.event_id, replacement=given, reason="typo")
        )
        batch = prepare_batch([correction])
        assert isinstance(batch, PreparedBatch)
        assert b'"aliases"' not in batch.parts[0].encoded.data
        fresh_log.append([correction])
        stored = fresh_log.get(correction.event_id)
        assert stored is not None
        replacement = msgspec.to_builtins(stored.data)["replacement"]
        defaults = {"aliases": [], "country": None, "kind": None, "parent": None}
        assert replacement == {**given, **defaults}
        assert fresh_log.verify().ok

    def test_a_prepared_batch_changed_after_preparing_stores_its_own_events(
        self, fresh_log: SQLiteEventLog
    ) -> None:
        """Plain events are placed from their prepared parts only while those are theirs."""
        batch = prepare_batch([make_new_event("s"), make_new_event("s")])
        assert isinstance(batch, PreparedBatch)
        replaced = make_new_event("t")
        batch[1] = replaced
        result = fresh_log._writer.append(batch, None)
        assert [c.event_id for c in result.events] == [batch[0].event_id, replaced.event_id]
        stored = fresh_log.get(replaced.event_id)
        assert stored is not None
        assert stored.stream == "t"
        assert fresh_log.verify().ok


class TestHeaders:
    """A `NewEvent` built by hand is not validated by msgspec: its header is, before placing."""

    @pytest.mark.parametrize(
        ("change", "path"),
        [
            ({"stream": 123}, "$[1].stream"),
            ({"stream": "Not A Stream"}, "$[1].stream"),
            ({"event_id": "NOT-A-UUID"}, "$[1].event_id"),
            ({"occurred_on": "2024-02-30"}, "$[1].occurred_on"),
            ({"occurred_on": 2024}, "$[1].occurred_on"),
            ({"sequence": -5}, "$[1].sequence"),
            ({"sequence": True}, "$[1].sequence"),
            ({"type": "no_such_type"}, "$[1].type"),
            ({"source": {"url": "urn:x"}}, "$[1].source"),
        ],
    )
    def test_a_bad_header_is_refused_and_nothing_stored(
        self, tmp_path, change: dict[str, object], path: str
    ) -> None:
        """The batch fails at the field (an int stream broke the chain at its position)."""
        log = SQLiteEventLog(tmp_path / "headers.db")
        try:
            bad = msgspec.structs.replace(make_new_event("s"), **change)  # type: ignore[arg-type]
            with pytest.raises(InvalidEvent) as caught:
                log.append([make_new_event("s"), bad])
            assert caught.value.path == path
            assert log.head() == 0
            log.append([make_new_event("s")])
            assert log.verify().ok
        finally:
            log.close()
