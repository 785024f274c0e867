"""The arms of `bench/append.py`, how they are bounded and timed, and where they write.

Each arm appends its prebuilt work (`append_work`) to a fresh database in the scratch
`Workspace`, a warm-up first, then until the work runs out or `Config.seconds` pass, and
returns the events it appended and the seconds it took. What each arm does is described in
that script's docstring. Imported by it, which puts the repository root on `sys.path` first.
"""

from __future__ import annotations

import asyncio
import shutil
import sqlite3
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from append_work import chunks
from raw_group_commit import RawGroupCommit

from events.envelope import NewEvent
from events.rows import COLUMNS
from events.sqlite import SQLiteEventLog
from events.writer_process import ProcessWriter

ROOT = Path(__file__).resolve().parent.parent
WARMUP = 20
INSERT = f"INSERT INTO events ({', '.join(COLUMNS)}, target) VALUES ({', '.join('?' * 16)})"


@dataclass(frozen=True)
class Config:
    """How long and how many: every loop is bounded in count and in time."""

    rounds: int
    seconds: float
    max_single: int
    max_batches: int
    max_per_thread: int


FULL = Config(rounds=9, seconds=1.5, max_single=20_000, max_batches=2_000, max_per_thread=2_500)
QUICK = Config(rounds=5, seconds=0.5, max_single=8_000, max_batches=700, max_per_thread=1_000)

# -- timing -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Run:
    events: int
    seconds: float

    @property
    def rate(self) -> float:
        return self.events / self.seconds


def timed(
    units: Sequence[Sequence[Any]], fn: Callable[[Sequence[Any]], object], seconds: float
) -> Run:
    """Call `fn` on each unit until they run out or `seconds` pass; count the events done."""
    done = 0
    start = time.perf_counter()
    deadline = start + seconds
    for unit in units:
        fn(unit)
        done += len(unit)
        if time.perf_counter() >= deadline:
            break
    return Run(done, time.perf_counter() - start)


class Workspace:
    """A scratch directory on a real disk (fsync is the point), emptied between arms."""

    def __init__(self, parent: str | None) -> None:
        base = Path(parent) if parent else default_parent()
        base.mkdir(parents=True, exist_ok=True)
        self.dir = Path(tempfile.mkdtemp(prefix="bench-append-", dir=base))
        self.count = 0

    def fresh(self) -> Path:
        self.count += 1
        return self.dir / f"arm-{self.count}.db"

    @staticmethod
    def drop(path: Path) -> None:
        for suffix in ("", "-wal", "-shm", "-journal"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)

    def close(self) -> None:
        shutil.rmtree(self.dir, ignore_errors=True)


def fs_type(path: Path) -> str:
    """The file-system type of the mount holding `path` (Linux), or '?'."""
    best, kind = "", "?"
    try:
        mounts = Path("/proc/mounts").read_text().splitlines()
    except OSError:
        return kind
    target = str(path.resolve())
    for line in mounts:
        parts = line.split()
        mount = parts[1]
        if (target == mount or target.startswith(mount.rstrip("/") + "/")) and len(mount) > len(
            best
        ):
            best, kind = mount, parts[2]
    return kind


def default_parent() -> Path:
    """The system temp dir, unless it is in memory: then `bench/.tmp` next to the code."""
    tmp = Path(tempfile.gettempdir())
    if fs_type(tmp) in {"tmpfs", "ramfs"}:
        return ROOT / "bench" / ".tmp"
    return tmp


# -- the arms ---------------------------------------------------------------------------------


def store_schema(ws: Workspace) -> list[str]:
    """The CREATE TABLE / CREATE INDEX statements of the events table, as the store made them."""
    path = ws.fresh()
    SQLiteEventLog(path).close()
    conn = sqlite3.connect(path)
    try:
        rows = conn.execute(
            "SELECT sql FROM sqlite_master WHERE tbl_name = 'events' AND type IN ('table', 'index')"
            " AND sql IS NOT NULL ORDER BY type = 'index', name"
        ).fetchall()
    finally:
        conn.close()
        ws.drop(path)
    return [row[0] for row in rows]


def raw_connect(path: Path, schema: list[str]) -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    if conn.execute("PRAGMA journal_mode = WAL").fetchone()[0] != "wal":
        msg = "raw sqlite3: no WAL"
        raise SystemExit(msg)
    conn.execute("PRAGMA synchronous = FULL")
    for sql in schema:
        conn.execute(sql)
    return conn


def arm_raw(
    ws: Workspace, schema: list[str], rows: list[tuple[Any, ...]], size: int, cfg: Config
) -> Run:
    path = ws.fresh()
    conn = raw_connect(path, schema)
    try:
        units = chunks(rows, size)
        if size == 1:

            def insert(unit: Sequence[tuple[Any, ...]]) -> None:
                conn.execute(INSERT, unit[0])  # autocommit: one transaction, one fsync

        else:

            def insert(unit: Sequence[tuple[Any, ...]]) -> None:
                conn.execute("BEGIN")
                conn.executemany(INSERT, unit)
                conn.execute("COMMIT")

        for unit in units[:WARMUP]:
            insert(unit)
        return timed(units[WARMUP:], insert, cfg.seconds)
    finally:
        conn.close()
        ws.drop(path)


