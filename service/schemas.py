"""HTTP bodies: plain msgspec Structs, one per shape the API speaks."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any

import msgspec
from msgspec import Meta

from events.envelope import (
    Committed,
    Event,
    Metadata,
    PartialDate,
    SchemaVersion,
    Sequence,
    Source,
    StreamName,
    TypeName,
)
from events.payloads import EventId


class EventOut(msgspec.Struct, kw_only=True):
    """A stored event as the API shows it; post it back minus the ledger-set fields."""

    position: int
    event_id: str
    stream: str
    stream_version: int
    type: str
    schema_version: int
    occurred_on: str
    sequence: int | None
    recorded_at: datetime
    data: dict[str, Any]
    source: Source
    metadata: Metadata
    data_hash: str
    prev_hash: str
    hash: str


def event_out(event: Event) -> EventOut:
    """The API shape of a stored event (its payload as plain JSON values)."""
    return EventOut(
        position=event.position,
        event_id=event.event_id,
        stream=event.stream,
        stream_version=event.stream_version,
        type=event.type,
        schema_version=event.schema_version,
        occurred_on=event.occurred_on,
        sequence=event.sequence,
        recorded_at=event.recorded_at,
        data=msgspec.to_builtins(event.data),
        source=event.source,
        metadata=event.metadata,
        data_hash=event.data_hash,
        prev_hash=event.prev_hash,
        hash=event.hash,
    )


class EventBody(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """A new event as a client sends it: the envelope minus what the ledger sets."""

    stream: StreamName
    type: TypeName
    occurred_on: PartialDate
    data: dict[str, Any]
    source: Source
    event_id: EventId | None = None
    sequence: Sequence | None = None
    schema_version: SchemaVersion | None = None
    metadata: Metadata = msgspec.field(default_factory=Metadata)


class AppendBody(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """A batch to append atomically; `expected_versions` maps a stream to its current version."""

    events: Annotated[list[EventBody], Meta(min_length=1)]
    expected_versions: dict[StreamName, Annotated[int, Meta(ge=0)]] | None = None


class AppendAnswer(msgspec.Struct, kw_only=True):
    """Where each event of the batch landed; `replayed` if it was all stored before."""

    head: int
    events: list[Committed]
    replayed: bool = False


class EventPage(msgspec.Struct, kw_only=True):
    """One page of the log, in order; `next` is the URL of the following page, if any."""

    events: list[EventOut]
    head: int
    next: str | None = None


class StreamAnswer(msgspec.Struct, kw_only=True):
    """One page of a stream's events, its current version and the next page's link, if any."""

    stream: str
    version: int
    events: list[EventOut]
    next: str | None = None


class View(msgspec.Struct, kw_only=True):
    """Which state an answer shows: up to `position`, as of a date, as known at a moment."""

    position: int
    as_of: date | None
    known_at: datetime | None
    at_position: int | None
    digest: str


class ViewAnswer(msgspec.Struct, kw_only=True):
    """A projection answer: the view it was computed at and the data."""

    view: View
    data: Any


class ViewPage(msgspec.Struct, kw_only=True):
    """One page of a projection's list (the whole list when it fits in one).

    `next` is the URL of the following page (null on the last). `view.digest` is the whole
    projection's, so every page of one view carries the same.
    """

    view: View
    data: list[Any]
    next: str | None = None


class VerifyAnswer(msgspec.Struct, kw_only=True):
    """The outcome of a hash-chain verification.

    `head` is the last position whose chain holds (the log's head when `ok`), `checked` the
    rows read, `first_bad_position` and `reason` where and why it breaks.
    """

    ok: bool
    head: Annotated[
        int,
        msgspec.Meta(
            description="The last position whose chain holds: the log's head when `ok`, the "
            "position before `first_bad_position` when not"
        ),
    ]
    checked: int
    first_bad_position: int | None = None
    reason: str | None = None


class Health(msgspec.Struct, kw_only=True):
    """Liveness or readiness, with what was checked."""

    status: str
    head: int | None = None
    projected: int | None = None
    detail: str | None = None
