"""One writer thread that group-commits: the appends waiting at the same moment share one
transaction and one fsync, and each is acknowledged only after that commit returns."""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future
from typing import Any, Generic, TypeVar

from events.envelope import AppendResult, NewEvent
from events.errors import StoreError

T = TypeVar("T")

MAX_GROUP_EVENTS = 20_000
"""A group stops growing past this many events, to bound one transaction."""


class AppendRequest:
    """One caller's batch, waiting for its group's commit."""

    __slots__ = ("batch", "expected_versions", "future")

    def __init__(
        self, batch: Sequence[NewEvent], expected_versions: Mapping[str, int] | None
    ) -> None:
        self.batch = batch
        self.expected_versions = expected_versions
        self.future: Future[AppendResult] = Future()


class Job(Generic[T]):
    """Work that must run alone on the writer's connection (import, migrations)."""

    __slots__ = ("fn", "future")

    def __init__(self, fn: Callable[[], T]) -> None:
        self.fn = fn
        self.future: Future[T] = Future()


_STOP = object()


class GroupCommitter:
    """Runs `commit_group(requests)` on one thread for every group of waiting appends.

    `commit_group` must resolve every request's future; if it raises instead, each request
    still unresolved fails with a `StoreError`.
    """

    def __init__(self, commit_group: Callable[[list[AppendRequest]], None], name: str) -> None:
        self._commit_group = commit_group
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._closed = False
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def append(
        self, batch: Sequence[NewEvent], expected_versions: Mapping[str, int] | None
    ) -> AppendResult:
        """Queue a batch and wait for its commit (or its error)."""
        request = AppendRequest(batch, expected_versions)
        self._put(request)
        return request.future.result()

    def call(self, fn: Callable[[], T]) -> T:
        """Run `fn` on the writer thread, alone, and return its result."""
        job: Job[T] = Job(fn)
        self._put(job)
        return job.future.result()

    def _put(self, item: object) -> None:
        with self._lock:
            if self._closed:
                msg = "the event log is closed"
                raise StoreError(msg)
            self._queue.put(item)

    def close(self) -> None:
        """Commit what is queued, then stop the thread."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            self._queue.put(_STOP)
        self._thread.join()

    def _run(self) -> None:
        pending: object | None = None
        while True:
            item = pending if pending is not None else self._queue.get()
            pending = None
            if item is _STOP:
                return
            if isinstance(item, Job):
                self._run_job(item)
                continue
            group: list[AppendRequest] = [item]
            size = len(item.batch)
            while size < MAX_GROUP_EVENTS:
                try:
                    nxt = self._queue.get_nowait()
                except queue.Empty:
                    break
                if not isinstance(nxt, AppendRequest):
                    pending = nxt
                    break
                group.append(nxt)
                size += len(nxt.batch)
            self._run_group(group)

    def _run_group(self, group: list[AppendRequest]) -> None:
        try:
            self._commit_group(group)
        except BaseException as exc:  # noqa: BLE001 - every waiter must hear of it
            error = exc if isinstance(exc, StoreError) else StoreError(f"append failed: {exc}")
            for request in group:
                if not request.future.done():
                    request.future.set_exception(error)

    @staticmethod
    def _run_job(job: Job[Any]) -> None:
        try:
            job.future.set_result(job.fn())
        except BaseException as exc:  # noqa: BLE001 - handed to the caller
            job.future.set_exception(exc)
