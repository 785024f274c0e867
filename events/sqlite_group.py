"""One group of appends on the writer's connection: its reads, its rows, its transaction.

`GroupLookup` answers the planner's questions for a whole group with as few queries as it
can; `stage` plans each batch of the group in turn against it; `begin` and `insert_rows`
open the transaction and write the rows.

Every statement SQLite runs lets go of the interpreter lock and takes it back after, and
taking it back waits for whichever thread holds it: under an event loop's load, a few
hundred microseconds each time. So the common group is written with as few statements as
can be: the versions of the streams not cached in one row, the rows in one `INSERT`
(which, outside a transaction, commits on its own: one statement, one fsync).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Mapping, Sequence
from functools import lru_cache
from typing import Any, NamedTuple

import msgspec

from events.dates import utc_now
from events.envelope import AppendResult
from events.errors import LedgerError
from events.groupcommit import AppendRequest, Ready
from events.payloads import RECORD_TYPES, EventRetracted
from events.planner import STORED_COLUMNS, Stored, plan, target_of
from events.rows import SELECT_COLUMNS, Row

CHUNK = 500
"""Ids or streams asked about in one query, rows an import inserts in one `executemany`."""
BUSY_TIMEOUT_MS = 10_000
INSERT = f"INSERT INTO events ({SELECT_COLUMNS}, target) VALUES ({', '.join('?' * 16)})"  # noqa: S608 - constant columns
_VALUES = f"({', '.join('?' * 16)})"
ROWS_PER_INSERT = 32
"""Rows one `INSERT` statement writes at most (16 parameters each: 512 of SQLite's 32,766,
and of the 999 older builds allow); more go in one transaction, a prepared statement run
once per row (`executemany`), which SQLite runs faster than a long `VALUES` list."""
_VERSIONS = msgspec.json.Decoder(list[tuple[str, int | None]])


@lru_cache(maxsize=ROWS_PER_INSERT)
def _insert_of(count: int) -> str:
    """One `INSERT` of `count` rows (prepared once per count: the connection caches it)."""
    return f"INSERT INTO events ({SELECT_COLUMNS}, target) VALUES {','.join([_VALUES] * count)}"  # noqa: S608 - constant columns


def insert_many(conn: sqlite3.Connection, rows: Sequence[tuple[Any, ...]]) -> None:
    """Insert rows: up to `ROWS_PER_INSERT` with one statement, more one statement a row."""
    if len(rows) > ROWS_PER_INSERT:
        conn.executemany(INSERT, rows)
    elif rows:
        conn.execute(_insert_of(len(rows)), [value for row in rows for value in row])


def now_text() -> str:
    """`dates.format_timestamp(utc_now())`, the same text, without strftime's cost."""
    return utc_now().isoformat(timespec="microseconds").removesuffix("+00:00") + "Z"


def _stored_of(row: Row) -> Stored:
    return Stored(
        row.event_id,
        row.stream,
        row.type,
        row.occurred_on,
        row.sequence,
        row.data_hash,
        row.position,
        row.stream_version,
        row.recorded_at,
    )


