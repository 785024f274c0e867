"""The `EventLog` protocol: what every storage backend guarantees (DESIGN §6)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Protocol, runtime_checkable

from events.codec import GENESIS
from events.envelope import AppendResult, Event, NewEvent, VerifyResult
from events.replay import Replayed

MAX_POSITION = 2**63 - 1
"""The largest position a log can hold (a signed 64-bit integer in SQLite and PostgreSQL)."""

Progress = Callable[[int], None]
"""Called with the number of items just done, for progress bars."""


@runtime_checkable
class EventLog(Protocol):
    """An append-only, hash-chained log of events with gap-free global positions.

    - `append` is atomic per batch; `expected_versions` maps a stream to the version the
      client saw (0: the stream must not exist) and a mismatch raises `VersionConflict`;
      a batch whose every `event_id` is stored with the same content returns the original
      places with `replayed=True` and writes nothing; other content raises
      `IdempotencyConflict`. The call returns only once the batch is durable.
    - positions are 1, 2, 3 … with no gap and become visible in order.
    """

    def append(
        self, events: Sequence[NewEvent], expected_versions: Mapping[str, int] | None = None
    ) -> AppendResult:
        """Append a batch atomically; return where each event landed."""
        ...

    def read(
        self,
        after: int = 0,
        limit: int = 100,
        stream: str | None = None,
        types: Sequence[str] | None = None,
    ) -> list[Event]:
        """Events with a position after `after`, in order, at most `limit`."""
        ...

    def get(self, event_id: str) -> Event | None:
        """One event by id, or None."""
        ...

    def stream(
        self, name: str, after: int = 0, limit: int | None = None
    ) -> tuple[list[Event], int]:
        """A stream's events in order and its current version (0 if it does not exist).

        Only the events with a stream version after `after`, at most `limit` (None: all).
        """
        ...

    def head(self) -> int:
        """The position of the last committed event (0 for an empty log)."""
        ...

    def iter_events(self, after: int = 0, upto: int | None = None) -> Iterator[Event]:
        """Every event after `after` (up to `upto`), in order: the fast path for replay."""
        ...

    def iter_replay(self, after: int = 0, upto: int | None = None) -> Iterator[Replayed]:
        """`iter_events` cut to what the projections fold (`projections.build_replayed`)."""
        ...

    def export_lines(self, progress: Progress | None = None) -> Iterator[bytes]:
        """The whole log as NDJSON lines of stored envelopes, hashes as stored."""
        ...

    def import_lines(self, lines: Iterable[bytes], progress: Progress | None = None) -> int:
        """Load an export into an empty log, checking every hash and the chain; all or nothing."""
        ...

    def verify(self, progress: Progress | None = None) -> VerifyResult:
        """Recompute every hash and link; report the first bad position."""
        ...

    def backup(self, path: Path, progress: Progress | None = None) -> None:
        """Write a consistent copy of the log to `path`."""
        ...

    def close(self) -> None:
        """Finish pending appends and release the store."""
        ...


def hash_at(log: EventLog, position: int) -> str | None:
    """The log's chain hash at `position` (`GENESIS` at 0, before any event); None past its head.

    What a snapshot of the log's state at `position` is anchored to (`projections.snapshot`).
    """
    if position == 0:
        return GENESIS
    if not 0 < position <= log.head():
        return None
    page = log.read(after=position - 1, limit=1)
    return page[0].hash if page and page[0].position == position else None
