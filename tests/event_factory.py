"""Stored `Event`s built directly, for tests of pure projections (no database)."""

from __future__ import annotations

import datetime as dt

from events.envelope import Event, Metadata, Source
from events.payloads import Payload

BASE = dt.datetime(2025, 1, 1, tzinfo=dt.UTC)
SOURCE = Source(url="urn:test")


def stored_event(  # noqa: PLR0913 - the envelope fields a test may want to set
    number: int,
    data: Payload,
    occurred_on: str = "2022",
    *,
    position: int | None = None,
    sequence: int | None = None,
    source: Source = SOURCE,
    metadata: Metadata | None = None,
    hashes: str = "0",
) -> Event:
    """An event as the log stores it: id from `number`; position and time default to it."""
    position = number if position is None else position
    return Event(
        position=position,
        event_id=f"00000000-0000-4000-8000-{number:012x}",
        stream="s",
        stream_version=position,
        type=data.TYPE,
        schema_version=1,
        occurred_on=occurred_on,
        sequence=sequence,
        recorded_at=BASE + dt.timedelta(seconds=position),
        data=data,  # type: ignore[arg-type] - every Payload subclass is in AnyPayload
        source=source,
        metadata=metadata or Metadata(),
        data_hash=hashes[0] * 64,
        prev_hash=hashes[len(hashes) // 2] * 64,
        hash=hashes[-1] * 64,
    )