class GroupLookup:
    """The planner's reads for one group, in the writer's transaction or on their own.

    On their own when the group assumes nothing stored is in its way: its `INSERT` then
    checks that nobody wrote meanwhile (see `SQLiteEventLog._try_group`). What the group's
    batches will ask about is read up front: their event ids in one query, the versions of
    their streams not in `cached` (versions known to be current) in another. Rows planned
    for earlier batches of the group are inserted only at the end, all at once
    (`insert_many`), so `planned` overlays them: each batch is planned exactly as if the
    ones before it were stored already. `versions` ends up holding every version read or
    planned.

    `assume_new` skips the read of the group's own ids and answers that none is stored: the
    common case, where that read finds nothing. The writer then checks the assumption (see
    `SQLiteEventLog._commit_group`); the ids that corrections and retractions refer to are
    read either way.
    """

    def __init__(
        self,
        conn: sqlite3.Connection,
        group: Sequence[AppendRequest],
        cached: Mapping[str, int],
        *,
        assume_new: bool,
    ) -> None:
        self.conn = conn
        ids = [event.event_id for request in group for event in request.batch]
        self.known = {} if assume_new else self._select(ids)
        self.asked = set(ids)
        streams = {event.stream for request in group for event in request.batch}
        for request in group:
            streams.update(request.expected_versions or ())
        self.cached = cached
        self.versions = self._versions([stream for stream in streams if stream not in cached])
        self.retractions: set[str] = set()
        self.rows: dict[str, Row] = {}  # planned in this group, not inserted yet

    def _select(self, event_ids: Sequence[str]) -> dict[str, Stored]:
        found: dict[str, Stored] = {}
        unique = list(dict.fromkeys(event_ids))
        for start in range(0, len(unique), CHUNK):
            chunk = unique[start : start + CHUNK]
            marks = ",".join("?" * len(chunk))
            sql = f"SELECT {STORED_COLUMNS} FROM events WHERE event_id IN ({marks})"  # noqa: S608 - only placeholders
            for row in self.conn.execute(sql, chunk):
                found[row[0]] = Stored(*row)
        return found

    def _versions(self, streams: Sequence[str]) -> dict[str, int]:
        # one max() per stream, each a seek on the (stream, stream_version) index, answered
        # as one row of JSON: a row per stream would be a step (a wait for the lock) each
        # (a name that is not text, from a batch the planner will refuse, is asked of nobody)
        versions: dict[str, int] = {name: 0 for name in streams if not isinstance(name, str)}
        streams = [name for name in streams if isinstance(name, str)]
        for start in range(0, len(streams), CHUNK):
            chunk = streams[start : start + CHUNK]
            values = ",".join(["(?)"] * len(chunk))
            sql = (
                f"WITH s(name) AS (VALUES {values}) SELECT json_group_array(json_array(name, "  # noqa: S608 - only placeholders
                "(SELECT max(stream_version) FROM events WHERE stream = name))) FROM s"
            )
            (found,) = self.conn.execute(sql, chunk).fetchone()
            versions.update((name, version or 0) for name, version in _VERSIONS.decode(found))
        return versions

    def stored(self, event_ids: Sequence[str]) -> dict[str, Stored]:
        """The stored (or planned) events among these ids."""
        missing = [event_id for event_id in event_ids if event_id not in self.asked]
        if missing:  # a correction's or retraction's target
            self.known.update(self._select(missing))
            self.asked.update(missing)
        found: dict[str, Stored] = {}
        for event_id in event_ids:
            stored = self.known.get(event_id)
            if stored is None and event_id in self.rows:
                stored = _stored_of(self.rows[event_id])
            if stored is not None:
                found[event_id] = stored
        return found

    def stream_version(self, stream: str) -> int:
        """A stream's version: planned in this group, cached, or read."""
        version = self.versions.get(stream)
        if version is None:
            version = self.cached.get(stream)
            if version is None:
                version = self._versions([stream])[stream]
            self.versions[stream] = version
        return version

    def retracted(self, event_id: str) -> bool:
        """Whether a retraction of this event is stored or planned in this group."""
        if event_id in self.retractions:
            return True
        row = self.conn.execute(
            "SELECT 1 FROM events WHERE target = ? AND type = 'event_retracted' LIMIT 1",
            (event_id,),
        ).fetchone()
        return row is not None

    def planned(self, rows: Sequence[Row], *, more: bool) -> None:
        """Rows planned in this group and not inserted yet: answer for them as if stored.

        Only their streams' versions are needed once no batch of the group comes `more`.
        """
        versions = self.versions
        for row in rows:
            versions[row.stream] = row.stream_version
        if not more:
            return
        for row in rows:
            self.rows[row.event_id] = row
            if row.type == EventRetracted.TYPE:
                self.retractions.add(str(target_of(row)))


