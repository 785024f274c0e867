"""One run at a time of a costly check, shared by every request that asked while it ran.

`GET /v1/audit/verify` recomputes every hash of the log (seconds at a million events) and
is open to anyone by default: N requests at once were N full passes, each holding a worker
thread. Coalesced, there is at most one pass at a time, in a worker thread, and waiting
requests wait on the event loop (no thread each). A caller is answered by a pass that
began after it asked, never an older one: what it is told holds for the log as it was when
it asked or later (a file altered since an earlier pass is not hidden by that pass).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from typing import Generic, TypeVar

import anyio.to_thread

T = TypeVar("T")


class Coalesced(Generic[T]):
    """`await coalesced()`: the result of a run of `fn` (in a worker thread) begun after the call.

    Call from one event loop. Runs are numbered; a caller waits until a run numbered after
    those begun before it has finished, starting one if none is running. A run that fails
    fails every caller it answers. A cancelled caller leaves the run going for the others.
    """

    def __init__(self, fn: Callable[[], T]) -> None:
        self._fn = fn
        self._started = 0
        self._finished = 0
        self._running: asyncio.Future[T] | None = None
        self._last: asyncio.Future[T] | None = None

    @property
    def runs(self) -> int:
        """How many runs have begun (for the tests and the curious)."""
        return self._started

    async def __call__(self) -> T:
        """The outcome of a run begun after this call (its value, or its exception raised)."""
        wanted = self._started + 1  # the first run to begin after this call
        while self._finished < wanted:
            running = self._running if self._running is not None else self._start()
            with contextlib.suppress(Exception):  # read below, once a run of ours has ended
                await asyncio.shield(running)
        assert self._last is not None  # noqa: S101 - a run has finished
        return self._last.result()

    def _start(self) -> asyncio.Future[T]:
        self._started += 1
        number = self._started
        run: asyncio.Future[T] = asyncio.ensure_future(anyio.to_thread.run_sync(self._fn))

        def finished(done: asyncio.Future[T]) -> None:
            self._running = None
            self._finished = number
            self._last = done

        run.add_done_callback(finished)
        self._running = run
        return run
