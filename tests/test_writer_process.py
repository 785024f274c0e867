"""The writer process: the service's appends committed by a child process, same guarantees.

The whole conformance suite runs against a log whose appends go through `ProcessWriter`;
then what only a second process can do: a child killed while appends wait for it, a
service gone while its child runs, a log that cannot be opened, a shutdown with appends in
flight.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import os
import re
import signal
import subprocess
import sys
import textwrap
import threading
import time
import uuid
from collections.abc import Iterator, Mapping, Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import msgspec
import pytest
import structlog
from conformance import EventLogConformance, Opener, correction, event
from http_fixtures import (
    assert_problem,
    bearer,
    build_app,
    init_ledger,
    make_token,
    org_event,
    serving,
)
from processes import children_of, ended, reaped, state
from test_awaitable import bounded
from test_http_concurrent_appends import post_held

from events.envelope import AppendResult, NewEvent
from events.errors import InvalidEvent, StoreError, VersionConflict
from events.log import EventLog
from events.payloads import OrganizationRegistered
from events.prepared import prepare_batch
from events.seed import seed_events
from events.sqlite import SQLiteEventLog
from events.writer_process import ProcessWriter
from events.writer_wire import HEADER, ask, error_of, fault_of, frame, read_ask

WAIT_SECONDS = 30.0
BASE = "http://testserver"


class ProcessLog(SQLiteEventLog):
    """A SQLite log whose appends go through a writer process, awaited on a loop of its own."""

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self._thread.start()
        self.writer = ProcessWriter(str(path), self.synchronous)

    def append(
        self, events: Sequence[NewEvent], expected_versions: Mapping[str, int] | None = None
    ) -> AppendResult:
        future = asyncio.run_coroutine_threadsafe(
            self.writer.append_awaited(events, expected_versions), self.loop
        )
        return future.result(WAIT_SECONDS)

    def close(self) -> None:
        self.writer.close()
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(WAIT_SECONDS)
        self.loop.close()
        super().close()


class TestProcessWriterConformance(EventLogConformance):
    """Appends through the writer process keep every guarantee of the log."""

    def make_log(self, tmp_path: Path) -> EventLog:
        return ProcessLog(tmp_path / "conformance.db")

    def opener(self, log: EventLog) -> Opener:
        assert isinstance(log, SQLiteEventLog)
        return functools.partial(SQLiteEventLog, log.path)


def test_a_batch_crosses_to_the_child_unchanged() -> None:
    """Every seed event decodes equal, with the same canonical bytes and hashes."""
    events = seed_events()
    number, batch, expected = read_ask(frame(ask(7, events, {"a-stream": 2}))[HEADER.size :])
    assert (number, expected) == (7, {"a-stream": 2})
    assert batch == events
    assert [type(e.data) for e in batch] == [type(e.data) for e in events]
    assert [p.encoded for p in prepare_batch(batch).parts] == [  # type: ignore[attr-defined]
        p.encoded
        for p in prepare_batch(events).parts  # type: ignore[attr-defined]
    ]


def test_an_error_crosses_with_its_class_and_fields() -> None:
    crossed = error_of(fault_of(VersionConflict("orders", 3, 5)))
    assert isinstance(crossed, VersionConflict)
    assert (crossed.stream, crossed.expected, crossed.actual) == ("orders", 3, 5)
    assert str(crossed) == str(VersionConflict("orders", 3, 5))
    other = error_of(fault_of(RuntimeError("boom")))
    assert isinstance(other, StoreError)
    assert "RuntimeError: boom" in str(other)


def _stopped(pid: int) -> None:
    """SIGSTOP the child and wait (bounded) until it is stopped: it reads nothing more."""
    os.kill(pid, signal.SIGSTOP)
    deadline = time.monotonic() + WAIT_SECONDS
    while state(pid) != "T":
        assert time.monotonic() < deadline, "the child did not stop"
        time.sleep(0.005)


def _gone(pid: int) -> bool:
    return ended(pid, WAIT_SECONDS)


def test_a_killed_child_fails_what_waits_and_a_new_one_takes_over(db_path: Path) -> None:
    """Appends waiting on a killed child fail (outcome unknown); a retry lands exactly once."""
    log = ProcessLog(db_path)
    try:
        log.append([event("warm-up")])
        child = log.writer._child
        assert child is not None
        pid = child.process.pid
        _stopped(pid)  # it holds the batches, answers none
        batches = [
            [event("killed", event_id=f"00000000-0000-4000-8000-{n:012d}")] for n in range(8)
        ]
        waiting = [
            asyncio.run_coroutine_threadsafe(log.writer.append_awaited(b), log.loop)
            for b in batches
        ]
        time.sleep(0.2)
        assert not any(w.done() for w in waiting)
        with structlog.testing.capture_logs() as logged:
            os.kill(pid, signal.SIGKILL)
            for waited in waiting:
                with pytest.raises(StoreError, match="may or may not be stored"):
                    waited.result(WAIT_SECONDS)
            assert reaped(pid, WAIT_SECONDS), "the killed child was left a zombie"
            deadline = time.monotonic() + WAIT_SECONDS
            results: list[AppendResult] = []
            while not results:  # a new child is starting; the retries meet it
                refused = ""
                try:
                    results = [log.append(b) for b in batches]
                except StoreError as exc:
                    refused = str(exc)
                assert not refused or "starting again" in refused
                assert time.monotonic() < deadline
                time.sleep(0.05 if refused else 0)
        (lost,) = [line for line in logged if line["event"] == "writer process lost"]
        assert (lost["pid"], lost["failed"], lost["log_level"]) == (pid, 8, "warning")
        (started,) = [line for line in logged if line["event"] == "writer process started again"]
        assert started["pid"] == log.writer._child.process.pid  # type: ignore[union-attr]
        assert log.writer._child is not None
        assert log.writer._child.process.pid != pid
        positions = [r.events[0].position for r in results]
        assert positions == list(range(2, 10))
        assert log.head() == 9
        assert log.verify().ok
    finally:
        log.close()


_SERVICE = textwrap.dedent(
    """
    import asyncio, os, sys
    from events.writer_process import ProcessWriter
    from events.seed import seed_events

    async def main():
        writer = ProcessWriter(sys.argv[1], "FULL")
        result = await writer.append_awaited(seed_events()[:3])
        print(writer._child.process.pid, result.head, flush=True)
        os.kill(os.getpid(), 9)

    asyncio.run(main())
    """
)


def test_the_child_ends_when_the_service_is_killed(db_path: Path) -> None:
    """A service killed outright leaves no writer process behind, and its append is stored."""
    SQLiteEventLog(db_path).close()
    run = subprocess.run(
        [sys.executable, "-c", _SERVICE, str(db_path)],
        capture_output=True,
        text=True,
        timeout=WAIT_SECONDS * 2,
        check=False,
    )
    assert run.returncode == -signal.SIGKILL, run.stderr
    pid, head = (int(word) for word in run.stdout.split())
    assert head == 3
    assert _gone(pid)
    log = SQLiteEventLog(db_path)
    try:
        assert log.head() == 3
        assert log.verify().ok
    finally:
        log.close()


def test_a_log_that_cannot_be_opened_is_a_store_error(tmp_path: Path) -> None:
    before = children_of(os.getpid())
    (tmp_path / "not-a-ledger.db").write_bytes(b"this is not a database at all" * 200)
    with pytest.raises(StoreError, match="not a ledger database"):
        ProcessWriter(str(tmp_path / "not-a-ledger.db"), "FULL")
    assert children_of(os.getpid()) <= before


def test_close_answers_the_appends_in_flight(db_path: Path) -> None:
    """`close` while appends wait: each is committed and answered before the child ends."""
    log = ProcessLog(db_path)
    try:
        pid = log.writer._child.process.pid  # type: ignore[union-attr]

        async def many() -> list[asyncio.Future[AppendResult]]:
            return [log.writer.append_future([event(f"closing-{n}")]) for n in range(50)]

        waiting = asyncio.run_coroutine_threadsafe(many(), log.loop).result(WAIT_SECONDS)
        log.writer.close()
        assert ended(pid, 0)  # `close` waited for it
        results = [
            asyncio.run_coroutine_threadsafe(_await(w), log.loop).result(WAIT_SECONDS)
            for w in waiting
        ]
        assert sorted(r.events[0].position for r in results) == list(range(1, 51))
        with pytest.raises(StoreError, match="closed"):
            log.append([event("after")])
    finally:
        log.close()
    again = SQLiteEventLog(db_path)
    try:
        assert again.head() == 50
    finally:
        again.close()


async def _await(future: asyncio.Future[AppendResult]) -> AppendResult:
    return await future


def test_a_replacement_crosses_with_its_numbers_as_they_were() -> None:
    """A correction's untyped `replacement`: `Decimal("2.50")` stays a Decimal, not text."""
    corrected = correction(
        "00000000-0000-4000-8000-000000000001",
        {"price": {"amount": Decimal("2.50"), "currency": "EUR"}, "name": "2.50", "n": [1, 2]},
    )
    _, (crossed,), _ = read_ask(frame(ask(1, [corrected], None))[HEADER.size :])
    assert crossed == corrected
    amount = crossed.data.replacement["price"]["amount"]  # type: ignore[union-attr]
    assert type(amount) is Decimal
    assert str(amount) == "2.50"
    assert crossed.data.replacement["name"] == "2.50"  # type: ignore[union-attr]


