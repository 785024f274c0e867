"""Shared fixtures: a database path, an open SQLite log, and a quick maker of valid events."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from events.envelope import NewEvent, Source
from events.payloads import AnyPayload, OrganizationRegistered
from events.sqlite import SQLiteEventLog

pytest.register_assert_rewrite("conformance")

from conformance import event  # noqa: E402 - after its assertions are set to be rewritten

_counter = itertools.count(1)

TEST_SOURCE = Source(url="urn:test:conftest", quote="A sentence that supports the fact.")


def make_new_event(  # noqa: PLR0913 - the envelope's fields, all optional
    stream: str = "test-stream",
    *,
    data: AnyPayload | None = None,
    event_id: str | None = None,
    occurred_on: str = "2024-05-31",
    sequence: int | None = None,
    source: Source = TEST_SOURCE,
) -> NewEvent:
    """A valid `NewEvent`; by default a fresh organization, so two calls never share content."""
    if data is None:
        n = next(_counter)
        data = OrganizationRegistered(id=f"org-{n}", name=f"Organization {n}", country="KR")
    return event(
        stream,
        data,
        event_id=event_id,
        occurred_on=occurred_on,
        sequence=sequence,
        source=source,
    )


MakeEvent = Callable[..., NewEvent]


@pytest.fixture
def make_event() -> MakeEvent:
    """The maker of valid events (`make_event(stream, data=..., event_id=...)`)."""
    return make_new_event


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    """A path for a new ledger database in the test's temporary directory."""
    return tmp_path / "ledger.db"


@pytest.fixture
def fresh_log(db_path: Path) -> Iterator[SQLiteEventLog]:
    """An open, empty SQLite event log, closed after the test."""
    log = SQLiteEventLog(db_path)
    try:
        yield log
    finally:
        log.close()
