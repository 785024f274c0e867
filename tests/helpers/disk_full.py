"""Fill the disk (a file-size limit) under an append, then lift the limit; report as JSON.

Usage: python disk_full.py DATABASE [MARGIN]: the limit is the largest file's size plus
MARGIN bytes (default 64 KiB). Prints one JSON object describing each step; the test
asserts on it and on the file afterwards.
"""

from __future__ import annotations

import json
import resource
import signal
import sys
import threading
from pathlib import Path
from typing import Any

from events.envelope import NewEvent, Source
from events.errors import StoreError
from events.ids import uuid7
from events.payloads import InitiativeLaunched
from events.sqlite import SQLiteEventLog

SOURCE = Source(url="urn:test:disk-full", quote="Appended by the disk-full test.")
MARGIN = 64 * 1024
BIG_BATCH = 300


def new_event(stream: str, size: int) -> NewEvent:
    """An event whose payload is about `size` bytes."""
    slug = uuid7()
    return NewEvent(
        event_id=slug,
        stream=stream,
        type=InitiativeLaunched.TYPE,
        occurred_on="2024",
        data=InitiativeLaunched(
            org="lotte-biologics",
            initiative=f"initiative-{slug}",
            name="Initiative",
            description="y" * size,
        ),
        source=SOURCE,
    )


def attempt(log: SQLiteEventLog, batch: list[NewEvent]) -> dict[str, Any]:
    """Append a batch; what happened."""
    try:
        result = log.append(batch)
    except Exception as exc:  # noqa: BLE001 - reported to the test as it is
        return {
            "error": type(exc).__name__,
            "store_error": isinstance(exc, StoreError),
            "message": str(exc),
        }
    return {"positions": [c.position for c in result.events]}


def concurrent(log: SQLiteEventLog, size: int, threads: int) -> list[dict[str, Any]]:
    """Several big batches at once (queued for the writer, grouped): what happened to each."""
    outcomes: list[dict[str, Any]] = []

    def work() -> None:
        outcomes.append(attempt(log, [new_event("big", 8_000) for _ in range(size)]))

    workers = [threading.Thread(target=work) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    return outcomes


def main() -> None:
    """Append, hit the limit, lift it, append again; print the report."""
    path = Path(sys.argv[1])
    margin = int(sys.argv[2]) if len(sys.argv) > 2 else MARGIN
    report: dict[str, Any] = {}
    log = SQLiteEventLog(path)
    try:
        log.append([new_event("before", 100) for _ in range(20)])
        report["head_before"] = log.head()
        sizes = [p.stat().st_size for p in path.parent.glob(path.name + "*") if p.is_file()]
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
        resource.setrlimit(resource.RLIMIT_FSIZE, (max(sizes) + margin, hard))
        big = [new_event("big", 8_000) for _ in range(BIG_BATCH)]
        report["full"] = attempt(log, big)
        report["head_when_full"] = log.head()
        report["found_when_full"] = sum(log.get(e.event_id) is not None for e in big)
        report["readable_when_full"] = len(log.read(limit=1000))
        report["full_concurrent"] = concurrent(log, BIG_BATCH // 3, 3)
        report["head_when_full_concurrent"] = log.head()
        resource.setrlimit(resource.RLIMIT_FSIZE, (hard, hard))
        report["lifted"] = attempt(log, [new_event("after", 100)])
        report["again"] = attempt(log, big[:5])
        verified = log.verify()
        report["verify"] = {"ok": verified.ok, "head": verified.head}
        report["soft_limit_was"] = soft
    finally:
        log.close()
    sys.stdout.write(json.dumps(report) + "\n")


if __name__ == "__main__":
    main()
