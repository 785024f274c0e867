"""The `eventsourcing` library as a baseline: its domain events, mapper and SQLite recorder.

Shared by `bench/append.py` and `bench/replay.py`, so both measure the library the way an
application uses it: a domain event object goes through the `Mapper` (the `JSONTranscoder`
with the UUID, Decimal and datetime transcodings an `Application` registers) to a
`StoredEvent`, which the `SQLiteApplicationRecorder` inserts (global notification ids, like
the ledger's positions); reading back is the reverse. One aggregate per ledger stream.

The library is an optional dependency (the `bench` extra): import this module only where
it is installed.
"""

from __future__ import annotations

import uuid
from decimal import Decimal
from pathlib import Path
from typing import Any

import msgspec
from eventsourcing.domain import DomainEvent
from eventsourcing.persistence import (
    DatetimeAsISO,
    DecimalAsStr,
    JSONTranscoder,
    Mapper,
    UUIDAsHex,
)
from eventsourcing.sqlite import SQLiteApplicationRecorder, SQLiteDatastore


class Announced(DomainEvent):
    """A stored ledger event as a domain event: the same envelope, the same data."""

    event_id: str
    type: str
    schema_version: int
    occurred_on: str
    sequence: int | None
    data: dict[str, Any]
    source: dict[str, Any]
    metadata: dict[str, Any]
    data_hash: str
    prev_hash: str
    hash: str


class Announcing(DomainEvent):
    """An event to append, as a domain event: what a caller hands the ledger (no hashes)."""

    event_id: str
    type: str
    occurred_on: str
    sequence: int | None
    data: dict[str, Any]
    source: dict[str, Any]
    metadata: dict[str, Any]


def mapper() -> Mapper[uuid.UUID]:
    """A mapper with the transcodings an `Application` registers by default."""
    transcoder = JSONTranscoder()
    for transcoding in (UUIDAsHex(), DecimalAsStr(), DatetimeAsISO()):
        transcoder.register(transcoding)
    return Mapper(transcoder=transcoder)


def recorder(path: Path, *, durable: bool = False) -> SQLiteApplicationRecorder:
    """An application recorder on a new or existing file (WAL, the library's own default).

    `durable`: every connection it opens is set to `synchronous=FULL` and checked, with WAL.
    """
    datastore = SQLiteDatastore(str(path))
    if durable:
        pool = datastore.pool
        create = pool._create_connection  # noqa: SLF001 - the one place it opens connections

        def full() -> Any:
            conn = create()
            conn._sqlite_conn.execute("PRAGMA synchronous = FULL")  # noqa: SLF001 - its handle
            return conn

        pool._create_connection = full  # type: ignore[method-assign]  # noqa: SLF001
    made = SQLiteApplicationRecorder(datastore)
    made.create_table()
    if durable:
        with datastore.get_connection(commit=True) as conn:
            raw = conn._sqlite_conn  # noqa: SLF001
            sync = raw.execute("PRAGMA synchronous").fetchone()[0]
            mode = raw.execute("PRAGMA journal_mode").fetchone()[0]
        if (sync, str(mode).lower()) != (2, "wal"):
            msg = f"eventsourcing: synchronous={sync}, journal_mode={mode}"
            raise SystemExit(msg)
    return made


def aggregate_id(stream: str) -> uuid.UUID:
    """The aggregate standing for a ledger stream."""
    return uuid.uuid5(uuid.NAMESPACE_URL, stream)


def plain(value: Any) -> Any:
    """Builtins for the transcoder, keeping Decimal (a transcoding of its own)."""
    return msgspec.to_builtins(value, builtin_types=(Decimal,))
