"""Replay speed of the projections, against baselines measured in the same run.

    python bench/replay.py            # the full run: 1,000,000 events
    python bench/replay.py --quick    # the same measurements and keys over 50,000 events

The log is generated once per size and cached under `bench/.cache/` (gitignored): a
realistic mix written through `SQLiteEventLog.append` in batches of 1,000 with
`synchronous="NORMAL"` (untimed). Many organizations (a third with a parent), sites that
change hands, memoranda, partnerships, plans, initiatives, investments in nine
currencies, dates over 2000-2025 at day, month or year precision, news arriving in
valid-time order except backfill bursts of older announcements (about 1%), and a few
corrections and retractions. The last `2 * TAIL` events are ordinary in-order news.

Each measurement runs in its own child process (so setup memory and one arm's garbage
do not count against another), in several interleaved rounds; a time is the median:

- `replay`: `projections.build_replayed(log.iter_replay())` (the lean read the service
  rebuilds with), `.derive()` (every answer, the timeline's included) and `.digests()`,
  all timed: a cold start from zero. Peak RSS of that child is reported.
- `decode`: plain `sqlite3` `SELECT type, data ... ORDER BY position` and a typed
  `msgspec.json.Decoder(<payload class>)` per row, nothing kept (the floor of a replay).
- `dict_fold` (for the record): the issue's "read + msgspec decode + a dict fold": the
  replay's columns, payloads decoded, each row and payload filed by entity, nothing else
  (`replay_arms.arm_dict_fold`): the floor of a fold that derives nothing until asked.
- `read`: the same SELECT of every column, no decoding; `iter`: `log.iter_events()`
  discarding the events (read + the store's whole-envelope decode, no fold); `lean`:
  `log.iter_replay()` discarding its rows (the replay's read: its columns, decoded).
- `eventsourcing`: the library's `SQLiteApplicationRecorder.select_notifications` in pages
  of 5,000 and `Mapper.to_domain_event` (its JSON transcoder with the UUID, Decimal and
  datetime transcodings an `Application` registers) over the same events, stored as
  domain events holding the same envelope (written with its recorder first, untimed).
- `snapshot`: read and `load_snapshot` a snapshot taken at head - TAIL (made untimed by a
  from-zero rebuild), then fold the tail with `Live.apply`; on the first event it
  refuses, `Live.merge` of the rest of the tail (a rebuild from the whole log if the rest
  is `MERGE_AT_MOST` events or more); then derive every answer and digest: exactly what
  `service.projector.Projector` does before the service says ready, and what the replay
  arm times. The fold state alone (`Live.projections()` before any answer is derived) is
  reported too, as `snapshot_fold_vs_replay`.
- `snapshot_fallback`: the same with a snapshot whose TAIL-event tail holds a backfilled
  (out-of-order) event, so `Live.apply` refuses it and the rest of the tail is merged.

Progress goes to stderr; the last line of stdout is one JSON object of ratios and rates.
This script holds the command line, the child runner and the summary; beside it,
`replay_generator.py` makes the generated log's events, `replay_log.py` writes that log and
the eventsourcing copy, and `replay_arms.py` holds the measured arms.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from replay_arms import (  # noqa: E402 - after the path set-up
    arm_dict_fold,
    arm_es,
    arm_iter,
    arm_read,
    arm_replay,
    arm_snapshot,
    arm_snapshot_prep,
)
from replay_generator import GENERATOR_VERSION, TAIL  # noqa: E402
from replay_log import drop, es_write, generate, log  # noqa: E402

CACHE = ROOT / "bench" / ".cache"
CHILD_TIMEOUT = 3_600.0


@dataclass(frozen=True)
class Config:
    """How much: every loop is bounded by the event count and the number of rounds."""

    events: int
    rounds: int


FULL = Config(events=1_000_000, rounds=3)
QUICK = Config(events=50_000, rounds=3)


def mib(kib: float) -> float:
    return round(kib / 1024, 1)


# -- the cached logs, each made once in a child process ------------------------------


def cached_log(count: int) -> Path:
    """The generated log of `count` events, made once and kept under `bench/.cache/`."""
    path = CACHE / f"replay-v{GENERATOR_VERSION}-{count}.db"
    if path.exists():
        return path
    CACHE.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    drop(tmp)
    child("generate", tmp, extra=["--events", str(count)])
    tmp.replace(path)
    return path


def cached_es(ledger: Path) -> Path:
    path = ledger.with_name(ledger.stem + "-eventsourcing-v2.db")
    if path.exists():
        return path
    tmp = path.with_name(path.name + ".tmp")
    drop(tmp)
    child("es-write", ledger, extra=["--out", str(tmp)])
    tmp.replace(path)
    return path


# -- the arms' child processes ------------------------------------------------------------


def run_arm(args: argparse.Namespace) -> None:
    db = Path(args.db)

    def made(write: Callable[[], None]) -> dict[str, Any]:  # a log written, nothing measured
        write()
        return {}

    arms: dict[str, Callable[[], dict[str, Any]]] = {
        "generate": lambda: made(lambda: generate(args.events, db)),
        "es-write": lambda: made(lambda: es_write(db, Path(args.out))),
        "read": lambda: arm_read(db, decode=False),
        "decode": lambda: arm_read(db, decode=True),
        "dict_fold": lambda: arm_dict_fold(db),
        "iter": lambda: arm_iter(db),
        "lean": lambda: arm_iter(db, lean=True),
        "replay": lambda: arm_replay(db, profile=args.profile, gc_off=args.gc_off),
        "eventsourcing": lambda: arm_es(db),
        "snapshot-prep": lambda: arm_snapshot_prep(db, Path(args.out), args.fallback),
        "snapshot": lambda: arm_snapshot(db, Path(args.snapshot), args.end),
    }
    run = arms.get(args.arm)
    if run is None:
        raise SystemExit(f"no arm {args.arm!r}")
    print(json.dumps(run()))


def child(arm: str, db: Path, extra: list[str] | None = None) -> dict[str, Any]:
    """Run one arm in a fresh interpreter; its last stdout line is its JSON result."""
    command = [sys.executable, str(Path(__file__).resolve()), "--arm", arm, "--db", str(db)]
    done = subprocess.run(  # noqa: PLW1510 - checked below, with the child's output
        [*command, *(extra or [])],
        stdout=subprocess.PIPE,
        text=True,
        timeout=CHILD_TIMEOUT,
    )
    if done.returncode != 0:
        raise SystemExit(f"arm {arm} failed with exit code {done.returncode}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


# -- main -----------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> None:  # noqa: PLR0915 - one run, step by step
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="50,000 events: under a minute")
    parser.add_argument("--events", type=int, help="how many events (default 1,000,000)")
    parser.add_argument("--rounds", type=int, help="how many rounds of the arms (default 3)")
    parser.add_argument("--profile", action="store_true", help="cProfile one replay (stderr)")
    parser.add_argument("--gc-off", action="store_true", help="one replay without the cyclic GC")
    parser.add_argument("--arm", help=argparse.SUPPRESS)
    parser.add_argument("--db", help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    parser.add_argument("--snapshot", help=argparse.SUPPRESS)
    parser.add_argument("--end", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--fallback", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.arm:
        run_arm(args)
        return

    cfg = QUICK if args.quick else FULL
    count = args.events or cfg.events
    rounds = args.rounds or cfg.rounds
    began = time.perf_counter()
    log(
        f"{count:,} events, {rounds} rounds; sqlite {sqlite3.sqlite_version}, {os.cpu_count()} cpus"
    )
    db = cached_log(count)
    es_db = cached_es(db)
    log(f"logs ready in {time.perf_counter() - began:.1f}s: {db} ({db.stat().st_size >> 20} MiB)")

    if args.profile or args.gc_off:  # a diagnosis, not a measurement: no JSON line of ratios
        flags = [
            flag for flag, on in (("--profile", args.profile), ("--gc-off", args.gc_off)) if on
        ]
        run = child("replay", db, extra=flags)
        log(f"replay: {run['seconds']:.3f}s{_detail(run)}")
        return

    scratch = Path(tempfile.mkdtemp(prefix="bench-replay-", dir=CACHE))
    try:
        snapshots: dict[str, tuple[Path, int]] = {}
        for name, fallback in (("snapshot", False), ("snapshot_fallback", True)):
            path = scratch / f"{name}.json"
            extra = ["--out", str(path), *(["--fallback"] if fallback else [])]
            prep = child("snapshot-prep", db, extra)
            snapshots[name] = (path, prep["tail_end"])
            log(
                f"{name}: at {prep['position']:,}, tail to {prep['tail_end']:,},"
                f" {prep['bytes'] >> 20} MiB"
            )

        runs: dict[str, list[dict[str, Any]]] = {}
        arms: dict[str, tuple[str, list[str]]] = {
            "read": ("read", []),
            "decode": ("decode", []),
            "dict_fold": ("dict_fold", []),
            "iter": ("iter", []),
            "lean": ("lean", []),
            "replay": ("replay", []),
            "eventsourcing": ("eventsourcing", []),
        }
        for name, (path, end) in snapshots.items():
            arms[name] = ("snapshot", ["--snapshot", str(path), "--end", str(end)])
        for round_no in range(1, rounds + 1):
            for name, (arm, extra) in arms.items():
                target = es_db if arm == "eventsourcing" else db
                run = child(arm, target, extra)
                runs.setdefault(name, []).append(run)
                events = run.get("events", count)
                if arm != "snapshot" and events != count:
                    raise SystemExit(f"{name} read {events} events, not {count}")
                log(f"round {round_no} {name:>17}: {run['seconds']:7.3f}s" + _detail(run))
    finally:
        shutil.rmtree(scratch, ignore_errors=True)

    digests = {json.dumps(run["digests"], sort_keys=True) for run in runs["replay"]}
    if len(digests) != 1:
        msg = "replays disagree on the digests"
        raise SystemExit(msg)

    def median(name: str, key: str = "seconds") -> float:
        return statistics.median(run[key] for run in runs[name])

    names = ("read", "decode", "dict_fold", "iter", "lean", "replay", "eventsourcing")
    rate = {name: count / median(name) for name in names}
    replay_seconds = median("replay")
    snap, fallback = runs["snapshot"], runs["snapshot_fallback"]
    result: dict[str, Any] = {
        "replay_vs_decode": rate["replay"] / rate["decode"],
        "replay_vs_eventsourcing": rate["replay"] / rate["eventsourcing"],
        "snapshot_start_vs_replay": replay_seconds / median("snapshot"),
        "peak_rss_mib": mib(max(run["peak_rss_kib"] for run in runs["replay"])),
        "snapshot_fold_vs_replay": replay_seconds / median("snapshot", "fold_seconds"),
        "snapshot_fallback_vs_replay": replay_seconds / median("snapshot_fallback"),
        "snapshot_fallback_vs_build": median("replay", "build_seconds")
        / median("snapshot_fallback", "fold_seconds"),
        "iter_vs_decode": rate["iter"] / rate["decode"],
        "lean_vs_decode": rate["lean"] / rate["decode"],
        "dict_fold_vs_decode": rate["dict_fold"] / rate["decode"],
        "dict_fold_vs_eventsourcing": rate["dict_fold"] / rate["eventsourcing"],
    }
    result = {k: round(v, 2) for k, v in result.items()}
    result.update({f"{name}_eps": round(value) for name, value in rate.items()})
    result.update(
        {
            "replay_seconds": round(replay_seconds, 3),
            "replay_build_seconds": round(median("replay", "build_seconds"), 3),
            "replay_derive_seconds": round(median("replay", "derive_seconds"), 3),
            "replay_digests_seconds": round(median("replay", "digests_seconds"), 3),
            "replay_gc_seconds": round(median("replay", "gc_seconds"), 3),
            "replay_rss_before_mib": mib(median("replay", "rss_before_kib")),
            "replay_build_peak_rss_mib": mib(median("replay", "build_peak_rss_kib")),
            "snapshot_start_seconds": round(median("snapshot"), 3),
            "snapshot_load_seconds": round(median("snapshot", "load_seconds"), 3),
            "snapshot_tail_seconds": round(median("snapshot", "tail_seconds"), 3),
            "snapshot_answers_seconds": round(median("snapshot", "answers_seconds"), 3),
            "snapshot_tail_rebuilt": any(run["rebuilt"] for run in snap),
            "snapshot_fallback_seconds": round(median("snapshot_fallback"), 3),
            "snapshot_fallback_rebuilt": any(run["rebuilt"] for run in fallback),
            "snapshot_fallback_merged": statistics.median(run["merged"] for run in fallback),
            "events": count,
            "tail": TAIL,
            "quick": args.quick,
            "rounds": rounds,
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "sqlite": sqlite3.sqlite_version,
            "wall_seconds": round(time.perf_counter() - began, 1),
        }
    )
    print(json.dumps(result))


def _detail(run: dict[str, Any]) -> str:
    keys = (
        "build_seconds",
        "derive_seconds",
        "digests_seconds",
        "gc_seconds",
        "load_seconds",
        "tail_seconds",
        "answers_seconds",
    )
    parts = [f"{key.removesuffix('_seconds')} {run[key]:.3f}s" for key in keys if key in run]
    if "peak_rss_kib" in run:
        parts.append(f"peak {mib(run['peak_rss_kib'])} MiB")
    if "rebuilt" in run:
        parts.append(f"applied {run['applied']}, merged {run['merged']}, rebuilt {run['rebuilt']}")
    return f" ({', '.join(parts)})" if parts else ""


if __name__ == "__main__":
    main()
