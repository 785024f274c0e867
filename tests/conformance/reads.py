"""Reads: `get`, `stream`, `read` filters, `iter_events`, the chain, a reopened log."""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import Any

import pytest

from conformance.base import ConformanceBase
from conformance.builders import event, retraction, site
from events.codec import GENESIS
from events.ids import uuid7
from events.log import EventLog


class Reads(ConformanceBase):
    """What was appended reads back, in order, through every read of the protocol."""

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

    def test_stream_pages_by_version(self, log: EventLog) -> None:
        """`stream(after=, limit=)`: versions after `after`, at most `limit`; the version."""
        for n in range(4):
            log.append([event("paged"), event(f"other-{n}"), event("paged")])
        assert [e.stream_version for e in log.stream("paged", after=2, limit=3)[0]] == [3, 4, 5]
        assert log.stream("paged", after=2, limit=3)[1] == 8
        assert [e.stream_version for e in log.stream("paged", after=6)[0]] == [7, 8]
        assert log.stream("paged", after=8, limit=5) == ([], 8)
        assert log.stream("nobody", after=0, limit=1) == ([], 0)

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