async def _sent(writer: ProcessWriter, count: int, within: float = 10.0) -> None:
    """Wait (bounded) until `count` appends are written to the (stopped) child, none held back."""
    deadline = time.monotonic() + within
    while len(writer._pending) < count or writer._asks or writer._child.unsent:  # type: ignore[union-attr]
        assert time.monotonic() < deadline, f"only {len(writer._pending)} of {count} sent"
        await asyncio.sleep(0.005)


@contextlib.contextmanager
def _held(pid: int) -> Iterator[None]:
    """The child stopped meanwhile: it reads and commits nothing until the block ends."""
    _stopped(pid)
    try:
        yield
    finally:
        os.kill(pid, signal.SIGCONT)


def _counter(text: str, outcome: str) -> float:
    match = re.search(rf'^ledger_appends_total{{outcome="{outcome}"}} (\S+)$', text, re.MULTILINE)
    return float(match.group(1)) if match else 0.0


def test_sixteen_concurrent_posts_share_a_commit_of_the_writer_process(tmp_path: Path) -> None:
    """16 POSTs while the child is stopped: one or two groups once it runs, answers as ever."""
    db = init_ledger(tmp_path / "ledger.db")
    auth = bearer(make_token(db, "alice", "append"))
    bodies = [{"events": [org_event(event_id=str(uuid.uuid4()))]} for _ in range(16)]

    async def main() -> tuple[list[Any], list[Any], list[Any], str, str, int]:
        app = build_app(db, writer="process")
        transport = httpx.ASGITransport(app=app)
        async with app.lifespan(), httpx.AsyncClient(transport=transport, base_url=BASE) as client:
            writer = app.state.ledger._writer
            assert isinstance(writer, ProcessWriter)
            pid = writer._child.process.pid  # type: ignore[union-attr]
            before = (await client.get("/metrics")).text
            head = app.state.ledger.log.head()
            answers, replays, stored = await post_held(
                client, bodies, auth, _held(pid), lambda: _sent(writer, len(bodies))
            )
            after = (await client.get("/metrics")).text
            return answers, replays, stored, before, after, head

    answers, replays, stored, before, after, head = asyncio.run(bounded(main()))
    assert [a.status_code for a in answers] == [201] * len(bodies)
    positions = sorted(a.json()["events"][0]["position"] for a in answers)
    assert positions == list(range(head + 1, head + len(bodies) + 1))
    assert [r.status_code for r in replays] == [200] * len(bodies)
    assert [r.json()["events"] for r in replays] == [a.json()["events"] for a in answers]
    assert {s["metadata"]["recorded_by"] for s in stored} == {"alice"}
    assert len({s["recorded_at"] for s in stored}) <= 2  # one commit time per group
    for outcome in ("appended", "replayed"):
        assert _counter(after, outcome) - _counter(before, outcome) == len(bodies)


