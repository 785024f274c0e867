"""The stored form of an event, shared by every backend: columns, hashing, decoding, export.

A stored row is a tuple in the order of `COLUMNS`; `data`, `source` and `metadata` hold
canonical JSON text, `recorded_at` a fixed-width UTC timestamp.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any, NamedTuple, TypeVar

import msgspec

from events.codec import CANONICAL, GENESIS, chain_hash, data_hash, decode_payload
from events.envelope import Event, Metadata, NewEvent, Source
from events.errors import CorruptEvent, InvalidEvent
from events.payloads import PAYLOAD_TYPES, AnyPayload
from events.upcasters import current_version

COLUMNS = (
    "position",
    "event_id",
    "stream",
    "stream_version",
    "type",
    "schema_version",
    "occurred_on",
    "sequence",
    "recorded_at",
    "data",
    "source",
    "metadata",
    "data_hash",
    "prev_hash",
    "hash",
)
SELECT_COLUMNS = ", ".join(COLUMNS)

_SOURCE = msgspec.json.Decoder(Source)
_METADATA = msgspec.json.Decoder(Metadata)
_PAYLOADS: dict[str, msgspec.json.Decoder[Any]] = {  # untyped numbers as Decimals (events.codec)
    name: msgspec.json.Decoder(cls, float_hook=Decimal) for name, cls in PAYLOAD_TYPES.items()
}
_SHARED = 1024
"""At most this many distinct `recorded_at` and `metadata` values are kept for sharing."""
_recorded: dict[str, datetime] = {}
_metadata: dict[str, Metadata] = {}
T = TypeVar("T")


class Row(NamedTuple):
    """One stored event, column by column."""

    position: int
    event_id: str
    stream: str
    stream_version: int
    type: str
    schema_version: int
    occurred_on: str
    sequence: int | None
    recorded_at: str
    data: str
    source: str
    metadata: str
    data_hash: str
    prev_hash: str
    hash: str


class Encoded(NamedTuple):
    """The canonical parts of a new event, computed once before it is placed."""

    event: NewEvent
    data: bytes
    source: bytes
    metadata: bytes
    data_hash: str


def encode_new(event: NewEvent) -> Encoded:
    """Canonical bytes and data hash of a new event."""
    data = CANONICAL.encode(event.data)
    source = CANONICAL.encode(event.source)
    return Encoded(event, data, source, CANONICAL.encode(event.metadata), data_hash(data, source))


def place(  # noqa: PLR0913 - the ledger-set fields of a row
    encoded: Encoded,
    *,
    position: int,
    stream_version: int,
    schema_version: int,
    recorded_at: str,
    prev_hash: str,
) -> Row:
    """The row of a new event at its position, with its chain hash."""
    event = encoded.event
    link = chain_hash(
        position=position,
        event_id=event.event_id,
        stream=event.stream,
        stream_version=stream_version,
        event_type=event.type,
        schema_version=schema_version,
        occurred_on=event.occurred_on,
        sequence=event.sequence,
        recorded_at=recorded_at,
        metadata=encoded.metadata,
        data_hash=encoded.data_hash,
        prev_hash=prev_hash,
    )
    return Row(
        position,
        event.event_id,
        event.stream,
        stream_version,
        event.type,
        schema_version,
        event.occurred_on,
        event.sequence,
        recorded_at,
        encoded.data.decode(),
        encoded.source.decode(),
        encoded.metadata.decode(),
        encoded.data_hash,
        prev_hash,
        link,
    )


def stored_payload(
    decoder: msgspec.json.Decoder[Any] | None, event_type: str, data: bytes, schema_version: int
) -> AnyPayload:
    """A stored payload, by `decoder` (its type at the current version) when there is one.

    Without one, or when it fails, through `decode_payload`, which upcasts an older version
    or raises naming the bad field.
    """
    if decoder is not None:
        try:
            payload: AnyPayload = decoder.decode(data)
        except (msgspec.ValidationError, msgspec.DecodeError):
            pass  # decode_payload raises it again, with the field's path
        else:
            return payload
    return decode_payload(event_type, data, schema_version)


def stored_event(row: tuple[Any, ...]) -> Event:
    """`to_event` of a row read from the store: a row that does not decode is `CorruptEvent`.

    (Not bad input, as the same failure is on import: the store holds only rows it checked.)
    """
    try:
        return to_event(row)
    except (InvalidEvent, msgspec.DecodeError, ValueError, LookupError) as exc:
        raise CorruptEvent(int(row[0]), str(exc)) from None


def to_event(row: tuple[Any, ...]) -> Event:
    """Decode a stored row into an `Event`, upcasting an old payload version.

    The hot path of every replay. A payload at its type's current schema version is
    decoded directly; any other (or any failure) goes through `decode_payload`, which
    upcasts, or raises with the bad field's path. `recorded_at` (one per commit) and
    `metadata` (one per recorder, mostly) repeat from row to row and are immutable, so
    equal texts share one decoded value.
    """
    try:
        (
            position,
            event_id,
            stream,
            stream_version,
            event_type,
            schema_version,
            occurred_on,
            sequence,
            recorded_at,
            data,
            source,
            metadata,
            hashed,
            prev_hash,
            link,
        ) = row
    except ValueError:
        Row(*row)  # raises the TypeError that names the missing or extra column
        raise
    current = current_version(event_type)
    moment = _recorded.get(recorded_at)
    if moment is None:
        moment = _share(_recorded, recorded_at, datetime.fromisoformat(recorded_at))
    decoder = _PAYLOADS.get(event_type) if schema_version == current else None
    payload = stored_payload(decoder, event_type, data, schema_version)
    provenance = _SOURCE.decode(source)
    meta = _metadata.get(metadata)
    if meta is None:
        meta = _share(_metadata, metadata, _METADATA.decode(metadata))
    return Event(
        position=position,
        event_id=event_id,
        stream=stream,
        stream_version=stream_version,
        type=event_type,
        schema_version=max(schema_version, current),
        occurred_on=occurred_on,
        sequence=sequence,
        recorded_at=moment,
        data=payload,
        source=provenance,
        metadata=meta,
        data_hash=hashed,
        prev_hash=prev_hash,
        hash=link,
    )


def _share(seen: dict[str, T], text: str, value: T) -> T:
    """Remember an immutable decoded value by its text (a bounded cache: emptied when full)."""
    if len(seen) >= _SHARED:
        seen.clear()
    seen[text] = value
    return value


def check(row: Row, expected_position: int, prev_hash: str) -> str | None:
    """Why a stored row breaks the chain at its place, or None if it holds."""
    if row.position != expected_position:
        return f"position {row.position} where {expected_position} was expected"
    if row.prev_hash != prev_hash:
        return "prev_hash does not match the hash of the previous event"
    if data_hash(row.data.encode(), row.source.encode()) != row.data_hash:
        return "data_hash does not match the stored data and source"
    link = chain_hash(
        position=row.position,
        event_id=row.event_id,
        stream=row.stream,
        stream_version=row.stream_version,
        event_type=row.type,
        schema_version=row.schema_version,
        occurred_on=row.occurred_on,
        sequence=row.sequence,
        recorded_at=row.recorded_at,
        metadata=row.metadata.encode(),
        data_hash=row.data_hash,
        prev_hash=row.prev_hash,
    )
    if link != row.hash:
        return "hash does not match the envelope"
    return None


class Exported(msgspec.Struct, forbid_unknown_fields=True):
    """One line of an export: a stored envelope exactly as stored (payload not upcast)."""

    position: int
    event_id: str
    stream: str
    stream_version: int
    type: str
    schema_version: int
    occurred_on: str
    sequence: int | None
    recorded_at: str
    data: msgspec.Raw
    source: msgspec.Raw
    metadata: msgspec.Raw
    data_hash: str
    prev_hash: str
    hash: str


EXPORTED = msgspec.json.Decoder(Exported)
_GENERIC = msgspec.json.Decoder()


def export_line(row: tuple[Any, ...]) -> bytes:
    """The NDJSON line of a stored row, its JSON columns embedded as they are."""
    r = Row(*row)
    line = Exported(
        *r[:9],
        msgspec.Raw(r.data.encode()),
        msgspec.Raw(r.source.encode()),
        msgspec.Raw(r.metadata.encode()),
        r.data_hash,
        r.prev_hash,
        r.hash,
    )
    return CANONICAL.encode(line) + b"\n"


def recanonical(raw: msgspec.Raw) -> str:
    """Canonical text of an embedded JSON value, whatever whitespace or key order it came in."""
    return CANONICAL.encode(_GENERIC.decode(raw)).decode()


def row_from_export(line: Exported) -> Row:
    """The row an export line stands for."""
    return Row(
        line.position,
        line.event_id,
        line.stream,
        line.stream_version,
        line.type,
        line.schema_version,
        line.occurred_on,
        line.sequence,
        line.recorded_at,
        recanonical(line.data),
        recanonical(line.source),
        recanonical(line.metadata),
        line.data_hash,
        line.prev_hash,
        line.hash,
    )


__all__ = [
    "COLUMNS",
    "EXPORTED",
    "GENESIS",
    "SELECT_COLUMNS",
    "Encoded",
    "Exported",
    "Row",
    "check",
    "encode_new",
    "export_line",
    "place",
    "row_from_export",
    "stored_event",
    "to_event",
]
