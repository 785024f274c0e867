"""The floor of a durable append over HTTP: `bench/http.py`'s `floor_post16` arm.

    FLOOR_DATABASE=/tmp/floor.db uvicorn --factory bench.floor_app:application

A plain ASGI app, no framework: `POST /floor/events` reads the body, decodes and validates
it exactly as the service does (`service.batch.decode_batch`, `events_of`), appends the
events durably through the ledger's own `SQLiteEventLog` (`append_awaited`: group commit,
`synchronous=FULL`) and answers the service's `AppendAnswer`. Its appends go through a
writer process, as the service's do by default (`FLOOR_WRITER=thread`: the log's writer
thread). No routing, auth, request
log, metrics or projections. Whatever the service does on top of that costs more, so
`floor_post16 / bare_post16` bounds what `post16_vs_bare_post` can reach on this machine
with this store and server. `GET /health/ready` answers 200 once the store is open.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, NamedTuple, TypeVar

import msgspec

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from events.sqlite import SQLiteEventLog
from events.writer_process import ProcessWriter
from service.batch import decode_batch, events_of
from service.schemas import AppendAnswer

SUBJECT = "bench"
T = TypeVar("T")
_ENCODE = msgspec.json.Encoder().encode
_JSON = [(b"content-type", b"application/json")]


async def read_body(receive: Any) -> bytes:
    """The whole request body."""
    chunks = []
    while True:
        message = await receive()
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(chunks)


async def answer(send: Any, status: int, body: bytes) -> None:
    """A JSON answer."""
    headers = [*_JSON, (b"content-length", b"%d" % len(body))]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body, "more_body": False})


def plain_app(
    start: Callable[[], T],
    stop: Callable[[T], None],
    post: Callable[[T, bytes], Awaitable[tuple[int, bytes]]],
) -> Any:
    """An ASGI app: `start()` at lifespan startup, `stop(it)` at shutdown, and
    `POST /floor/events` answered by `post(it, body)`; `GET /health/ready` once started."""
    started: list[T] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    started.append(start())
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    for it in started:
                        stop(it)
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        if scope["type"] != "http":
            return
        if scope["method"] == "POST" and scope["path"] == "/floor/events":
            await answer(send, *await post(started[0], await read_body(receive)))
        elif scope["method"] == "GET" and scope["path"] == "/health/ready" and started:
            await answer(send, 200, b'{"status":"ok"}')
        else:
            await answer(send, 404, b'{"status":404}')

    return app


class Store(NamedTuple):
    """The log, and what appends to it: the log's writer thread or a writer process."""

    log: SQLiteEventLog
    writer: ProcessWriter | None


def open_store() -> Store:
    """The store at `FLOOR_DATABASE`, its appends as `FLOOR_WRITER` says (as the service's)."""
    log = SQLiteEventLog(os.environ["FLOOR_DATABASE"])
    if os.environ.get("FLOOR_WRITER", "process") == "thread":
        return Store(log, None)
    return Store(log, ProcessWriter(str(log.path), log.synchronous))


def close_store(store: Store) -> None:
    if store.writer is not None:
        store.writer.close()
    store.log.close()


async def _append(store: Store, body: bytes) -> tuple[int, bytes]:
    batch = decode_batch(body)
    appender = store.writer if store.writer is not None else store.log
    result = await appender.append_awaited(events_of(batch, SUBJECT), batch.expected_versions)
    appended = AppendAnswer(head=result.head, events=list(result.events), replayed=result.replayed)
    return 200 if result.replayed else 201, _ENCODE(appended)


def application() -> Any:
    """The ASGI app; the store opens at lifespan startup and closes at shutdown."""
    return plain_app(open_store, close_store, _append)