def test_a_cancelled_request_still_commits_through_the_child(tmp_path: Path) -> None:
    """A batch sent to the child commits even if its request is cancelled, and is counted."""
    db = init_ledger(tmp_path / "ledger.db")
    auth = bearer(make_token(db, "alice", "append"))
    body = {"events": [org_event(event_id=str(uuid.uuid4()))]}

    async def main() -> tuple[int, int, int, float]:
        app = build_app(db, writer="process")
        transport = httpx.ASGITransport(app=app)
        async with app.lifespan(), httpx.AsyncClient(transport=transport, base_url=BASE) as client:
            writer = app.state.ledger._writer
            pid = writer._child.process.pid
            before = _counter((await client.get("/metrics")).text, "appended")
            head = app.state.ledger.log.head()
            _stopped(pid)
            try:
                post = asyncio.ensure_future(client.post("/v1/events", json=body, headers=auth))
                await _sent(writer, 1)
                post.cancel()
            finally:
                os.kill(pid, signal.SIGCONT)
            deadline = time.monotonic() + 10
            counted = before
            while counted == before:
                assert time.monotonic() < deadline, "the cancelled append was never counted"
                await asyncio.sleep(0.005)
                counted = _counter((await client.get("/metrics")).text, "appended")
            stored = await client.get(f"/v1/events/{body['events'][0]['event_id']}")
            return head, app.state.ledger.log.head(), stored.status_code, counted - before

    head, later, stored, counted = asyncio.run(bounded(main()))
    assert (later, stored, counted) == (head + 1, 200, 1)


