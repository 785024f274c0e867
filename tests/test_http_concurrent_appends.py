"""Concurrent `POST /v1/events` through the app: awaited appends that share group commits."""

from __future__ import annotations

import asyncio
import re
import time
import uuid
from collections.abc import Awaitable, Callable
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any, TypeVar

import httpx
import msgspec
import pytest
from http_fixtures import bearer, build_app, init_ledger, make_token, org_event
from test_awaitable import bounded

from events.errors import StoreError
from events.intake import parse_event
from events.sqlite import SQLiteEventLog
from service import metrics
from service.ledger import Ledger
from service.settings import Settings

CLIENTS = 16
BASE = "http://testserver"
T = TypeVar("T")


def _counter(metrics: str, outcome: str) -> float:
    match = re.search(
        rf'^ledger_appends_total{{outcome="{outcome}"}} (\S+)$', metrics, re.MULTILINE
    )
    return float(match.group(1)) if match else 0.0


async def _queued(log: SQLiteEventLog, count: int, within: float = 10.0) -> None:
    """Wait (bounded) until `count` appends wait on the log's writer."""
    deadline = time.monotonic() + within
    while log._writer._queued < count:
        assert time.monotonic() < deadline, f"only {log._writer._queued} of {count} queued"
        await asyncio.sleep(0.005)


async def post_held(
    client: httpx.AsyncClient,
    bodies: list[dict[str, Any]],
    auth: dict[str, str],
    hold: AbstractContextManager[Any],
    until: Callable[[], Awaitable[None]],
) -> tuple[list[httpx.Response], list[httpx.Response], list[dict[str, Any]]]:
    """Answers to every body POSTed at once while the writer is held, to each again, the stored.

    `hold` keeps the writer from committing until `until` says they all wait on it; each
    body is then posted again (a replay), and each event read back as stored.
    """
    with hold:
        posts = [
            asyncio.ensure_future(client.post("/v1/events", json=body, headers=auth))
            for body in bodies
        ]
        await until()
    answers = await asyncio.gather(*posts)
    replays = await asyncio.gather(
        *(client.post("/v1/events", json=body, headers=auth) for body in bodies)
    )
    stored = [
        (await client.get(f"/v1/events/{a.json()['events'][0]['event_id']}")).json()
        for a in answers
    ]
    return answers, replays, stored


