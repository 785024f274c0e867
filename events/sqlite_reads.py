"""The reads of the SQLite event log: pages, one event, a stream, whole-log scans, verify.

A mixin of `events.sqlite.SQLiteEventLog`, which gives each thread its reader connection
(`_reader`), opens a scan's own connection (`_connect`) and says when it is `_closed`.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator, Sequence
from typing import Any

from events.codec import GENESIS
from events.envelope import Event, VerifyResult
from events.errors import StoreError
from events.log import MAX_POSITION, Progress
from events.replay import REPLAY_COLUMNS, Replayed, replayed
from events.rows import SELECT_COLUMNS, Row, check, export_line, stored_event

_REPLAY_SELECT = ", ".join(REPLAY_COLUMNS)


def _bounded(number: int) -> int:
    """A position or count as SQLite can hold it: past `MAX_POSITION`, that."""
    return min(number, MAX_POSITION)


class SQLiteReads:
    """Reads over `_reader()` (a thread's connection) and `_connect()` (a scan's own)."""

    _closed: bool

    def _reader(self) -> sqlite3.Connection:
        raise NotImplementedError

    def _connect(self, *, create: bool = False) -> sqlite3.Connection:
        raise NotImplementedError

    def head(self) -> int:
        """The last committed position."""
        row = self._reader().execute("SELECT max(position) FROM events").fetchone()
        return int(row[0] or 0)

    def read(
        self,
        after: int = 0,
        limit: int = 100,
        stream: str | None = None,
        types: Sequence[str] | None = None,
    ) -> list[Event]:
        """Events after a position, in order, optionally of one stream and some types.

        A single type may be given as a string; positions past any SQLite can hold read as
        the largest (nothing after it).
        """
        if isinstance(types, str):
            types = [types]  # `types="site_acquired"` matched no event: its letters, one by one
        where = ["position > ?"]
        args: list[Any] = [_bounded(after)]
        if stream is not None:
            where.append("stream = ?")
            args.append(stream)
        if types:
            where.append(f"type IN ({','.join('?' * len(types))})")
            args.extend(types)
        args.append(_bounded(limit))
        sql = (
            f"SELECT {SELECT_COLUMNS} FROM events WHERE {' AND '.join(where)}"  # noqa: S608 - only placeholders
            " ORDER BY position LIMIT ?"
        )
        return [stored_event(row) for row in self._reader().execute(sql, args)]

    def get(self, event_id: str) -> Event | None:
        """One event by id."""
        row = (
            self._reader()
            .execute(f"SELECT {SELECT_COLUMNS} FROM events WHERE event_id = ?", (event_id,))  # noqa: S608 - constant columns
            .fetchone()
        )
        return None if row is None else stored_event(row)

    def stream(
        self, name: str, after: int = 0, limit: int | None = None
    ) -> tuple[list[Event], int]:
        """A stream's events after version `after` (at most `limit`) and its version."""
        conn = self._reader()
        conn.execute("BEGIN")  # the page and the version from one snapshot of the log
        try:
            rows = conn.execute(
                f"SELECT {SELECT_COLUMNS} FROM events WHERE stream = ? AND stream_version > ?"  # noqa: S608 - constant columns
                " ORDER BY stream_version LIMIT ?",
                (name, _bounded(after), -1 if limit is None else _bounded(limit)),
            ).fetchall()
            version = conn.execute(
                "SELECT max(stream_version) FROM events WHERE stream = ?", (name,)
            ).fetchone()[0]
        finally:
            if conn.in_transaction:  # a read: nothing to keep; the connection left clean
                conn.execute("ROLLBACK")
        return [stored_event(row) for row in rows], int(version or 0)

    def _rows(
        self, after: int = 0, upto: int | None = None, columns: str = SELECT_COLUMNS
    ) -> Iterator[tuple[Any, ...]]:
        if self._closed:  # as `read` says it: no scan opens a connection after `close`
            msg = "the event log is closed"
            raise StoreError(msg)
        conn = self._connect()  # its own connection: one consistent snapshot for the whole scan
        try:
            conn.execute("BEGIN")
            sql = f"SELECT {columns} FROM events WHERE position > ?"  # noqa: S608 - constant columns
            args: list[int] = [_bounded(after)]
            if upto is not None:
                sql += " AND position <= ?"
                args.append(_bounded(upto))
            cursor = conn.execute(sql + " ORDER BY position", args)
            while batch := cursor.fetchmany(5000):
                yield from batch
            conn.execute("COMMIT")
        finally:
            conn.close()

    def iter_events(self, after: int = 0, upto: int | None = None) -> Iterator[Event]:
        """Every event after a position, decoded, in order."""
        for row in self._rows(after, upto):
            yield stored_event(row)

    def iter_replay(self, after: int = 0, upto: int | None = None) -> Iterator[Replayed]:
        """`iter_events` for a replay: only what the projections fold (`events.replay`)."""
        return replayed(self._rows(after, upto, _REPLAY_SELECT))

    # -- integrity, export, import, backup --------------------------------------------

    def verify(self, progress: Progress | None = None) -> VerifyResult:
        """Recompute every data hash and chain link from the stored bytes."""
        prev, expected, checked = GENESIS, 1, 0
        for raw in self._rows():
            row = Row(*raw)
            reason = check(row, expected, prev)
            if reason is not None:
                return VerifyResult(
                    ok=False,
                    head=expected - 1,
                    checked=checked,
                    first_bad_position=expected,
                    reason=reason,
                )
            prev, expected, checked = row.hash, expected + 1, checked + 1
            if progress is not None:
                progress(1)
        return VerifyResult(ok=True, head=expected - 1, checked=checked)

    def export_lines(self, progress: Progress | None = None) -> Iterator[bytes]:
        """The log as NDJSON of stored envelopes."""
        for row in self._rows():
            if progress is not None:
                progress(1)
            yield export_line(row)
