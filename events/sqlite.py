"""The SQLite backend of the `EventLog`: one file, WAL, `synchronous=FULL` by default.

All writes go through one `GroupCommitter` holding the only write connection: each group
of waiting appends is one transaction (the group's one `INSERT` of up to 32 rows, its own
transaction, or `BEGIN IMMEDIATE` … `COMMIT`), one fsync of the WAL, and every append is
acknowledged after that commit (a lone append commits on its caller's thread, appends that
wait together are committed by the writer thread). Readers use their own connections (one
per thread) and see positions appear in order.
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
import threading
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Literal, Self

from events.awaitable import append_awaited, submit_append
from events.codec import GENESIS
from events.envelope import AppendResult, NewEvent
from events.errors import LedgerError, NotALedger, StoreError
from events.groupcommit import AppendRequest, GroupCommitter, Outcome, Ready
from events.log import Progress
from events.prepared import prepare_batch
from events.sqlite_backup import backup_into
from events.sqlite_group import (
    BUSY_TIMEOUT_MS,
    BusyTimeout,
    GroupLookup,
    Staged,
    begin,
    insert_rows,
    now_text,
    stage,
)
from events.sqlite_import import insert_export
from events.sqlite_reads import SQLiteReads
from events.sqlite_schema import check_file, prepare, unopenable

Synchronous = Literal["FULL", "NORMAL", "EXTRA"]
_SYNC_LEVEL = {"NORMAL": 1, "FULL": 2, "EXTRA": 3}
_MAX_CACHED_STREAMS = 100_000


_COMMITTING = StoreError("committing")
"""Stands in `append_group`'s outcomes for a batch whose group commit has not ended yet."""


def _told(outcome: Outcome[AppendResult]) -> AppendResult | LedgerError:
    """A committed batch's outcome (one never set: a `StoreError`), without raising it."""
    outcome.deliver()
    try:
        return outcome.result()
    except LedgerError as exc:
        return exc
    except Exception as exc:  # noqa: BLE001 - never expected: the group's runner wraps errors
        return StoreError(f"append failed: {exc}")


