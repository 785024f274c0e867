"""Live state: the current view, folded one event at a time as the log grows.

`apply` folds an announcement in O(1) when it comes after everything folded so far in
valid-time order (the common case: news arrives in the order it happens). Anything else
(an event dated before the frontier, a correction, a retraction) is refused. The caller
then either rebuilds from the whole log with `rebuild`, or hands the refused event and
the ones after it to `merge`, which selects again from what the live state holds
(its facts, the corrections and retractions seen, the corrected facts as they were) plus
the new events, without reading the log: the same selection a from-zero `build` makes
of the same events. The fold order never depends on arrival, so live state always
equals a from-zero `build` of the same events.
"""

from __future__ import annotations

from bisect import insort
from collections.abc import Iterable, Sequence
from typing import NamedTuple

from events.envelope import Event
from events.payloads import RECORD_TYPES
from events.replay import Replayed
from projections.build import Projections
from projections.gcpause import paused_gc
from projections.selection import (
    RECORD_CLASSES,
    Record,
    Selection,
    ViewSpec,
    record_of,
    reselect,
    select,
    select_replayed,
)
from projections.state import Fact, FoldState, SortKey, fact_of, fold_all, fold_fact, sort_key

_INSERTS = 64
"""Up to this many new facts are inserted in place; more are appended and sorted."""


class Captured(NamedTuple):
    """A live state as it stood at one moment: what a snapshot holds (`Live.capture`).

    It stays what it was while the live state folds on: the facts are `state.facts[:folded]`
    (a state only ever grows at the end, and `rebuild` and `merge` replace it rather than
    change it), the rest are copies.
    """

    state: FoldState
    folded: int
    position: int
    frontier: SortKey | None
    corrected: dict[str, str]
    records: list[Record]
    withheld: list[Fact]

    def facts(self) -> list[Fact]:
        """The facts folded at the moment of the capture, in fold order (a copy).

        Always a copy, taken in one step: the live state may fold more (append to the
        list) while this is being encoded on another thread.
        """
        return self.state.facts[: self.folded]


