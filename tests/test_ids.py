"""The ids the ledger makes: UUIDv7, strictly increasing within a process (RFC 9562 6.2)."""

from __future__ import annotations

import time
import uuid

import pytest

from events import ids
from events.ids import uuid7


def test_ids_made_in_one_millisecond_still_sort_in_creation_order() -> None:
    """10,000 ids in a tight loop (many per millisecond): unique and strictly increasing."""
    made = [uuid7() for _ in range(10_000)]
    assert made == sorted(made)
    assert len(set(made)) == len(made)
    prefixes = {value[:13] for value in made}
    assert len(prefixes) < len(made)  # several shared a millisecond, and still sorted


def test_an_id_is_a_version_7_uuid_of_now() -> None:
    """Version 7, RFC 4122 variant, and its 48-bit prefix is the clock's milliseconds."""
    before = time.time_ns() // 1_000_000
    value = uuid.UUID(uuid7())
    after = time.time_ns() // 1_000_000
    assert value.version == 7
    assert value.variant == uuid.RFC_4122
    assert before <= value.int >> 80 <= after


def test_a_clock_that_steps_back_does_not_reorder(monkeypatch: pytest.MonkeyPatch) -> None:
    """If the clock goes back (NTP), ids go on increasing from the last one."""
    first = uuid7()
    now = time.time_ns()
    monkeypatch.setattr(ids.time, "time_ns", lambda: now - 60_000_000_000)  # a minute back
    later = [uuid7() for _ in range(100)]
    assert [first, *later] == sorted([first, *later])
    assert len({first, *later}) == 101
