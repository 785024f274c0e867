"""Prometheus: Litestar's request metrics by route and status, plus the ledger's own."""

from __future__ import annotations

from collections.abc import Callable

from litestar.plugins.prometheus import PrometheusConfig, PrometheusController
from prometheus_client import Counter, Gauge

APP_NAME = "ledger"

APPENDED = Counter("ledger_events_appended", "Events appended (idempotent replays not counted)")
APPENDS = Counter("ledger_appends", "Append requests, by outcome", ["outcome"])
HEAD = Gauge("ledger_log_head", "Position of the last committed event")
PROJECTED = Gauge("ledger_projection_position", "Position the live projections have folded up to")
LAG = Gauge(
    "ledger_projection_lag", "Events committed but not yet folded into the live projections"
)


def bind(head: Callable[[], int], projected: Callable[[], int]) -> None:
    """Read the head and the projection position at scrape time from the running ledger."""
    HEAD.set_function(head)
    PROJECTED.set_function(projected)
    LAG.set_function(lambda: max(0, head() - projected()))


def prometheus_config() -> PrometheusConfig:
    """Requests and latency by route template and status; `/metrics` itself not counted."""
    return PrometheusConfig(app_name=APP_NAME, group_path=True, exclude=["/metrics"])


class MetricsController(PrometheusController):
    """`/metrics` in the Prometheus text format."""

    path = "/metrics"
    include_in_schema = False
