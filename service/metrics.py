"""Prometheus: Litestar's request metrics by route and status, plus the ledger's own."""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Any, Final, cast

from litestar.enums import ScopeType
from litestar.plugins.prometheus import (
    PrometheusConfig,
    PrometheusController,
    PrometheusMiddleware,
)
from litestar.types import ASGIApp, Message, Receive, Scope, Send
from prometheus_client import Counter, Gauge, Histogram

APP_NAME = "ledger"

APPENDED = Counter("ledger_events_appended", "Events appended (idempotent replays not counted)")
APPENDS = Counter("ledger_appends", "Append requests, by outcome", ["outcome"])
HEAD = Gauge("ledger_log_head", "Position of the last committed event")
PROJECTED = Gauge("ledger_projection_position", "Position the live projections have folded up to")
LAG = Gauge(
    "ledger_projection_lag", "Events committed but not yet folded into the live projections"
)


_bound: list[object] = []  # the ledger the gauges read (one per process, the last opened)


def bind(owner: object, head: Callable[[], int], projected: Callable[[], int]) -> None:
    """Read the head and the projection position at scrape time from the running ledger."""
    _bound[:] = [owner]
    HEAD.set_function(head)
    PROJECTED.set_function(projected)
    LAG.set_function(lambda: max(0, head() - projected()))


def unbind(owner: object) -> None:
    """The ledger `owner` is closed: its gauges read NaN, not a closed log (a 503 scrape)."""
    if _bound == [owner]:
        _bound.clear()
        for gauge in (HEAD, PROJECTED, LAG):
            gauge.set_function(lambda: math.nan)


METRICS_PATH: Final = "/metrics"
STANDARD_METHODS: Final = frozenset(
    {"GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH"}
)
"""RFC 9110's methods and PATCH: the method labels an unrouted request may have."""
UNROUTED: Final = "(no route)"
"""The `path` label of a request no route took (404, 405): one series, whatever the path."""
OBSERVED: Final = "ledger.observed"
"""Scope key: a one-item list, set true once a layer counted the request (`unrouted_counter`)."""
ASKED_METHOD: Final = "ledger.method"
"""Scope key: the method the client sent, where an outer layer changed it (HEAD as GET)."""

Series = tuple[Counter, Histogram, Counter | None]
"""The request counter, the latency histogram and (5xx only) the error counter of one label set."""


class RequestMetrics(PrometheusMiddleware):
    """Litestar's request metrics (same names, labels and buckets), each series looked up once.

    Litestar's own middleware builds a `Request`, a URL and four label sets per request; here
    the labelled series of a (method, route template, status) are found once and kept.
    """

    def __init__(self, app: ASGIApp, config: PrometheusConfig) -> None:
        super().__init__(app, config)
        self._series: dict[tuple[str, str, int], Series] = {}
        self._in_progress: dict[tuple[str, str], Gauge] = {}

    def _labels(self, method: str, path: str, status: int) -> dict[str, str | int | float]:
        return {"method": method, "path": path, "status_code": status, "app_name": APP_NAME}

    def in_progress(self, method: str, path: str) -> Gauge:
        """The requests-in-progress gauge of a route template, found once."""
        gauge = self._in_progress.get((method, path))
        if gauge is None:
            labels = self._labels(method, path, 200)  # as Litestar labels it: status 200
            gauge = self.requests_in_progress(labels).labels(*labels.values())
            self._in_progress[method, path] = gauge
        return gauge

    def _counted(self, method: str, path: str, status: int) -> Series:
        series = self._series.get((method, path, status))
        if series is None:
            labels = self._labels(method, path, status)
            values = labels.values()
            errors = self.requests_error_count(labels).labels(*values) if status >= 500 else None
            series = (
                self.request_count(labels).labels(*values),
                self.request_time(labels).labels(*values),
                errors,
            )
            self._series[method, path, status] = series
        return series

    def observe(
        self, scope: Scope, path: str, status: int, duration: float, method: str | None = None
    ) -> None:
        """Count one finished request of a route template, with its status and duration."""
        count, latency, errors = self._counted(method or asked_method(scope), path, status)
        observed: list[bool] | None = scope.get(OBSERVED)  # type: ignore[assignment]
        if observed is not None:
            observed[0] = True
        if errors is not None:
            errors.inc()
        count.inc()
        latency.observe(duration)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Count the request, its status and its duration (to the last body message)."""
        method = asked_method(scope) if scope["type"] == ScopeType.HTTP else scope["type"]
        path: str = scope["path_template"]
        # A request the append fast lane handed on was taken earlier (`service.fastpost`).
        started: float = scope.get("ledger.started") or time.perf_counter()  # type: ignore[assignment]
        status, duration = 200, 0.0

        async def measured_send(message: Message) -> None:
            nonlocal status, duration
            if message["type"] == "http.response.start":
                status = message["status"]
            elif message["type"] == "http.response.body":
                duration = time.perf_counter() - started
            await send(message)

        in_progress = self.in_progress(method, path)
        in_progress.inc()
        try:
            await self.app(scope, receive, measured_send)
        finally:
            in_progress.dec()
            self.observe(scope, path, status, duration)


def asked_method(scope: Scope) -> str:
    """The request's method as the client sent it (HEAD, where it is served as GET)."""
    fields = cast("dict[str, Any]", scope)
    method: str = fields.get(ASKED_METHOD) or fields["method"]
    return method


def unrouted_counter(metrics: RequestMetrics) -> Callable[[Scope, int, float], None]:
    """What the outermost layer calls for each finished request (`service.middleware`).

    It counts the requests no layer counted, those no route took (404, 405), as
    `UNROUTED`: Litestar's middleware runs only on a matched route, so without this a scan
    of unknown paths, or a method a route does not take, would never show in the metrics.
    The layer puts an `OBSERVED` flag in the scope first (`watch`). `/metrics` itself is
    not counted, and a method outside HTTP's own counts as `OTHER`: whatever a scan sends,
    the label set stays bounded.
    """

    def finished(scope: Scope, status: int, duration: float) -> None:
        observed: list[bool] | None = scope.get(OBSERVED)  # type: ignore[assignment]
        if observed is None or observed[0] or scope["path"] == METRICS_PATH:
            return
        method = asked_method(scope)
        method = method if method in STANDARD_METHODS else "OTHER"
        metrics.observe(scope, UNROUTED, status, duration, method)

    return finished


def watch(scope: Scope) -> None:
    """Mark a request as not counted yet (`RequestMetrics.observe` sets the flag)."""
    cast("dict[str, Any]", scope)[OBSERVED] = [False]


def prometheus_config() -> PrometheusConfig:
    """Requests and latency by route template and status; `/metrics` itself not counted."""
    return PrometheusConfig(
        app_name=APP_NAME,
        group_path=True,
        exclude=[f"^{METRICS_PATH}$"],  # a pattern searched in the path: anchored
        middleware_class=RequestMetrics,
    )


class MetricsController(PrometheusController):
    """`/metrics` in the Prometheus text format."""

    path = METRICS_PATH
    include_in_schema = False
