"""Appends an asyncio caller awaits: no thread parked per append, one wake-up per group.

The batch goes straight onto the writer thread's queue (`GroupCommitter.submit`), so it is
never committed on the event loop's thread; the caller awaits an asyncio future. The writer
delivers a group's outcomes after its commit (see `events.groupcommit`): each
`LoopOutcome.deliver` only queues itself on its loop's `LoopWaker`; once the whole group is
delivered, `wake` calls `loop.call_soon_threadsafe` (a write to the loop's self-pipe) once
per loop, so a group of appends costs the loop one wake-up, not one per append.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Mapping, Sequence
from typing import Protocol, cast, runtime_checkable

from events.envelope import AppendResult, NewEvent
from events.groupcommit import AppendRequest, GroupCommitter, Outcome


class LoopWaker:
    """Settles delivered outcomes on one event loop, in batches."""

    __slots__ = ("_lock", "_pending", "_scheduled", "loop")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self._lock = threading.Lock()
        self._pending: list[LoopOutcome] = []
        self._scheduled = False

    def add(self, outcome: LoopOutcome) -> None:
        """Queue an outcome to settle on the loop (at the next `wake`)."""
        with self._lock:
            self._pending.append(outcome)

    def wake(self) -> None:
        """Have the loop settle what is queued: one `call_soon_threadsafe` until it has."""
        with self._lock:
            if self._scheduled or not self._pending:
                return
            self._scheduled = True
        try:
            self.loop.call_soon_threadsafe(self._drain)
        except RuntimeError:  # the loop is closed: nobody is left to await these
            with self._lock:
                self._pending.clear()
                self._scheduled = False

    def _drain(self) -> None:
        with self._lock:
            pending, self._pending = self._pending, []
            self._scheduled = False
        for outcome in pending:
            outcome.settle()


class LoopOutcome(Outcome[AppendResult]):
    """An append's outcome for a coroutine: delivered to its loop, awaited as a future."""

    __slots__ = ("_future", "_waker")

    def __init__(self, waker: LoopWaker) -> None:
        super().__init__()
        self._waker = waker
        self._future: asyncio.Future[AppendResult] = waker.loop.create_future()

    @property
    def future(self) -> asyncio.Future[AppendResult]:
        """What the caller awaits, on its loop."""
        return self._future

    def deliver(self) -> None:
        """Hand the outcome to the loop (once); one never set becomes a `StoreError`."""
        if self._delivered:
            return
        if not self._set:
            super().deliver()  # sets the StoreError (and releases the unused lock)
        else:
            self._delivered = True
        self._waker.add(self)

    def wake(self) -> None:
        """Once the whole group is delivered: wake the loop (if no other outcome did)."""
        self._waker.wake()

    def settle(self) -> None:
        """On the loop: complete the future the caller awaits (unless it gave up)."""
        future = self._future
        if future.cancelled():
            return
        if self._error is not None:
            future.set_exception(self._error)
        else:
            future.set_result(cast("AppendResult", self._value))


@runtime_checkable
class AwaitableAppend(Protocol):
    """A log a coroutine can append to without parking a thread (`SQLiteEventLog`)."""

    async def append_awaited(
        self, events: Sequence[NewEvent], expected_versions: Mapping[str, int] | None = None
    ) -> AppendResult:
        """`EventLog.append`, awaited: the same guarantees, returns once durable."""
        ...

    def append_future(
        self, events: Sequence[NewEvent], expected_versions: Mapping[str, int] | None = None
    ) -> asyncio.Future[AppendResult]:
        """`append_awaited` without a coroutine: a future of the running loop."""
        ...


_wakers: dict[asyncio.AbstractEventLoop, LoopWaker] = {}
_wakers_lock = threading.Lock()


def waker_for(loop: asyncio.AbstractEventLoop) -> LoopWaker:
    """The waker of a loop (one per loop; closed loops are dropped when a new loop asks)."""
    waker = _wakers.get(loop)
    if waker is None:
        with _wakers_lock:
            for stale in [known for known in _wakers if known.is_closed()]:
                del _wakers[stale]
            waker = _wakers.setdefault(loop, LoopWaker(loop))
    return waker


def submit_append(
    committer: GroupCommitter,
    batch: Sequence[NewEvent],
    expected_versions: Mapping[str, int] | None,
) -> asyncio.Future[AppendResult]:
    """Queue a batch for the writer thread; the future its group's commit completes.

    Call it on the running loop's thread: the future belongs to that loop. The batch is
    queued at the end of the loop's current turn, with the others of that turn: the writer
    thread, woken by the first, then finds them together instead of competing for the
    interpreter with the loop while it is still handling requests.
    """
    loop = asyncio.get_running_loop()
    outcome = LoopOutcome(waker_for(loop))
    loop.call_soon(_submit, committer, AppendRequest(batch, expected_versions, outcome))
    return outcome.future


def _submit(committer: GroupCommitter, request: AppendRequest) -> None:
    try:
        committer.submit(request)
    except Exception as exc:  # noqa: BLE001 - a closed log: its caller hears of it
        request.future.set_exception(exc)
        request.future.deliver()
        request.future.wake()


async def append_awaited(
    committer: GroupCommitter,
    batch: Sequence[NewEvent],
    expected_versions: Mapping[str, int] | None,
) -> AppendResult:
    """Queue a batch for the writer thread and await its group's commit (see the module)."""
    return await submit_append(committer, batch, expected_versions)
