"""View selection (DESIGN §5): which events a view folds, corrected, in valid-time order.

A view first selects its events by `known_at` (transaction time) and `at_position` (the
log's order), which select corrections and retractions too, and by `as_of` (valid time),
which does not: a correction is a fact about the record, not about the world. The
selected corrections and retractions are then applied to the selected announcements,
and the result is put in valid-time order (`projections.state.sort_key`), never in
position order. So the state of a view is a function of the set of events only.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import Final, cast

import msgspec

from events.codec import convert_payload
from events.dates import period_end
from events.envelope import Event
from events.errors import InvalidEvent
from events.payloads import AnyPayload, EventCorrected, EventRetracted
from events.replay import Replayed
from projections.state import FACT_TYPES, Fact, SortKey, scan_order, sort_key


class ViewSpec(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Where a view stands in the three coordinates; any combination, all None for "now".

    `as_of`: only announcements that had surely happened by that date (an event dated
    `2022` counts from 2022-12-31). `known_at`: only events recorded by that moment (UTC;
    a naive datetime is read as UTC). `at_position`: only events up to that position.
    """

    as_of: dt.date | None = None
    known_at: dt.datetime | None = None
    at_position: int | None = None

    def __post_init__(self) -> None:
        """Each coordinate of its own type, said here (not as a bare error deep in a build)."""
        if self.as_of is not None and (
            not isinstance(self.as_of, dt.date) or isinstance(self.as_of, dt.datetime)
        ):
            msg = f"ViewSpec.as_of must be a datetime.date, not {type(self.as_of).__name__}"
            raise TypeError(msg)
        if self.known_at is not None and not isinstance(self.known_at, dt.datetime):
            msg = f"ViewSpec.known_at must be a datetime, not {type(self.known_at).__name__}"
            raise TypeError(msg)
        position = self.at_position
        if position is not None and (
            not isinstance(position, int) or isinstance(position, bool) or position < 0
        ):
            msg = f"ViewSpec.at_position must be an int of 0 or more, not {position!r}"
            raise TypeError(msg)


class Selection(msgspec.Struct, frozen=True, kw_only=True):
    """The outcome of selecting: what to fold, in order, and where the view stands.

    `position` is the highest position among the events `known_at` and `at_position`
    kept (0 if none); `frontier` is the sort key of the last fact to fold; `records` the
    corrections and retractions selected, `withheld` the facts with a correction, as they
    were (so a live state can select again without the log: `projections.live`).
    """

    facts: list[Fact]
    corrected: dict[str, str]
    position: int
    frontier: SortKey | None
    records: list[Record] = msgspec.field(default_factory=list)
    withheld: list[Fact] = msgspec.field(default_factory=list)


def _utc(moment: dt.datetime | None) -> dt.datetime | None:
    if moment is None or moment.tzinfo is not None:
        return moment
    return moment.replace(tzinfo=dt.UTC)


class Record(msgspec.Struct, frozen=True, array_like=True, gc=False):
    """What selection keeps of a correction or retraction: where it is, and what it says.

    `occurred_on`, `sequence` and `event_id` order several corrections of one event
    (`_latest_records`). One subclass per record type (`RECORD_CLASSES`), tagged with the
    type, like the facts.
    """

    position: int
    event_id: str
    occurred_on: str
    sequence: int | None
    data: AnyPayload


RECORD_CLASSES: Final[dict[str, type[Record]]] = {
    cls.TYPE: msgspec.defstruct(  # type: ignore[misc]  # defstruct is typed as making a plain Struct
        f"{cls.__name__}Record",
        [("data", cls)],
        bases=(Record,),
        tag=cls.TYPE,
        frozen=True,
        array_like=True,
        gc=False,
    )
    for cls in (EventCorrected, EventRetracted)
}
"""The record class of each record type."""


def record_of(event: Event) -> Record:
    """The record of a stored correction or retraction."""
    return RECORD_CLASSES[event.type](
        event.position, event.event_id, event.occurred_on, event.sequence, event.data
    )


def _split(events: Iterable[Event]) -> tuple[list[Fact], list[Record], int]:
    """The announcements' facts, the record events apart, and the highest position.

    Only the facts are kept of announcements, so the events themselves (their hashes,
    metadata) can be freed as the iteration goes.
    """
    kept: list[Fact] = []
    records: list[Record] = []
    position = 0
    classes = FACT_TYPES
    for event in events:
        if event.position > position:  # noqa: PLR1730 - hot loop: cheaper than max()
            position = event.position
        make = classes.get(event.type)
        if make is None:
            records.append(record_of(event))
        else:
            kept.append(
                make(
                    event.event_id,
                    event.occurred_on,
                    event.sequence,
                    event.stream,
                    event.position,
                    event.recorded_at,
                    event.source,
                    event.data,
                )
            )
    return kept, records, position


def _split_replayed(rows: Iterable[Replayed]) -> tuple[list[Fact], list[Record], int]:
    """`_split` of the lean rows of a replay (`events.replay`): no envelope in between."""
    kept: list[Fact] = []
    records: list[Record] = []
    append = kept.append
    position = 0
    classes = FACT_TYPES
    for at, event_id, stream, event_type, occurred_on, sequence, moment, source, data in rows:
        if at > position:  # noqa: PLR1730 - hot loop: cheaper than max()
            position = at
        make = classes.get(event_type)
        if make is None:
            records.append(RECORD_CLASSES[event_type](at, event_id, occurred_on, sequence, data))
        else:
            append(make(event_id, occurred_on, sequence, stream, at, moment, source, data))
    return kept, records, position


