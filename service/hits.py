"""Cached projection answers served in front of the router.

A projection answer is a function of its URL and the log position it was computed at, and
`service.views` keeps each one encoded (`Ledger.answers`). A GET whose URL was answered at
the current head needs none of Litestar's routing, parameter parsing, dependencies or
response building: this layer sends the stored bytes at once. It sits inside the request
log middleware (so a hit has its log line and `X-Request-ID`) and counts the hit in the
Prometheus request metrics under its route, like any other request. Only the projection
routes are looked up (a view pinned by `at_position` hits only while that is the head: the
key holds the position); everything else (another route, a miss, a body large enough to be
compressed, any method but GET, a store that fails to tell its head) goes on to Litestar
unchanged, where its errors become problem details. Installed only while reads are open:
with `read_token_required` every read goes through the guard.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Final

from litestar.enums import ScopeType
from litestar.status_codes import HTTP_200_OK, HTTP_304_NOT_MODIFIED
from litestar.types import ASGIApp, Receive, Scope, Send

from service.ledger import CachedAnswer, Ledger
from service.metrics import RequestMetrics
from service.views import COMPRESSED_FROM, not_modified, send_encoded

PROJECTION_PREFIXES: Final = (
    "/v1/organizations",
    "/v1/partnerships",
    "/v1/capacity",
    "/v1/timeline",
)
"""The routes whose answers `Ledger.answers` holds: no other path costs a look-up."""


def cached_answers_middleware(
    app: ASGIApp, ledger: Callable[[], Ledger | None], metrics: RequestMetrics
) -> ASGIApp:
    """Answer a GET from `ledger().answers` when its URL is cached at the head; else `app`."""

    async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] == ScopeType.HTTP
            and scope["method"] == "GET"
            and scope["path"].startswith(PROJECTION_PREFIXES)
        ):
            current = ledger()
            if current is not None and current.ready:
                started = time.perf_counter()
                hit = _hit(current, scope["path"], scope["query_string"])
                if hit is not None and len(hit.body) < COMPRESSED_FROM:
                    status = (
                        HTTP_304_NOT_MODIFIED
                        if not_modified(scope["headers"], hit.etag)
                        else HTTP_200_OK
                    )
                    await send_encoded(send, status, hit.etag, hit.body, hit.link)
                    metrics.observe(scope, hit.route, status, time.perf_counter() - started)
                    return
        await app(scope, receive, send)

    return middleware


def _hit(ledger: Ledger, path: str, query: bytes) -> CachedAnswer | None:
    """The answer cached for the URL at the head; None on a miss or if the store fails."""
    try:
        head = ledger.log.head()
    except Exception:  # noqa: BLE001 - Litestar's handlers report it, as problem details
        return None
    return ledger.answers.get((path, query, head))
