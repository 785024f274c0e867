"""The success path of `POST /v1/events`, taken in front of the router.

An append that is going to succeed needs nothing of Litestar's routing, dependency
resolution, hooks, request or response objects: this layer checks the token, reads the
body, decodes and validates the batch (the very functions the route uses: `service.auth`,
`service.batch`), awaits the append and sends the answer the route would send. It sits
inside the request log middleware, so the request has its log line and `X-Request-ID`, and
it counts itself in the Prometheus request metrics under the route, like any request.

Everything else goes on to Litestar's route, with the body it read replayed: a request
whose headers are not the plain case (a `Content-Type` other than exactly
`application/json`, no `Content-Length`, a `Content-Encoding`, a header given twice), no
token or one that does not grant the scope, a body over the limit or that does not decode
or validate, a batch of more than `FAST_BATCH` events, a log that cannot be awaited, a
ledger not ready. So every error answer (401, 403, 400, 413, 415, 422) is the route's, as
before. An append that fails (409, 503, 500) is not tried again: its error travels in the
request's scope (`FAILED_APPEND`) and the route, having checked the request as usual,
raises it instead of appending.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from typing import Any, Final, NamedTuple, cast

import msgspec
from litestar.enums import ScopeType
from litestar.status_codes import HTTP_200_OK, HTTP_201_CREATED
from litestar.types import ASGIApp, Receive, ReceiveMessage, Scope, Send

from events.envelope import NewEvent
from service.auth import MAX_HEADER, bearer_token, grants
from service.batch import BatchIn, decode_batch, events_of
from service.ledger import Ledger
from service.metrics import RequestMetrics
from service.middleware import BodyTimeout
from service.schemas import AppendAnswer

APPEND_PATH: Final = "/v1/events"
APPEND_SCOPE: Final = "append"
"""The scope the route's `opt` asks for (`EventsController.append`)."""
FAST_BATCH: Final = 8
"""Larger batches take the route: their answer could reach the size Litestar compresses."""
FAILED_APPEND: Final = "ledger.failed_append"
"""Scope key of the error an append tried here ended with, for the route to raise."""

STARTED: Final = "ledger.started"
"""Scope key of the moment this layer took the request, for the route's request metrics."""
_LENGTH_DIGITS: Final = 19
"""Longer `Content-Length` values go to the route (and `int()` would refuse past 4,300)."""

_ANSWER = msgspec.json.Encoder()
_WATCHED = frozenset(
    {
        b"content-type",
        b"content-length",
        b"authorization",
        b"transfer-encoding",
        b"content-encoding",
    }
)


def fast_append_middleware(
    app: ASGIApp, ledger: Callable[[], Ledger | None], metrics: RequestMetrics
) -> ASGIApp:
    """Answer a plain, valid, authorized append here; pass anything else on to `app`."""

    async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] == ScopeType.HTTP
            and scope["method"] == "POST"
            and scope["path"] == APPEND_PATH
            and not scope["query_string"]  # the route refuses parameters it does not take
        ):
            current = ledger()
            if current is not None and current.ready and current.awaitable:
                gauge = metrics.in_progress("POST", APPEND_PATH)
                gauge.inc()
                try:
                    replay = await _append(current, scope, receive, send, metrics)
                finally:
                    gauge.dec()
                if replay is None:
                    return
                receive = replay
        await app(scope, receive, send)

    return middleware


class _Plain(NamedTuple):
    """What the route would check first, found to pass: the token's subject, the body size."""

    subject: str
    size: int


def _plain(ledger: Ledger, headers: Iterable[tuple[bytes, bytes]]) -> _Plain | None:
    """The subject and body size of a plain, authorized append; None if the route decides."""
    found: dict[bytes, bytes] = {}
    for name, value in headers:
        if name in _WATCHED:
            if name in found:
                return None
            found[name] = value
    if found.get(b"content-type") != b"application/json" or b"transfer-encoding" in found:
        return None
    if b"content-encoding" in found:  # the route refuses a coded body (415)
        return None
    raw = found.get(b"authorization", b"")
    token = bearer_token(raw.decode("latin-1")) if len(raw) <= MAX_HEADER else None
    info = ledger.tokens.check(token) if token is not None else None
    if info is None or not grants(info, APPEND_SCOPE):
        return None
    length = found.get(b"content-length", b"")
    size = int(length) if len(length) <= _LENGTH_DIGITS and length.isdigit() else 0
    if not 0 < size <= ledger.settings.body_limit:
        return None
    return _Plain(info.subject, size)


def _batch(ledger: Ledger, body: bytes, subject: str) -> tuple[BatchIn, list[NewEvent]] | None:
    """The batch and its validated events; None if the route decides (too large, invalid)."""
    try:
        batch = decode_batch(body)
        if len(batch.events) > min(FAST_BATCH, ledger.settings.batch_limit):
            return None
        return batch, events_of(batch, subject)
    except Exception:  # noqa: BLE001 - the route answers it, as problem details
        return None


async def _append(
    ledger: Ledger, scope: Scope, receive: Receive, send: Send, metrics: RequestMetrics
) -> Receive | None:
    """Answer the append, or return what the route should receive (the body read so far)."""
    started = time.perf_counter()
    cast("dict[str, Any]", scope)[STARTED] = started  # the route's metrics time from here
    try:
        plain = _plain(ledger, scope["headers"])
    except Exception:  # noqa: BLE001 - a token store error, say: the route answers it (500)
        plain = None
    if plain is None:
        return receive
    messages: list[ReceiveMessage] = []
    try:
        body = await _read(receive, plain.size, messages)
    except BodyTimeout:  # answered by `service.middleware.body_deadline`; counted here
        metrics.observe(scope, APPEND_PATH, BodyTimeout.status_code, time.perf_counter() - started)
        raise
    valid = _batch(ledger, body, plain.subject) if body is not None else None
    if valid is None:
        return _replaying(messages, receive)
    batch, events = valid
    try:
        result = await ledger.append_awaited(events, batch.expected_versions)
    except Exception as exc:  # noqa: BLE001 - the route raises it (FAILED_APPEND)
        cast("dict[str, Any]", scope)[FAILED_APPEND] = exc
        return _replaying(messages, receive)
    status = HTTP_200_OK if result.replayed else HTTP_201_CREATED
    answer = _ANSWER.encode(
        AppendAnswer(head=result.head, events=list(result.events), replayed=result.replayed)
    )
    headers = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(answer))]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": answer, "more_body": False})
    metrics.observe(scope, APPEND_PATH, status, time.perf_counter() - started)
    return None


async def _read(receive: Receive, size: int, messages: list[ReceiveMessage]) -> bytes | None:
    """The whole body if it is `size` bytes; None if it is not, or the client went away.

    Every message received is kept in `messages`, for the route to receive in turn.
    """
    chunks: list[bytes] = []
    length = 0
    while True:
        message = await receive()
        messages.append(message)
        if message["type"] != "http.request":
            return None
        chunk = message.get("body", b"")
        length += len(chunk)
        if length > size:
            return None
        chunks.append(chunk)
        if not message.get("more_body", False):
            break
    if length != size:
        return None
    return chunks[0] if len(chunks) == 1 else b"".join(chunks)


def _replaying(messages: list[ReceiveMessage], receive: Receive) -> Receive:
    """`receive` that first gives back the messages already taken, in order."""
    pending = list(messages)

    async def replay() -> ReceiveMessage:
        if pending:
            return pending.pop(0)
        return await receive()

    return replay
