"""The measured arms of `bench/replay.py`, each run in a child process (`--arm NAME`).

What each one times is described in that script's docstring. Each returns a dict of plain
values the script prints as its child's last stdout line. Imported by that script, which
puts the repository root on `sys.path` first.
"""

from __future__ import annotations

import cProfile
import gc
import pstats
import resource
import sqlite3
import sys
import time
from functools import partial
from pathlib import Path
from typing import Any

import msgspec
from replay_generator import TAIL

from events.log import hash_at
from events.payloads import PAYLOAD_TYPES, RECORD_TYPES
from events.rows import SELECT_COLUMNS
from events.sqlite import SQLiteEventLog

PAGE = 5_000


def rss_now_kib() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def peak_rss_kib() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux


# -- the measurements, each in a child process --------------------------------------------


def arm_read(db: Path, *, decode: bool) -> dict[str, Any]:
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    decoders = {name: msgspec.json.Decoder(cls) for name, cls in PAYLOAD_TYPES.items()}
    sql = f"SELECT {'type, data' if decode else SELECT_COLUMNS} FROM events ORDER BY position"
    count = 0
    try:
        start = time.perf_counter()
        conn.execute("BEGIN")
        cursor = conn.execute(sql)
        if decode:
            while rows := cursor.fetchmany(PAGE):
                for event_type, data in rows:
                    decoders[event_type].decode(data)
                count += len(rows)
        else:
            while rows := cursor.fetchmany(PAGE):
                count += len(rows)
        conn.execute("COMMIT")
        seconds = time.perf_counter() - start
    finally:
        conn.close()
    return {"events": count, "seconds": seconds}


def arm_dict_fold(db: Path) -> dict[str, Any]:
    """The floor of a fold: the replay's columns read, payloads decoded, facts filed by entity.

    What the issue calls "read + msgspec decode + a dict fold": each row kept as it is read
    (source and `recorded_at` left as stored text) with its typed payload, appended to the
    timeline and to its site's, organization's or agreement parties' list. No valid-time
    order, corrections, roll-ups, answers or digests: the cost of a projection that derives
    nothing until asked, which the ledger's projections are not (see the Replay section).
    The cyclic collector is paused meanwhile, as the ledger's folds pause it.
    """
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    decoders = {name: msgspec.json.Decoder(cls) for name, cls in PAYLOAD_TYPES.items()}
    timeline: list[tuple[Any, ...]] = []
    by_key: dict[object, list[tuple[Any, ...]]] = {}
    sql = (
        "SELECT position, event_id, stream, type, occurred_on, sequence, recorded_at,"
        " source, data FROM events ORDER BY position"
    )
    gc.disable()
    try:
        start = time.perf_counter()
        cursor = conn.execute(sql)
        while rows := cursor.fetchmany(PAGE):
            for row in rows:
                data = decoders[row[3]].decode(row[8])
                fact = (row, data)
                timeline.append(fact)
                key = getattr(data, "site", None) or getattr(data, "id", None)
                if key is None:
                    parties = getattr(data, "parties", None)
                    key = tuple(parties) if parties else row[2]
                entries = by_key.get(key)
                if entries is None:
                    by_key[key] = [fact]
                else:
                    entries.append(fact)
        seconds = time.perf_counter() - start
    finally:
        gc.enable()
        conn.close()
    return {"events": len(timeline), "seconds": seconds, "keys": len(by_key)}


def arm_iter(db: Path, *, lean: bool = False) -> dict[str, Any]:
    store = SQLiteEventLog(db, synchronous="NORMAL")
    count = 0
    try:
        start = time.perf_counter()
        for _ in store.iter_replay() if lean else store.iter_events():
            count += 1
        seconds = time.perf_counter() - start
    finally:
        store.close()
    return {"events": count, "seconds": seconds}


class GcTimer:
    """Seconds the cyclic garbage collector ran (through `gc.callbacks`)."""

    def __init__(self) -> None:
        self.seconds = 0.0
        self.collections = 0
        self._start = 0.0

    def __call__(self, phase: str, _info: dict[str, int]) -> None:
        if phase == "start":
            self._start = time.perf_counter()
        else:
            self.seconds += time.perf_counter() - self._start
            self.collections += 1


def arm_replay(db: Path, *, profile: bool, gc_off: bool) -> dict[str, Any]:
    from projections import build_replayed  # noqa: PLC0415 - imported before the clock, not timed

    store = SQLiteEventLog(db, synchronous="NORMAL")
    rss_before = rss_now_kib()
    timer = GcTimer()
    gc.callbacks.append(timer)
    if gc_off:  # a diagnosis: what the cyclic garbage collector costs the replay
        gc.disable()
    profiler = cProfile.Profile() if profile else None
    try:
        if profiler is not None:
            profiler.enable()
        start = time.perf_counter()
        proj = build_replayed(store.iter_replay())
        built = time.perf_counter()
        built_rss = peak_rss_kib()
        proj.derive()  # every answer, the timeline's included, ready to serve
        derived = time.perf_counter()
        digests = proj.digests()
        done = time.perf_counter()
        if profiler is not None:
            profiler.disable()
    finally:
        gc.callbacks.remove(timer)
        store.close()
    if profiler is not None:
        stats = pstats.Stats(profiler, stream=sys.stderr)
        stats.sort_stats("tottime").print_stats(30)
        stats.sort_stats("cumulative").print_stats(40)
    return {
        "events": proj.position,
        "seconds": done - start,
        "build_seconds": built - start,
        "derive_seconds": derived - built,
        "digests_seconds": done - derived,
        "gc_seconds": timer.seconds,
        "gc_collections": timer.collections,
        "rss_before_kib": rss_before,
        "build_peak_rss_kib": built_rss,
        "peak_rss_kib": peak_rss_kib(),
        "digests": digests,
    }