def test_sixteen_concurrent_posts_share_commits_and_answer_as_before(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """16 POSTs at once: 201 each, gap-free positions, one commit for those that waited together.

    The writer is held busy until every request waits on it (no handler thread is parked:
    `append` is never called), then the appends commit in at most two groups. Retrying every
    batch answers 200 with the same places; the counters count each outcome once.
    """
    db = init_ledger(tmp_path / "ledger.db")
    auth = bearer(make_token(db, "alice", "append"))
    bodies = [{"events": [org_event(event_id=str(uuid.uuid4()))]} for _ in range(CLIENTS)]

    async def main() -> tuple[list[Any], list[Any], list[dict[str, Any]], str, str, int]:
        app = build_app(db, writer="thread")  # its writer thread is held below
        transport = httpx.ASGITransport(app=app)  # the app on this test's own event loop
        async with app.lifespan(), httpx.AsyncClient(transport=transport, base_url=BASE) as client:
            ledger: Ledger = app.state.ledger
            log = ledger.log
            assert isinstance(log, SQLiteEventLog)

            def parked(*_: Any) -> None:
                pytest.fail("an HTTP append waited in a thread")

            monkeypatch.setattr(log, "append", parked)
            before = (await client.get("/metrics")).text
            head = log.head()
            answers, replays, stored = await post_held(
                client,
                bodies,
                auth,
                log._writer._busy,  # what a commit in progress holds
                lambda: _queued(log, CLIENTS),
            )
            after = (await client.get("/metrics")).text
            return answers, replays, stored, before, after, head

    answers, replays, stored, before, after, head = asyncio.run(bounded(main()))
    assert [a.status_code for a in answers] == [201] * CLIENTS
    bodies_out = [a.json() for a in answers]
    positions = sorted(b["events"][0]["position"] for b in bodies_out)
    assert positions == list(range(head + 1, head + CLIENTS + 1))
    for body, answer in zip(bodies, bodies_out, strict=True):
        (committed,) = answer["events"]
        assert committed["stream"] == body["events"][0]["stream"]
        assert committed["stream_version"] == 1
        assert answer["head"] >= committed["position"]
        assert answer["replayed"] is False
    assert [r.status_code for r in replays] == [200] * CLIENTS
    assert [r.json()["events"] for r in replays] == [b["events"] for b in bodies_out]
    assert all(r.json()["replayed"] is True for r in replays)
    assert {s["metadata"]["recorded_by"] for s in stored} == {"alice"}
    assert len({s["recorded_at"] for s in stored}) <= 2  # one commit time per group
    for outcome in ("appended", "replayed"):
        assert _counter(after, outcome) - _counter(before, outcome) == CLIENTS
    reopened = SQLiteEventLog(db)
    try:
        assert reopened.head() == head + CLIENTS
        assert reopened.verify().ok
    finally:
        reopened.close()


def test_a_cancelled_request_still_commits_and_is_counted(tmp_path: Path) -> None:
    """A queued batch commits even if its request is cancelled; the outcome is counted."""
    db = init_ledger(tmp_path / "ledger.db")
    auth = bearer(make_token(db, "alice", "append"))
    body = {"events": [org_event(event_id=str(uuid.uuid4()))]}

    async def main() -> tuple[int, int, int, str, str]:
        app = build_app(db, writer="thread")  # its writer thread is held below
        transport = httpx.ASGITransport(app=app)
        async with app.lifespan(), httpx.AsyncClient(transport=transport, base_url=BASE) as client:
            log = app.state.ledger.log
            before = (await client.get("/metrics")).text
            head = log.head()
            with log._writer._busy:
                post = asyncio.ensure_future(client.post("/v1/events", json=body, headers=auth))
                await _queued(log, 1)
                post.cancel()
            deadline = time.monotonic() + 10
            after = before
            while _counter(after, "appended") == _counter(before, "appended"):
                assert time.monotonic() < deadline, "the cancelled append was never counted"
                await asyncio.sleep(0.005)
                after = (await client.get("/metrics")).text
            stored = await client.get(f"/v1/events/{body['events'][0]['event_id']}")
            return head, log.head(), stored.status_code, before, after

    head, later, stored, before, after = asyncio.run(bounded(main()))
    assert later == head + 1
    assert stored == 200
    assert _counter(after, "appended") - _counter(before, "appended") == 1


class _Unawaitable:
    """A log without `append_awaited` (as a backend that cannot be awaited would be)."""

    def __init__(self, log: SQLiteEventLog) -> None:
        self._log = log

    def __getattr__(self, name: str) -> Any:
        if name == "append_awaited":
            raise AttributeError(name)
        return getattr(self._log, name)


def test_a_log_that_cannot_be_awaited_appends_in_the_executor(tmp_path: Path) -> None:
    """`Ledger.append_awaited` on such a log: the same answers, from the loop's executor."""
    db = init_ledger(tmp_path / "ledger.db")
    inner = SQLiteEventLog(db)
    ledger = Ledger(Settings(database=str(db), snapshot_every=0), log=_Unawaitable(inner))

    async def main() -> list[Any]:
        batches = [[parse_event(msgspec.json.encode(org_event()))] for _ in range(4)]
        return await asyncio.gather(*(ledger.append_awaited(b, None) for b in batches))

    try:
        head = inner.head()
        results = asyncio.run(bounded(main()))
        positions = sorted(r.events[0].position for r in results)
        assert positions == list(range(head + 1, head + 5))
    finally:
        ledger.close()


def test_an_append_to_a_closed_log_fails_at_once_and_is_counted(tmp_path: Path) -> None:
    """Queued without a task: a closed log still fails the append, counted as an error."""
    db = init_ledger(tmp_path / "ledger.db")
    ledger = Ledger(Settings(database=str(db), snapshot_every=0, writer="thread"))
    ledger.log.close()
    errors_before = metrics.APPENDS.labels("error")._value.get()

    async def main() -> None:
        future = ledger.append_awaited([parse_event(msgspec.json.encode(org_event()))], None)
        with pytest.raises(StoreError, match="closed"):
            await future

    try:
        asyncio.run(bounded(main()))
        assert metrics.APPENDS.labels("error")._value.get() == errors_before + 1
    finally:
        ledger.follower.stop()  # its thread would otherwise try the closed log later
        ledger.tokens.close()
