"""The abstract base of the suite: the backend's two hooks, the `log` fixture, the empty log."""

from __future__ import annotations

import abc
from collections.abc import Iterator
from pathlib import Path

import pytest

from conformance.builders import Opener
from events.errors import InvalidEvent
from events.log import EventLog


class ConformanceBase(abc.ABC):
    """What a backend gives the suite (`make_log`, `opener`), and the protocol on an empty log."""

    @abc.abstractmethod
    def make_log(self, tmp_path: Path) -> EventLog:
        """A new, empty log of the backend."""

    @abc.abstractmethod
    def opener(self, log: EventLog) -> Opener:
        """A picklable callable opening another handle on the same store as `log`."""

    def open_again(self, log: EventLog) -> EventLog:
        """Another handle on the same store (closed by the caller)."""
        return self.opener(log)()

    @pytest.fixture
    def log(self, tmp_path: Path) -> Iterator[EventLog]:
        """A new, empty log, closed after the test."""
        log = self.make_log(tmp_path)
        try:
            yield log
        finally:
            log.close()

    def test_is_an_event_log(self, log: EventLog) -> None:
        """The backend implements the `EventLog` protocol."""
        assert isinstance(log, EventLog)

    def test_empty_log(self, log: EventLog) -> None:
        """A new log has head 0, reads nothing and verifies."""
        assert log.head() == 0
        assert log.read() == []
        assert list(log.iter_events()) == []
        result = log.verify()
        assert (result.ok, result.head, result.checked) == (True, 0, 0)

    def test_empty_batch_is_refused(self, log: EventLog) -> None:
        """A batch without events is invalid."""
        with pytest.raises(InvalidEvent):
            log.append([])
        assert log.head() == 0
