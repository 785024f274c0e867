"""The live projections of a running service.

A snapshot at start, the tail folded on demand (merged when it holds backdated events or
records, `Live.merge`), time-travel views built from the log (its lean replay read when
it has one) and cached by (view, position). Once started, `warm` derives every answer
of the live view and its digests (a snapshot holds the fold state, not the answers) on a
thread, so the first requests are as fast as the later ones, and then freezes the heap
(`gc.freeze`), so the cyclic collector does not walk the state, nor those answers, again
and again. The service takes appends meanwhile and says ready once it is done.

Snapshots are written on a thread of their own from a capture of the live state
(`Live.capture`), so the request that folds the event making one due does not wait for
the whole state to be encoded and synced (the encoding still takes the interpreter lock,
a chunk of facts at a time: other threads run between chunks); one is due after
`snapshot_every` events, or a tenth of the log if that is more, so that encoding whole
states costs a bounded share of the folding at any size. On clean shutdown the last one
is written in full.
"""

from __future__ import annotations

import gc
import os
import threading
import time
from functools import partial
from itertools import islice
from pathlib import Path

import structlog

from events.errors import StoreError
from events.log import EventLog, hash_at
from events.tempfiles import own_path, remove_stale
from projections import (
    Captured,
    Live,
    Projections,
    ViewSpec,
    build,
    build_replayed,
    dump_snapshot,
    load_snapshot,
)
from service.cache import LRU
from service.store import is_sqlite

_CACHE_SIZE = 64
VIEWS_BUDGET = 400_000
"""Past views kept built: at most this many events folded in all (each view weighs the
events up to its position; about 1 KiB of memory each): a view of a larger log is built
for its request and not kept. Without it, a reader asking for past views of a log of
200,000 events grew the process by a gigabyte every four views."""
FREEZE_FROM = 10_000
"""A start that loads at least this many facts freezes the heap (`gc.freeze`) once loaded."""
MERGE_AT_MOST = 10_000
"""A tail of fewer events after a refused one is merged into the live state (`Live.merge`)
instead of rebuilding from the whole log."""
WARM_PASSES = 3
"""Appends that land while the start derives make a newer live view: derive that one too,
up to this many times (each pass carries what the last derived, see `Live.projections`)."""
SNAPSHOT_SHARE = 10
"""A snapshot is due after `snapshot_every` events, or `position // SNAPSHOT_SHARE` if more."""
log = structlog.get_logger("projector")


def build_view(events: EventLog, spec: ViewSpec, upto: int | None = None) -> Projections:
    """The view `spec` of the log up to `upto` (None: all of it), built from zero.

    Through the lean read of a replay where the log has one (SQLite's `iter_replay`: the
    columns the folds need, decoded), else its whole events.
    """
    lean = getattr(events, "iter_replay", None)
    if lean is not None:
        return build_replayed(lean(upto=upto), spec)
    return build(events.iter_events(upto=upto), spec)


