"""Append throughput of the SQLite event log, against baselines measured in the same run.

    python bench/append.py            # the full run: a few minutes at most
    python bench/append.py --quick    # the same arms and keys, smaller: under a minute

Every arm is durable: WAL and `synchronous=FULL`, one fsync per commit. The arms:

- `ledger_single`, `ledger_batch100`: `SQLiteEventLog.append` of 1 or 100 events;
- `ledger_concurrent16`: 16 threads, each appending one event at a time (group commit);
- `raw_single`, `raw_batch100`: plain `sqlite3` on the very schema the store creates (its
  CREATE TABLE and CREATE INDEX statements copied from `sqlite_master`), one `INSERT` per
  transaction, or `executemany` of 100 rows in one transaction, rows built beforehand;
- `es_single`, `es_batch100`: the same work through the `eventsourcing` library, as an
  `Application` saves events: each domain event (`es_baseline.Announcing`, the same fields
  as the ledger's input event) mapped to a `StoredEvent` by its `Mapper` (JSON, with the
  transcodings an `Application` registers), then `insert_events` of 1 or 100 of them into
  its `SQLiteApplicationRecorder` (global notification ids, like our positions);
- `es_recorder_single`, `es_recorder_batch100` (for the record): the recorder's insert
  alone, of `StoredEvent`s mapped before the clock starts. Less work than the ledger's
  append, which takes events, not bytes: it encodes, hashes and chains them.

Events are copies of the seed with fresh UUIDv7 ids over 8 streams, built before the
clock starts, so only the append is timed. Each arm runs for a bounded count and time on a
fresh database, in several interleaved rounds. Other work on the machine only ever slows an
arm down (a burst of someone else's fsyncs can cut a round's rate tenfold), so, as `timeit`
does, a rate is the best of its rounds and a ratio is the ratio of two best rates; the
median over the rounds of each round's own ratio is printed too (`paired_median`). The
scratch directory is in the system temp dir unless that is in memory (fsync is the point),
then in `bench/.tmp`; it is removed at the end.
Progress goes to stderr; the last line of stdout is one JSON object of ratios and rates.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import shutil
import sqlite3
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import msgspec

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from events.codec import GENESIS  # noqa: E402 - after the path set-up above
from events.envelope import NewEvent  # noqa: E402
from events.ids import uuid7  # noqa: E402
from events.rows import COLUMNS, encode_new, place  # noqa: E402
from events.seed import seed_events  # noqa: E402
from events.sqlite import SQLiteEventLog  # noqa: E402
from events.upcasters import current_version  # noqa: E402

STREAMS = 8
THREADS = 16
BATCH = 100
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


def log(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


# -- work, built before any clock starts ----------------------------------------------------


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


def arm_ledger(ws: Workspace, events: list[NewEvent], size: int, cfg: Config) -> Run:
    path = ws.fresh()
    store = SQLiteEventLog(path)
    try:
        units = chunks(events, size)
        for unit in units[:WARMUP]:
            store.append(unit)
        run = timed(units[WARMUP:], store.append, cfg.seconds)
        if store.head() != run.events + sum(len(u) for u in units[:WARMUP]):
            msg = "ledger: head does not match the events appended"
            raise SystemExit(msg)
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
        barrier = threading.Barrier(len(per_thread) + 1)
        counts = [0] * len(per_thread)
        ends = [0.0] * len(per_thread)
        start = [0.0]

        def worker(index: int) -> None:
            events = per_thread[index][WARMUP:] if index == 0 else per_thread[index]
            barrier.wait()
            deadline = start[0] + cfg.seconds
            done = 0
            for event in events:
                store.append([event])
                done += 1
                if time.perf_counter() >= deadline:
                    break
            counts[index], ends[index] = done, time.perf_counter()

        threads = [threading.Thread(target=worker, args=(i,)) for i in range(len(per_thread))]
        for thread in threads:
            thread.start()
        start[0] = time.perf_counter()
        barrier.wait()
        for thread in threads:
            thread.join()
        run = Run(sum(counts), max(ends) - start[0])
        if store.head() != run.events + WARMUP:
            msg = "ledger (concurrent): head does not match the events appended"
            raise SystemExit(msg)
        return run
    finally:
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


# -- main -------------------------------------------------------------------------------------

RATIOS = {
    "single_vs_raw": ("ledger_single", "raw_single"),
    "batch100_vs_raw": ("ledger_batch100", "raw_batch100"),
    "concurrent16_vs_single": ("ledger_concurrent16", "ledger_single"),
    "single_vs_eventsourcing": ("ledger_single", "es_single"),
    "batch100_vs_eventsourcing": ("ledger_batch100", "es_batch100"),
}


def paired(rates: dict[str, list[float]], a: str, b: str) -> float:
    """The median over rounds of a/b, both measured in the same round."""
    return round(statistics.median(x / y for x, y in zip(rates[a], rates[b], strict=True)), 2)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a smaller run, under a minute")
    parser.add_argument(
        "--dir", help="parent of the scratch directory (default: a real-disk temp dir)"
    )
    args = parser.parse_args(argv)
    cfg = QUICK if args.quick else FULL
    began = time.perf_counter()

    ws = Workspace(args.dir)
    log(f"scratch: {ws.dir} ({fs_type(ws.dir)}); sqlite {sqlite3.sqlite_version}")
    try:
        schema = store_schema(ws)
        # Enough work for the longest an arm may run; built before any timing.
        single_n = WARMUP + cfg.max_single
        batch_n = (WARMUP + cfg.max_batches) * BATCH
        single = make_events(single_n)
        batch = make_events(batch_n)
        raw_single, raw_batch = make_rows(single), make_rows(batch)
        es_single, es_batch = make_announcing(single), make_announcing(batch)
        es_single_stored, es_batch_stored = stored(es_single), stored(es_batch)
        threaded = make_events(THREADS * (WARMUP + cfg.max_per_thread))
        per_thread = [threaded[i::THREADS] for i in range(THREADS)]  # all on the same streams
        gc.collect()
        gc.freeze()  # the prebuilt work is scaffolding: keep the collector from rescanning it
        log(f"built the work in {time.perf_counter() - began:.1f}s")

        arms: dict[str, Callable[[], Run]] = {
            "raw_single": lambda: arm_raw(ws, schema, raw_single, 1, cfg),
            "ledger_single": lambda: arm_ledger(ws, single, 1, cfg),
            "es_single": lambda: arm_es(ws, es_single, 1, cfg, mapped=True),
            "es_recorder_single": lambda: arm_es(ws, es_single_stored, 1, cfg, mapped=False),
            "ledger_concurrent16": lambda: arm_concurrent(ws, per_thread, cfg),
            "raw_batch100": lambda: arm_raw(ws, schema, raw_batch, BATCH, cfg),
            "ledger_batch100": lambda: arm_ledger(ws, batch, BATCH, cfg),
            "es_batch100": lambda: arm_es(ws, es_batch, BATCH, cfg, mapped=True),
            "es_recorder_batch100": lambda: arm_es(ws, es_batch_stored, BATCH, cfg, mapped=False),
        }
        rates: dict[str, list[float]] = {name: [] for name in arms}
        for round_no in range(1, cfg.rounds + 1):
            for name, arm in arms.items():
                run = arm()
                rates[name].append(run.rate)
                log(
                    f"round {round_no} {name:>20}: {run.events:>7} events"
                    f" in {run.seconds:5.2f}s = {run.rate:>9,.0f}/s"
                )
    finally:
        ws.close()

    best = {name: max(values) for name, values in rates.items()}
    result: dict[str, Any] = {key: round(best[a] / best[b], 2) for key, (a, b) in RATIOS.items()}
    result.update({f"{name}_eps": round(rate) for name, rate in best.items()})
    result["paired_median"] = {key: paired(rates, a, b) for key, (a, b) in RATIOS.items()}
    result.update(
        {
            "quick": args.quick,
            "rounds": cfg.rounds,
            "seconds_per_arm": cfg.seconds,
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "sqlite": sqlite3.sqlite_version,
            "loadavg": [round(x, 2) for x in os.getloadavg()],
            "wall_seconds": round(time.perf_counter() - began, 1),
        }
    )
    print(json.dumps(result))


if __name__ == "__main__":
    main()
