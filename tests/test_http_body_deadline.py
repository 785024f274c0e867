"""A request body that stops arriving is a 408 problem, on both append paths.

The app is called as a server calls it, with a `receive` that gives half the body and
then nothing: the client that stalls.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest
from http_fixtures import build_app, init_ledger, make_token, org_event

from service import middleware

WAIT = 0.2


@pytest.fixture
def ledger_db(tmp_path: Path) -> Path:
    return init_ledger(tmp_path / "ledger.db")


def stalled_post(ledger_db: Path, content_type: bytes) -> tuple[int, dict[str, Any], float, str]:
    """POST half an append's body, then stall.

    Gives the status, the problem, the seconds taken and the metrics scraped after it.
    """
    app = build_app(ledger_db)
    token = make_token(ledger_db, "stalled", "append")
    body = json.dumps({"events": [org_event()]}).encode()
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/v1/events",
        "raw_path": b"/v1/events",
        "query_string": b"",
        "root_path": "",
        "headers": [
            (b"host", b"127.0.0.1"),
            (b"content-type", content_type),
            (b"content-length", str(len(body)).encode()),
            (b"authorization", f"Bearer {token}".encode()),
        ],
        "client": ("127.0.0.1", 1),
        "server": ("127.0.0.1", 8000),
        "state": {},
    }
    sent: list[dict[str, Any]] = []
    scraped: list[bytes] = []

    async def scrape() -> None:
        metrics_scope = {**scope, "method": "GET", "path": "/metrics", "raw_path": b"/metrics"}

        async def nothing() -> dict[str, Any]:
            return {"type": "http.request", "body": b"", "more_body": False}

        async def keep(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.body":
                scraped.append(message.get("body", b""))

        await app(metrics_scope, nothing, keep)  # type: ignore[arg-type]

    async def run() -> float:
        parts = [{"type": "http.request", "body": body[:20], "more_body": True}]

        async def receive() -> dict[str, Any]:
            if parts:
                return parts.pop(0)
            await asyncio.sleep(60)  # the client stalls (bounded: the test's own deadline)
            return {"type": "http.disconnect"}

        async def send(message: dict[str, Any]) -> None:
            sent.append(message)

        async with app.lifespan():
            loop = asyncio.get_running_loop()
            started = loop.time()
            await asyncio.wait_for(app(scope, receive, send), timeout=30)  # type: ignore[arg-type]
            seconds = loop.time() - started
            await scrape()
            return seconds

    seconds = asyncio.run(run())
    start = next(m for m in sent if m["type"] == "http.response.start")
    headers = dict(start["headers"])
    assert headers[b"content-type"].startswith(b"application/problem+json")
    problem = json.loads(
        b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    )
    return start["status"], problem, seconds, b"".join(scraped).decode()


@pytest.mark.parametrize(
    "content_type",
    [b"application/json", b"application/json; charset=utf-8"],
    ids=["fast-path", "litestar-route"],
)
def test_a_stalled_body_is_a_408_problem_and_stores_nothing(
    ledger_db: Path, monkeypatch: pytest.MonkeyPatch, content_type: bytes
) -> None:
    monkeypatch.setattr(middleware, "BODY_WAIT_SECONDS", WAIT)
    status, problem, seconds, metrics = stalled_post(ledger_db, content_type)
    assert status == 408
    assert problem["status"] == 408
    assert problem["type"].endswith("/request-timeout")
    assert "stopped arriving" in problem["detail"]
    assert seconds < 10  # the wait, not the server's graceful timeout
    # counted under its route, not as a request no route took
    assert 'path="/v1/events",status_code="408"' in metrics
    assert 'path="(no route)",status_code="408"' not in metrics
    from events.sqlite import SQLiteEventLog  # noqa: PLC0415 - the store, read after the app

    log = SQLiteEventLog(ledger_db)
    try:
        assert log.head() == 10  # the seed, nothing of the stalled batch
    finally:
        log.close()
