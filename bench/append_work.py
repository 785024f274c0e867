"""The work of `bench/append.py`, built before any clock starts: events, rows, domain events.

Copies of the seed with fresh UUIDv7 ids over `STREAMS` streams; the rows the store would
write for them (for the raw `sqlite3` arms); the same events as `eventsourcing` domain events
and the `StoredEvent`s its mapper makes of them. Imported by that script, which puts the
repository root on `sys.path` first.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import msgspec

from events.codec import GENESIS
from events.envelope import NewEvent
from events.ids import uuid7
from events.rows import encode_new, place
from events.seed import seed_events
from events.upcasters import current_version

STREAMS = 8


def make_events(count: int) -> list[NewEvent]:
    """`count` copies of the seed events with fresh ids, spread over a few streams."""
    seed = seed_events()
    return [
        msgspec.structs.replace(
            seed[i % len(seed)], event_id=uuid7(), stream=f"bench-{i % STREAMS}"
        )
        for i in range(count)
    ]


def make_rows(events: Sequence[NewEvent]) -> list[tuple[Any, ...]]:
    """The rows the store would write for these events (positions from 1, chained)."""
    versions: dict[str, int] = {}
    recorded_at = "2025-01-01T00:00:00.000000Z"
    prev, rows = GENESIS, []
    for position, event in enumerate(events, start=1):
        versions[event.stream] = versions.get(event.stream, 0) + 1
        row = place(
            encode_new(event),
            position=position,
            stream_version=versions[event.stream],
            schema_version=current_version(event.type),
            recorded_at=recorded_at,
            prev_hash=prev,
        )
        prev = row.hash
        rows.append((*row, None))
    return rows


def make_announcing(events: Sequence[NewEvent]) -> list[Any]:
    """The same events as `eventsourcing` domain events (`es_baseline.Announcing`)."""
    import es_baseline  # noqa: PLC0415 - an optional dependency, beside this script

    versions: dict[str, int] = {}
    out = []
    for event in events:
        versions[event.stream] = versions.get(event.stream, 0) + 1
        out.append(
            es_baseline.Announcing(
                originator_id=es_baseline.aggregate_id(event.stream),
                originator_version=versions[event.stream],
                timestamp=es_baseline.Announcing.create_timestamp(),
                event_id=event.event_id,
                type=event.type,
                occurred_on=event.occurred_on,
                sequence=event.sequence,
                data=es_baseline.plain(event.data),
                source=es_baseline.plain(event.source),
                metadata=es_baseline.plain(event.metadata),
            )
        )
    return out


def stored(announcing: Sequence[Any]) -> list[Any]:
    """The `StoredEvent`s the library's mapper makes of these domain events."""
    import es_baseline  # noqa: PLC0415 - an optional dependency, beside this script

    mapper = es_baseline.mapper()
    return [mapper.to_stored_event(event) for event in announcing]


def chunks(items: Sequence[Any], size: int) -> list[Sequence[Any]]:
    return [items[i : i + size] for i in range(0, len(items), size)]
