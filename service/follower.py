"""The live state follows the log as appends arrive, not only when someone reads it.

An append the service commits `nudge`s the follower. Its thread has the projector catch
up once the appends pause (`QUIET`), or, under a flow that never pauses, once the log has
grown by as much as the live state holds (`Projector.fold_due`): the live state folds
them, and the periodic snapshot falls due, as the issue asks, under write-only traffic
too. Not on every burst: an event dated before the last one folded is merged by folding
the state again (`Live.merge`, O(facts), the interpreter held meanwhile), and doing that
in the middle of a flow stalls every request it serves. A read never waits for the
follower: it catches up itself.
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
                if self._nudged.is_set() and not self.projector.fold_due():
                    continue  # the flow goes on, and a snapshot's worth has not piled up
            if self._stopped.is_set():
                return
            try:
                self.projector.catch_up()
            except Exception as exc:  # noqa: BLE001 - a read meets it too; never lose the thread
                log.warning("live state did not catch up", error=str(exc))
