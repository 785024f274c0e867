"""The outer ASGI layers: the canonical request log line, HEAD answered as GET, `Allow`.

One log line per request, with a `request_id` bound for every line inside it.
"""

from __future__ import annotations

import asyncio
import random
import re
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any, cast

import structlog
from litestar.enums import ScopeType
from litestar.exceptions import ClientException
from litestar.routes import HTTPRoute
from litestar.types import ASGIApp, Message, Receive, ReceiveMessage, Scope, Send

from service.edge import BAD_HOST, answered_failure, host_readable, send_problem
from service.metrics import ASKED_METHOD, watch
from service.problems import problem_json
from service.views import COMPRESSED_FROM

_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")


def _new_id() -> str:
    """128 random bits in hex: a uuid4's worth, without a system call per request."""
    return f"{random.getrandbits(128):032x}"


def request_log_middleware(
    app: ASGIApp, finished: Callable[[Scope, int, float], None] | None = None
) -> ASGIApp:
    """Bind `request_id` (an incoming valid `X-Request-ID` is kept), echo it, log one line.

    `finished(scope, status, seconds)`, if given, is called for every request once it is
    answered (the metrics count there what no route counted: `service.metrics`).
    """
    log = structlog.get_logger("request").bind()  # bound once: no proxy on every line

    async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != ScopeType.HTTP:
            await app(scope, receive, send)
            return
        request_id, readable_host = _read_headers(scope["headers"])
        structlog.contextvars.clear_contextvars()
        structlog.contextvars.bind_contextvars(request_id=request_id)
        if finished is not None:
            watch(scope)
        started = time.perf_counter()
        status = 500
        answering = False

        async def send_wrapper(message: Message) -> None:
            nonlocal status, answering
            if message["type"] == "http.response.start":
                status, answering = message["status"], True
                headers = list(message.get("headers", []))
                headers.append((b"x-request-id", request_id.encode()))
                message["headers"] = headers
            await send(message)

        try:
            if readable_host:
                await app(scope, receive, send_wrapper)
            else:
                await send_problem(send_wrapper, 400, BAD_HOST)
        except BaseException as exc:
            # a request no handler answered: a problem, not the server's plain text
            if answering or not await answered_failure(exc, send_wrapper, log, scope):
                raise
        finally:
            duration = time.perf_counter() - started
            log.info(
                "request",
                method=scope.get("method", ""),
                path=scope["path"],
                status=status,
                duration_ms=round(duration * 1000, 3),
            )
            if finished is not None:
                finished(scope, status, duration)
            structlog.contextvars.clear_contextvars()

    return middleware


def _read_headers(headers: Iterable[tuple[bytes, bytes]]) -> tuple[str, bool]:
    """The request's id (a valid `X-Request-ID`, else a new one), and whether its `Host` reads."""
    incoming, host = None, b""
    for name, value in headers:
        if name == b"x-request-id" and incoming is None:  # the first, as before
            incoming = value.decode("latin-1")
        elif name == b"host" and not host:
            host = value
    incoming = incoming or ""
    request_id = incoming if _REQUEST_ID.fullmatch(incoming) else _new_id()
    return request_id, not host or host_readable(host)


def head_as_get(app: ASGIApp) -> ASGIApp:
    """Answer HEAD as GET would, headers and status alike, without the body (RFC 9110 9.3.2).

    Every GET route thus takes HEAD, as HTTP asks of a general-purpose server.
    """

    async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != ScopeType.HTTP or scope["method"] != "HEAD":
            await app(scope, receive, send)
            return

        async def bodiless(message: Message) -> None:
            if message["type"] == "http.response.body":
                message = {**message, "body": b""}
            await send(message)

        # the metrics count it as HEAD
        as_get = cast("Scope", {**scope, "method": "GET", ASKED_METHOD: "HEAD"})
        await app(as_get, receive, bodiless)

    return middleware


