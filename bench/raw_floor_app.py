"""A durable POST doing nothing else: `bench/http.py`'s `raw_floor_post16` arm.

    RAW_FLOOR_DATABASE=/tmp/raw.db uvicorn --factory bench.raw_floor_app:application

A plain ASGI app, no framework and not the ledger's store: `POST /floor/events` reads the
body, decodes it into the service's `AppendBody` exactly as the bare route does (the
payload as a plain mapping: less checking than any append of the ledger, which types every
payload), and hands one row per event to a minimal group commit: one writer thread, plain
`sqlite3` on the ledger's own schema (WAL, `synchronous=FULL`), everything waiting
inserted by one `INSERT` outside a transaction (its own transaction: one statement, one
fsync, as the ledger's store writes a group of up to 32 rows), the loop told once per
group (`call_soon_threadsafe`). No hash chain, no stream versions read, no idempotency
check, no planning, no auth, log line or metrics: less than any append the ledger could
make. `raw_floor_post16 / bare_post16` is what a durable POST costs on this machine and
server by itself; `floor_post16` (the ledger's store) and `post16` (the service) below it
are what the ledger's own work costs.
"""

from __future__ import annotations

import asyncio
import os
import queue
import sqlite3
import sys
import threading
import uuid
from functools import lru_cache
from pathlib import Path
from typing import Any

import msgspec

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.floor_app import plain_app
from events.sqlite import SQLiteEventLog
from service.schemas import AppendBody

_BODY = msgspec.json.Decoder(AppendBody)
_ENCODE = msgspec.json.Encoder().encode
_INSERT = (
    "INSERT INTO events (position, event_id, stream, stream_version, type, schema_version,"
    " occurred_on, sequence, recorded_at, data, source, metadata, data_hash, prev_hash, hash)"
    " VALUES (?, ?, ?, 1, ?, 1, ?, ?, '2026-01-01T00:00:00.000000Z', ?, ?, '{}', '', '', '')"
)
_STOP = object()
_ONE_STATEMENT = 32


@lru_cache(maxsize=_ONE_STATEMENT)
def _insert_of(count: int) -> str:
    """`_INSERT` of `count` rows: a group in one statement (one wait for the interpreter)."""
    columns, values = _INSERT.split(" VALUES ")
    return f"{columns} VALUES {','.join([values] * count)}"


class Answer(msgspec.Struct):
    """What the service answers an append, in the same shape: the head and each position."""

    head: int
    positions: list[int]


class Writer:
    """One thread committing everything queued as one transaction, one fsync per group."""

    def __init__(self, path: str) -> None:
        SQLiteEventLog(path).close()  # the ledger's schema, made by the ledger
        self.conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self.conn.execute("PRAGMA synchronous = FULL")
        self.head = int(
            self.conn.execute("SELECT coalesce(max(position), 0) FROM events").fetchone()[0]
        )
        self.queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self.thread = threading.Thread(target=self._run, name="raw-floor-writer", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        conn = self.conn
        while True:
            first = self.queue.get()
            if first is _STOP:
                return
            group = [first]
            while True:
                try:
                    item = self.queue.get_nowait()
                except queue.Empty:
                    break
                if item is _STOP:
                    self.queue.put(_STOP)
                    break
                group.append(item)
            rows, answers = [], []
            for events, future in group:
                positions = []
                for event in events:
                    self.head += 1
                    positions.append(self.head)
                    rows.append((self.head, *event))
                answers.append((future, Answer(self.head, positions)))
            if len(rows) <= _ONE_STATEMENT:  # its own transaction: one statement, one fsync
                conn.execute(_insert_of(len(rows)), [value for row in rows for value in row])
            else:
                conn.execute("BEGIN IMMEDIATE")
                conn.executemany(_INSERT, rows)
                conn.execute("COMMIT")
            loop = answers[0][0].get_loop()
            loop.call_soon_threadsafe(_tell, answers)

    def close(self) -> None:
        self.queue.put(_STOP)
        self.thread.join()
        self.conn.close()


def _tell(answers: list[tuple[asyncio.Future[Answer], Answer]]) -> None:
    for future, answer in answers:
        if not future.done():
            future.set_result(answer)


async def _append(writer: Writer, body: bytes) -> tuple[int, bytes]:
    batch = _BODY.decode(body)
    rows = [
        (
            event.event_id or str(uuid.uuid4()),
            event.stream,
            event.type,
            event.occurred_on,
            event.sequence,
            _ENCODE(event.data).decode(),
            _ENCODE(event.source).decode(),
        )
        for event in batch.events
    ]
    future: asyncio.Future[Answer] = asyncio.get_running_loop().create_future()
    writer.queue.put((rows, future))
    return 201, _ENCODE(await future)


def application() -> Any:
    """The ASGI app; the writer starts at lifespan startup and stops at shutdown."""
    return plain_app(lambda: Writer(os.environ["RAW_FLOOR_DATABASE"]), Writer.close, _append)