def test_a_killed_child_is_a_503_until_the_service_takes_appends_again(tmp_path: Path) -> None:
    """A child killed under an append: 503, not ready until a new one is up, then stored once.

    The append in flight is answered 503 with its outcome unknown (the child never read it);
    `/health/ready` says 503 until the new child has the log open; the retry lands once.
    """
    db = init_ledger(tmp_path / "ledger.db")
    auth = bearer(make_token(db, "alice", "append"))
    body = {"events": [org_event(event_id=str(uuid.uuid4()))]}
    with serving(db, writer="process") as client:
        writer = client.app.state.ledger._writer
        pid = writer._child.process.pid
        head = client.app.state.ledger.log.head()
        _stopped(pid)
        answers: list[httpx.Response] = []
        post = threading.Thread(
            target=lambda: answers.append(client.post("/v1/events", json=body, headers=auth))
        )
        post.start()
        deadline = time.monotonic() + WAIT_SECONDS
        while not writer._pending:
            assert time.monotonic() < deadline, "the append never reached the child"
            time.sleep(0.005)
        os.kill(pid, signal.SIGKILL)
        post.join(WAIT_SECONDS)
        problem = assert_problem(answers[0], 503)
        assert "may or may not be stored" in problem["detail"]
        ready = client.get("/health/ready")
        while ready.status_code != 200:
            assert_problem(ready, 503)
            assert time.monotonic() < deadline, "no new writer process"
            time.sleep(0.02)
            ready = client.get("/health/ready")
        assert writer._child.process.pid != pid
        retried = client.post("/v1/events", json=body, headers=auth)
        assert retried.status_code == 201, retried.text
        assert retried.json()["events"][0]["position"] == head + 1
        assert client.post("/v1/events", json=body, headers=auth).status_code == 200
    assert _gone(pid)


