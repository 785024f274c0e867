"""A group commit of plain `sqlite3` and nothing else: the floor of `ledger_concurrent16`.

`bench/append.py`'s `raw_concurrent16` arm appends through it from 16 threads. Each
`append` hands one prebuilt row to the writer thread and waits on a lock of its own. The
writer does what the store's group commit does (`events.groupcommit`, `events.sqlite`),
without the ledger's work: it takes every row queued, gives each its place (the next
position, the next version of its stream, in the order the rows are written, as the store
places them), and writes the group as the store writes one (up to `ROWS_PER_INSERT` rows
as one multi-row `INSERT` outside a transaction, its own transaction and fsync; more in
one transaction). A committed group's waiters are released as the store tells its
callers: just before the next group's commit, so that they queue their next rows while
the disk syncs, or at once when no group waits. No encoding, hashing, planning, checks or
reads. A failure of the writer is raised by every `append` waiting or to come, never a
thread left waiting.
"""

from __future__ import annotations

import queue
import sqlite3
import threading
from typing import Any

from events.rows import COLUMNS
from events.sqlite_group import INSERT, ROWS_PER_INSERT
from events.sqlite_group import _insert_of as insert_of  # the store's own statements

_POSITION, _STREAM, _VERSION = (
    COLUMNS.index(name) for name in ("position", "stream", "stream_version")
)

Row = tuple[Any, ...]
_Item = tuple[Row, threading.Lock]


def _release(group: list[_Item]) -> None:
    for _, done in group:
        done.release()
    group.clear()


class RawGroupCommit:
    """A writer thread committing the rows `append`ed from any thread, in groups."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn
        self._queue: queue.SimpleQueue[_Item | None] = queue.SimpleQueue()
        self._error: BaseException | None = None
        self._position = 0
        self._versions: dict[str, int] = {}
        self._closed = False
        self._thread = threading.Thread(target=self._run, name="raw-writer", daemon=True)
        self._thread.start()

    def append(self, row: Row) -> None:
        """Commit one row with whatever else is queued; return once its group is durable."""
        if self._error is None:
            done = threading.Lock()
            done.acquire()
            self._queue.put((row, done))
            done.acquire()  # released by the writer: committed, or failed
        if self._error is not None:
            msg = f"the raw writer failed: {self._error!r}"
            raise RuntimeError(msg)

    def close(self) -> None:
        """Commit what is queued, then end the writer thread (once; again does nothing)."""
        if not self._closed:
            self._closed = True
            self._queue.put(None)
        self._thread.join()

    def _run(self) -> None:
        told_later: list[_Item] = []  # committed; released just before the next commit
        try:
            while (group := self._gather(told_later)) is not None:
                if self._error is not None:
                    _release(group)
                    continue
                try:
                    self._write(group, told_later)
                except BaseException as exc:  # noqa: BLE001 - every waiter hears of it
                    self._error = exc
                    _release(told_later)
                    _release(group)
                    continue
                told_later.extend(group)
        finally:
            _release(told_later)

    def _gather(self, told_later: list[_Item]) -> list[_Item] | None:
        """Everything queued (waiting for the first item); None once `close` is reached."""
        try:
            first = self._queue.get_nowait()
        except queue.Empty:
            _release(told_later)  # no group to overlap with: tell the last one now
            first = self._queue.get()
        if first is None:
            return None
        group = [first]
        while True:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                return group
            if item is None:
                self._queue.put(None)  # ends the thread after this group
                return group
            group.append(item)

    def _write(self, group: list[_Item], told_later: list[_Item]) -> None:
        rows = [self._placed(row) for row, _ in group]
        conn = self._conn
        if len(rows) <= ROWS_PER_INSERT:
            statement = insert_of(len(rows))
            _release(told_later)
            conn.execute(statement, [value for row in rows for value in row])  # commits
            return
        conn.execute("BEGIN")
        conn.executemany(INSERT, rows)
        _release(told_later)
        conn.execute("COMMIT")

    def _placed(self, row: Row) -> Row:
        """The row at the next position and the next version of its stream."""
        self._position += 1
        stream = row[_STREAM]
        version = self._versions.get(stream, 0) + 1
        self._versions[stream] = version
        placed = list(row)
        placed[_POSITION], placed[_VERSION] = self._position, version
        return tuple(placed)