def allow_header(app: ASGIApp, allowed: Mapping[str, str]) -> ASGIApp:
    """Send each route's whole `Allow` (HEAD included) on OPTIONS and 405 answers.

    `allowed` maps a route's path template to its methods; this wraps the router alone (the
    layers answering in front of it send no `Allow`). Litestar's OPTIONS answer lists
    only the methods of the controller that declared the path (`GET /v1/events` was
    missing from its `Allow`), and no answer listed HEAD, which `head_as_get` serves.
    """

    async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != ScopeType.HTTP:
            await app(scope, receive, send)
            return

        async def send_wrapper(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = message.get("headers", [])
                if any(name.lower() == b"allow" for name, _ in headers):
                    message["headers"] = _with_allow(headers, allowed.get(_template(scope)))
            await send(message)

        await app(scope, receive, send_wrapper)

    return middleware


def _template(scope: Scope) -> str:
    template: str = cast("dict[str, Any]", scope).get("path_template", "")
    return template


def _with_allow(
    headers: Iterable[tuple[bytes, bytes]], methods: str | None
) -> list[tuple[bytes, bytes]]:
    """The headers with `Allow` set to `methods` (or, for an unknown route, HEAD beside GET)."""
    kept: list[tuple[bytes, bytes]] = []
    given: set[str] = set()
    for name, value in headers:
        if name.lower() == b"allow":
            given.update(m.strip() for m in value.decode("latin-1").split(",") if m.strip())
        else:
            kept.append((name, value))
    if methods is None:
        methods = ", ".join(sorted(given | {"HEAD"} if "GET" in given else given))
    kept.append((b"allow", methods.encode("latin-1")))
    return kept


def allowed_methods(routes: Iterable[object]) -> dict[str, str]:
    """Each HTTP route's path template and its `Allow` value (HEAD wherever GET is)."""
    allowed: dict[str, str] = {}
    for route in routes:
        if isinstance(route, HTTPRoute):
            methods = set(route.methods) | ({"HEAD"} if "GET" in route.methods else set())
            allowed[route.path_format] = ", ".join(sorted(methods))
    return allowed


def accept_encoding_read(app: ASGIApp) -> ASGIApp:
    """`Accept-Encoding` as RFC 9110 12.5.3 reads it, for Litestar's compression.

    Litestar compresses when the header's text holds `gzip`: `gzip;q=0` (refused) got a
    gzip body, and `GZIP` (coding names are case-insensitive) none. The router gets the
    codings with a weight above zero, lower-cased; a header that needs no change is kept.
    """

    async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == ScopeType.HTTP:
            headers = list(scope["headers"])
            gzip = False
            for index, (name, value) in enumerate(headers):
                if name == b"accept-encoding":
                    read = _accepted(value)
                    gzip = b"gzip" in read
                    if read != value:
                        changed = [*headers[:index], (name, read), *headers[index + 1 :]]
                        scope = cast("Scope", {**scope, "headers": changed})
                    break
            if not gzip:  # a compressed answer says `Vary` itself (Litestar), this one may not
                send = _vary_if_compressible(send)
        await app(scope, receive, send)

    return middleware


_BODILESS = frozenset({204, 304})
"""Answers with no body to compress (a 304 says `Vary` by itself: `service.views`)."""


def _vary_if_compressible(send: Send) -> Send:
    """`send` adding `Vary: Accept-Encoding` to an answer sent plain that gzip would have coded.

    RFC 9110 12.5.5: the answer depends on `Accept-Encoding` whether or not this request
    got it compressed; without the header, a shared cache could hand this plain copy's
    validators (or, the other way, a compressed copy) to a client that asked otherwise.
    """

    async def sending(message: Message) -> None:
        if message["type"] == "http.response.start" and message["status"] not in _BODILESS:
            headers = list(message.get("headers", ()))
            names = {name.lower() for name, _ in headers}
            length = next((v for n, v in headers if n.lower() == b"content-length"), b"0")
            if (
                b"vary" not in names
                and b"content-encoding" not in names
                and length.isdigit()
                and int(length) >= COMPRESSED_FROM
            ):
                message = {**message, "headers": [*headers, (b"vary", b"Accept-Encoding")]}
        await send(message)

    return sending


def _accepted(value: bytes) -> bytes:
    """The codings of an `Accept-Encoding` value whose weight is above zero, lower-cased."""
    if b";" not in value and value == value.lower():
        return value  # no weights, already lower-case: the common case, untouched
    kept = []
    for item in value.decode("latin-1").split(","):
        coding, _, params = item.partition(";")
        weight = 1.0
        for param in params.split(";"):
            key, _, number = param.strip().partition("=")
            if key.lower() == "q":
                try:
                    weight = float(number)
                except ValueError:
                    weight = 0.0  # unreadable: not a coding the client clearly takes
        if coding.strip() and weight > 0:
            kept.append(coding.strip().lower())
    return ", ".join(kept).encode("latin-1")


BODY_WAIT_SECONDS = 10.0
"""The longest wait for the next part of a request's body (then a 408)."""
BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})
"""The methods whose body the service reads (the others pay nothing for the deadline)."""


class BodyTimeout(ClientException):
    """A request's body stopped arriving: 408."""

    status_code = 408


def body_deadline(app: ASGIApp) -> ASGIApp:
    """A body that stops arriving is a 408 problem, not a request held open for ever.

    Each wait for the next part of a request's body is bounded (`BODY_WAIT_SECONDS`);
    past it the wait raises `BodyTimeout`. Inside Litestar that is a 408 problem like any
    client error; on the append's fast path (no Litestar) this layer answers it. Without
    it, a client that sends half a body held its request, and a restart waited the whole
    graceful timeout for it, then the client got the server's plain-text 500.
    """

    async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != ScopeType.HTTP or scope["method"] not in BODY_METHODS:
            await app(scope, receive, send)  # a GET's body, if any, is never read
            return
        whole = False
        started = False

        async def bounded() -> ReceiveMessage:
            nonlocal whole
            if whole:  # the body is in: a wait for the client's going away is not bounded
                return await receive()
            try:
                async with asyncio.timeout(BODY_WAIT_SECONDS):
                    message = await receive()
            except TimeoutError:
                detail = f"the request body stopped arriving (nothing for {BODY_WAIT_SECONDS:g} s)"
                raise BodyTimeout(detail=detail) from None
            if message["type"] != "http.request" or not message.get("more_body", False):
                whole = True
            return message

        async def watched(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await app(scope, bounded, watched)
        except BodyTimeout as exc:
            if started:
                raise
            body = problem_json(408, "request-timeout", "Request timeout", exc.detail)
            await send_problem(send, 408, body, close=True)

    return middleware
