"""Appends committed by a writer process, so that the event loop keeps its interpreter.

The writer thread of `SQLiteEventLog` prepares, plans, hashes and inserts in Python: on the
service's own interpreter that work takes the interpreter lock from the event loop for every
group, and under load the loop waits for it at each hand-over. Here that work runs in a
child process (`events.writer_child`: the same `SQLiteEventLog`, its same group commit),
and the loop only sends each batch and reads the answers, over a socket pair it watches
itself: one write per turn of the loop for every append of that turn, one read per group's
answers, no thread and no self-pipe on the service's side.

The guarantees are the log's own: an append is answered once its group's commit is durable,
in the child; the order of appends is the order they were asked in. If the child ends
before answering (killed, say), the appends waiting for it fail with a `StoreError` (their
outcome unknown: a retry with the same `event_id`s is an idempotent replay if they were
committed) and a new child is started at once, and tried again until one is up (until
then, appends fail the same way). `close` lets the child commit and answer what it holds,
then waits for it to end.
Starting and ending a child: `events.writer_spawn`.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import socket
import threading
from collections.abc import Mapping, Sequence

import msgspec
import structlog

from events.envelope import AppendResult, NewEvent
from events.errors import InvalidEvent, StoreError
from events.prepared import checked_batch
from events.writer_spawn import (
    RETRY_FIRST,
    RETRY_LAST,
    START_SECONDS,
    STOP_SECONDS,
    Child,
    finish_here,
    reap,
    start_child,
    stop,
)
from events.writer_wire import READ_SIZE, TOLD_DECODER, ask, error_of, frame

log = structlog.get_logger("writer")


class ProcessWriter:
    """`append_future` through a writer process; one event loop at a time awaits it."""

    def __init__(self, database: str, synchronous: str) -> None:
        self.database = database
        self.synchronous = synchronous
        self._child: Child | None = start_child(database, synchronous)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._pending: dict[int, asyncio.Future[AppendResult]] = {}
        self._number = 0
        self._asks: list[bytes] = []
        self._flushing = False
        self._closed = False
        self._restarting: threading.Thread | None = None
        self._state = threading.Lock()
        """Held while `_closed` is set and while a restart is started: none after `close`."""
        self._ended = threading.Event()
        """Set once the loop has read the child's last answer and its end, after `close`."""
        self._stopping = threading.Event()
        """Set by `close`: a restart waiting to try again gives up."""
        self._draining: threading.Event | None = None
        """Set by `close`: once all is sent, the child's input is ended and this is set."""

    @property
    def alive(self) -> bool:
        """Whether a writer process is up and taking appends (asked by readiness checks).

        Before any append no loop watches the child's socket, so its end is noticed here:
        a new child is started, as when the loop notices it.
        """
        child = self._child
        if child is None or self._closed:
            return False
        if child.process.poll() is None:
            return True
        with self._state:
            unwatched = self._loop is None and self._child is child  # nobody else saw it end
            if unwatched:
                self._child = None
                child.sock.close()
                log.warning("writer process lost", why="it ended", pid=child.process.pid, failed=0)
        if unwatched:
            self._restart()  # (a watching loop sees the end itself: `_lost`)
        return False

    def append_future(
        self, events: Sequence[NewEvent], expected_versions: Mapping[str, int] | None = None
    ) -> asyncio.Future[AppendResult]:
        """Send a batch to the writer process (with the rest of this turn's); await the answer."""
        if self._closed:
            msg = "the event log is closed"
            raise StoreError(msg)
        loop = asyncio.get_running_loop()
        if loop is not self._loop:
            self._bind(loop)
        if self._child is None:
            self._restart()
            msg = "the writer process is starting again: retry with the same event_ids"
            raise StoreError(msg)
        batch = checked_batch(events)  # what the writer thread's `prepare_batch` refuses
        try:
            message = frame(ask(self._number + 1, batch, expected_versions))
        except (TypeError, ValueError, OverflowError, msgspec.EncodeError) as exc:
            msg = f"the batch cannot be encoded: {exc}"
            raise InvalidEvent(msg) from None
        self._number += 1
        self._asks.append(message)
        future: asyncio.Future[AppendResult] = loop.create_future()
        self._pending[self._number] = future
        if not self._flushing:
            self._flushing = True
            loop.call_soon(self._flush)
        return future

    async def append_awaited(
        self, events: Sequence[NewEvent], expected_versions: Mapping[str, int] | None = None
    ) -> AppendResult:
        """`append_future`, awaited: returns once the batch is durable."""
        return await self.append_future(events, expected_versions)

    # -- on the loop ------------------------------------------------------------------

    def _bind(self, loop: asyncio.AbstractEventLoop) -> None:
        """Watch the socket from `loop`: the loop before must be closed, or have nothing due.

        A closed loop's futures cannot be completed: dropped (their answers too, when they
        come); what was still to send goes out from the new loop.
        """
        old, child = self._loop, self._child
        if old is not None and not old.is_closed():
            if self._pending:
                msg = "appends awaited from a second event loop while the first still waits"
                raise StoreError(msg)
            if child is not None:
                self._unwatch(old, child)
        elif old is not None:
            self._pending.clear()
            if child is not None:
                child.writing = False  # the closed loop watches nothing any more
        self._loop = loop
        self._flushing = False
        if child is not None:
            loop.add_reader(child.sock.fileno(), self._readable)
            if self._asks or child.unsent:
                self._flushing = True
                loop.call_soon(self._flush)

    def _unwatch(self, loop: asyncio.AbstractEventLoop, child: Child) -> None:
        loop.remove_reader(child.sock.fileno())
        if child.writing:
            loop.remove_writer(child.sock.fileno())
            child.writing = False

    def _flush(self) -> None:
        self._flushing = False
        child = self._child
        if child is None:
            return
        if self._asks:
            child.unsent += b"".join(self._asks)
            self._asks.clear()
        self._send()

    def _send(self) -> None:
        """Write what the child has not been sent; then, if closing, end its input."""
        child, loop = self._child, self._loop
        if child is None or loop is None:
            return
        try:
            sent = child.sock.send(child.unsent) if child.unsent else 0
        except BlockingIOError:
            sent = 0
        except OSError as exc:
            self._lost(f"cannot write to it: {exc}")
            return
        del child.unsent[:sent]
        if child.unsent and not child.writing:
            loop.add_writer(child.sock.fileno(), self._send)
            child.writing = True
        elif not child.unsent and child.writing:
            loop.remove_writer(child.sock.fileno())
            child.writing = False
        if not child.unsent and self._draining is not None:
            with contextlib.suppress(OSError):
                child.sock.shutdown(socket.SHUT_WR)  # the child's end of input
            self._draining.set()
            self._draining = None

    def _readable(self) -> None:
        child = self._child
        if child is None:
            return
        try:
            data = child.sock.recv(READ_SIZE)
        except (BlockingIOError, InterruptedError):
            return
        except OSError as exc:
            self._lost(f"cannot read from it: {exc}")
            return
        if not data:
            self._lost("it ended")
            return
        self._heard(child, data)

    def _heard(self, child: Child, data: bytes) -> None:
        """Complete the appends whose answers `data` holds (or ends)."""
        pending = self._pending
        for message in child.frames.feed(data):
            try:
                told = TOLD_DECODER.decode(message)
            except msgspec.DecodeError as exc:  # never sent by the child: a defect
                self._lost(f"its answer does not decode: {exc}")
                return
            future = pending.pop(told.number, None)
            if future is not None:
                error = error_of(told.error) if told.error is not None else None
                _settle(future, told.result, error)

    def _lost(self, why: str) -> None:
        """The child is gone (or unusable): fail what waits for it, reap it, start another."""
        child, self._child = self._child, None
        if child is None:
            return
        if self._loop is not None and not self._loop.is_closed():
            self._unwatch(self._loop, child)
        child.sock.close()
        self._asks.clear()
        failed = self._fail_pending(why)
        if self._draining is not None:
            self._draining.set()
            self._draining = None
        threading.Thread(target=reap, args=(child.process,), daemon=True).start()
        if self._closed:
            self._ended.set()
        else:
            log.warning("writer process lost", why=why, pid=child.process.pid, failed=failed)
            self._restart()  # at once, not at the next append: readiness waits for it

    def _fail_pending(self, why: str) -> int:
        """Fail every append still waiting for an answer; how many there were."""
        pending, self._pending = self._pending, {}
        msg = (
            f"the writer process ended before answering ({why}): the append may or may not"
            " be stored; retry it with the same event_ids"
        )
        for future in pending.values():
            _settle(future, None, StoreError(msg))
        return len(pending)

    def _restart(self) -> None:
        """Start a new child on a thread (once at a time, never after `close`)."""
        with self._state:
            if self._closed or (self._restarting is not None and self._restarting.is_alive()):
                return
            loop = self._loop
            thread = threading.Thread(target=self._start_again, args=(loop,), daemon=True)
            self._restarting = thread
            thread.start()

    def _start_again(self, loop: asyncio.AbstractEventLoop | None) -> None:
        """Start a child, again and again (waiting longer each time) until one is up or closed."""
        pause = RETRY_FIRST
        while True:
            try:
                child = start_child(self.database, self.synchronous)
                break
            except Exception as exc:  # noqa: BLE001 - tried again: readiness says 503 meanwhile
                log.warning("writer process did not start", error=str(exc), again_in=pause)
            if self._stopping.wait(pause):
                return
            pause = min(pause * 2, RETRY_LAST)
        with self._state:
            if not self._closed and loop is None and self._loop is None and self._child is None:
                self._child = child  # no loop yet: the first append's watches it
                log.info("writer process started again", pid=child.process.pid)
                return
        if loop is None or self._closed:
            stop(child)
            return
        try:
            loop.call_soon_threadsafe(self._attach, child, loop)
        except RuntimeError:  # the loop is closed
            stop(child)

    def _attach(self, child: Child, loop: asyncio.AbstractEventLoop) -> None:
        if self._closed or self._child is not None or self._loop is not loop:
            threading.Thread(target=stop, args=(child,), daemon=True).start()  # not on the loop
            return
        self._child = child
        loop.add_reader(child.sock.fileno(), self._readable)
        log.info("writer process started again", pid=child.process.pid)

    def _drain(self, done: threading.Event) -> None:
        """Send what is left, then end the child's input (`_send`); `done` once it is ended."""
        if self._child is None:
            done.set()
            return
        self._draining = done
        self._flush()

    # -- from any thread --------------------------------------------------------------

    def close(self) -> None:
        """Let the child commit and answer what it holds, wait for it to end (bounded).

        Off the loop (the service's shutdown runs it on a thread), a running loop sends what
        it has, ends the child's input and reads the last answers itself, never blocking.
        On the loop's own thread (an ASGI lifespan's shutdown, say) that is done here,
        blocking the loop until the child has answered everything.
        """
        with self._state:
            if self._closed:
                return
            self._closed = True
            restarting = self._restarting
        self._stopping.set()
        if restarting is not None:
            restarting.join(START_SECONDS)  # a child it started is stopped by it
        child, loop = self._child, self._loop
        if child is None:
            return
        done = threading.Event()
        running = loop is not None and loop.is_running()
        here = running and _current_loop() is loop  # on the loop's own thread: no waiting on it
        if running and not here:
            try:
                loop.call_soon_threadsafe(self._drain, done)  # type: ignore[union-attr]
            except RuntimeError:  # closed meanwhile
                running = False
        if running and not here:
            done.wait(STOP_SECONDS)
            stop(child, shut=False)
            self._ended.wait(STOP_SECONDS)  # the loop has read the last answers and the end
            return
        if here:
            self._unwatch(loop, child)  # type: ignore[arg-type]
        if self._asks:
            child.unsent += b"".join(self._asks)
            self._asks.clear()
        # Completed here: on the loop's thread, or with the loop stopped (nothing else runs
        # its futures); a closed loop's futures have nobody waiting.
        alive = loop is not None and not loop.is_closed()
        finish_here(child, functools.partial(self._heard, child) if alive else _dropped)
        stop(child, shut=False)
        self._child = None
        child.sock.close()
        self._fail_pending("it was closed")  # none, unless the child died meanwhile


def _current_loop() -> asyncio.AbstractEventLoop | None:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None


def _dropped(_data: bytes) -> None:
    """Answers nobody can be told of (no loop runs their futures)."""


def _settle(
    future: asyncio.Future[AppendResult], result: AppendResult | None, error: Exception | None
) -> None:
    """Complete an append's future, unless done already or its loop is closed (nobody waits)."""
    if future.done() or future.get_loop().is_closed():
        return
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(result)  # type: ignore[arg-type]
