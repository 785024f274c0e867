"""The append fast lane when something fails before or during the append: the route answers.

A failure in the fast lane's own checks (the token store, say) must not escape as a bare
server error: the route answers it as problem details, with the request id. An append the
fast lane tried and that failed is answered by the route, and the request's duration in
the metrics is timed from when the fast lane took it, not from when the route did.
"""

from __future__ import annotations

import asyncio
import sqlite3
from typing import Any

from http_fixtures import assert_problem, org_event
from test_http_fastpost import fresh, post  # noqa: F401 - `fresh` is a fixture
from test_http_ops import scrape

from events.errors import StoreError
from service.fastpost import APPEND_PATH

SLOW = 0.3


def duration_sum(samples: dict[Any, float], status: int) -> float:
    """Seconds summed in the request-duration histogram of the append route at `status`."""
    labels = {"app_name": "ledger", "method": "POST", "path": APPEND_PATH}
    labels["status_code"] = str(status)
    return samples.get(("litestar_request_duration_seconds_sum", frozenset(labels.items())), 0.0)


def test_a_token_store_error_is_the_routes_problem(fresh, monkeypatch) -> None:  # noqa: F811
    client, auth, _ = fresh
    tokens = client.app.state.ledger.tokens

    def broken(_token: str) -> None:
        msg = "disk I/O error"
        raise sqlite3.OperationalError(msg)

    monkeypatch.setattr(tokens, "check", broken)
    response = post(client, {"events": [org_event()]}, auth)
    assert response.status_code >= 500
    assert_problem(response, response.status_code)
    assert response.headers.get("x-request-id")


def test_a_failed_append_is_timed_from_the_fast_lane(fresh, monkeypatch) -> None:  # noqa: F811
    client, auth, _ = fresh

    async def slow_failure(*_args: Any) -> Any:
        await asyncio.sleep(SLOW)
        msg = "disk I/O error"
        raise StoreError(msg)

    monkeypatch.setattr(client.app.state.ledger, "append_awaited", slow_failure)
    before = duration_sum(scrape(client), 503)
    assert_problem(post(client, {"events": [org_event()]}, auth), 503)
    assert duration_sum(scrape(client), 503) - before >= SLOW