def test_close_with_more_to_send_than_the_socket_holds_answers_everything(db_path: Path) -> None:
    """Megabytes of asks unsent when `close` comes: all sent, committed and answered.

    The loop keeps reading answers while it sends (a blocking send there deadlocked with
    the child writing its answers, until both timed out and the child was killed).
    """
    log = ProcessLog(db_path)
    try:
        child = log.writer._child
        assert child is not None
        _stopped(child.process.pid)
        batches = [[event(f"backlog-{n}") for _ in range(50)] for n in range(300)]

        async def send_all() -> list[asyncio.Future[AppendResult]]:
            futures = [log.writer.append_future(b) for b in batches]
            await asyncio.sleep(0.2)  # the loop's turn: sent until the socket is full
            return futures

        waiting = asyncio.run_coroutine_threadsafe(send_all(), log.loop).result(WAIT_SECONDS)
        assert len(child.unsent) > 1 << 20, "the backlog fits in the socket: no test"
        os.kill(child.process.pid, signal.SIGCONT)
        log.writer.close()
        assert child.process.returncode == 0
        results = [
            asyncio.run_coroutine_threadsafe(_await(w), log.loop).result(WAIT_SECONDS)
            for w in waiting
        ]
        first = [r.events[0].position for r in results]
        assert first == [1 + 50 * n for n in range(300)]  # committed in the order asked
        assert log.head() == 300 * 50
    finally:
        log.close()


def test_a_second_loop_takes_over_from_a_closed_one(db_path: Path) -> None:
    """An append left on a loop that closed is still sent, in order; the next loop's lands."""
    SQLiteEventLog(db_path).close()
    writer = ProcessWriter(str(db_path), "FULL")
    try:
        first = asyncio.new_event_loop()

        def leave() -> None:
            writer.append_future([event("left")])  # never awaited: its loop closes first,
            first.stop()  # before the turn that would have sent it

        first.call_soon(leave)
        first.run_forever()
        first.close()
        result = asyncio.run(bounded(writer.append_awaited([event("taken-over")])))
        assert result.events[0].position == 2  # after the one left behind
    finally:
        writer.close()


def _is_writer(pid: int) -> bool:
    try:
        return b"events.writer_child" in Path(f"/proc/{pid}/cmdline").read_bytes()
    except FileNotFoundError:
        return False


def test_close_while_a_new_child_starts_leaves_no_process(db_path: Path) -> None:
    """`close` just after a child was lost: the child being started is stopped, none is left."""
    log = ProcessLog(db_path)
    try:
        log.append([event("warm-up")])
        before = children_of(os.getpid())
        old = log.writer._child.process.pid  # type: ignore[union-attr]
        os.kill(old, signal.SIGKILL)
        deadline = time.monotonic() + WAIT_SECONDS
        while log.writer._child is not None:  # lost: a new one is starting
            assert time.monotonic() < deadline
            time.sleep(0.001)
        log.writer.close()  # waits for the start under way, and stops what it started
        assert log.writer._child is None
        assert not log.writer.alive
        writers = [pid for pid in children_of(os.getpid()) | before if _is_writer(pid)]
        assert [pid for pid in writers if not ended(pid, 0)] == []
        restarting = log.writer._restarting
        assert restarting is None or not restarting.is_alive()
    finally:
        log.close()


