"""The running ledger: settings, the log, tokens and the live projections, opened together."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import NamedTuple

from events.envelope import AppendResult, NewEvent
from events.errors import ConflictError, LedgerError
from events.log import EventLog
from service import metrics
from service.cache import LRU
from service.projector import Projector
from service.settings import Settings
from service.store import open_log
from service.tokens import TokenStore


class CachedAnswer(NamedTuple):
    """A projection answer encoded once: its ETag, its body and the route that made it."""

    etag: str
    body: bytes
    route: str
    """The route's path template (`/v1/partnerships/{org_a}/{org_b}`): a metrics label."""


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
        self.ready = True
        metrics.bind(self.log.head, lambda: self.projector.position)

    def append(
        self, batch: Sequence[NewEvent], expected_versions: Mapping[str, int] | None
    ) -> AppendResult:
        """Append through the log, counting the outcome."""
        try:
            result = self.log.append(batch, expected_versions)
        except ConflictError:
            metrics.APPENDS.labels("conflict").inc()
            raise
        except LedgerError:
            metrics.APPENDS.labels("error").inc()
            raise
        if result.replayed:
            metrics.APPENDS.labels("replayed").inc()
        else:
            metrics.APPENDS.labels("appended").inc()
            metrics.APPENDED.inc(len(result.events))
        return result

    def close(self) -> None:
        """Finish the appends in flight, write a snapshot, close the store."""
        self.ready = False
        try:
            self.projector.catch_up()
            self.projector.snapshot()
        finally:
            self.log.close()
            self.tokens.close()
