"""Snapshots of live state: bytes to store, and back, refused when stale or damaged.

A snapshot is MessagePack:
`{"version", "payload_versions", "position", "anchor", "checksum", "body"}`.
`body` holds the fold state's facts (corrected data included), the corrections applied,
the head position and the frontier, and what `Live.merge` selects again from (the
corrections and retractions seen, and the corrected facts as they were);
`checksum` is the SHA-256 of the body's bytes, the position and the anchor (`_checksum`);
`payload_versions` the schema version of
each payload type the facts were decoded at,
so a snapshot written before an upcaster was added is refused rather than misread;
`anchor` the chain hash of the log at `position`, so a snapshot of another log (a file
left beside a database since replaced, say) or of a log since cut short is refused
rather than trusted: the reader says which hash its log has there. The
facts decode in one pass (arrays tagged by their type); the state's indexes are refolded
on load. Storing the bytes is the service's job.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from contextvars import ContextVar
from typing import Any, Final, Union

import msgspec
import structlog

from events.payloads import PAYLOAD_TYPES
from events.upcasters import current_version
from projections.gcpause import paused_gc
from projections.live import Captured, Live
from projections.selection import RECORD_CLASSES, Record
from projections.state import FACT_TYPES, Fact, SortKey, fold_all, scan_order

SNAPSHOT_VERSION: Final = 6
"""The snapshot format; bump it on any change of the fold state's schema."""


class _Body(msgspec.Struct, frozen=True, kw_only=True):
    position: int
    frontier: SortKey | None
    corrected: dict[str, str]
    facts: msgspec.Raw  # list[Fact], encoded by `encode_array`
    records: list[Record]
    withheld: list[Fact]


_BodyIn: Any = msgspec.defstruct(
    "_BodyIn",
    [
        ("position", int),
        ("frontier", SortKey | None),
        ("corrected", dict[str, str]),
        ("facts", list[Union[tuple(FACT_TYPES.values())]]),  # type: ignore[misc]  # noqa: UP007 - built at run time
        ("records", list[Union[tuple(RECORD_CLASSES.values())]]),  # type: ignore[misc]  # noqa: UP007 - built at run time
        ("withheld", list[Union[tuple(FACT_TYPES.values())]]),  # type: ignore[misc]  # noqa: UP007 - built at run time
    ],
    frozen=True,
    kw_only=True,
    forbid_unknown_fields=True,
)


