"""The floor of a durable append over HTTP: `bench/http.py`'s `floor_post16` arm.

    FLOOR_DATABASE=/tmp/floor.db uvicorn --factory bench.floor_app:application

A plain ASGI app, no framework: `POST /floor/events` reads the body, decodes and validates
it exactly as the service does (`service.batch.decode_batch`, `events_of`), appends the
events durably through the ledger's own `SQLiteEventLog` (`append_awaited`: group commit,
`synchronous=FULL`) and answers the service's `AppendAnswer`. No routing, auth, request
log, metrics or projections. Whatever the service does on top of that costs more, so
`floor_post16 / bare_post16` bounds what `post16_vs_bare_post` can reach on this machine
with this store and server. `GET /health/ready` answers 200 once the store is open.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import msgspec

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from events.sqlite import SQLiteEventLog
from service.batch import decode_batch, events_of
from service.schemas import AppendAnswer

SUBJECT = "bench"
_ENCODE = msgspec.json.Encoder().encode
_JSON = [(b"content-type", b"application/json")]


async def _body(receive: Any) -> bytes:
    chunks = []
    while True:
        message = await receive()
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(chunks)


async def _answer(send: Any, status: int, body: bytes) -> None:
    headers = [*_JSON, (b"content-length", b"%d" % len(body))]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body, "more_body": False})


def application() -> Any:
    """The ASGI app; the store opens at lifespan startup and closes at shutdown."""
    store: list[SQLiteEventLog] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    store.append(SQLiteEventLog(os.environ["FLOOR_DATABASE"]))
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    for log in store:
                        log.close()
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        if scope["type"] != "http":
            return
        if scope["method"] == "POST" and scope["path"] == "/floor/events":
            batch = decode_batch(await _body(receive))
            result = await store[0].append_awaited(
                events_of(batch, SUBJECT), batch.expected_versions
            )
            answer = AppendAnswer(
                head=result.head, events=list(result.events), replayed=result.replayed
            )
            await _answer(send, 200 if result.replayed else 201, _ENCODE(answer))
        elif scope["method"] == "GET" and scope["path"] == "/health/ready" and store:
            await _answer(send, 200, b'{"status":"ok"}')
        else:
            await _answer(send, 404, b'{"status":404}')

    return app
