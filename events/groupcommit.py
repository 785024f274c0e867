"""Group commit: appends waiting together share one transaction and one fsync.

Each append is acknowledged only after its group's commit returns. An append that finds
nothing queued and nothing committing is committed at once on its caller's thread: a lone
writer pays no thread hand-off. Otherwise it joins the queue of the writer thread, which
commits everything waiting at that moment as one group. Either way only one group (or job)
at a time holds the connection. A caller that must not block (an event loop) `submit`s its
request instead: always queued, never committed on its thread, and told through its
`Outcome` (`deliver`, then `wake` once the whole group is delivered: see
`events.awaitable`, which wakes a loop once per group).

Under load the writer tells a committed group's callers only once the next group is staged,
just before that group's COMMIT: they wake up and queue their next appends while the disk
syncs, instead of competing for the interpreter with the writer's own work. Nobody waits
for nothing: a group is told at once when no other group is ready to be committed, when the
next one is large, and before the writer waits for another connection's write lock.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future
from functools import partial
from typing import Any, Generic, Protocol, TypeVar, cast

from events.envelope import AppendResult, NewEvent
from events.errors import StoreError

T = TypeVar("T")

MAX_GROUP_EVENTS = 20_000
"""A group stops growing past this many events, to bound one transaction."""

MAX_DEFERRING_EVENTS = 256
"""The previous group is told at once, not just before the next COMMIT, past this size."""

Ready = Callable[[], None]
"""Tells the previous group's callers their outcome (see `GroupCommitter`)."""


class Outcome(Generic[T]):
    """The outcome of one append for its one waiter: a `Future` cut down to a single lock.

    Waking a caller is the main cost of a group commit; this takes no condition variable, no
    waiter list and no callbacks. The backend sets the outcome; the committer then `deliver`s
    it, which wakes the waiter.
    """

    __slots__ = ("_delivered", "_error", "_lock", "_set", "_value")

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._lock.acquire()  # released once, on delivery
        self._set = False
        self._delivered = False
        self._value: T | None = None
        self._error: BaseException | None = None

    def done(self) -> bool:
        """Whether a result or an error is set."""
        return self._set

    def set_result(self, value: T) -> None:
        """Set the result (only the first outcome counts)."""
        if not self._set:
            self._value, self._set = value, True

    def set_exception(self, error: BaseException) -> None:
        """Set the error (only the first outcome counts)."""
        if not self._set:
            self._error, self._set = error, True

    def deliver(self) -> None:
        """Wake the waiter (once); an outcome never set becomes a `StoreError`."""
        if not self._delivered:
            if not self._set:
                self.set_exception(StoreError("append failed: no outcome was given"))
            self._delivered = True
            self._lock.release()

    def wake(self) -> None:
        """Called once a whole group is delivered; nothing to do here: `deliver` woke the waiter.

        An outcome whose `deliver` only queues (`events.awaitable`) wakes its waiter here, so
        a group costs one wake-up, not one per append.
        """

    def result(self) -> T:
        """Wait for delivery; return the result or raise the error."""
        with self._lock:
            pass
        if self._error is not None:
            raise self._error
        return cast("T", self._value)


class AppendRequest:
    """One caller's batch, waiting for its group's commit."""

    __slots__ = ("batch", "expected_versions", "future")

    def __init__(
        self,
        batch: Sequence[NewEvent],
        expected_versions: Mapping[str, int] | None,
        future: Outcome[AppendResult] | None = None,
    ) -> None:
        self.batch = batch
        self.expected_versions = expected_versions
        self.future: Outcome[AppendResult] = future if future is not None else Outcome()


class Job(Generic[T]):
    """Work that must run alone on the writer's connection (import, migrations)."""

    __slots__ = ("fn", "future")

    def __init__(self, fn: Callable[[], T]) -> None:
        self.fn = fn
        self.future: Future[T] = Future()


class _Owned(Protocol):
    """`threading.RLock` as `threading.Condition` uses it (`_is_owned` is not in typeshed)."""

    def _is_owned(self) -> bool: ...