def test_a_batch_that_cannot_cross_is_invalid_not_a_store_error(db_path: Path) -> None:
    """What no writer could store is the caller's `InvalidEvent` (a `StoreError` is retried)."""
    log = ProcessLog(db_path)
    try:
        huge = msgspec.structs.replace(event("huge"), sequence=2**64)
        with pytest.raises(InvalidEvent, match="cannot be encoded"):
            log.append([huge])
        unchecked = msgspec.structs.replace(
            event("unchecked"), data=OrganizationRegistered(id="Not An Id!", name="X", country="KR")
        )
        with pytest.raises(InvalidEvent, match="matching regex") as caught:
            log.append([unchecked])
        assert caught.value.path == "$[0].data.id"  # as the writer thread names it
        assert log.head() == 0
    finally:
        log.close()


def test_close_on_the_loops_own_thread_answers_everything(db_path: Path) -> None:
    """`close` called on the loop (an ASGI lifespan's shutdown may): no wait on itself.

    It used to wait for a callback of the very loop it blocked: a minute, then the child
    was killed, and the `bench/floor_app.py` server took a minute to stop.
    """
    SQLiteEventLog(db_path).close()
    writer = ProcessWriter(str(db_path), "FULL")
    pid = writer._child.process.pid  # type: ignore[union-attr]

    async def main() -> tuple[list[AppendResult], float]:
        futures = [  # megabytes: more than the socket holds, sent while answers come back
            writer.append_future([event(f"on-loop-{n}") for _ in range(50)]) for n in range(300)
        ]
        started = time.monotonic()
        writer.close()  # on this loop's thread, before the loop turned to send them
        took = time.monotonic() - started
        return [f.result() for f in futures], took

    results, took = asyncio.run(main())
    assert [r.events[0].position for r in results] == [1 + 50 * n for n in range(300)]
    assert took < WAIT_SECONDS  # not the minute of waiting on itself
    assert reaped(pid, 0)


def test_close_with_the_loop_stopped_answers_its_futures(db_path: Path) -> None:
    """A loop stopped (not closed) with an append unanswered: `close` completes it, stored."""
    SQLiteEventLog(db_path).close()
    writer = ProcessWriter(str(db_path), "FULL")
    loop = asyncio.new_event_loop()
    try:

        async def leave() -> asyncio.Future[AppendResult]:
            return writer.append_future([event("left-on-a-stopped-loop")])

        waiting = loop.run_until_complete(leave())
        writer.close()
        assert waiting.done()
        assert waiting.result().events[0].position == 1
    finally:
        loop.close()


@pytest.mark.parametrize("watched", [True, False], ids=["after-appends", "before-any"])
def test_a_child_that_does_not_start_again_is_tried_again_without_appends(
    db_path: Path, monkeypatch: pytest.MonkeyPatch, watched: bool
) -> None:
    """Readiness needs no append to come back: a failed restart is retried on its own.

    Before any append no loop watches the child: readiness (`alive`) notices its end.
    """
    from events import writer_process  # noqa: PLC0415 - its `start_child`, replaced below

    log = ProcessLog(db_path)
    try:
        if watched:
            log.append([event("before")])  # the loop now watches the child's socket
        real = writer_process.start_child
        tries: list[float] = []

        def flaky(database: str, synchronous: str) -> Any:
            tries.append(time.monotonic())
            if len(tries) == 1:
                msg = "the disk is not there yet"
                raise StoreError(msg)
            return real(database, synchronous)

        monkeypatch.setattr(writer_process, "start_child", flaky)
        old = log.writer._child.process.pid  # type: ignore[union-attr]
        with structlog.testing.capture_logs() as logged:
            os.kill(old, signal.SIGKILL)
            deadline = time.monotonic() + WAIT_SECONDS
            while not log.writer.alive or log.writer._child.process.pid == old:  # type: ignore[union-attr]
                assert time.monotonic() < deadline, "never started again"  # with no append
                time.sleep(0.02)
        assert len(tries) == 2
        events = [line["event"] for line in logged]
        assert events.count("writer process did not start") == 1
        assert "writer process lost" in events
        assert "writer process started again" in events
        assert log.append([event("after")]).head == (2 if watched else 1)
    finally:
        log.close()
