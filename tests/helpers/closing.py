"""Races of `SQLiteEventLog.close`, each run in its own process by `tests/test_closing.py`.

A regression here is a crash (CPython's `sqlite3` closing a connection under a reader) or a
hang (a lock never given back): in a child process either is one failed test, not a dead or
stuck test run. Usage: python closing.py SCENARIO DATABASE; prints one line of what it saw.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
import threading
import time
from pathlib import Path
from typing import Any

from events.envelope import NewEvent, Source
from events.errors import StoreError
from events.ids import uuid7
from events.payloads import OrganizationRegistered
from events.sqlite import SQLiteEventLog

SOURCE = Source(url="urn:test:closing", quote="Appended by the closing test.")


def event(stream: str) -> NewEvent:
    slug = f"org-{uuid7()}"
    return NewEvent(
        event_id=uuid7(),
        stream=stream,
        type=OrganizationRegistered.TYPE,
        occurred_on="2024-05-31",
        data=OrganizationRegistered(id=slug, name=slug, country="US"),
        source=SOURCE,
    )


def two_closes(path: Path) -> str:
    """200 appends queued, then `close` from two threads at once: both wait for the queue."""
    log = SQLiteEventLog(path)

    async def main() -> list[Any]:
        futures = [log.append_future([event(f"c-{n % 8}")]) for n in range(200)]
        await asyncio.sleep(0)  # queued at the end of the loop's turn (`submit_append`)
        closers = [threading.Thread(target=log.close) for _ in range(2)]
        for closer in closers:
            closer.start()
        results = await asyncio.wait_for(asyncio.gather(*futures, return_exceptions=True), 30)
        for closer in closers:
            closer.join(timeout=30)
        return results

    results = asyncio.run(main())
    failed = sum(isinstance(r, BaseException) for r in results)
    heads = sorted(r.head for r in results if not isinstance(r, BaseException))
    return f"failed={failed} heads_ok={heads == list(range(1, 201))}"


def read_during_close(path: Path) -> str:
    """Another thread reading in a loop while the log closes: no crash; it hears StoreError."""
    log = SQLiteEventLog(path)
    for n in range(50):
        log.append([event(f"r-{n % 4}")])
    seen: list[str] = []
    reading = threading.Event()

    def reader() -> None:
        deadline = time.monotonic() + 10
        try:
            while time.monotonic() < deadline:
                log.read(after=0, limit=50)
                reading.set()
            seen.append("never closed")
        except StoreError:
            seen.append("closed")
        except Exception as exc:  # noqa: BLE001 - reported, the test names it
            seen.append(type(exc).__name__)

    thread = threading.Thread(target=reader)
    thread.start()
    reading.wait(10)
    log.close()
    thread.join(timeout=15)
    return f"reader={','.join(seen)}"


def interrupted_inline(path: Path) -> str:
    """Ctrl-C just after an inline append took the connection: it is given back."""
    log = SQLiteEventLog(path)
    busy = log._writer._busy
    real_acquire = busy.acquire

    class Interrupting:
        """The lock, whose first non-blocking acquire succeeds and is then interrupted."""

        fired = False

        def acquire(self, blocking: bool = True, timeout: float = -1) -> bool:
            got = real_acquire(blocking, timeout)
            if not blocking and not Interrupting.fired:
                Interrupting.fired = True
                raise KeyboardInterrupt
            return got

        def __getattr__(self, name: str) -> Any:
            return getattr(busy, name)

        def __enter__(self) -> bool:
            return busy.__enter__()

        def __exit__(self, *exc: object) -> None:
            busy.__exit__(*exc)

    log._writer._busy = Interrupting()  # type: ignore[assignment]
    with contextlib.suppress(KeyboardInterrupt):
        log.append([event("k")])
    log._writer._busy = busy
    other = threading.Thread(target=lambda: log.append([event("k")]), daemon=True)
    other.start()
    other.join(timeout=10)
    answer = f"fired={Interrupting.fired} next_append_done={not other.is_alive()}"
    closer = threading.Thread(target=log.close, daemon=True)
    closer.start()
    closer.join(timeout=10)
    return answer + f" closed={not closer.is_alive()} head={SQLiteEventLog(path).head()}"


if __name__ == "__main__":
    scenario = {
        "two_closes": two_closes,
        "read": read_during_close,
        "interrupt": interrupted_inline,
    }
    sys.stdout.write(scenario[sys.argv[1]](Path(sys.argv[2])) + "\n")