class Staged(NamedTuple):
    """A group planned inside its transaction: what each batch answers, the rows to insert."""

    outcomes: list[tuple[AppendRequest, AppendResult | LedgerError]]
    inserts: list[tuple[Any, ...]]
    head: int
    head_hash: str
    recorded_at: str

    def failed(self) -> bool:
        """Whether the plan of some batch of the group raised."""
        return any(isinstance(outcome, LedgerError) for _, outcome in self.outcomes)


def stage(
    lookup: GroupLookup,
    group: Sequence[AppendRequest],
    *,
    head: int,
    head_hash: str,
    recorded_at: str,
) -> Staged:
    """Plan each batch of a group in turn; one that fails leaves the others as they are."""
    outcomes: list[tuple[AppendRequest, AppendResult | LedgerError]] = []
    inserts: list[tuple[Any, ...]] = []
    for index, request in enumerate(group, start=1):
        try:
            planned = plan(
                lookup,
                request.batch,
                request.expected_versions,
                head=head,
                head_hash=head_hash,
                recorded_at=recorded_at,
            )
        except LedgerError as exc:
            outcomes.append((request, exc))
            continue
        rows = planned.rows
        if rows:
            inserts.extend(
                [(*row, target_of(row) if row.type in RECORD_TYPES else None) for row in rows]
            )
            lookup.planned(rows, more=index < len(group))
            head, head_hash = rows[-1].position, rows[-1].hash
        outcomes.append((request, planned.result))
    return Staged(outcomes, inserts, head, head_hash, recorded_at)


class BusyTimeout:
    """The busy timeout of the writer's connection, changed only when it must be.

    A group planned again inside a transaction opens it with a zero timeout (see `begin`)
    and keeps it while it lasts: inside a write transaction nothing waits for a lock.
    Everything else on the connection (a group's own `INSERT`, a rollback, an import)
    first puts the full timeout back. Under load the writer thus runs no PRAGMA per group
    (two per group planned again, when another handle writes to the same file).
    """

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn
        self.ms = BUSY_TIMEOUT_MS  # as every connection is opened

    def set(self, ms: int) -> None:
        """Set the timeout if it is not that already."""
        if ms != self.ms:
            self.conn.execute(f"PRAGMA busy_timeout = {ms}")
            self.ms = ms


def begin(conn: sqlite3.Connection, ready: Ready | None, timeout: BusyTimeout) -> None:
    """BEGIN IMMEDIATE; if another connection holds the write lock, `ready` before waiting."""
    if ready is None:
        timeout.set(BUSY_TIMEOUT_MS)
        conn.execute("BEGIN IMMEDIATE")
        return
    timeout.set(0)
    try:
        conn.execute("BEGIN IMMEDIATE")
    except sqlite3.OperationalError as exc:
        if exc.sqlite_errorcode & 0xFF != sqlite3.SQLITE_BUSY:
            raise
        ready()
        timeout.set(BUSY_TIMEOUT_MS)
        conn.execute("BEGIN IMMEDIATE")


def insert_rows(conn: sqlite3.Connection, staged: Staged, *, assume_new: bool) -> bool:
    """Insert the group's rows; False if they show that the assumption was wrong.

    Outside a transaction, rows that one statement holds are that statement's own
    transaction, committed (durably, like any COMMIT) before it returns; more open one.
    """
    if assume_new and (staged.failed() or not staged.inserts):
        return False  # a batch whose plan failed might have been a replay
    inserts = staged.inserts
    try:
        if not conn.in_transaction and len(inserts) > ROWS_PER_INSERT:
            conn.execute("BEGIN IMMEDIATE")
        insert_many(conn, inserts)
    except sqlite3.IntegrityError:
        if not assume_new:
            raise
        return False  # a stored id, or a position taken by another handle
    return True
