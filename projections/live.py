"""Live state: the current view, folded one event at a time as the log grows.

`apply` folds an announcement in O(1) when it comes after everything folded so far in
valid-time order (the common case: news arrives in the order it happens). Anything else
(an event dated before the frontier, a correction, a retraction) is refused, and the
caller rebuilds from the whole log with `rebuild`: the fold order never depends on
arrival, so live state always equals a from-zero `build` of the same events.
"""

from __future__ import annotations

from collections.abc import Iterable

from events.envelope import Event
from events.payloads import RECORD_TYPES
from events.replay import Replayed
from projections.build import Projections
from projections.gcpause import paused_gc
from projections.selection import Selection, ViewSpec, select, select_replayed
from projections.state import FoldState, SortKey, fact_of, fold_all, fold_fact, sort_key


class Live:
    """The fold state of the current view, its frontier and the head position.

    `frontier` is the sort key of the last event folded; `position` the highest position
    seen. Call `apply` and `rebuild` from one thread at a time; a `Projections` taken
    with `projections()` keeps answering for the state it was taken at.
    """

    def __init__(
        self,
        state: FoldState | None = None,
        *,
        position: int = 0,
        frontier: SortKey | None = None,
    ) -> None:
        self._state = state if state is not None else FoldState()
        self._position = position
        self._frontier = frontier
        self._published: Projections | None = None

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

    def apply(self, event: Event) -> bool:
        """Fold an event that comes after the frontier; False (state untouched) otherwise.

        On False, the caller rebuilds from the whole log, this event included.
        """
        if event.type in RECORD_TYPES:
            return False
        key = sort_key(event)
        if self._frontier is not None and key <= self._frontier:
            return False
        fold_fact(self._state, fact_of(event))
        self._frontier = key
        self._position = max(self._position, event.position)
        self._published = None
        return True

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
        self._published = None

    def projections(self) -> Projections:
        """The answers of the current state (the same object until the state changes)."""
        published = self._published
        if published is None:
            published = self._published = Projections(
                self._state, count=len(self._state.facts), position=self._position
            )
        return published
