"""Corrections and retractions: their targets checked, their replacements validated."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from conformance.base import ConformanceBase
from conformance.builders import correction, event, retraction, run_threads, site, site_builtins
from events.errors import InvalidEvent, TargetConflict
from events.ids import uuid7
from events.log import EventLog
from events.payloads import EventCorrected


class Records(ConformanceBase):
    """Record events name a stored target; a replacement validates against its type."""

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

    @pytest.mark.parametrize("separate_handles", [False, True], ids=["one-handle", "two-handles"])
    def test_racing_retractions_of_one_event_store_exactly_one(
        self, log: EventLog, separate_handles: bool
    ) -> None:
        """Two threads retracting the same event at once: one is stored, one is refused.

        Whatever a backend reads to find the target not yet retracted must still hold
        when it writes: no two retractions of one event, from one handle or from two. (On
        SQLite the two handles' appends meet in about one round in five: 40 rounds.)
        """
        rounds = 40
        other = self.open_again(log) if separate_handles else log
        try:
            handles = (log, other)
            for number in range(rounds):
                target = event(f"site-{number}", site())
                log.append([target])
                outcomes: list[str] = []
                barrier = threading.Barrier(2)

                def work(
                    index: int,
                    target_id: str = target.event_id,
                    outcomes: list[str] = outcomes,
                    barrier: threading.Barrier = barrier,
                ) -> None:
                    barrier.wait(timeout=30)
                    try:
                        handles[index].append([retraction(target_id)])
                    except TargetConflict:
                        outcomes.append("refused")
                    else:
                        outcomes.append("stored")

                run_threads(work, 2)
                assert sorted(outcomes) == ["refused", "stored"]
        finally:
            if other is not log:
                other.close()
        assert log.head() == rounds * 2
        assert log.verify().ok

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
