"""The problems the service answers outside Litestar's handlers, and when.

Litestar answers every error of a route as problem details (`service.problems`). These are
the errors no route sees: a `Host` Litestar cannot read, an error that escaped every
handler, a request cut short by the server stopping, and a 404 of the OpenAPI plugin.
(`service.http_protocol` answers those of requests that never reach the app at all.)
"""

from __future__ import annotations

import asyncio
import contextlib
import re
from typing import Any, Final
from urllib.parse import urlsplit

from litestar.enums import ScopeType
from litestar.types import ASGIApp, Message, Receive, Scope, Send

from service.problems import PROBLEM_JSON, problem_json

BAD_HOST: Final = problem_json(
    400, "bad-request", "Bad request", "the Host header is not a host, or its port not 0-65535"
)
STOPPING: Final = problem_json(
    503,
    "service-unavailable",
    "Service unavailable",
    "the server stopped before it answered: what was asked may or may not be done"
    " (an append sent again with the same event_ids lands once)",
)
INTERNAL: Final = problem_json(
    500, "internal", "Internal server error", "the server failed to answer; the error is logged"
)
"""The 500 of an error that escaped every handler: the same answer as `problems.internal_error`."""
SCHEMA_PREFIX: Final = "/schema/"
NO_SCHEMA: Final = problem_json(
    404,
    "not-found",
    "Not found",
    "no such schema document: /schema, /schema/openapi.json or /schema/swagger",
)
_PLAIN_HOST = re.compile(rb"^[A-Za-z0-9.-]+(?::([0-9]{1,5}))?$")
_MAX_PORT = 65535


async def send_problem(send: Send, status: int, body: bytes, *, close: bool = False) -> None:
    """Send a problem (`problems.problem_json`) as the whole answer; `close` ends the connection."""
    headers = [(b"content-type", PROBLEM_JSON.encode()), (b"content-length", b"%d" % len(body))]
    if close:
        headers.append((b"connection", b"close"))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body, "more_body": False})


def host_readable(host: bytes) -> bool:
    """Whether a `Host` value reads as a URL's host and port, as Litestar reads it.

    Litestar builds a request's URL from it when it reports an error, and a port that is
    not a number from 0 to 65535 made that report itself fail: a 500 for the client's typo.
    """
    plain = _PLAIN_HOST.match(host)
    if plain is not None:
        return plain[1] is None or int(plain[1]) <= _MAX_PORT
    try:
        urlsplit("http://" + host.decode("latin-1")).port  # noqa: B018 - read to check it
    except ValueError:
        return False
    return True


async def answered_failure(error: BaseException, send: Send, log: Any, scope: Scope) -> bool:  # noqa: ANN401 - a structlog logger
    """Answer a request whose app raised `error` before it answered; True if handled.

    An error that escaped every handler (a defect outside Litestar's routes) is logged with
    its traceback and answered as a 500 problem, not the server's plain-text 500. A request
    cancelled (the server stopping past its graceful timeout) gets a 503 problem, and the
    cancellation goes on (False). Anything else goes on unanswered.
    """
    if isinstance(error, asyncio.CancelledError):
        with contextlib.suppress(Exception):  # a connection gone: nothing to tell
            await send_problem(send, 503, STOPPING, close=True)
        return False
    if not isinstance(error, Exception):
        return False
    log.error("unhandled error", method=scope.get("method", ""), path=scope["path"], exc_info=error)
    await send_problem(send, 500, INTERNAL)
    return True


def schema_not_found_problem(app: ASGIApp) -> ASGIApp:
    """A 404 under `/schema/` as a problem, not the HTML page Litestar's OpenAPI plugin sends.

    (`GET /schema/nope` answered `text/html` "Error 404", the one 404 not a problem.)
    """

    async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != ScopeType.HTTP or not scope["path"].startswith(SCHEMA_PREFIX):
            await app(scope, receive, send)
            return
        replaced = False

        async def sending(message: Message) -> None:
            nonlocal replaced
            if replaced:
                return  # the page's body, dropped
            if message["type"] == "http.response.start" and message["status"] == 404:
                kinds = [v for n, v in message.get("headers", ()) if n.lower() == b"content-type"]
                if any(kind.startswith(b"text/html") for kind in kinds):
                    replaced = True
                    await send_problem(send, 404, NO_SCHEMA)
                    return
            await send(message)

        await app(scope, receive, sending)

    return middleware
