"""Cached projection answers served in front of the router.

A projection answer is a function of its URL and the log position it was computed at, and
`service.views` keeps each one encoded (`Ledger.answers`). A GET whose URL was answered at
the current head needs none of Litestar's routing, parameter parsing, dependencies or
response building: this layer sends the stored bytes at once. It sits inside the request
log middleware (so a hit has its log line and `X-Request-ID`) and counts the hit in the
Prometheus request metrics under its route, like any other request. Everything else (a
miss, a view pinned by `at_position`, a body large enough to be compressed, any other
method) goes on to Litestar unchanged. Installed only while reads are open: with
`read_token_required` every read goes through the guard.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Final

from litestar.enums import ScopeType
from litestar.status_codes import HTTP_200_OK, HTTP_304_NOT_MODIFIED
from litestar.types import ASGIApp, Receive, Scope, Send

from service.ledger import Ledger
from service.metrics import RequestMetrics
from service.views import not_modified, send_encoded

COMPRESSED_FROM: Final = 4096
"""Bodies from this size on are gzip-compressed (when asked for) by Litestar: not served here."""


def cached_answers_middleware(
    app: ASGIApp, ledger: Callable[[], Ledger | None], metrics: RequestMetrics
) -> ASGIApp:
    """Answer a GET from `ledger().answers` when its URL is cached at the head; else `app`."""

    async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == ScopeType.HTTP and scope["method"] == "GET":
            current = ledger()
            if current is not None and current.ready:
                started = time.perf_counter()
                key = (scope["path"], scope["query_string"], current.log.head())
                hit = current.answers.get(key)
                if hit is not None and len(hit.body) < COMPRESSED_FROM:
                    status = (
                        HTTP_304_NOT_MODIFIED
                        if not_modified(scope["headers"], hit.etag)
                        else HTTP_200_OK
                    )
                    await send_encoded(send, status, hit.etag, hit.body)
                    metrics.observe("GET", hit.route, status, time.perf_counter() - started)
                    return
        await app(scope, receive, send)

    return middleware
