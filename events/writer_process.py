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
committed) and the next append starts a new child (until it is up, appends fail the same
way). `close` lets the child commit and answer what it holds, then waits for it to end.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import subprocess
import sys
import threading
from collections.abc import Mapping, Sequence
from typing import Final

import msgspec

from events.envelope import AppendResult, NewEvent
from events.errors import StoreError
from events.prepared import checked_batch
from events.writer_wire import READY, TOLD_DECODER, Frames, ask, error_of, frame

START_SECONDS: Final = 60.0
"""The longest wait for a new writer process to open the log."""
STOP_SECONDS: Final = 60.0
"""The longest wait for the writer process to commit what it holds and end, on `close`."""
_READ_SIZE: Final = 1 << 16
"""Below the size malloc maps on its own: no mmap and munmap per read."""


class _Child:
    """A running writer process and the service's end of its socket."""

    __slots__ = ("frames", "process", "sock", "unsent", "writing")

    def __init__(self, process: subprocess.Popen[bytes], sock: socket.socket) -> None:
        self.process = process
        self.sock = sock
        self.frames = Frames()
        self.unsent = bytearray()
        self.writing = False


def start_child(database: str, synchronous: str, timeout: float = START_SECONDS) -> _Child:
    """A new writer process with the log open; its error (`StoreError`, say) if it cannot."""
    ours, theirs = socket.socketpair()
    command = [sys.executable, "-m", "events.writer_child", str(theirs.fileno()), database]
    try:
        process = subprocess.Popen(  # noqa: S603 - this interpreter, this package
            [*command, synchronous], pass_fds=(theirs.fileno(),), stdin=subprocess.DEVNULL
        )
    except OSError as exc:
        ours.close()
        msg = f"cannot start the writer process: {exc}"
        raise StoreError(msg) from None
    finally:
        theirs.close()
    try:
        _opened(ours, process, timeout)
    except BaseException:
        ours.close()
        if process.poll() is None:
            process.kill()
        process.wait()
        raise
    ours.setblocking(False)  # noqa: FBT003 - the socket's own API
    return _Child(process, ours)


def _opened(sock: socket.socket, process: subprocess.Popen[bytes], timeout: float) -> None:
    """Wait for the child's first answer: the log is open, or its error (raised here)."""
    sock.settimeout(timeout)
    frames = Frames()
    messages: list[bytes] = []
    try:
        while not messages:
            data = sock.recv(_READ_SIZE)
            if not data:
                code = process.wait()
                msg = f"the writer process ended before opening the log (exit code {code})"
                raise StoreError(msg)
            messages = frames.feed(data)
    except TimeoutError:
        msg = f"the writer process did not open the log within {timeout:g} s"
        raise StoreError(msg) from None
    told = TOLD_DECODER.decode(messages[0])
    if told.error is not None:
        raise error_of(told.error)
    if told.number != READY:
        msg = f"the writer process started with answer {told.number}, not {READY}"
        raise StoreError(msg)


