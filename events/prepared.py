"""The part of an append that needs no database: done on the caller's thread, before queueing.

Everything in a row but its place (position, stream version, `recorded_at`, `prev_hash`) is
known before the writer sees the event: the canonical `data`, `source` and `metadata`, the
data hash, and the canonical bytes of the chain-hash header around the four placed fields.
`prepare` computes them where the caller runs, so the writer's critical section is left
with the SQL, the rules of `events.planner`, and one SHA-256 per event over bytes that are
joined, not encoded. The bytes are exactly those `events.codec.chain_hash` hashes (the
header's keys in sorted order, each value canonical); the tests check the two agree.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from typing import NamedTuple

from events.codec import CANONICAL, decode_payload
from events.envelope import NewEvent
from events.errors import InvalidEvent
from events.header import check_headers
from events.payloads import Payload
from events.rows import Encoded, Row, encode_new
from events.upcasters import current_version


class Parts(NamedTuple):
    """A new event's canonical parts and its chain-hash header, cut where the place goes in."""

    encoded: Encoded
    texts: tuple[str, str, str]  # `data`, `source` and `metadata` as stored
    schema_version: int
    before_position: bytes  # `{"data_hash":…,"event_id":…,"metadata":…,"occurred_on":…,"position":`
    before_version: bytes  # `,"schema_version":…,"sequence":…,"stream":…,"stream_version":`
    after_version: bytes  # `,"type":…}`


def parts_of(event: NewEvent) -> Parts:
    """The canonical parts of one new event (`encode_new`) and its header around the place."""
    encoded = encode_new(event)
    schema_version = current_version(event.type)
    enc = CANONICAL.encode
    return Parts(
        encoded,
        (encoded.data.decode(), encoded.source.decode(), encoded.metadata.decode()),
        schema_version,
        b'{"data_hash":'
        + enc(encoded.data_hash)
        + b',"event_id":'
        + enc(event.event_id)
        + b',"metadata":'
        + encoded.metadata
        + b',"occurred_on":'
        + enc(event.occurred_on)
        + b',"position":',
        b',"schema_version":'
        + enc(schema_version)
        + b',"sequence":'
        + enc(event.sequence)
        + b',"stream":'
        + enc(event.stream)
        + b',"stream_version":',
        b',"type":' + enc(event.type) + b"}",
    )


class PreparedBatch(list[NewEvent]):
    """A batch with each event's `Parts`, computed before it was queued (see `prepare_batch`)."""

    __slots__ = ("parts",)

    def __init__(self, events: Iterable[NewEvent]) -> None:
        super().__init__(events)
        check_headers(self)  # a batch that fails goes to the writer unprepared, which says so
        self.parts = [parts_of(event) for event in self]


def prepare_batch(events: Iterable[NewEvent], *, decoded: bool = False) -> list[NewEvent]:
    """The batch with its parts (a `PreparedBatch`), else as a plain list.

    What is not a `NewEvent` with a payload is the caller's mistake: `InvalidEvent` naming
    it (`checked_batch`), as is a payload that would not read back (`check_readable`;
    skipped if `decoded`: the batch was just decoded with its types, by the writer
    process). Another batch whose parts cannot be computed here goes to the writer as it
    is, which reports it as before.
    """
    batch = checked_batch(events)
    try:
        prepared = PreparedBatch(batch)
    except Exception:  # noqa: BLE001 - reported by the writer, with the batch as given
        return batch
    if not decoded:
        check_readable(prepared)
    return prepared


def check_readable(batch: PreparedBatch) -> None:
    """`InvalidEvent` at `$[i].data…` for a payload whose stored text would not read back.

    msgspec checks a payload's constraints (a pattern, a length, a bound) when it decodes
    one, not when a payload is built in Python: such a payload, stored, made every read of
    its position a `CorruptEvent`, in an append-only log. Its canonical text is decoded
    here as a read decodes it. (A payload decoded from JSON by `events.intake`, or by the
    writer process from its wire, has passed this already.)
    """
    for index, (event, parts) in enumerate(zip(batch, batch.parts, strict=True)):
        try:
            decode_payload(event.type, parts.encoded.data)
        except InvalidEvent as exc:
            raise exc.under(f"$[{index}]") from None


def checked_batch(events: Iterable[NewEvent]) -> list[NewEvent]:
    """The batch as a list, each item a `NewEvent` with a payload; else `InvalidEvent`.

    (It was a `StoreError`, the class of a failing disk, which a pipeline might retry for
    ever.)
    """
    if isinstance(events, (str, bytes)):
        msg = f"a batch is a sequence of NewEvent, not {type(events).__name__}"
        raise InvalidEvent(msg, "$")
    batch = events if isinstance(events, list) else list(events)  # an iterator is read once
    for index, event in enumerate(batch):
        if not isinstance(event, NewEvent):
            msg = f"not a NewEvent but a {type(event).__name__}"
            raise InvalidEvent(msg, f"$[{index}]")
        if not isinstance(event.data, Payload):
            msg = f"not a payload but a {type(event.data).__name__}"
            raise InvalidEvent(msg, f"$[{index}].data")
    return batch


def placed(  # noqa: PLR0913 - the ledger-set fields of a row
    parts: Parts,
    event: NewEvent,
    *,
    position: int,
    stream_version: int,
    recorded_at: str,
    recorded_json: bytes,
    prev_hash: str,
) -> Row:
    """The row of a prepared event at its place: `rows.place` with the header joined, not encoded.

    `recorded_json` is the canonical JSON of `recorded_at` (one per group).
    """
    data, source, metadata = parts.texts
    link = hashlib.sha256(
        b"".join(
            (
                parts.before_position,
                str(position).encode(),
                b',"prev_hash":',
                CANONICAL.encode(prev_hash),
                b',"recorded_at":',
                recorded_json,
                parts.before_version,
                str(stream_version).encode(),
                parts.after_version,
            )
        )
    ).hexdigest()
    return Row(
        position,
        event.event_id,
        event.stream,
        stream_version,
        event.type,
        parts.schema_version,
        event.occurred_on,
        event.sequence,
        recorded_at,
        data,
        source,
        metadata,
        parts.encoded.data_hash,
        prev_hash,
        link,
    )