class SQLiteEventLog(SQLiteReads):
    """The event log in one SQLite file (its reads: `events.sqlite_reads`)."""

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        synchronous: Synchronous = "FULL",
        create: bool = True,
    ) -> None:
        """Open the ledger at `path`; `create` False: refuse a file with no ledger in it yet.

        (A command that only reads must not make a ledger of an empty file or database.)
        """
        self.path = Path(path)
        self._create = create
        if synchronous not in _SYNC_LEVEL:
            msg = f"synchronous must be one of {', '.join(_SYNC_LEVEL)}, not {synchronous!r}"
            raise ValueError(msg)
        self.synchronous = synchronous
        self._readers: list[tuple[threading.Thread, sqlite3.Connection]] = []
        self._readers_lock = threading.Lock()
        self._local = threading.local()
        self._close_lock = threading.Lock()
        self._closed = False
        self._writer_conn = self._connect(create=True)
        self._timeout = BusyTimeout(self._writer_conn)
        try:
            prepare(self._writer_conn, self.path)
        except BaseException:
            self._writer_conn.close()
            raise
        self._head, self._head_hash, self._last_recorded = self._load_head(self._writer_conn)
        # The current version of streams written or read lately, as of the head `_versions_at`:
        # still current while the stored head is that one (no other handle appended since).
        self._versions: dict[str, int] = {}
        self._versions_at = -1
        self._writer = GroupCommitter(self._commit_group, name=f"ledger-writer:{self.path.name}")

    # -- connections ------------------------------------------------------------------

    def _connect(self, *, create: bool = False) -> sqlite3.Connection:
        if not create and not self.path.exists():
            msg = f"{self.path} does not exist"
            raise StoreError(msg)
        if self.path.exists() and self.path.is_dir():
            msg = f"{self.path} is a directory, not a ledger database"
            raise NotALedger(msg)
        try:
            conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        except sqlite3.Error as exc:
            msg = f"cannot open {self.path}: {exc}"
            raise StoreError(msg) from None
        try:
            conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
            # the first connection: nothing is written to a file not a ledger's
            if create and not check_file(conn, self.path) and not self._create:
                msg = f"no ledger at {self.path} (create one with `ledger seed` or `ledger append`)"
                raise StoreError(msg)  # noqa: TRY301 - the handlers below close the connection
            mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            if str(mode).lower() != "wal":
                msg = f"{self.path}: could not switch to WAL (journal_mode is {mode})"
                raise StoreError(msg)  # noqa: TRY301 - the handlers below close the connection
            conn.execute(f"PRAGMA synchronous = {self.synchronous}")
            level = conn.execute("PRAGMA synchronous").fetchone()[0]
            if level != _SYNC_LEVEL[self.synchronous]:
                msg = f"{self.path}: synchronous is {level}, not {self.synchronous}"
                raise StoreError(msg)  # noqa: TRY301 - the handlers below close the connection
        except sqlite3.OperationalError as exc:  # a file it may not write (read-only, say)
            conn.close()
            raise unopenable(self.path, exc) from None
        except sqlite3.DatabaseError as exc:
            conn.close()
            msg = f"{self.path} is not a ledger database ({exc})"
            raise NotALedger(msg) from None
        except BaseException:
            conn.close()
            raise
        return conn

    def _reader(self) -> sqlite3.Connection:
        if self._closed:
            msg = "the event log is closed"
            raise StoreError(msg)
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._connect()
            self._local.conn = conn
            with self._readers_lock:
                # a thread that ended (a pool's idle worker, say) leaves its connection here:
                # closed now, so that many short-lived threads do not pile up open files
                ended = [c for t, c in self._readers if not t.is_alive()]
                self._readers = [(t, c) for t, c in self._readers if t.is_alive()]
                self._readers.append((threading.current_thread(), conn))
            for old in ended:
                old.close()
        return conn

    @staticmethod
    def _load_head(conn: sqlite3.Connection) -> tuple[int, str, str]:
        row = conn.execute(
            "SELECT position, hash, recorded_at FROM events ORDER BY position DESC LIMIT 1"
        ).fetchone()
        if row is None:
            return 0, GENESIS, ""
        return int(row[0]), str(row[1]), str(row[2])

    # -- writes -----------------------------------------------------------------------

    def append(
        self, events: Sequence[NewEvent], expected_versions: Mapping[str, int] | None = None
    ) -> AppendResult:
        """Append a batch atomically and durably (see `EventLog`).

        The batch's canonical bytes and hashes that do not depend on its place are computed
        here, on the caller's thread, before it queues (`events.prepared`).
        """
        return self._writer.append(prepare_batch(events), expected_versions)

    async def append_awaited(
        self, events: Sequence[NewEvent], expected_versions: Mapping[str, int] | None = None
    ) -> AppendResult:
        """`append` for a coroutine: committed by the writer thread, awaited on the loop.

        The same guarantees (it returns once its group's commit is durable); no thread
        waits for it, and the batch is never committed on the caller's (the loop's) thread.
        """
        return await append_awaited(self._writer, prepare_batch(events), expected_versions)

    def append_future(
        self, events: Sequence[NewEvent], expected_versions: Mapping[str, int] | None = None
    ) -> asyncio.Future[AppendResult]:
        """`append_awaited` as a future of the running loop.

        The batch is checked and prepared at once, and queued at the end of the loop's
        current turn, with the turn's other appends (`events.awaitable.submit_append`): an
        append made before the loop turns (on this thread, or a `close`) comes first.
        """
        return submit_append(self._writer, prepare_batch(events), expected_versions)

    def append_group(
        self, batches: Sequence[tuple[Sequence[NewEvent], Mapping[str, int] | None]]
    ) -> list[AppendResult | LedgerError]:
        """Commit several batches as one group on this thread; each one's result or error.

        Each batch is atomic and checked on its own, as if appended alone, in the order
        given; the group shares one commit and one fsync. For a caller that gathers batches
        itself and is the log's only writer (`events.writer_child`), having decoded their
        payloads with their types: `prepared.check_readable` is not run again.
        """
        outcomes: list[AppendResult | LedgerError] = []
        requests: list[AppendRequest] = []
        for events, expected_versions in batches:
            try:
                batch = prepare_batch(events, decoded=True)
                requests.append(AppendRequest(batch, expected_versions))
            except LedgerError as exc:
                outcomes.append(exc)
            else:
                outcomes.append(_COMMITTING)
        if requests:
            self._writer.commit_now(requests)
        told = iter(requests)
        for index, outcome in enumerate(outcomes):
            if outcome is _COMMITTING:
                outcomes[index] = _told(next(told).future)
        return outcomes

    def _commit_group(self, group: list[AppendRequest], ready: Ready | None) -> None:
        """Commit a group, first assuming nothing stored is in its way (nearly always so).

        That is: none of its event ids is stored, and nobody appended since this handle's
        last commit (the head, its hash and the cached stream versions are current). The
        assumption holds if every batch is planned without an error and its rows insert
        without breaking a unique index: a stored id either fails its batch's plan or the
        `event_id` index, and a row appended through another handle holds the position the
        group's first row would take. Otherwise (a retry, a conflict, an invalid batch,
        another writer) the group is rolled back and planned again with everything read
        inside its transaction, so each outcome is the one the full reads give: an
        idempotent replay is never reported as a conflict.
        """
        try:
            if not self._try_group(group, ready, assume_new=True):
                self._try_group(group, ready, assume_new=False)
        except Exception:
            if len(group) == 1:
                raise
            self._commit_alone(group)

    def _commit_alone(self, group: list[AppendRequest]) -> None:
        """Each batch of a group on its own: one failed the group with an error not its outcome.

        A batch the planner cannot read (not events at all, through the Python API) or that
        SQLite refuses (a `NOT NULL` column): only its caller hears of it; the others commit.
        """
        for request in group:
            if request.future.done():
                continue
            try:
                self._commit_group([request], None)
            except Exception as exc:  # noqa: BLE001 - told to the batch's own caller
                error = exc if isinstance(exc, StoreError) else StoreError(f"append failed: {exc}")
                request.future.set_exception(error)

    def _try_group(
        self, group: list[AppendRequest], ready: Ready | None, *, assume_new: bool
    ) -> bool:
        """One attempt at a group; False (rolled back) if `assume_new` turned out wrong.

        Assuming new, the group opens no transaction of its own: its reads (the versions of
        streams not cached, the targets of corrections and retractions) run on their own,
        and its rows go in as one `INSERT` (`insert_rows`), which commits on its own. What
        the reads found still holds when that commits: had anyone appended since this
        handle's last commit, the group's first position would be taken and the `INSERT`
        refused, and the group planned again inside a transaction. Two statements for the
        common group (the versions of new streams, the rows; one if its streams are cached,
        more for corrections' and retractions' targets), where BEGIN, each row read and
        written, and COMMIT would each wait for the interpreter lock.
        """
        conn = self._writer_conn
        try:
            if assume_new:
                self._timeout.set(BUSY_TIMEOUT_MS)
            else:
                begin(conn, ready, self._timeout)
            lookup, staged = self._stage(conn, group, assume_new=assume_new)
            if ready is not None and not conn.in_transaction:
                ready()  # the previous group's callers wake up while this INSERT syncs
            if not insert_rows(conn, staged, assume_new=assume_new):
                self._rollback()
                return False
            if conn.in_transaction:
                if ready is not None:
                    ready()  # the previous group's callers wake up while this COMMIT syncs
                conn.execute("COMMIT")
        except sqlite3.Error as exc:
            self._rollback()
            if len(group) > 1 and not isinstance(exc, sqlite3.OperationalError):
                raise  # a row SQLite refused: which batch's? each on its own tells
            # (busy, disk full, I/O: the database's state, not a batch's: one answer for all)
            error = StoreError(f"append failed, nothing stored: {exc}")
            for request in group:
                request.future.set_exception(error)
            return True
        except BaseException:
            self._rollback()  # never leave the writer's transaction open
            raise
        self._settle(lookup, staged)
        return True

    def _settle(self, lookup: GroupLookup, staged: Staged) -> None:
        """After a group's commit: the new head and stream versions; each batch's outcome."""
        if staged.head != self._head:
            self._head, self._head_hash, self._last_recorded = (
                staged.head,
                staged.head_hash,
                staged.recorded_at,
            )
        self._versions.update(lookup.versions)
        self._versions_at = staged.head
        for request, outcome in staged.outcomes:
            if isinstance(outcome, LedgerError):
                request.future.set_exception(outcome)
            else:
                request.future.set_result(outcome)

    def _stage(
        self, conn: sqlite3.Connection, group: list[AppendRequest], *, assume_new: bool
    ) -> tuple[GroupLookup, Staged]:
        if assume_new:
            head, head_hash, last_recorded = self._head, self._head_hash, self._last_recorded
        else:  # read under the write lock: another handle on the file may have appended since
            head, head_hash, last_recorded = self._load_head(conn)
        recorded_at = max(now_text(), last_recorded)
        if head != self._versions_at or len(self._versions) > _MAX_CACHED_STREAMS:
            self._versions, self._versions_at = {}, head
        lookup = GroupLookup(conn, group, self._versions, assume_new=assume_new)
        return lookup, stage(lookup, group, head=head, head_hash=head_hash, recorded_at=recorded_at)

    def _rollback(self) -> None:
        conn = self._writer_conn
        try:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
        except sqlite3.Error:
            pass  # the transaction is gone already; the head below is read fresh
        self._timeout.set(BUSY_TIMEOUT_MS)
        self._head, self._head_hash, self._last_recorded = self._load_head(conn)

    def import_lines(self, lines: Iterable[bytes], progress: Progress | None = None) -> int:
        """Load an export into this empty log in one transaction, checking the chain as it goes."""
        return self._writer.call(lambda: self._import(lines, progress))

    def _import(self, lines: Iterable[bytes], progress: Progress | None) -> int:
        conn = self._writer_conn
        self._timeout.set(BUSY_TIMEOUT_MS)
        if self._load_head(conn)[0] != 0:
            msg = "import needs an empty ledger; this one holds events"
            raise StoreError(msg)
        conn.execute("BEGIN IMMEDIATE")
        try:
            head = insert_export(conn, lines, progress)
            conn.execute("COMMIT")
        except BaseException:
            self._rollback()
            raise
        self._head, self._head_hash, self._last_recorded = head
        return head[0]

    def backup(self, path: str | os.PathLike[str], progress: Progress | None = None) -> None:
        """SQLite's online backup into a new file at `path` (`events.sqlite_backup`)."""
        backup_into(self._reader(), Path(path), progress)

    def __enter__(self) -> Self:
        """`with SQLiteEventLog(path) as log:` closes the log on the way out."""
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def backup_pages(self) -> int:
        """How many pages a backup copies (for a progress bar's total)."""
        return int(self._reader().execute("PRAGMA page_count").fetchone()[0])

    def close(self) -> None:
        """Finish queued appends, then close the connections no other thread may be using.

        The writer's, this thread's reader and those of threads that ended. A live thread's
        reader is left to that thread (it closes when the thread ends or this log is
        collected): closing a connection while another thread reads on it crashes the
        interpreter's `sqlite3`. A second caller waits for the first; reads after are refused.
        """
        with self._close_lock:
            self._writer.close()
            if self._closed:
                return
            self._closed = True
            self._writer_conn.close()
            me = threading.current_thread()
            with self._readers_lock:
                for thread, conn in self._readers:
                    if thread is me or not thread.is_alive():
                        conn.close()
                self._readers.clear()