class _Stop:
    """Queued by `close`: the writer thread ends once it reaches this."""


_STOP = _Stop()


def _deliver(group: list[AppendRequest]) -> None:
    """Tell every caller of a committed group (once: the list is emptied)."""
    for request in group:
        request.future.deliver()
    for request in group:
        request.future.wake()
    group.clear()


class GroupCommitter:
    """Runs `commit_group(requests, ready)` for every group of waiting appends, one at a time.

    On the caller's thread when the log is idle, on the writer thread otherwise; jobs always
    on the writer thread. `commit_group` must set every request's outcome; if it raises
    instead, each request still without one fails with a `StoreError`. `ready` is None, or
    tells the previous group's callers their outcome: `commit_group` calls it once its
    group's rows are staged, right before the statement that commits them (COMMIT, or an
    `INSERT` that is its own transaction), and before it waits for a write lock held by
    another connection (calling it again does nothing).
    """

    def __init__(
        self, commit_group: Callable[[list[AppendRequest], Ready | None], None], name: str
    ) -> None:
        self._commit_group = commit_group
        self._queue: queue.SimpleQueue[AppendRequest | Job[Any] | _Stop] = queue.SimpleQueue()
        self._closed = False
        self._lock = threading.Lock()  # guards _closed and _queued
        self._queued = 0  # items put on the queue that the writer thread has not finished
        self._busy = threading.RLock()  # held by whoever is using the connection (its owner known)
        self._in_hand: list[AppendRequest | Job[Any] | _Stop] = []  # taken off the queue, not done
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def append(
        self, batch: Sequence[NewEvent], expected_versions: Mapping[str, int] | None
    ) -> AppendResult:
        """Commit a batch (at once if the log is idle, else with its group); wait for it."""
        request = AppendRequest(batch, expected_versions)
        error: BaseException | None = None
        try:
            with self._lock:
                if self._closed:
                    msg = "the event log is closed"
                    raise StoreError(msg)
                # Nothing queued: nobody to group with. Queued work goes first (no overtaking).
                if self._queued != 0 or not self._busy.acquire(blocking=False):
                    self._queued += 1
                    self._queue.put(request)
            if self._owns_busy():
                error = self._run_group([request], None)
        finally:
            # asked of the lock, not of a local: a Ctrl-C may land between the acquire and
            # any assignment after it, and a lock left held would stall every later append
            if self._owns_busy():
                self._busy.release()
                request.future.deliver()
        if error is not None and not isinstance(error, Exception):
            raise error  # KeyboardInterrupt, SystemExit: the caller's own, not a store error
        return request.future.result()

    def _owns_busy(self) -> bool:
        """Whether this thread holds the connection (`RLock._is_owned`, as `Condition` asks)."""
        return cast("_Owned", self._busy)._is_owned()  # noqa: SLF001 - see the docstring

    def submit(self, request: AppendRequest) -> None:
        """Queue a request for the writer thread and return at once; never commit here.

        For a caller that must not block (an event loop): its `request.future` is set and
        delivered after its group's commit, like any other, so an `Outcome` whose `deliver`
        wakes the caller its own way (see `events.awaitable`) learns of it without a thread
        waiting.
        """
        self._put(request)

    def commit_now(self, group: list[AppendRequest]) -> None:
        """Commit `group` as one group on this thread and set each outcome (told by the caller).

        For a caller that is the log's only writer (`events.writer_child`): it waits for the
        connection if the writer thread holds it, but does not queue behind what is queued.
        """
        with self._lock:
            if self._closed:
                msg = "the event log is closed"
                raise StoreError(msg)
        with self._busy:
            self._run_group(group, None)

    def call(self, fn: Callable[[], T]) -> T:
        """Run `fn` on the writer thread, alone, and return its result."""
        job: Job[T] = Job(fn)
        self._put(job)
        return job.future.result()

    def _put(self, item: AppendRequest | Job[Any]) -> None:
        """Queue an item for the writer thread; `StoreError` once the log is closed."""
        with self._lock:
            if self._closed:
                msg = "the event log is closed"
                raise StoreError(msg)
            self._queued += 1
            self._queue.put(item)

    def close(self) -> None:
        """Commit what is queued, then stop the thread (a second caller waits for it too)."""
        with self._lock:
            if not self._closed:
                self._closed = True
                self._queue.put(_STOP)
        self._thread.join()
        with self._busy:  # an append committing on its caller's thread finishes first
            pass

    def _run(self) -> None:
        told_later: list[AppendRequest] = []  # committed; told once the next group is staged
        try:
            self._loop(told_later)
        except BaseException as exc:
            self._stopped(exc)
            raise
        finally:
            _deliver(told_later)

    def _stopped(self, error: BaseException) -> None:
        """The writer thread died: refuse new work, and fail all that still waits in the queue.

        Nothing in the loop is expected to raise (a group's own errors go to its callers);
        should anything, no append or job may wait forever for a thread that is gone.
        """
        with self._lock:
            self._closed = True
        failure = StoreError(f"the event log's writer stopped: {error!r}")
        items, self._in_hand = self._in_hand, []
        while True:
            try:
                items.append(self._queue.get_nowait())
            except queue.Empty:
                break
        waiting: list[AppendRequest] = []
        for item in items:
            if isinstance(item, AppendRequest):
                item.future.set_exception(failure)  # no-op for one committed already
                waiting.append(item)
            elif isinstance(item, Job) and not item.future.done():
                item.future.set_exception(failure)
        _deliver(waiting)

    def _loop(self, told_later: list[AppendRequest]) -> None:
        pending: AppendRequest | Job[Any] | _Stop | None = None
        while True:
            if pending is not None:
                item, pending = pending, None
            else:
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    _deliver(told_later)  # no group to overlap with
                    item = self._queue.get()
            if isinstance(item, _Stop):
                return
            self._in_hand = [item]
            if isinstance(item, Job):
                _deliver(told_later)
                self._run_job(item)
                continue
            group, pending = self._gather(item)
            self._in_hand = [*group] if pending is None else [*group, pending]
            self._commit(group, told_later)
            self._in_hand = [] if pending is None else [pending]

    def _gather(self, first: AppendRequest) -> tuple[list[AppendRequest], Job[Any] | _Stop | None]:
        """The appends queued behind `first`, and the job or stop that ended the group."""
        group = [first]
        size = len(first.batch)
        while size < MAX_GROUP_EVENTS:
            try:
                nxt = self._queue.get_nowait()
            except queue.Empty:
                break
            if not isinstance(nxt, AppendRequest):
                return group, nxt
            group.append(nxt)
            size += len(nxt.batch)
        return group, None

    def _commit(self, group: list[AppendRequest], told_later: list[AppendRequest]) -> None:
        """Commit a group; tell the previous one before its COMMIT; keep this one for later."""
        if sum(len(request.batch) for request in group) > MAX_DEFERRING_EVENTS:
            _deliver(told_later)
        if not self._busy.acquire(blocking=False):
            _deliver(told_later)  # an append commits on its caller's thread: no waiting on it
            self._busy.acquire()
        try:
            self._run_group(group, partial(_deliver, told_later) if told_later else None)
        finally:
            self._busy.release()
        _deliver(told_later)
        told_later.extend(group)
        self._finished(len(group))

    def _finished(self, count: int) -> None:
        with self._lock:
            self._queued -= count

    def _run_group(self, group: list[AppendRequest], ready: Ready | None) -> BaseException | None:
        try:
            self._commit_group(group, ready)
        except BaseException as exc:  # noqa: BLE001 - every waiter must hear of it
            error = exc if isinstance(exc, StoreError) else StoreError(f"append failed: {exc}")
            for request in group:
                if not request.future.done():
                    request.future.set_exception(error)
            return exc
        return None

    def _run_job(self, job: Job[Any]) -> None:
        with self._busy:
            try:
                job.future.set_result(job.fn())
            except BaseException as exc:  # noqa: BLE001 - handed to the caller
                job.future.set_exception(exc)
        self._finished(1)
