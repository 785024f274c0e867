"""The backend-neutral rules of an append: ids, idempotency, versions, corrections, the chain.

A backend gives a `Lookup` over its open write transaction; `plan` decides what to write
(or raises), so every backend applies exactly the same rules.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import NamedTuple, Protocol

import msgspec

from events.codec import CANONICAL, convert_payload
from events.envelope import AppendResult, Committed, NewEvent
from events.errors import IdempotencyConflict, InvalidEvent, TargetConflict, VersionConflict
from events.header import header_error
from events.intake import check_rules
from events.payloads import RECORD_TYPES, EventCorrected, EventRetracted
from events.prepared import Parts, parts_of, placed
from events.rows import Encoded, Row


class Stored(NamedTuple):
    """What idempotency and targets need to know of an event already stored."""

    event_id: str
    stream: str
    type: str
    occurred_on: str
    sequence: int | None
    data_hash: str
    position: int
    stream_version: int
    recorded_at: str


STORED_COLUMNS = (
    "event_id, stream, type, occurred_on, sequence, data_hash, position, stream_version, "
    "recorded_at"
)


class Lookup(Protocol):
    """Reads a backend answers inside its write transaction.

    Or before it, if its insert then checks what the answers assumed (see `events.sqlite`).
    """

    def stored(self, event_ids: Sequence[str]) -> dict[str, Stored]:
        """The stored events among these ids."""
        ...

    def stream_version(self, stream: str) -> int:
        """The current version of a stream (0 if it does not exist)."""
        ...

    def retracted(self, event_id: str) -> bool:
        """Whether a retraction of this event is stored."""
        ...


class Plan(NamedTuple):
    """What an append writes (`rows`) and what it answers."""

    rows: list[Row]
    result: AppendResult


@functools.lru_cache(maxsize=16)
def _timestamp(text: str) -> datetime:
    return datetime.fromisoformat(text)  # one per group: shared, datetimes are immutable


@functools.lru_cache(maxsize=16)
def _json(text: str) -> bytes:
    return CANONICAL.encode(text)


def _committed(stored: Stored) -> Committed:
    return Committed(
        event_id=stored.event_id,
        position=stored.position,
        stream=stored.stream,
        stream_version=stored.stream_version,
        recorded_at=_timestamp(stored.recorded_at),
    )


def _same(stored: Stored, encoded: Encoded) -> bool:
    event = encoded.event
    return (stored.stream, stored.type, stored.occurred_on, stored.sequence, stored.data_hash) == (
        event.stream,
        event.type,
        event.occurred_on,
        event.sequence,
        encoded.data_hash,
    )


def _normalize_records(batch: Sequence[NewEvent], known: dict[str, Stored]) -> list[NewEvent]:
    """Check each correction and retraction against its target; validate replacements."""
    types_in_batch: dict[str, str] = {}
    out: list[NewEvent] = []
    prepared = getattr(batch, "parts", None) is not None  # its headers were checked then
    for index, given in enumerate(batch):
        event, data = given, given.data
        if event.type != data.TYPE:  # a row whose type does not match its data could never be read
            msg = f"type {event.type!r} does not match its data, a {data.TYPE}"
            raise InvalidEvent(msg, f"$[{index}].type")
        error = None if prepared else header_error(event)
        if error is not None:  # a header the chain could not verify, or the log read back
            raise error.under(f"$[{index}]")
        if isinstance(data, (EventCorrected, EventRetracted)):
            target = data.corrects if isinstance(data, EventCorrected) else data.retracts
            target_type = types_in_batch.get(target) or (
                known[target].type if target in known else None
            )
            kind = "a correction" if isinstance(data, EventCorrected) else "a retraction"
            if target_type is None:
                msg = f"{kind} of {target}: no such event is stored"
                raise TargetConflict(msg, index)
            if target_type in RECORD_TYPES:
                msg = f"{kind} of {target}: that event is itself an {target_type}"
                raise TargetConflict(msg, index)
            if isinstance(data, EventCorrected):
                try:
                    replacement = convert_payload(target_type, data.replacement)
                    check_rules(replacement, at="$")
                except InvalidEvent as exc:
                    raise exc.under(f"$[{index}].data.replacement") from None
                normalized = msgspec.to_builtins(replacement)
                event = msgspec.structs.replace(
                    event, data=msgspec.structs.replace(data, replacement=normalized)
                )
        types_in_batch[event.event_id] = event.type
        out.append(event)
    return out


def _parts(batch: Sequence[NewEvent], normalized: list[NewEvent]) -> list[Parts]:
    """Each event's parts: those computed before queueing, unless normalizing replaced it."""
    ready: list[Parts] | None = getattr(batch, "parts", None)
    if ready is None:
        return [parts_of(event) for event in normalized]
    return [
        given if event is given.encoded.event else parts_of(event)
        for given, event in zip(ready, normalized, strict=True)
    ]


def _targets(batch: Sequence[NewEvent]) -> list[str]:
    ids = []
    for event in batch:
        if isinstance(event.data, EventCorrected):
            ids.append(event.data.corrects)
        elif isinstance(event.data, EventRetracted):
            ids.append(event.data.retracts)
    return ids


def _replay(known: dict[str, Stored], encoded: list[Encoded], head: int) -> Plan | None:
    """The original places if every event is stored with the same content; None if none is."""
    if not known:
        return None
    repeated = [e for e in encoded if e.event.event_id in known]
    for e in repeated:
        if not _same(known[e.event.event_id], e):
            raise IdempotencyConflict(e.event.event_id)
    if not repeated:
        return None
    if len(repeated) != len(encoded):
        raise IdempotencyConflict(repeated[0].event.event_id, "the rest of its batch not stored")
    committed = tuple(_committed(known[e.event.event_id]) for e in encoded)
    return Plan([], AppendResult(head=head, events=committed, replayed=True))


