"""The logs `bench/replay.py` reads, written untimed, each in a child process.

`generate`: the generated log (`replay_generator`) appended through
`SQLiteEventLog.append` in batches of `BATCH` with `synchronous="NORMAL"`; `es_write`: the
`eventsourcing` library's copy of it (`es_baseline`). Imported by that script, which puts
the repository root on `sys.path` first.
"""

from __future__ import annotations

import random
import sys
import time
from pathlib import Path
from typing import Any

from replay_generator import SEED, Generator

from events.envelope import Metadata, NewEvent
from events.sqlite import SQLiteEventLog

BATCH = 1_000
ANALYSTS = 5


def log(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


# -- the generated log (untimed) ----------------------------------------------------------


def generate(count: int, path: Path) -> None:
    """Write the generated log of `count` events to `path` (a new file)."""
    began = time.perf_counter()
    items = Generator(count).items()
    log(f"generated {len(items):,} events in memory in {time.perf_counter() - began:.1f}s")
    rng = random.Random(SEED + 1)
    store = SQLiteEventLog(path, synchronous="NORMAL")
    try:
        for start in range(0, len(items), BATCH):
            # one import job per batch (its correlation id), each event typed in by an analyst
            job = f"import-{start // BATCH}"
            metadata = [
                Metadata(recorded_by=f"analyst-{n}", correlation_id=job, tags=("news",))
                for n in range(ANALYSTS)
            ]
            batch = [
                NewEvent(
                    event_id=item.event_id,
                    stream=item.stream,
                    type=item.type,
                    occurred_on=item.occurred_on,
                    sequence=item.sequence,
                    data=item.data,
                    source=item.source,
                    metadata=rng.choice(metadata),
                )
                for item in items[start : start + BATCH]
            ]
            store.append(batch)
            if start % (BATCH * 100) == 0:
                log(f"  appended {start + len(batch):,} in {time.perf_counter() - began:.0f}s")
        if store.head() != count:
            raise SystemExit(f"generated log holds {store.head()} events, not {count}")
    finally:
        store.close()
    log(f"wrote {count:,} events to {path} in {time.perf_counter() - began:.1f}s")


def drop(path: Path) -> None:
    for suffix in ("", "-wal", "-shm", "-journal"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)


# -- the eventsourcing library's copy of the log (untimed) -------------------------------


def es_write(ledger: Path, path: Path) -> None:
    """Copy the ledger's events into an `eventsourcing` recorder, one aggregate per stream."""
    import es_baseline  # noqa: PLC0415 - an optional dependency, beside this script

    mapper = es_baseline.mapper()
    recorder = es_baseline.recorder(path)
    store = SQLiteEventLog(ledger, synchronous="NORMAL")
    began = time.perf_counter()
    try:
        batch: list[Any] = []
        for event in store.iter_events():
            domain_event = es_baseline.Announced(
                originator_id=es_baseline.aggregate_id(event.stream),
                originator_version=event.stream_version,
                timestamp=event.recorded_at,
                event_id=event.event_id,
                type=event.type,
                schema_version=event.schema_version,
                occurred_on=event.occurred_on,
                sequence=event.sequence,
                data=es_baseline.plain(event.data),
                source=es_baseline.plain(event.source),
                metadata=es_baseline.plain(event.metadata),
                data_hash=event.data_hash,
                prev_hash=event.prev_hash,
                hash=event.hash,
            )
            batch.append(mapper.to_stored_event(domain_event))
            if len(batch) == BATCH:
                recorder.insert_events(batch)
                batch = []
        if batch:
            recorder.insert_events(batch)
    finally:
        store.close()
        recorder.datastore.close()
    log(f"wrote the eventsourcing copy {path} in {time.perf_counter() - began:.1f}s")