class Projector:
    """Keeps `Live` equal to a from-zero replay of the log, and answers past views."""

    def __init__(
        self, events: EventLog, snapshot_path: str | Path | None, snapshot_every: int
    ) -> None:
        self.events = events
        self.snapshot_path = Path(snapshot_path) if snapshot_path else None
        self.snapshot_every = snapshot_every
        self._lock = threading.Lock()
        self._views: LRU[tuple[ViewSpec, int], Projections] = LRU(_CACHE_SIZE, VIEWS_BUDGET)
        self._building = threading.Lock()
        self._began = time.perf_counter()
        loaded = self._load()
        self.live = loaded or Live()
        self._snapshotted = self.live.position  # of the last snapshot begun
        self._written = -1 if loaded is None else loaded.position  # of the one on disk
        self._writer: threading.Thread | None = None
        self.warmed = threading.Event()
        """Set once `warm` has derived the live view's answers (or failed to, logged)."""
        self.catch_up()

    def warm(self) -> None:
        """Derive every answer and digest of the live view now, then set `warmed`.

        What the first request of each projection would otherwise derive (at 50,000 events
        0.16-0.44 s each); again for a newer live view if appends landed meanwhile (at most
        `WARM_PASSES` times, each pass carrying what the last derived). Then, for a large
        state, the heap is frozen: the state and the answers live on and hold no reference
        cycles, so out of the collector's generations a full collection need not walk them
        again (at 50,000 events such a walk took about 0.1 s); objects frozen are still
        freed when no longer referenced, only cycles among them would be kept, so the
        garbage of the start is collected first.
        """
        try:
            for _ in range(WARM_PASSES):
                answers = self.catch_up()
                answers.derive().digests()
                if self.catch_up() is answers:
                    break  # no append landed meanwhile: the live view is the one derived
            if len(self.live.state.facts) >= FREEZE_FROM:
                gc.collect()
                gc.freeze()
            log.info(
                "projections ready",
                position=self.live.position,
                seconds=round(time.perf_counter() - self._began, 3),
            )
        except Exception as exc:  # noqa: BLE001 - a thread's failure is logged, never lost
            log.warning("projections not derived at start", error=str(exc))
        finally:
            self.warmed.set()

    def start_warming(self) -> threading.Thread:
        """`warm` on a thread of its own (the service listens and appends meanwhile)."""
        thread = threading.Thread(target=self.warm, name="ledger-warm", daemon=True)
        thread.start()
        return thread

    @property
    def position(self) -> int:
        """The position the live state has folded up to."""
        return self.live.position

    def _load(self) -> Live | None:
        if self.snapshot_path is None or not self.snapshot_path.exists():
            return None
        try:
            live = load_snapshot(
                self.snapshot_path.read_bytes(), anchor_at=partial(hash_at, self.events)
            )
        except (OSError, StoreError) as exc:  # the file, or the log's row it is anchored to
            log.warning(
                "snapshot unreadable, replaying from zero",
                path=str(self.snapshot_path),
                error=str(exc),
            )
            return None
        if live is not None:
            log.info("snapshot loaded", position=live.position, path=str(self.snapshot_path))
        return live

    def catch_up(self) -> Projections:
        """Fold every committed event not yet folded; rebuild when one lands in the past."""
        if self.events.head() == self.live.position:
            return self.live.projections()
        with self._lock:
            live = self.live
            events = self.events.iter_events(after=live.position)
            for event in events:
                if not live.apply(event):
                    # a backdated event, a correction or a retraction: select again in memory
                    # with the rest of a short tail, or rebuild from the log after a long one
                    # (read no more of it than a short one holds)
                    tail = [event, *islice(events, MERGE_AT_MOST)]
                    short = live.position > 0 and len(tail) <= MERGE_AT_MOST
                    if not (short and live.merge(tail)):
                        self._rebuild(live)
                    break
            self.live = live
            if self._snapshot_due(live.position):
                self._write_in_background(live)
            return live.projections()

    def view(self, spec: ViewSpec, head: int | None = None) -> Projections:
        """The projections at a view: live for the empty view, else built from the log, cached.

        A past view without `at_position` is built up to `head` (default: the head now).
        """
        if spec == ViewSpec():
            return self.catch_up()
        if spec.at_position is not None:
            upto = spec.at_position
        else:
            upto = head if head is not None else self.events.head()
        key = (spec, upto)  # a view at a fixed position never changes; others move with the head
        cached = self._views.get(key)
        if cached is not None:
            return cached
        with self._building:  # one past view built at a time: memory stays bounded
            cached = self._views.get(key)  # built meanwhile by the request before
            if cached is None:
                cached = build_view(self.events, spec, upto)
                self._views.put(key, cached, weight=max(1, upto))
        return cached

    def _rebuild(self, live: Live) -> None:
        """Rebuild the live state from the whole log, through the lean read if the log has one."""
        lean = getattr(self.events, "iter_replay", None)
        if lean is not None:
            live.rebuild_replayed(lean())
        else:
            live.rebuild(self.events.iter_events())

    def snapshot(self) -> None:
        """Write a snapshot of the live state now (on clean shutdown, say), and wait for it.

        A snapshot being written in the background is finished first; if it is of the
        position now, it is not written again.
        """
        with self._lock:
            writer = self._writer
            if writer is not None:
                writer.join()
            if self.snapshot_path is not None and self._written != self.live.position:
                captured = self.live.capture()
                self._write(captured, self._anchor(captured.position))

    def _snapshot_due(self, position: int) -> bool:
        every = self.snapshot_every
        if not every or self.snapshot_path is None:
            return False
        return position - self._snapshotted >= max(every, position // SNAPSHOT_SHARE)

    def _write_in_background(self, live: Live) -> None:
        """Begin a snapshot of the live state now on a thread, unless one is being written."""
        if self._writer is not None and self._writer.is_alive():
            return  # due again at the next fold, until that one is done
        captured = live.capture()
        self._snapshotted = captured.position  # a failed write is tried again a period later
        try:  # here: the writer thread reads no log
            anchor = self._anchor(captured.position)
        except StoreError as exc:  # a periodic snapshot never fails the fold (or read) it follows
            log.warning("snapshot not written", position=captured.position, error=str(exc))
            return
        self._writer = threading.Thread(
            target=self._write_logged,
            args=(captured, anchor),
            name="ledger-snapshot",
            daemon=True,
        )
        self._writer.start()

    def _anchor(self, position: int) -> str:
        """The log's chain hash at `position`, read on this thread's connection."""
        anchor = hash_at(self.events, position)
        if anchor is None:  # the log is shorter than the state: it cannot be (a log never shrinks)
            msg = f"the log has no position {position}"
            raise StoreError(msg)
        return anchor

    def _write_logged(self, captured: Captured, anchor: str) -> None:
        try:
            self._write(captured, anchor)
        except Exception as exc:  # noqa: BLE001 - a thread's failure is logged, never lost
            log.warning("snapshot not written", position=captured.position, error=str(exc))

    def _write(self, captured: Captured, anchor: str) -> None:
        """Write a snapshot durably: a synced temporary file, renamed over the last one."""
        if self.snapshot_path is None:
            return
        target = self.snapshot_path
        if is_sqlite(target):  # a setting pointing at the database: never replace a ledger
            msg = f"{target} is a SQLite database, not a snapshot: not replaced"
            raise StoreError(msg)
        data = dump_snapshot(captured, anchor=anchor)
        remove_stale(target, ".tmp")  # of writers killed half way
        tmp = temporary_path(target)
        try:
            with tmp.open("wb") as file:
                file.write(data)
                file.flush()
                os.fsync(file.fileno())
            tmp.replace(target)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        self._written = captured.position
        log.info("snapshot written", position=captured.position, bytes=len(data))


def temporary_path(target: Path) -> Path:
    """Where a snapshot is written before it is renamed to `target`: a name per process.

    (Two servers on one database must not write one temporary file; one process writes
    one snapshot at a time.)
    """
    return own_path(target, ".tmp")