class _Envelope(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    version: int
    payload_versions: dict[str, int]
    checksum: str
    body: msgspec.Raw
    position: int = 0  # absent before version 5, which then fails on its version
    anchor: str = ""


_ENCODER = msgspec.msgpack.Encoder()
_ENVELOPE = msgspec.msgpack.Decoder(_Envelope)
_BODY: msgspec.msgpack.Decoder[Any] = msgspec.msgpack.Decoder(_BodyIn)


_CHUNK = 4_096
"""Items encoded per call by `encode_array`: between calls, other threads may run."""


def encode_array(items: Sequence[Any]) -> msgspec.Raw:
    """`items` as one MessagePack array, the same bytes as encoding the list whole.

    Encoded `_CHUNK` items at a time, each chunk's own array header cut off and one header
    for all put in front: one encoder call holds the interpreter lock throughout, so a
    whole state encoded at once (a snapshot written on a thread) would stall every other
    thread, requests included, for as long as it takes.
    """
    count = len(items)
    if count < 16:  # fixarray
        header = bytes([0x90 | count])
    elif count < 1 << 16:  # array 16
        header = b"\xdc" + count.to_bytes(2, "big")
    else:  # array 32
        header = b"\xdd" + count.to_bytes(4, "big")
    parts = [header]
    for start in range(0, count, _CHUNK):
        chunk = _ENCODER.encode(items[start : start + _CHUNK])
        parts.append(chunk[1 if chunk[0] & 0xF0 == 0x90 else 3 if chunk[0] == 0xDC else 5 :])
    return msgspec.Raw(b"".join(parts))


def _payload_versions() -> dict[str, int]:
    return {name: current_version(name) for name in sorted(PAYLOAD_TYPES)}


def dump_snapshot(live: Live | Captured, *, anchor: str = "") -> bytes:
    """The bytes of a live state's snapshot (of a `Live` now, or as `Live.capture` took it).

    `anchor`: the chain hash of the log at the state's position (`GENESIS` at 0); a
    state of no log (a test's) has none.
    """
    captured = live.capture() if isinstance(live, Live) else live
    body = _ENCODER.encode(
        _Body(
            position=captured.position,
            frontier=captured.frontier,
            corrected=captured.corrected,
            facts=encode_array(captured.facts()),
            records=captured.records,
            withheld=captured.withheld,
        )
    )
    envelope = _Envelope(
        version=SNAPSHOT_VERSION,
        payload_versions=_payload_versions(),
        position=captured.position,
        anchor=anchor,
        checksum=_checksum(body, captured.position, anchor),
        body=msgspec.Raw(body),
    )
    return _ENCODER.encode(envelope)


def _checksum(body: bytes, position: int, anchor: str) -> str:
    """SHA-256 of the body, then the position and the anchor it is checked against."""
    return hashlib.sha256(body + f"\n{position}\n{anchor}".encode()).hexdigest()


_REJECTION: ContextVar[str | None] = ContextVar("snapshot_rejection", default=None)


def last_rejection() -> str | None:
    """Why this context's last `load_snapshot` gave None (`reason: error`), if it did."""
    return _REJECTION.get()


def _reject(reason: str, **details: object) -> None:
    structlog.get_logger().warning("snapshot_rejected", reason=reason, **details)
    said = ", ".join(
        str(value) if key == "error" else f"{key} {value}"
        for key, value in details.items()
        if value is not None
    )
    _REJECTION.set(f"{reason} ({said})" if said else reason)


def _checked_body(
    data: bytes, anchor_at: Callable[[int], str | None] | None
) -> tuple[bytes, int] | None:
    """The body and position of a snapshot of this version and log whose checksum holds.

    Every refusal is logged. `anchor_at(position)`: the log's chain hash there, or None
    past its head; no `anchor_at`: a state of no log, not checked against one.
    """
    try:
        envelope = _ENVELOPE.decode(data)
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        _reject("undecodable", error=str(exc))
        return None
    body = bytes(envelope.body)
    refusal = _refusal(envelope, body)
    if refusal is None and anchor_at is not None:
        anchor = anchor_at(envelope.position)
        if anchor is None:
            refusal = "ahead of the log"
        elif anchor != envelope.anchor:
            refusal = "another log"
    if refusal is not None:
        found = {"version": envelope.version, "payload_versions": envelope.payload_versions}
        _reject(refusal, position=envelope.position, found=found.get(refusal))
        return None
    return body, envelope.position


def _refusal(envelope: _Envelope, body: bytes) -> str | None:
    """Why a snapshot's envelope cannot be used by this code, if it cannot."""
    if envelope.version != SNAPSHOT_VERSION:
        return "version"
    if envelope.payload_versions != _payload_versions():
        return "payload_versions"
    if _checksum(body, envelope.position, envelope.anchor) != envelope.checksum:
        return "checksum"
    return None


def load_snapshot(
    data: bytes, *, anchor_at: Callable[[int], str | None] | None = None
) -> Live | None:
    """The live state a snapshot holds, or None (with a warning logged) if it is unusable.

    Unusable: another `SNAPSHOT_VERSION` or payload schema versions, a checksum that does
    not match, a position past the log's head or an anchor that is not the log's chain
    hash there (`anchor_at(position)`), or content that does not decode or does not hold
    together.
    """
    _REJECTION.set(None)
    checked = _checked_body(data, anchor_at)
    if checked is None:
        return None
    body, position = checked
    with paused_gc():  # one pause for the whole load: it only allocates what it keeps
        try:
            decoded = _BODY.decode(body)
        except (msgspec.DecodeError, msgspec.ValidationError) as exc:
            _reject("undecodable", error=str(exc))
            return None
        facts: list[Fact] = decoded.facts
        if decoded.position != position:  # the anchor was checked at the envelope's position
            _reject("inconsistent", error="the body's position is not the envelope's")
            return None
        if not _in_order(facts, decoded.frontier):
            _reject("inconsistent", error="facts out of valid-time order or frontier mismatch")
            return None
        state = fold_all(facts)
    state.corrected = dict(decoded.corrected)
    return Live(
        state,
        position=decoded.position,
        frontier=decoded.frontier,
        records=decoded.records,
        withheld=decoded.withheld,
    )


def _in_order(facts: list[Fact], frontier: SortKey | None) -> bool:
    """Whether the facts are in strictly increasing valid-time order, the last at `frontier`."""
    ordered, last = scan_order(facts, strict=True)
    return ordered and last == frontier