def arm_raw_concurrent(
    ws: Workspace, schema: list[str], per_thread: list[list[tuple[Any, ...]]], cfg: Config
) -> Run:
    """The floor of `ledger_concurrent16`: 16 threads, a group commit of plain `sqlite3`.

    Each thread appends one prebuilt row at a time through `raw_group_commit`, which
    places and writes groups as the store does, without the ledger's work: what 16 Python
    threads get from group commit on this machine with none of it.
    """
    path = ws.fresh()
    conn = raw_connect(path, schema)
    committer = RawGroupCommit(conn)
    try:
        for row in per_thread[0][:WARMUP]:
            committer.append(row)
        work = [rows[WARMUP:] if i == 0 else rows for i, rows in enumerate(per_thread)]
        run = _threaded(work, committer.append, cfg.seconds)
        committer.close()
        (stored,) = conn.execute("SELECT count(*) FROM events").fetchone()
        if stored != run.events + WARMUP:
            msg = "raw (concurrent): rows stored do not match the rows appended"
            raise SystemExit(msg)
        return run
    finally:
        committer.close()
        conn.close()
        ws.drop(path)


def _threaded(
    per_thread: Sequence[Sequence[Any]], append: Callable[[Any], object], seconds: float
) -> Run:
    """One thread per list, each appending its items one at a time, started together."""
    barrier = threading.Barrier(len(per_thread) + 1)
    counts = [0] * len(per_thread)
    ends = [0.0] * len(per_thread)
    start = [0.0]
    errors: list[BaseException] = []

    def worker(index: int) -> None:
        barrier.wait()
        deadline = start[0] + seconds
        done = 0
        try:
            for item in per_thread[index]:
                append(item)
                done += 1
                if time.perf_counter() >= deadline:
                    break
        except BaseException as exc:  # noqa: BLE001 - raised by the caller, after the others end
            errors.append(exc)
        counts[index], ends[index] = done, time.perf_counter()

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(len(per_thread))]
    for thread in threads:
        thread.start()
    start[0] = time.perf_counter()
    barrier.wait()
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]
    return Run(sum(counts), max(ends) - start[0])


def check_head(store: SQLiteEventLog, appended: int, arm: str) -> None:
    """Stop the run if the log's head is not the number of events the arm appended."""
    if store.head() != appended:
        msg = f"{arm}: head does not match the events appended"
        raise SystemExit(msg)


def arm_ledger(ws: Workspace, events: list[NewEvent], size: int, cfg: Config) -> Run:
    path = ws.fresh()
    store = SQLiteEventLog(path)
    try:
        units = chunks(events, size)
        for unit in units[:WARMUP]:
            store.append(unit)
        run = timed(units[WARMUP:], store.append, cfg.seconds)
        check_head(store, run.events + sum(len(u) for u in units[:WARMUP]), "ledger")
        return run
    finally:
        store.close()
        ws.drop(path)


def arm_concurrent(ws: Workspace, per_thread: list[list[NewEvent]], cfg: Config) -> Run:
    path = ws.fresh()
    store = SQLiteEventLog(path)
    try:
        for event in per_thread[0][:WARMUP]:
            store.append([event])
        work = [events[WARMUP:] if i == 0 else events for i, events in enumerate(per_thread)]
        run = _threaded(work, lambda event: store.append([event]), cfg.seconds)
        check_head(store, run.events + WARMUP, "ledger (concurrent)")
        return run
    finally:
        store.close()
        ws.drop(path)


def arm_coroutines(
    ws: Workspace, per_task: list[list[NewEvent]], cfg: Config, *, process: bool = False
) -> Run:
    """16 coroutines on one event loop, each awaiting `append_awaited` of one event at a time.

    How the HTTP service appends: its requests are coroutines on one loop, and the writer
    thread wakes the loop once per group, not one thread per append; `process`: through a
    writer process (`events.writer_process`), as `ledger serve` appends by default.
    """
    path = ws.fresh()
    store = SQLiteEventLog(path)
    writer = ProcessWriter(str(path), store.synchronous) if process else None
    appender = writer if writer is not None else store

    async def run() -> Run:
        start = time.perf_counter()
        deadline = start + cfg.seconds

        async def task(events: list[NewEvent]) -> int:
            done = 0
            for event in events:
                await appender.append_awaited([event])
                done += 1
                if time.perf_counter() >= deadline:
                    break
            return done

        counts = await asyncio.gather(
            *(task(events[WARMUP:] if i == 0 else events) for i, events in enumerate(per_task))
        )
        return Run(sum(counts), time.perf_counter() - start)

    try:
        for event in per_task[0][:WARMUP]:
            store.append([event])
        result = asyncio.run(run())
        check_head(store, result.events + WARMUP, "ledger (coroutines)")
        return result
    finally:
        if writer is not None:
            writer.close()
        store.close()
        ws.drop(path)


def arm_es(ws: Workspace, work: list[Any], size: int, cfg: Config, *, mapped: bool) -> Run:
    """`eventsourcing`: map each domain event of `work` to a `StoredEvent`, insert them.

    Not `mapped`: `work` holds `StoredEvent`s mapped before any clock started, and only the
    recorder's insert is timed (reported apart, as `es_recorder_*`: less work than the
    ledger's append, which encodes its events).
    """
    import es_baseline  # noqa: PLC0415 - an optional dependency, beside this script

    path = ws.fresh()
    recorder = es_baseline.recorder(path, durable=True)
    mapper = es_baseline.mapper()

    def insert(unit: Sequence[Any]) -> None:
        recorder.insert_events([mapper.to_stored_event(event) for event in unit])

    try:
        units = chunks(work, size)
        write = insert if mapped else recorder.insert_events
        for unit in units[:WARMUP]:
            write(unit)
        return timed(units[WARMUP:], write, cfg.seconds)
    finally:
        recorder.datastore.close()
        ws.drop(path)
