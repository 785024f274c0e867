"""The running ledger: settings, the log, tokens and the live projections, opened together."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from functools import partial
from typing import NamedTuple

import structlog
from prometheus_client import Counter

from events.awaitable import AwaitableAppend
from events.envelope import AppendResult, NewEvent, VerifyResult
from events.errors import ConflictError, LedgerError
from events.log import EventLog
from events.sqlite import SQLiteEventLog
from events.writer_process import ProcessWriter
from service import metrics
from service.cache import LRU
from service.coalesce import Coalesced
from service.follower import Follower
from service.projector import Projector
from service.settings import Settings
from service.store import open_log
from service.tokens import TokenStore

_outcomes: dict[str, Counter] = {}


def _outcome(name: str) -> Counter:
    """The `ledger_appends` series of an outcome, found once (`labels` costs a lookup each time)."""
    series = _outcomes.get(name)
    if series is None:
        series = _outcomes[name] = metrics.APPENDS.labels(name)
    return series


def _count(result: AppendResult) -> AppendResult:
    if result.replayed:
        _outcome("replayed").inc()
    else:
        _outcome("appended").inc()
        metrics.APPENDED.inc(len(result.events))
    return result


def _count_error(error: BaseException) -> None:
    if isinstance(error, LedgerError):
        _outcome("conflict" if isinstance(error, ConflictError) else "error").inc()


def _count_outcome(done: asyncio.Future[AppendResult]) -> None:
    """Count an awaited append's outcome, whether or not its request still waits for it."""
    if done.cancelled():
        return
    error = done.exception()
    if error is None:
        _count(done.result())
    else:
        _count_error(error)


class CachedAnswer(NamedTuple):
    """A projection answer encoded once: its ETag, its body and the route that made it."""

    etag: str
    body: bytes
    route: str
    """The route's path template (`/v1/partnerships/{org_a}/{org_b}`): a metrics label."""
    link: str | None = None
    """A page's next page (a list route asked for pages): its URL, for the `Link` header."""


class Ledger:
    """Everything a request handler needs, created once by the app's lifespan."""

    def __init__(self, settings: Settings, log: EventLog | None = None) -> None:
        self.settings = settings
        self.log = log if log is not None else open_log(settings)
        try:
            self.tokens = TokenStore(settings.database)
            self.projector = Projector(self.log, settings.snapshot_file, settings.snapshot_every)
        except BaseException:
            self.log.close()
            raise
        self.answers: LRU[tuple[str, bytes, int], CachedAnswer] = LRU(512)
        """ETag and encoded answer by path, query and log position: a view is encoded once."""
        self._writer = self._process_writer(settings)
        self._awaitable: AwaitableAppend | None = self._writer
        if self._awaitable is None and isinstance(self.log, AwaitableAppend):
            self._awaitable = self.log
        self.awaitable = self._awaitable is not None
        """Whether an append is committed without a thread waiting for it (SQLite)."""
        self.ready = True
        try:
            metrics.bind(self, self.log.head, lambda: self.projector.position)
            self.projector.start_warming()  # ready once done; appends are taken meanwhile
            self.follower = Follower(self.projector)
        except BaseException:
            if self._writer is not None:
                self._writer.close()  # no writer process outlives a start that failed
            raise
        self.verification = Coalesced(self._verify)
        """`GET /v1/audit/verify`: one pass over the log at a time, shared by those waiting."""

    @property
    def writing(self) -> bool:
        """Whether appends can be taken: no writer process, or one that is up."""
        return self._writer is None or self._writer.alive

    def _process_writer(self, settings: Settings) -> ProcessWriter | None:
        """The writer process of a SQLite log, if the settings ask for one (else None)."""
        if settings.writer != "process" or not isinstance(self.log, SQLiteEventLog):
            return None
        try:
            return ProcessWriter(str(self.log.path), self.log.synchronous)
        except BaseException:
            self.tokens.close()
            self.log.close()
            raise

    def _verify(self) -> VerifyResult:
        """The log's own verification, looked up when it runs (not bound when made)."""
        return self.log.verify()

    async def append_awaited(
        self, batch: Sequence[NewEvent], expected_versions: Mapping[str, int] | None
    ) -> AppendResult:
        """`append` for a request handler on the event loop: no thread waits for the commit.

        A log that can be awaited (SQLite) commits the batch with its group on its writer
        thread; any other log's `append` runs in the loop's default executor. Once queued, a
        batch is committed even if the request is cancelled (a client gone, a server past
        its graceful-shutdown time): the outcome is counted when the commit ends, not when
        the handler resumes, and a client that did not hear back retries with the same
        `event_id`s (an idempotent replay answers with the original positions).
        """
        pending: asyncio.Future[AppendResult]
        if self._awaitable is not None:
            try:
                pending = self._awaitable.append_future(batch, expected_versions)
            except BaseException as exc:  # not queued (a closed log): counted, then raised
                _count_error(exc)
                raise
        else:
            call = partial(self.log.append, batch, expected_versions)
            pending = asyncio.get_running_loop().run_in_executor(None, call)
        pending.add_done_callback(_count_outcome)
        pending.add_done_callback(self._nudge)
        return await asyncio.shield(pending)

    def _nudge(self, _done: asyncio.Future[AppendResult]) -> None:
        self.follower.nudge()  # the live state folds it without waiting for a read

    def close(self) -> None:
        """Finish the appends in flight, write a snapshot, close the store."""
        self.ready = False
        if self._writer is not None:
            self._writer.close()  # its appends in flight committed: then the snapshot
        self.follower.stop()
        try:
            self.projector.catch_up()
            self.projector.snapshot()
        except (OSError, LedgerError) as exc:  # the log holds it all: the next start replays
            structlog.get_logger("service").warning("snapshot not written on close", error=str(exc))
        finally:
            metrics.unbind(self)
            self.log.close()
            self.tokens.close()
