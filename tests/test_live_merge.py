"""`Live.merge`: backdated events, corrections and retractions taken in without the log.

Hypothesis, over the generated histories of `test_projections_properties` (organizations
with parents, every kind of announcement, several corrections of one event, retractions):
whatever the arrival order, where the tail starts and how it is cut, a live state that
merges what `apply` refuses equals a from-zero build, and so does a snapshot plus a
merged tail.
"""

from __future__ import annotations

from decimal import Decimal

import msgspec
import pytest
from event_factory import stored_event
from hypothesis import given
from hypothesis import strategies as st
from test_projections_properties import SETTINGS, arrival_orders, everything, histories, stored

from events.envelope import Event
from events.payloads import (
    EventCorrected,
    EventRetracted,
    InvestmentCommitted,
    Money,
    OrganizationRegistered,
)
from projections import Live, build, dump_snapshot, load_snapshot


def merge_fold(live: Live, tail: list[Event], cuts: list[int]) -> Live:
    """Apply each event; merge a refused one with the next few (`cuts`), never rebuild."""
    at = 0
    while at < len(tail):
        event = tail[at]
        if live.apply(event):
            at += 1
            continue
        size = cuts.pop() if cuts else 1
        assert live.merge(tail[at : at + size])
        at += size
    return live


class TestMerge:
    @SETTINGS
    @given(data=st.data(), drafts=histories())
    def test_live_with_merges_equals_build(self, data, drafts):
        """Every arrival order: apply, merging what it refuses, gives the from-zero view."""
        events = stored(data.draw(arrival_orders(drafts)))
        cuts = data.draw(st.lists(st.integers(1, 4), max_size=len(events)))
        live = merge_fold(Live(), events, cuts)
        expected = build(events)
        assert everything(live.projections()) == everything(expected)
        assert live.position == expected.position

    @SETTINGS
    @given(data=st.data(), drafts=histories())
    def test_snapshot_plus_merged_tail_equals_build(self, data, drafts):
        """A snapshot at any prefix, then the tail merged in one go, equals the whole build."""
        events = stored(data.draw(arrival_orders(drafts)))
        cut = data.draw(st.integers(0, len(events)))
        head = Live()
        head.rebuild(events[:cut])
        resumed = load_snapshot(dump_snapshot(head))
        assert resumed is not None
        assert resumed.merge(events[cut:])
        assert everything(resumed.projections()) == everything(build(events))
        again = Live()
        again.rebuild(events)
        assert resumed.frontier == again.frontier


def investment(amount: str) -> InvestmentCommitted:
    return InvestmentCommitted(
        org="a", site="s", amount=Money(amount=Decimal(amount), currency="EUR"), jobs=3
    )


TARGET = f"00000000-0000-4000-8000-{2:012x}"
HISTORY = [
    stored_event(1, OrganizationRegistered(id="a", name="A"), "2022"),
    stored_event(2, investment("10"), "2023"),
    stored_event(
        3,
        EventCorrected(
            corrects=TARGET, replacement=msgspec.to_builtins(investment("12")), reason="typo"
        ),
        "2030",
    ),
    stored_event(4, investment("5"), "2024"),
]
REFUSED = stored_event(  # a later correction the schema refuses: the original stands again
    5, EventCorrected(corrects=TARGET, replacement={"org": "a"}, reason="bad"), "2030"
)
BACKDATED = stored_event(6, OrganizationRegistered(id="b", name="B", parent="a"), "2021")
RETRACTION = stored_event(7, EventRetracted(retracts=TARGET, reason="never happened"), "2030")


class TestMergeCases:
    @pytest.mark.parametrize("cut", range(len(HISTORY) + 1))
    @pytest.mark.parametrize(
        "tail", [[REFUSED], [BACKDATED], [RETRACTION], [REFUSED, BACKDATED, RETRACTION]]
    )
    def test_each_kind_of_refused_event(self, cut: int, tail: list[Event]) -> None:
        """A refused correction (after one that applied), a backdated event, a retraction."""
        live = Live()
        live.rebuild(HISTORY[:cut])
        resumed = load_snapshot(dump_snapshot(live))
        assert resumed is not None
        events = [*HISTORY[cut:], *tail]
        for one in (live, resumed):
            assert one.merge(events)
            assert everything(one.projections()) == everything(build([*HISTORY, *tail]))

    def test_the_original_stands_after_a_refused_correction(self) -> None:
        """Merging a bad correction brings back the stored amount, as a from-zero build does."""
        live = Live()
        live.rebuild(HISTORY)
        site = live.projections().capacity_site("s")
        assert site is not None
        assert site.committed == {"EUR": Decimal(17)}
        assert live.merge([REFUSED])
        site = live.projections().capacity_site("s")
        assert site is not None
        assert site.committed == {"EUR": Decimal(15)}


class TestMergeRefuses:
    def test_an_event_not_after_the_position(self) -> None:
        """An event at or before the live position is refused, the state untouched."""
        live = Live()
        live.rebuild(HISTORY)
        before = live.projections()
        assert not live.merge([HISTORY[-1]])
        assert not live.merge([BACKDATED, HISTORY[0]])
        assert live.projections() is before

    def test_nothing_to_merge(self) -> None:
        live = Live()
        before = live.projections()
        assert live.merge([])
        assert live.projections() is before

    def test_earlier_projections_keep_their_answers(self) -> None:
        """A merge replaces the state: answers taken before it do not change."""
        live = Live()
        live.rebuild(HISTORY)
        before = live.projections()
        answers = everything(before)
        assert live.merge([REFUSED, BACKDATED])
        assert everything(before) == answers
        assert everything(live.projections()) == everything(build([*HISTORY, REFUSED, BACKDATED]))
