"""What the conformance suite builds its cases from: valid events, payloads, thread runs.

Also imported by other test modules (`from conformance import event, site, ...`).
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Mapping
from decimal import Decimal
from typing import Any

import msgspec

from events.envelope import NewEvent, Source
from events.ids import uuid7
from events.log import EventLog
from events.payloads import (
    AnyPayload,
    EventCorrected,
    EventRetracted,
    Location,
    Money,
    OrganizationRegistered,
    SiteAcquired,
)

SOURCE = Source(url="urn:test:conformance", quote="The sentence that supports it.")
Opener = Callable[[], EventLog]


def event(  # noqa: PLR0913 - the envelope's fields
    stream: str,
    data: AnyPayload | None = None,
    *,
    event_id: str | None = None,
    occurred_on: str = "2024-05-31",
    sequence: int | None = None,
    source: Source = SOURCE,
) -> NewEvent:
    """A valid new event; by default an organization with a unique id."""
    if data is None:
        slug = uuid7()
        data = OrganizationRegistered(id=f"org-{slug}", name=f"Organization {slug}")
    return NewEvent(
        event_id=event_id or uuid7(),
        stream=stream,
        type=data.TYPE,
        occurred_on=occurred_on,
        sequence=sequence,
        data=data,
        source=source,
    )


def site(name: str = "east-syracuse", amount: str = "160000000") -> SiteAcquired:
    """A site acquisition with a price, the payload that corrections in this suite target."""
    return SiteAcquired(
        site=name,
        name="Former production facility",
        location=Location(city="East Syracuse", region="New York", country="US"),
        acquirer="lotte-biologics",
        seller="bristol-myers-squibb",
        price=Money(amount=Decimal(amount), currency="USD"),
    )


def correction(target: str, replacement: Mapping[str, Any], stream: str = "record") -> NewEvent:
    """A correction of `target` by `replacement` (plain JSON values)."""
    data = EventCorrected(corrects=target, replacement=dict(replacement), reason="a typo")
    return event(stream, data)


def retraction(target: str, stream: str = "record") -> NewEvent:
    """A retraction of `target`."""
    return event(stream, EventRetracted(retracts=target, reason="not true"))


def site_builtins(amount: str = "160000000") -> dict[str, Any]:
    """The plain JSON values of `site()`, for building replacements."""
    value: dict[str, Any] = msgspec.to_builtins(site(amount=amount))
    return value


def all_events(log: EventLog) -> list[Any]:
    """Every event of the log, in order, through `read` pages."""
    out: list[Any] = []
    while page := log.read(after=out[-1].position if out else 0, limit=500):
        out.extend(page)
    return out


def run_threads(work: Callable[[int], None], count: int) -> None:
    """Run `work(i)` on `count` threads and re-raise the first failure."""
    failures: queue.SimpleQueue[BaseException] = queue.SimpleQueue()

    def guarded(index: int) -> None:
        try:
            work(index)
        except BaseException as exc:  # noqa: BLE001 - handed to the test's thread
            failures.put(exc)

    threads = [threading.Thread(target=guarded, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not any(t.is_alive() for t in threads), "a worker thread hung"
    if not failures.empty():
        raise failures.get()
