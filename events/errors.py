"""The domain errors of the log, mapped to HTTP status codes and exit codes at the edges."""

from __future__ import annotations


class LedgerError(Exception):
    """Base of every error the ledger raises on purpose."""


class InvalidEvent(LedgerError):
    """An event (or a batch) that does not validate; `path` is the JSON path of the bad field."""

    def __init__(self, message: str, path: str = "$") -> None:
        super().__init__(f"{message} - at `{path}`")
        self.message = message
        self.path = path

    def under(self, prefix: str) -> InvalidEvent:
        """The same error with its path placed under `prefix` (e.g. `$.events[2]`)."""
        return InvalidEvent(self.message, prefix + self.path[1:])


class ConflictError(LedgerError):
    """A write that contradicts what is stored: nothing of its batch was written."""


class VersionConflict(ConflictError):
    """A stream's current version is not the one the client expected."""

    def __init__(self, stream: str, expected: int, actual: int) -> None:
        super().__init__(f"stream {stream!r} is at version {actual}, the batch expected {expected}")
        self.stream = stream
        self.expected = expected
        self.actual = actual


class IdempotencyConflict(ConflictError):
    """An `event_id` already stored with other content."""

    def __init__(self, event_id: str, detail: str = "other content") -> None:
        super().__init__(f"event {event_id} is already stored with {detail}")
        self.event_id = event_id


class TargetConflict(ConflictError):
    """A correction or retraction of an unknown, wrong-kind or already retracted event.

    `index`: the correction's or retraction's place in its batch, when known.
    """

    def __init__(self, message: str, index: int | None = None) -> None:
        super().__init__(message)
        self.index = index


class StoreError(LedgerError):
    """The store could not do what was asked (disk full, I/O error); nothing partial was kept."""


class NotALedger(StoreError):
    """A file that is not a ledger database."""


class SchemaTooNew(StoreError):
    """A ledger database written by a newer version of the code."""


class CorruptEvent(StoreError):
    """A stored row that no longer decodes: changed outside the ledger, or stored old.

    Stored by a version that took what this one refuses (a value ending in a newline, say).
    """

    def __init__(self, position: int, reason: str) -> None:
        super().__init__(
            f"the stored event at position {position} does not decode ({reason}):"
            " the database was changed outside the ledger, or an older version stored what"
            " this one refuses; `ledger verify` tells which (the chain holds in the second case)"
        )
        self.position = position


class ChainBroken(LedgerError):
    """A hash chain that does not verify (on import, say); `position` is the first bad one."""

    def __init__(self, position: int, reason: str) -> None:
        super().__init__(f"hash chain broken at position {position}: {reason}")
        self.position = position
        self.reason = reason
