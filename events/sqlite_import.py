"""Loading an export into an empty SQLite log: every line decoded, hashed, chained, checked.

The caller holds the write transaction; a line that does not decode, whose hashes or link
do not hold, or that `append` could not have written next (`events.import_checks`) raises
(`InvalidEvent`, `ChainBroken` naming the line) and the caller rolls the whole import back.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable
from typing import Any

import msgspec

from events.codec import GENESIS, decode
from events.errors import ChainBroken, InvalidEvent
from events.import_checks import ImportChecks
from events.intake import LineError
from events.log import Progress
from events.planner import target_of
from events.rows import EXPORTED, check, row_from_export, to_event
from events.sqlite_group import CHUNK, INSERT


def insert_export(
    conn: sqlite3.Connection, lines: Iterable[bytes], progress: Progress | None
) -> tuple[int, str, str]:
    """Insert the export's rows in order, checking each; the head, its hash, its time."""
    prev, expected = GENESIS, 1
    rules = ImportChecks()
    last_recorded = ""
    batch: list[tuple[Any, ...]] = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            row = row_from_export(decode(line, EXPORTED))
            to_event(row)  # the payload must still decode
        except InvalidEvent as exc:
            raise LineError(number, exc) from None
        except (msgspec.DecodeError, ValueError, LookupError) as exc:  # e.g. no upcaster for it
            raise LineError(number, InvalidEvent(str(exc), "$")) from None
        reason = check(row, expected, prev)
        if reason is not None:
            raise ChainBroken(expected, f"line {number}: {reason}")
        target = target_of(row)
        try:
            rules.check(row, target)
        except InvalidEvent as exc:
            raise LineError(number, exc) from None
        batch.append((*row, target))
        prev, expected, last_recorded = row.hash, expected + 1, row.recorded_at
        if len(batch) >= CHUNK:
            conn.executemany(INSERT, batch)
            batch.clear()
        if progress is not None:
            progress(1)
    conn.executemany(INSERT, batch)
    return expected - 1, prev, last_recorded