class ProcessWriter:
    """`append_future` through a writer process; one event loop at a time awaits it."""

    def __init__(self, database: str, synchronous: str) -> None:
        self.database = database
        self.synchronous = synchronous
        self._child: _Child | None = start_child(database, synchronous)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._pending: dict[int, asyncio.Future[AppendResult]] = {}
        self._number = 0
        self._asks: list[bytes] = []
        self._flushing = False
        self._closed = False
        self._restarting: threading.Thread | None = None

    @property
    def alive(self) -> bool:
        """Whether a writer process is up and taking appends."""
        return self._child is not None and not self._closed

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
        self._number += 1
        self._asks.append(frame(ask(self._number, batch, expected_versions)))
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
        """Watch the socket from `loop` (the one before must be closed, or have nothing due)."""
        old = self._loop
        if old is not None and not old.is_closed():
            if self._pending:
                msg = "appends awaited from a second event loop while the first still waits"
                raise StoreError(msg)
            if self._child is not None:
                self._unwatch(old, self._child)
        self._loop = loop
        if self._child is not None:
            loop.add_reader(self._child.sock.fileno(), self._readable)

    def _unwatch(self, loop: asyncio.AbstractEventLoop, child: _Child) -> None:
        loop.remove_reader(child.sock.fileno())
        if child.writing:
            loop.remove_writer(child.sock.fileno())
            child.writing = False

    def _flush(self) -> None:
        self._flushing = False
        child = self._child
        if child is None or not self._asks:
            return
        child.unsent += b"".join(self._asks)
        self._asks.clear()
        self._send()

    def _send(self) -> None:
        child, loop = self._child, self._loop
        if child is None or loop is None:
            return
        try:
            sent = child.sock.send(child.unsent)
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

    def _readable(self) -> None:
        child = self._child
        if child is None:
            return
        try:
            data = child.sock.recv(_READ_SIZE)
        except (BlockingIOError, InterruptedError):
            return
        except OSError as exc:
            self._lost(f"cannot read from it: {exc}")
            return
        if not data:
            self._lost("it ended")
            return
        pending = self._pending
        for message in child.frames.feed(data):
            try:
                told = TOLD_DECODER.decode(message)
            except msgspec.DecodeError as exc:  # never sent by the child: a defect
                self._lost(f"its answer does not decode: {exc}")
                return
            future = pending.pop(told.number, None)
            if future is None or future.done():
                continue
            if told.error is not None:
                future.set_exception(error_of(told.error))
            else:
                future.set_result(told.result)  # type: ignore[arg-type]

    def _lost(self, why: str) -> None:
        """The child is gone (or unusable): fail what waits for it, reap it."""
        child, self._child = self._child, None
        if child is None:
            return
        if self._loop is not None and not self._loop.is_closed():
            self._unwatch(self._loop, child)
        child.sock.close()
        pending, self._pending = self._pending, {}
        self._asks.clear()
        for future in pending.values():
            if not future.done():
                msg = (
                    f"the writer process ended before answering ({why}): the append may or"
                    " may not be stored; retry it with the same event_ids"
                )
                future.set_exception(StoreError(msg))
        if not self._closed:
            threading.Thread(target=_reap, args=(child.process,), daemon=True).start()
            self._restart()  # at once, not at the next append: readiness waits for it

    def _restart(self) -> None:
        """Start a new child on a thread (once at a time); it takes appends once up."""
        if self._restarting is not None and self._restarting.is_alive():
            return
        loop = self._loop
        thread = threading.Thread(target=self._start_again, args=(loop,), daemon=True)
        self._restarting = thread
        thread.start()

    def _start_again(self, loop: asyncio.AbstractEventLoop | None) -> None:
        try:
            child = start_child(self.database, self.synchronous)
        except Exception:  # noqa: BLE001 - the next append tries again, and fails meanwhile
            return
        if loop is None:
            _stop(child)
            return
        try:
            loop.call_soon_threadsafe(self._attach, child)
        except RuntimeError:  # the loop is closed
            _stop(child)

    def _attach(self, child: _Child) -> None:
        if self._closed or self._child is not None or self._loop is None:
            _stop(child)
            return
        self._child = child
        self._loop.add_reader(child.sock.fileno(), self._readable)

    # -- from any thread --------------------------------------------------------------

    def close(self) -> None:
        """Let the child commit and answer what it holds, wait for it to end (at most a minute).

        Called off the loop (the service's shutdown): the loop, if running, sends what it
        has and closes the socket's writing side itself.
        """
        if self._closed:
            return
        self._closed = True
        child, loop = self._child, self._loop
        if child is None:
            return
        done = threading.Event()
        if loop is not None and loop.is_running():
            try:
                loop.call_soon_threadsafe(self._shut, child, done)
            except RuntimeError:
                self._shut(child, done)
            done.wait(STOP_SECONDS)
        else:
            self._shut(child, done)
        _stop(child, shut=False)
        if self._child is child and (loop is None or not loop.is_running()):
            self._child = None
            child.sock.close()

    def _shut(self, child: _Child, done: threading.Event) -> None:
        """Send what is left, then close the socket's writing side: the child's end of input."""
        try:
            if self._asks:
                self._flush()
            if child.unsent:
                child.sock.setblocking(True)  # noqa: FBT003 - the socket's own API
                child.sock.settimeout(STOP_SECONDS)
                child.sock.sendall(child.unsent)
                child.unsent.clear()
            child.sock.shutdown(socket.SHUT_WR)
        except OSError:
            pass  # the child is gone already
        finally:
            done.set()


def _stop(child: _Child, *, shut: bool = True) -> None:
    """End a child: its input closed, then wait for it (killed past `STOP_SECONDS`)."""
    if shut:
        with contextlib.suppress(OSError):
            child.sock.shutdown(socket.SHUT_WR)
    try:
        child.process.wait(STOP_SECONDS)
    except subprocess.TimeoutExpired:
        child.process.kill()
        child.process.wait()
    if shut:
        child.sock.close()


def _reap(process: subprocess.Popen[bytes]) -> None:
    """Wait for a child that lost its socket (killed past `STOP_SECONDS`): no zombie."""
    try:
        process.wait(STOP_SECONDS)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
