"""What an import checks beyond the hashes: the rules `append` keeps, one line at a time.

The chain proves that an export was not changed after it was written, not that what was
written could have been appended: hashes are computed, not signed, so an export made by
hand (or by a bug) can carry a valid chain over rows that `append` would refuse. Each row
of an import is held to the envelope's own types and to what the log guarantees as it
grows: ids used once, stream versions 1, 2, 3 … per stream, `recorded_at` in the
ledger's own form and never going back, and corrections and retractions naming an
earlier announcement, retracted at most once.

A `recorded_at` ahead of this machine's clock is taken as it is: a ledger whose clock once
ran fast stamps every later append at least that late (`recorded_at` never goes back),
and its export must still import. After such an import the appends are stamped the same
way, as they were on the ledger exported.
"""

from __future__ import annotations

import re
import sys
from typing import Any

import msgspec

from events.dates import parse_partial_date
from events.envelope import Sequence, StreamName
from events.errors import InvalidEvent
from events.payloads import RECORD_TYPES, EventId, EventRetracted
from events.rows import Row

_RECORDED_AT = re.compile(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{6}Z$")


def _typed(value: object, kind: Any, path: str) -> None:  # noqa: ANN401 - an Annotated type
    try:
        msgspec.convert(value, kind)
    except msgspec.ValidationError as exc:
        raise InvalidEvent(str(exc), path) from None


class ImportChecks:
    """The state of an import so far, and the rules each next row must keep."""

    def __init__(self) -> None:
        # about 300 bytes an event (its id, its type, its stream's version): 300 MB at 1M
        self._versions: dict[str, int] = {}
        self._types: dict[str, str] = {}
        self._retracted: set[str] = set()
        self._last_recorded = ""

    def check(self, row: Row, target: str | None) -> None:
        """`InvalidEvent` naming the field if `row` could not have been appended next."""
        self._envelope(row)
        if row.event_id in self._types:
            msg = f"event_id {row.event_id} is used twice"
            raise InvalidEvent(msg, "$.event_id")
        expected = self._versions.get(row.stream, 0) + 1
        if row.stream_version != expected:
            msg = f"stream {row.stream} has version {row.stream_version} where {expected} is next"
            raise InvalidEvent(msg, "$.stream_version")
        if row.recorded_at < self._last_recorded:
            msg = f"recorded_at {row.recorded_at} is before the row above ({self._last_recorded})"
            raise InvalidEvent(msg, "$.recorded_at")
        if target is not None:
            self._record(row, target)
        self._types[row.event_id] = sys.intern(row.type)
        self._versions[row.stream] = row.stream_version
        self._last_recorded = row.recorded_at

    @staticmethod
    def _envelope(row: Row) -> None:
        _typed(row.event_id, EventId, "$.event_id")
        _typed(row.stream, StreamName, "$.stream")
        if row.sequence is not None:
            _typed(row.sequence, Sequence, "$.sequence")
        try:
            parse_partial_date(row.occurred_on)
        except ValueError as exc:
            raise InvalidEvent(str(exc), "$.occurred_on") from None
        if not _RECORDED_AT.fullmatch(row.recorded_at):
            msg = f"recorded_at {row.recorded_at!r} is not of the form 2024-05-31T09:00:00.000000Z"
            raise InvalidEvent(msg, "$.recorded_at")

    def _record(self, row: Row, target: str) -> None:
        """A correction or retraction: of an earlier announcement, retracted at most once."""
        target_type = self._types.get(target)
        if target_type is None:
            msg = f"{row.type} of {target}, which no earlier row holds"
            raise InvalidEvent(msg, "$.data")
        if target_type in RECORD_TYPES:
            msg = f"{row.type} of {target}, itself a {target_type}"
            raise InvalidEvent(msg, "$.data")
        if row.type == EventRetracted.TYPE:
            if target in self._retracted:
                msg = f"a second retraction of {target}"
                raise InvalidEvent(msg, "$.data")
            self._retracted.add(target)
