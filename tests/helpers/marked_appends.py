"""Do single appends, writing a marker to a dedicated file after each acknowledgement.

Usage: python marked_appends.py DATABASE SYNCHRONOUS|DEFAULT COUNT MARKER_FILE [awaited].
Under `strace -f -y`, each `write` to MARKER_FILE is an acknowledgement: the test checks
what fsyncs came before it. With `awaited`, each append is `append_awaited` from a
coroutine (the HTTP path: committed by the writer thread, acknowledged on the loop).
"""

from __future__ import annotations

import asyncio
import os
import sys

from events.envelope import NewEvent, Source
from events.ids import uuid7
from events.payloads import OrganizationRegistered
from events.sqlite import SQLiteEventLog

SOURCE = Source(url="urn:test:durability", quote="Appended by the durability test.")


def _event(n: int) -> NewEvent:
    slug = uuid7()
    return NewEvent(
        event_id=slug,
        stream="durable",
        type=OrganizationRegistered.TYPE,
        occurred_on="2024",
        data=OrganizationRegistered(id=f"org-{slug}", name=f"Org {n}"),
        source=SOURCE,
    )


async def _awaited(log: SQLiteEventLog, count: int, fd: int) -> None:
    for n in range(count):
        await log.append_awaited([_event(n)])
        os.write(fd, b"ack\n")


def main() -> None:
    """Append COUNT single events, marking each acknowledgement."""
    path, synchronous, count, marker = sys.argv[1:5]
    awaited = sys.argv[5:] == ["awaited"]
    if synchronous == "DEFAULT":
        log = SQLiteEventLog(path)
    else:
        log = SQLiteEventLog(path, synchronous=synchronous)  # type: ignore[arg-type]
    fd = os.open(marker, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    try:
        if awaited:
            asyncio.run(_awaited(log, int(count), fd))
        else:
            for n in range(int(count)):
                log.append([_event(n)])
                os.write(fd, b"ack\n")
    finally:
        os.close(fd)
        log.close()


if __name__ == "__main__":
    main()