def store_head(db: Path) -> int:
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        return int(conn.execute("SELECT max(position) FROM events").fetchone()[0] or 0)
    finally:
        conn.close()


def arm_es(db: Path) -> dict[str, Any]:
    import es_baseline  # noqa: PLC0415 - an optional dependency, beside this script

    mapper = es_baseline.mapper()
    recorder = es_baseline.recorder(db)
    count, last = 0, 0
    try:
        start = time.perf_counter()
        while notifications := recorder.select_notifications(last, PAGE, inclusive_of_start=False):
            for notification in notifications:
                mapper.to_domain_event(notification)
            count += len(notifications)
            last = notifications[-1].id
        seconds = time.perf_counter() - start
    finally:
        recorder.datastore.close()
    return {"events": count, "seconds": seconds}


def snapshot_point(db: Path, *, fallback: bool) -> tuple[int, int]:
    """Where to snapshot: (position, tail end).

    Without `fallback`: head - TAIL, the tail running to the head. With it: TAIL / 2
    events before the last backfilled announcement of the log (older than an event
    recorded before it, so `Live.apply` refuses it), the tail running TAIL events from
    there: a start that must rebuild from (almost) the whole log.
    """
    head = store_head(db)
    if not fallback:
        return max(0, head - TAIL), head
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    late = 0
    try:
        newest: tuple[str, int, str] | None = None
        rows = conn.execute(
            "SELECT position, type, occurred_on, sequence, event_id FROM events ORDER BY position"
        )
        for position, event_type, occurred_on, sequence, event_id in rows:
            if event_type in RECORD_TYPES:
                continue
            size = len(occurred_on)
            start = occurred_on + ("" if size == 10 else "-01" if size == 7 else "-01-01")
            key = (start, sequence or 0, event_id)
            if newest is not None and key < newest:
                late = position
            else:
                newest = key
    finally:
        conn.close()
    if not late:
        msg = "no backfilled event in the log"
        raise SystemExit(msg)
    at = max(0, late - TAIL // 2)
    return at, min(head, at + TAIL)


def arm_snapshot_prep(db: Path, out: Path, fallback: bool) -> dict[str, Any]:
    from projections import Live, dump_snapshot  # noqa: PLC0415

    at, end = snapshot_point(db, fallback=fallback)
    store = SQLiteEventLog(db, synchronous="NORMAL")
    try:
        live = Live()
        live.rebuild_replayed(store.iter_replay(upto=at))
        out.write_bytes(dump_snapshot(live, anchor=hash_at(store, live.position) or ""))
    finally:
        store.close()
    return {"position": live.position, "tail_end": end, "bytes": out.stat().st_size}


def arm_snapshot(db: Path, snapshot: Path, end: int) -> dict[str, Any]:
    from projections import load_snapshot  # noqa: PLC0415
    from service.projector import MERGE_AT_MOST  # noqa: PLC0415

    store = SQLiteEventLog(db, synchronous="NORMAL")
    applied = merged = 0
    rebuilt = False
    try:
        start = time.perf_counter()
        live = load_snapshot(snapshot.read_bytes(), anchor_at=partial(hash_at, store))
        if live is None:
            msg = "the snapshot was refused"
            raise SystemExit(msg)
        loaded = time.perf_counter()
        events = store.iter_events(after=live.position, upto=end)
        for event in events:
            if not live.apply(event):  # as service.projector.Projector.catch_up does
                short = live.position > 0 and end - event.position < MERGE_AT_MOST
                rest = [event, *events] if short else []
                if short and live.merge(rest):
                    merged = len(rest)
                else:
                    live.rebuild_replayed(store.iter_replay(upto=end))
                    rebuilt = True
                break
            applied += 1
        proj = live.projections()
        folded = time.perf_counter()
        proj.derive().digests()  # as the service's start does before it says ready
        ready = time.perf_counter()
    finally:
        store.close()
    if live.position != end:
        raise SystemExit(f"snapshot start ended at {live.position}, not {end}")
    return {
        "seconds": ready - start,
        "fold_seconds": folded - start,
        "load_seconds": loaded - start,
        "tail_seconds": folded - loaded,
        "answers_seconds": ready - folded,
        "applied": applied,
        "merged": merged,
        "rebuilt": rebuilt,
        "peak_rss_kib": peak_rss_kib(),
    }
