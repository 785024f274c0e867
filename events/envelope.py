"""The envelope around every payload: what a client sends, and what the log stores."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import msgspec
from msgspec import Meta

from events.dates import parse_partial_date
from events.payloads import AnyPayload, EventId, Label, Model

StreamName = Annotated[str, Meta(pattern=r"^[a-z0-9]+([-_.:][a-z0-9]+)*(?!\n)$", max_length=200)]
TypeName = Annotated[str, Meta(pattern=r"^[a-z][a-z0-9_]*(?!\n)$", max_length=100)]
PartialDate = Annotated[str, Meta(pattern=r"^[0-9]{4}(-[0-9]{2}(-[0-9]{2})?)?(?!\n)$")]
Sequence = Annotated[int, Meta(ge=0, le=1_000_000)]
SchemaVersion = Annotated[int, Meta(ge=1, le=1000)]
Url = Annotated[str, Meta(min_length=1, max_length=2000)]
Quote = Annotated[str, Meta(min_length=1, max_length=10_000)]


def _check_partial_date(field: str, value: str | None) -> None:
    if value is None:
        return
    try:
        parse_partial_date(value)
    except ValueError as exc:
        msg = f"{field}: {exc}"
        raise ValueError(msg) from None


class Source(Model, frozen=True):
    """Provenance: where the fact was published, and the sentence that supports it."""

    url: Url
    publisher: Label | None = None
    published_on: PartialDate | None = None
    title: Label | None = None
    quote: Quote | None = None

    def __post_init__(self) -> None:
        _check_partial_date("published_on", self.published_on)


class Metadata(Model, frozen=True):
    """Who recorded an event and why; `recorded_by` is set by the ledger, never by a client."""

    recorded_by: Label | None = None
    correlation_id: Label | None = None
    causation_id: Label | None = None
    tags: Annotated[tuple[Label, ...], Meta(max_length=50)] = ()


class EventIn(Model, frozen=True):
    """The wire form of a new event: the envelope minus what the ledger sets; `data` still raw."""

    stream: StreamName
    type: TypeName
    occurred_on: PartialDate
    data: msgspec.Raw
    source: Source
    event_id: EventId | None = None
    sequence: Sequence | None = None
    schema_version: SchemaVersion | None = None
    metadata: Metadata = Metadata()

    def __post_init__(self) -> None:
        _check_partial_date("occurred_on", self.occurred_on)


class NewEvent(Model, frozen=True):
    """A validated event about to be appended: typed payload, id chosen (or generated)."""

    event_id: str
    stream: str
    type: str
    occurred_on: str
    data: AnyPayload
    source: Source
    sequence: int | None = None
    metadata: Metadata = Metadata()


class Event(Model, frozen=True):
    """A stored event: the envelope with everything the ledger set at commit."""

    position: int
    event_id: str
    stream: str
    stream_version: int
    type: str
    schema_version: int
    occurred_on: str
    sequence: int | None
    recorded_at: datetime
    data: AnyPayload
    source: Source
    metadata: Metadata
    data_hash: str
    prev_hash: str
    hash: str


class Committed(Model, frozen=True):
    """Where one appended event landed."""

    event_id: str
    position: int
    stream: str
    stream_version: int
    recorded_at: datetime


class AppendResult(Model, frozen=True):
    """The answer to an append: the head after it, each event's place, whether it was a replay."""

    head: int
    events: tuple[Committed, ...]
    replayed: bool = False


class VerifyResult(Model, frozen=True):
    """The answer of a hash-chain verification."""

    ok: bool
    head: int
    checked: int
    first_bad_position: int | None = None
    reason: str | None = None
