"""The lean read of a replay: only what the projections fold, decoded once, no envelope.

A replay needs of each stored event its position, id, stream, type, valid time,
sequence, `recorded_at`, source and payload; not its hashes, metadata or stream version
(the chain is checked by `verify`, not on every read). `replayed` decodes rows of
`REPLAY_COLUMNS` into plain tuples (`Replayed`) instead of whole `Event` envelopes, with
the same decoding as `events.rows.to_event`: a payload at its type's current schema
version is decoded directly, an older one is upcast, a bad one raises `InvalidEvent`
with the bad field's path; equal `recorded_at` texts (one per commit) share one value.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from datetime import datetime
from decimal import Decimal
from typing import Any

import msgspec

from events.envelope import Source
from events.errors import CorruptEvent, InvalidEvent
from events.payloads import PAYLOAD_TYPES, AnyPayload
from events.rows import stored_payload
from events.upcasters import current_version

REPLAY_COLUMNS = (
    "position",
    "event_id",
    "stream",
    "type",
    "schema_version",
    "occurred_on",
    "sequence",
    "recorded_at",
    "source",
    "data",
)
"""The stored columns a replay reads, in the order `replayed` expects them."""

Replayed = tuple[int, str, str, str, str, "int | None", datetime, Source, AnyPayload]
"""One event for a replay: position, event id, stream, type, occurred_on, sequence,
recorded_at, source, data (upcast to the current schema)."""

_SOURCE = msgspec.json.Decoder(Source)
_SHARED = 1024


def _current_decoders() -> dict[tuple[str, int], msgspec.json.Decoder[Any]]:
    """A decoder per (type, current schema version), for the rows that need no upcasting."""
    return {
        (name, current_version(name)): msgspec.json.Decoder(cls, float_hook=Decimal)
        for name, cls in PAYLOAD_TYPES.items()
    }


_DECODERS = _current_decoders()


def _decoders() -> dict[tuple[str, int], msgspec.json.Decoder[Any]]:
    """The current decoders (made again only if an upcaster changed a current version)."""
    global _DECODERS  # noqa: PLW0603 - a cache, refreshed when the upcasters change
    if any(current_version(name) != version for name, version in _DECODERS):
        _DECODERS = _current_decoders()
    return _DECODERS


def replayed(rows: Iterable[tuple[Any, ...]]) -> Iterator[Replayed]:
    """Decode stored rows of `REPLAY_COLUMNS` for a replay, in the order given."""
    decoders = _decoders()
    moments: dict[str, datetime] = {}
    decode_source = _SOURCE.decode
    for (
        position,
        event_id,
        stream,
        event_type,
        schema_version,
        occurred_on,
        sequence,
        recorded_at,
        source,
        data,
    ) in rows:
        try:
            moment = moments.get(recorded_at)
            if moment is None:
                if len(moments) >= _SHARED:
                    moments.clear()
                moment = moments[recorded_at] = datetime.fromisoformat(recorded_at)
            decoder = decoders.get((event_type, schema_version))
            payload = stored_payload(decoder, event_type, data, schema_version)
            provenance = decode_source(source)
        except (InvalidEvent, msgspec.DecodeError, ValueError, LookupError) as exc:
            raise CorruptEvent(position, str(exc)) from None  # as in `rows.stored_event`
        yield (
            position,
            event_id,
            stream,
            event_type,
            occurred_on,
            sequence,
            moment,
            provenance,
            payload,
        )