def _a_version(stream: object, expected: object) -> bool:
    """Whether an `expected_versions` entry is a stream name and a whole number (not a bool)."""
    return isinstance(stream, str) and isinstance(expected, int) and not isinstance(expected, bool)


def _check_versions(lookup: Lookup, expected_versions: Mapping[str, int] | None) -> dict[str, int]:
    """The current version of each stream the client named, which must be the one it expected."""
    versions: dict[str, int] = {}
    if not expected_versions:
        return versions
    for stream, expected in expected_versions.items():
        if not _a_version(stream, expected):
            name = msgspec.json.encode(str(stream)).decode()
            msg = f"expected_versions maps stream names to whole numbers: {stream!r}: {expected!r}"
            raise InvalidEvent(msg, f"$.expected_versions[{name}]")
        actual = versions.setdefault(stream, lookup.stream_version(stream))
        if actual != expected:
            raise VersionConflict(stream, expected, actual)
    return versions


def plan(  # noqa: PLR0913 - the state an append is planned against
    lookup: Lookup,
    batch: Sequence[NewEvent],
    expected_versions: Mapping[str, int] | None,
    *,
    head: int,
    head_hash: str,
    recorded_at: str,
) -> Plan:
    """Decide the rows of an append, or raise the conflict or validation error that stops it."""
    if not batch:
        msg = "a batch holds at least one event"
        raise InvalidEvent(msg, "$.events")
    ids = [event.event_id for event in batch]
    if len(set(ids)) != len(ids):
        seen: set[str] = set()
        for index, event_id in enumerate(ids):  # name the second of the two
            if event_id in seen:
                msg = f"event_id {event_id} appears twice in the batch"
                raise InvalidEvent(msg, f"$[{index}].event_id")
            seen.add(event_id)
    plain = None if expected_versions else _plain_parts(batch)
    if plain is not None and not lookup.stored(ids):
        # nothing stored, nothing to check: the general path below would only place them
        return _place(lookup, plain, {}, head=head, head_hash=head_hash, recorded_at=recorded_at)
    known = lookup.stored(ids + _targets(batch))
    parts = _parts(batch, _normalize_records(batch, known))
    encoded = [p.encoded for p in parts]
    replay = _replay(known, encoded, head)
    if replay is not None:
        return replay
    versions = _check_versions(lookup, expected_versions)
    _check_retractions(lookup, parts)
    return _place(lookup, parts, versions, head=head, head_hash=head_hash, recorded_at=recorded_at)


def _check_retractions(lookup: Lookup, parts: list[Parts]) -> None:
    """A retraction of an event retracted already, or a correction of one: `TargetConflict`.

    A correction of a retracted event would never show, in any view at any moment it could
    be known (a retraction is for good).
    """
    retracted: set[str] = set()
    for index, p in enumerate(parts):
        data = p.encoded.event.data
        if isinstance(data, EventRetracted):
            if data.retracts in retracted or lookup.retracted(data.retracts):
                msg = f"event {data.retracts} is already retracted"
                raise TargetConflict(msg, index)
            retracted.add(data.retracts)
        elif isinstance(data, EventCorrected) and (
            data.corrects in retracted or lookup.retracted(data.corrects)
        ):
            msg = f"a correction of {data.corrects}: that event is retracted"
            raise TargetConflict(msg, index)


def _plain_parts(batch: Sequence[NewEvent]) -> list[Parts] | None:
    """The prepared parts of a batch of plain events (no correction or retraction), else None.

    A batch whose types do not match its data is not plain either: the general path says so.
    """
    parts: list[Parts] | None = getattr(batch, "parts", None)
    if parts is None or len(parts) != len(batch):
        return None
    for event, given in zip(batch, parts):  # noqa: B905 - the lengths are checked above
        kind = event.type
        if kind in RECORD_TYPES or kind != event.data.TYPE or given.encoded.event is not event:
            return None
    return parts


def _place(  # noqa: PLR0913 - the state the rows are placed against
    lookup: Lookup,
    parts: list[Parts],
    versions: dict[str, int],
    *,
    head: int,
    head_hash: str,
    recorded_at: str,
) -> Plan:
    """The rows of a checked batch at their places, and the answer."""
    rows: list[Row] = []
    committed: list[Committed] = []
    recorded_json, moment = _json(recorded_at), _timestamp(recorded_at)
    for p in parts:
        event = p.encoded.event
        stream = event.stream
        version = versions.get(stream)
        if version is None:
            version = lookup.stream_version(stream)
        version += 1
        versions[stream] = version
        head += 1
        row = placed(
            p,
            event,
            position=head,
            stream_version=version,
            recorded_at=recorded_at,
            recorded_json=recorded_json,
            prev_hash=head_hash,
        )
        head_hash = row.hash
        rows.append(row)
        committed.append(Committed(event.event_id, head, stream, version, moment))
    return Plan(rows, AppendResult(head=head, events=tuple(committed)))


def target_of(row: Row) -> str | None:
    """The event a correction or retraction row refers to (indexed by the backends)."""
    if row.type not in RECORD_TYPES:
        return None
    key = "corrects" if row.type == EventCorrected.TYPE else "retracts"
    value = msgspec.json.decode(row.data)[key]
    return str(value)
