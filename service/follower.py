"""The live state follows the log as appends arrive, not only when someone reads it.

An append the service commits `nudge`s the follower. Its thread has the projector catch
up once the appends pause (`QUIET`): the live state folds them, and the periodic snapshot
falls due, as the issue asks, under write-only traffic too. Not in the middle of a flow:
an event dated before the last one folded is merged by folding the state again
(`Live.merge`, O(facts); past `MERGE_AT_MOST` events, a rebuild from the log), with the
interpreter and the projector's lock held, and doing that while appends stream in would
stall every request (at 140,000 events, 0.15 s a merge; at 1,000,000, a rebuild of
seconds). Under a flow that never pauses, the state is folded by the reads, which catch
up themselves, and at shutdown.
Appends by other processes on the same file (`ledger append` beside the service) are
found by a look at the head every `LOOK_EVERY` seconds.
"""

from __future__ import annotations

import threading
from typing import Final

import structlog

from service.projector import Projector

QUIET: Final = 0.05
"""Seconds without an append after which the follower folds what came."""
LOOK_EVERY: Final = 1.0
"""Seconds between looks at the head without a nudge (another process's appends)."""

log = structlog.get_logger("follower")


class Follower:
    """A thread that keeps the projector caught up with the log; `stop` ends it."""

    def __init__(self, projector: Projector) -> None:
        self.projector = projector
        self._nudged = threading.Event()
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._run, name="ledger-follow", daemon=True)
        self._thread.start()

    def nudge(self) -> None:
        """Say that the log has grown (from any thread; cheap)."""
        self._nudged.set()

    def stop(self) -> None:
        """End the thread, after the fold it may be doing."""
        self._stopped.set()
        self._nudged.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stopped.is_set():
            if self._nudged.wait(LOOK_EVERY):
                self._nudged.clear()
                if self._stopped.wait(QUIET):
                    return
                if self._nudged.is_set():
                    continue  # the flow goes on: fold once it pauses
            if self._stopped.is_set():
                return
            try:
                self.projector.catch_up()
            except Exception as exc:  # noqa: BLE001 - a read meets it too; never lose the thread
                log.warning("live state did not catch up", error=str(exc))