def _filtered(
    events: Iterable[Event] | Iterable[Replayed], spec: ViewSpec, *, lean: bool
) -> tuple[list[Fact], list[Record], int]:
    """Facts and record events the spec keeps, and the highest position kept.

    `lean`: `events` are the rows of `events.replay.replayed`, not `Event`s.
    """
    known_at, at_position, as_of = _utc(spec.known_at), spec.at_position, spec.as_of
    if known_at is not None or at_position is not None:
        if lean:
            events = (
                row
                for row in cast("Iterable[Replayed]", events)
                if (known_at is None or row[6] <= known_at)
                and (at_position is None or row[0] <= at_position)
            )
        else:
            events = (
                event
                for event in cast("Iterable[Event]", events)
                if (known_at is None or event.recorded_at <= known_at)
                and (at_position is None or event.position <= at_position)
            )
    if lean:
        kept, records, position = _split_replayed(cast("Iterable[Replayed]", events))
    else:
        kept, records, position = _split(cast("Iterable[Event]", events))
    if as_of is not None:
        ends: dict[str, dt.date] = {}
        for fact in kept:
            if fact.occurred_on not in ends:
                ends[fact.occurred_on] = period_end(fact.occurred_on)
        kept = [fact for fact in kept if ends[fact.occurred_on] <= as_of]
    return kept, records, position


def _latest_records(records: Iterable[Record]) -> tuple[set[str], dict[str, Record]]:
    """The retracted event ids, and each corrected event's winning correction.

    Of several corrections of one event the latest in valid-time order wins (`sort_key`:
    its date, then `sequence`, then its id), as the events themselves say, never by the
    order they were recorded in: two ledgers holding the same corrections agree. (The
    ledger's own ids are time-ordered, so of two corrections dated alike the one made
    later wins; a client with ids of its own orders them by date or `sequence`.)
    """
    retracted: set[str] = set()
    latest: dict[str, Record] = {}
    keys: dict[str, SortKey] = {}
    for record in records:
        data = record.data
        if isinstance(data, EventRetracted):
            retracted.add(data.retracts)
        elif isinstance(data, EventCorrected):
            key = sort_key(record)
            if data.corrects not in keys or key > keys[data.corrects]:
                latest[data.corrects], keys[data.corrects] = record, key
    return retracted, latest


def _corrected(fact: Fact, correction: Record) -> Fact | None:
    """The fact with the correction's replacement as data (None if the schema refuses it)."""
    fix = correction.data
    if not isinstance(fix, EventCorrected):  # pragma: no cover - selected as a correction
        return None
    try:
        data = convert_payload(fact.type, fix.replacement)
    except InvalidEvent:
        return None
    return msgspec.structs.replace(fact, data=data, corrected_by=correction.event_id)


def apply_records(
    kept: list[Fact], records: Iterable[Record]
) -> tuple[list[Fact], dict[str, str], list[Fact]]:
    """Drop the retracted facts, replace the corrected ones' data; keep the order given.

    Of several corrections of one event the latest in valid-time order wins
    (`_latest_records`). A corrected event keeps its own envelope (`occurred_on`,
    `sequence`, id); only `data` changes. A replacement the current payload schema refuses
    is ignored (the original stands), so one bad stored correction cannot make every view
    fail. Also returns the facts with a correction, as they were (`withheld`).
    """
    retracted, latest = _latest_records(records)
    corrected: dict[str, str] = {}
    withheld: list[Fact] = []
    if not retracted and not latest:
        return kept, corrected, withheld
    out: list[Fact] = []
    for fact in kept:
        if fact.event_id in retracted:
            continue
        correction = latest.get(fact.event_id)
        if correction is not None:
            withheld.append(fact)
        fixed = None if correction is None else _corrected(fact, correction)
        if correction is not None and fixed is not None:
            corrected[fact.event_id] = correction.event_id
            out.append(fixed)
        else:
            out.append(fact)
    return out, corrected, withheld


def in_valid_time_order(facts: list[Fact]) -> SortKey | None:
    """Sort facts by valid time in place (cheap when they already are); the last key or None."""
    ordered, last = scan_order(facts, strict=False)
    if ordered:
        return last
    facts.sort(key=sort_key)
    return sort_key(facts[-1])


def select(events: Iterable[Event], spec: ViewSpec) -> Selection:
    """Select, correct and order the facts of a view (see the module's docstring)."""
    return _selection(*_filtered(events, spec, lean=False))


def select_replayed(rows: Iterable[Replayed], spec: ViewSpec) -> Selection:
    """`select` over the lean rows of a replay (`events.replay`): the same selection."""
    return _selection(*_filtered(rows, spec, lean=True))


def _selection(kept: list[Fact], records: list[Record], position: int) -> Selection:
    frontier = in_valid_time_order(kept)
    return reselect(kept, records, position, frontier)


def reselect(
    ordered: list[Fact], records: list[Record], position: int, frontier: SortKey | None
) -> Selection:
    """The selection of facts already in valid-time order (`frontier` the last one's key).

    Corrections keep a fact's envelope, so its place: applying the records keeps the
    order; retracting the last fact moves the frontier back.
    """
    kept, corrected, withheld = apply_records(ordered, records)
    if kept and kept[-1] is not ordered[-1]:
        frontier = sort_key(kept[-1])
    elif not kept:
        frontier = None
    return Selection(
        facts=kept,
        corrected=corrected,
        position=position,
        frontier=frontier,
        records=records,
        withheld=withheld,
    )
