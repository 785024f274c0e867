"""Append to a ledger until killed; print `position event_id` of each acknowledged event.

Usage: python append_loop.py DATABASE [THREADS]. Each line is flushed only after the append
that it reports has returned, so every printed event is acknowledged.
"""

from __future__ import annotations

import random
import sys
import threading

from events.envelope import NewEvent, Source
from events.ids import uuid7
from events.payloads import InitiativeLaunched
from events.sqlite import SQLiteEventLog

SOURCE = Source(url="urn:test:crash", quote="Appended by the crash test.")


def new_event(rng: random.Random, stream: str) -> NewEvent:
    """An event with a payload of random size (up to a few pages), so commits span pages."""
    slug = uuid7()
    return NewEvent(
        event_id=slug,
        stream=stream,
        type=InitiativeLaunched.TYPE,
        occurred_on="2024-05-31",
        data=InitiativeLaunched(
            org="lotte-biologics",
            initiative=f"initiative-{slug}",
            name="Initiative",
            description="x" * rng.randint(1, 9_000),
        ),
        source=SOURCE,
    )


def main() -> None:
    """Run the appending threads until the process is killed."""
    log = SQLiteEventLog(sys.argv[1])
    threads = int(sys.argv[2]) if len(sys.argv) > 2 else 2
    lock = threading.Lock()

    def work(index: int) -> None:
        rng = random.Random()
        while True:
            batch = [new_event(rng, f"crash-{index}") for _ in range(rng.randint(1, 4))]
            result = log.append(batch)
            lines = "".join(f"{c.position} {c.event_id}\n" for c in result.events)
            with lock:
                sys.stdout.write(lines)
                sys.stdout.flush()

    workers = [threading.Thread(target=work, args=(i,), daemon=True) for i in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()


if __name__ == "__main__":
    main()