class Live:
    """The fold state of the current view, its frontier and the head position.

    `frontier` is the sort key of the last event folded; `position` the highest position
    seen. Call `apply`, `merge` and `rebuild` from one thread at a time; a `Projections`
    taken with `projections()` keeps answering for the state it was taken at. `projections`
    may be called from other threads meanwhile: it reads the state, its count of facts and
    its position as one `_mark`, set in one assignment once a change is complete, so an
    answer never pairs a fact with a position that does not cover it.
    """

    def __init__(
        self,
        state: FoldState | None = None,
        *,
        position: int = 0,
        frontier: SortKey | None = None,
        records: Sequence[Record] = (),
        withheld: Iterable[Fact] = (),
    ) -> None:
        self._state = state if state is not None else FoldState()
        self._position = position
        self._frontier = frontier
        self._records = list(records)
        self._withheld = {fact.event_id: fact for fact in withheld}
        self._mark = (self._state, len(self._state.facts), position)
        self._published: tuple[tuple[FoldState, int, int], Projections] | None = None

    @property
    def state(self) -> FoldState:
        """The fold state (grows at the end only; replaced, not changed, by `rebuild`)."""
        return self._state

    @property
    def position(self) -> int:
        """The highest position folded or rebuilt from (0 if none)."""
        return self._position

    @property
    def frontier(self) -> SortKey | None:
        """The valid-time sort key of the last event folded (None if none)."""
        return self._frontier

    @property
    def records(self) -> list[Record]:
        """The corrections and retractions seen, in position order."""
        return list(self._records)

    @property
    def withheld(self) -> list[Fact]:
        """The facts with a correction, as they were before it (what `merge` selects from)."""
        return list(self._withheld.values())

    def capture(self) -> Captured:
        """The state now, unchanged by later folds (call it where `apply` may be called).

        O(corrections) here: the list of facts is copied by `Captured.facts`, by whoever
        encodes the snapshot, on another thread while this state folds on.
        """
        state = self._state
        return Captured(
            state,
            len(state.facts),
            self._position,
            self._frontier,
            dict(state.corrected),
            list(self._records),
            list(self._withheld.values()),
        )

    def apply(self, event: Event) -> bool:
        """Fold an event that comes after the frontier; False (state untouched) otherwise.

        On False, the caller rebuilds from the whole log, this event included, or merges.
        An event at or before `position` is in the state already (a delivery repeated, as an
        at-least-once tail repeats them): refused too, also once a retraction has moved the
        frontier back before it (it was folded a second time).
        """
        if event.position <= self._position:
            return False
        if event.type in RECORD_TYPES:
            return False
        key = sort_key(event)
        if self._frontier is not None and key <= self._frontier:
            return False
        fold_fact(self._state, fact_of(event))
        self._frontier = key
        self._position = max(self._position, event.position)
        self._mark = (self._state, len(self._state.facts), self._position)
        return True

    def merge(self, events: Sequence[Event]) -> bool:
        """Take in events recorded after `position`, in position order, whatever they are.

        Backdated announcements, corrections and retractions included: the view is
        selected again from the live state's facts (the corrected ones as they were), its
        records and the new events, in O(facts) without reading the log. False (state
        untouched) if an event is not after `position` (the caller rebuilds instead).
        """
        last = self._position
        for event in events:
            if event.position <= last:
                return False
            last = event.position
        if not events:
            return True
        with paused_gc():
            ordered = self._originals()
            records = list(self._records)
            facts = []
            for event in events:
                if event.type in RECORD_CLASSES:
                    records.append(record_of(event))
                else:
                    facts.append(fact_of(event))
            if len(facts) <= _INSERTS:
                for fact in facts:
                    insort(ordered, fact, key=sort_key)
            else:
                ordered.extend(facts)
                ordered.sort(key=sort_key)
            frontier = sort_key(ordered[-1]) if ordered else None
            self._rebuilt(reselect(ordered, records, last, frontier))
        return True

    def _originals(self) -> list[Fact]:
        """The live facts with their data as stored, before any correction, in order (a copy).

        Retracted facts stay out: a retraction is never undone, so they would be dropped
        again.
        """
        withheld = self._withheld
        facts = self._state.facts
        if not withheld:
            return facts[:]
        return [withheld.get(fact.event_id, fact) for fact in facts]

    def rebuild(self, events: Iterable[Event]) -> None:
        """Replace the state by a from-zero fold of the whole log's events."""
        with paused_gc():
            self._rebuilt(select(events, ViewSpec()))

    def rebuild_replayed(self, rows: Iterable[Replayed]) -> None:
        """`rebuild` from the lean rows of a replay (`events.replay`, `iter_replay` of a log)."""
        with paused_gc():
            self._rebuilt(select_replayed(rows, ViewSpec()))

    def _rebuilt(self, selection: Selection) -> None:
        state = fold_all(selection.facts)
        state.corrected = selection.corrected
        self._state = state
        self._position = selection.position
        self._frontier = selection.frontier
        self._records = selection.records
        self._withheld = {fact.event_id: fact for fact in selection.withheld}
        self._mark = (state, len(state.facts), self._position)

    def projections(self) -> Projections:
        """The answers of the current state (the same object until the state changes).

        After in-order appends, the new answers carry what the last ones derived and the
        new facts leave alone, or bring it up to date from those facts alone
        (`projections.advance`); after a rebuild or a merge everything derives again.
        """
        mark = self._mark
        published = self._published
        if published is not None and published[0] is mark:
            return published[1]
        state, count, position = mark
        carried = None
        if published is not None and published[0][0] is state and published[0][1] <= count:
            carried = published[1].carry()  # the same state, grown at the end: carry answers
        answers = Projections(state, count=count, position=position, carried=carried)
        self._published = (mark, answers)
        return answers
