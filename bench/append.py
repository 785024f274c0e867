"""Append throughput of the SQLite event log, against baselines measured in the same run.

    python bench/append.py            # the full run: a few minutes at most
    python bench/append.py --quick    # the same arms and keys, smaller: under a minute

Every arm is durable: WAL and `synchronous=FULL`, one fsync per commit. The arms:

- `ledger_single`, `ledger_batch100`: `SQLiteEventLog.append` of 1 or 100 events;
- `ledger_concurrent16`: 16 threads, each appending one event at a time (group commit);
- `ledger_coroutines16` (for the record): 16 coroutines on one event loop, each awaiting
  `append_awaited` of one event at a time, committed by the store's writer thread;
- `ledger_process16` (for the record): the same through a writer process
  (`events.writer_process`), as `ledger serve`'s requests append by default;
- `raw_single`, `raw_batch100`: plain `sqlite3` on the very schema the store creates (its
  CREATE TABLE and CREATE INDEX statements copied from `sqlite_master`), one `INSERT` per
  transaction, or `executemany` of 100 rows in one transaction, rows built beforehand;
- `raw_concurrent16`: the floor of `ledger_concurrent16`, 16 threads appending prebuilt
  rows one at a time through a group commit of plain `sqlite3` that places, writes and
  acknowledges groups as the store does and does nothing else (`raw_group_commit.py`):
  what group commit gives 16 Python threads on this machine with none of the ledger's
  work. `concurrent16_ceiling` divides it by `ledger_single`: what `concurrent16_vs_single`
  would be, were the ledger's grouped appends free;
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
This script holds the command line, the rounds and the summary; beside it, `append_work.py`
builds the work and `append_arms.py` holds the arms, their bounds, timing and workspace.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import sqlite3
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from append_arms import (  # noqa: E402 - after the path set-up above
    FULL,
    QUICK,
    WARMUP,
    Run,
    Workspace,
    arm_concurrent,
    arm_coroutines,
    arm_es,
    arm_ledger,
    arm_raw,
    arm_raw_concurrent,
    fs_type,
    store_schema,
)
from append_work import make_announcing, make_events, make_rows, stored  # noqa: E402

THREADS = 16
BATCH = 100


def log(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


# -- main -------------------------------------------------------------------------------------

RATIOS = {
    "single_vs_raw": ("ledger_single", "raw_single"),
    "batch100_vs_raw": ("ledger_batch100", "raw_batch100"),
    "concurrent16_vs_single": ("ledger_concurrent16", "ledger_single"),
    "coroutines16_vs_single": ("ledger_coroutines16", "ledger_single"),
    "process16_vs_single": ("ledger_process16", "ledger_single"),
    "raw_concurrent16_vs_raw_single": ("raw_concurrent16", "raw_single"),
    "concurrent16_ceiling": ("raw_concurrent16", "ledger_single"),
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
        threaded_rows = make_rows(threaded)
        rows_per_thread = [threaded_rows[i::THREADS] for i in range(THREADS)]
        gc.collect()
        gc.freeze()  # the prebuilt work is scaffolding: keep the collector from rescanning it
        log(f"built the work in {time.perf_counter() - began:.1f}s")

        arms: dict[str, Callable[[], Run]] = {
            "raw_single": lambda: arm_raw(ws, schema, raw_single, 1, cfg),
            "ledger_single": lambda: arm_ledger(ws, single, 1, cfg),
            "es_single": lambda: arm_es(ws, es_single, 1, cfg, mapped=True),
            "es_recorder_single": lambda: arm_es(ws, es_single_stored, 1, cfg, mapped=False),
            "ledger_concurrent16": lambda: arm_concurrent(ws, per_thread, cfg),
            "ledger_coroutines16": lambda: arm_coroutines(ws, per_thread, cfg),
            "ledger_process16": lambda: arm_coroutines(ws, per_thread, cfg, process=True),
            "raw_concurrent16": lambda: arm_raw_concurrent(ws, schema, rows_per_thread, cfg),
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
