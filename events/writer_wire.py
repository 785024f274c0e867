"""What the service and its writer process say to each other (`events.writer_process`).

Frames on a stream socket: a 4-byte big-endian length, then a msgpack message. The service
sends `Ask`s (a batch to append, numbered); the writer process answers each with a `Told`
once its group's commit is durable (or its error), and first of all with a `Told` numbered
0: the store is open (`result` and `error` both None) or could not be opened (`error`).

A payload crosses as msgpack and is decoded by its class, which gives every typed field back
as it was (a `Decimal` from its text); a payload with an untyped part (a correction's
`replacement`) crosses pickled, as msgpack would give `Decimal("2.50")` back as a string.

An error crosses as its class in `events.errors`, its `args` and its attributes, and is
raised again as the same class with the same fields (`VersionConflict.stream`, say): the
service answers it exactly as if its own thread had raised it. Any other error becomes a
`StoreError` with its message.
"""

from __future__ import annotations

import pickle
import struct
from collections.abc import Mapping, Sequence
from typing import Any, Final, cast

import msgspec
import msgspec.inspect as mi

from events import errors
from events.codec import CANONICAL, decode_payload, invalid_from
from events.envelope import AppendResult, Metadata, NewEvent, Source
from events.payloads import PAYLOAD_TYPES, AnyPayload, Model

HEADER: Final = struct.Struct(">I")
"""The length of the message that follows."""
READ_SIZE: Final = 1 << 16
"""What either side reads at a time: below the size malloc maps on its own (no mmap and
munmap per read)."""
READY: Final = 0
"""The number of the first `Told`: the store is open (or, with an `error`, is not)."""


class Ask(msgspec.Struct, array_like=True, frozen=True):
    """A batch to append, numbered by the service (from 1); each payload's class by name."""

    number: int
    events: list[NewEvent]
    kinds: list[str]
    expected_versions: dict[str, int] | None
    exact: dict[int, bytes]
    """The payloads with untyped parts (`_UNTYPED`), by index, pickled: msgpack would give
    `Decimal("2.50")` back as the text `"2.50"`, a list for a tuple."""


def ask(number: int, events: Sequence[NewEvent], expected: Mapping[str, int] | None) -> Ask:
    """The `Ask` of a batch (the payloads' classes named: `AnyPayload` carries no tag)."""
    expected_versions = dict(expected) if expected is not None else None
    kinds = [type(e.data).__name__ for e in events]
    exact = {
        index: pickle.dumps(event.data, protocol=pickle.HIGHEST_PROTOCOL)
        for index, event in enumerate(events)
        if type(event.data) in _UNTYPED
    }
    return Ask(number, list(events), kinds, expected_versions, exact)


def _has_any(info: mi.Type, seen: set[type]) -> bool:
    """Whether a type holds an untyped (`Any`) part anywhere inside it."""
    if isinstance(info, mi.AnyType):
        return True
    if isinstance(info, mi.StructType):
        if info.cls in seen:
            return False
        seen.add(info.cls)
        return any(_has_any(field.type, seen) for field in info.fields)
    inner = [getattr(info, name, None) for name in ("item_type", "key_type", "value_type", "type")]
    inner += [*getattr(info, "item_types", ()), *getattr(info, "types", ())]
    return any(isinstance(sub, mi.Type) and _has_any(sub, seen) for sub in inner)


_UNTYPED: Final = frozenset(
    kind for kind in PAYLOAD_TYPES.values() if _has_any(mi.type_info(kind), set())
)
"""Payload classes with an `Any` inside (a correction's `replacement`): they cross pickled."""


class _EventIn(Model, frozen=True):
    """A `NewEvent` as it arrives, its payload still encoded (decoded by its class's name)."""

    event_id: str
    stream: str
    type: str
    occurred_on: str
    data: msgspec.Raw
    source: Source
    sequence: int | None = None
    metadata: Metadata = Metadata()


class _AskIn(msgspec.Struct, array_like=True, frozen=True):
    number: int
    events: list[_EventIn]
    kinds: list[str]
    expected_versions: dict[str, int] | None
    exact: dict[int, bytes]


_PAYLOADS: Final = {kind.__name__: kind for kind in PAYLOAD_TYPES.values()}
_ASK_DECODER: Final = msgspec.msgpack.Decoder(_AskIn)


def read_ask(message: bytes) -> tuple[int, list[NewEvent], dict[str, int] | None]:
    """An `Ask`'s number, batch and expected versions, each payload of its class again.

    `msgspec.DecodeError` if it does not decode (or names a payload class not known here);
    `InvalidEvent` at `$[i].data…` for a payload that does not validate, as the writer
    thread's `prepared.check_readable` says it.
    """
    asked = _ASK_DECODER.decode(message)
    if len(asked.kinds) != len(asked.events):
        msg = "an Ask with as many payload classes as events"
        raise msgspec.DecodeError(msg)
    batch = []
    for index, (event, kind) in enumerate(zip(asked.events, asked.kinds, strict=True)):
        payload = _PAYLOADS.get(kind)
        if payload is None:
            msg = f"unknown payload class {kind!r}"
            raise msgspec.DecodeError(msg)
        pickled = asked.exact.get(index)
        if pickled is not None:
            data = pickle.loads(pickled)  # noqa: S301 - from the service that started this process
            if type(data) is not payload:
                msg = f"a pickled payload of {type(data).__name__}, not {kind}"
                raise msgspec.DecodeError(msg)
            try:  # its constraints, unchecked by pickle: checked as a read decodes it
                decode_payload(data.TYPE, CANONICAL.encode(data))
            except errors.InvalidEvent as exc:
                raise exc.under(f"$[{index}]") from None
        else:
            try:
                data = cast("AnyPayload", msgspec.msgpack.decode(event.data, type=payload))
            except msgspec.ValidationError as exc:  # built in Python, its constraints unchecked
                raise invalid_from(exc).under(f"$[{index}].data") from None
        batch.append(
            NewEvent(
                event_id=event.event_id,
                stream=event.stream,
                type=event.type,
                occurred_on=event.occurred_on,
                data=data,
                source=event.source,
                sequence=event.sequence,
                metadata=event.metadata,
            )
        )
    return asked.number, batch, asked.expected_versions


class Fault(msgspec.Struct, array_like=True, frozen=True):
    """An error, as it crosses: its class's name, its `args`, its attributes."""

    kind: str
    args: list[Any]
    attrs: dict[str, Any]


class Told(msgspec.Struct, array_like=True, frozen=True):
    """The outcome of the `Ask` of the same number."""

    number: int
    result: AppendResult | None = None
    error: Fault | None = None


_ENCODER = msgspec.msgpack.Encoder()
TOLD_DECODER: Final = msgspec.msgpack.Decoder(Told)


def frame(message: Ask | Told) -> bytes:
    """A message with its length in front."""
    body = _ENCODER.encode(message)
    return HEADER.pack(len(body)) + body


def fault_of(error: BaseException) -> Fault:
    """An error as it crosses (any error not of `events.errors` as a `StoreError`)."""
    kind = type(error).__name__
    if isinstance(error, errors.LedgerError) and getattr(errors, kind, None) is type(error):
        attrs = {k: v for k, v in vars(error).items() if isinstance(v, str | int | None)}
        return Fault(kind, [str(arg) for arg in error.args], attrs)
    return Fault("StoreError", [f"the writer process failed: {kind}: {error}"], {})


def error_of(fault: Fault) -> errors.LedgerError:
    """The error a `Fault` stands for, its class and fields as they were raised."""
    kind = getattr(errors, fault.kind, None)
    if not (isinstance(kind, type) and issubclass(kind, errors.LedgerError)):
        return errors.StoreError(f"the writer process failed: {fault.kind}: {fault.args}")
    error = kind.__new__(kind)
    error.args = tuple(fault.args)
    vars(error).update(fault.attrs)
    return error


class Frames:
    """Cuts a stream of bytes into messages: `feed` bytes, get the whole messages so far."""

    __slots__ = ("_buffer",)

    def __init__(self) -> None:
        self._buffer = bytearray()

    def feed(self, data: bytes) -> list[bytes]:
        """The messages completed by `data`, in order (a partial one waits for more)."""
        buffer = self._buffer
        buffer += data
        messages: list[bytes] = []
        start = 0
        size = HEADER.size
        while len(buffer) - start >= size:
            (length,) = HEADER.unpack_from(buffer, start)
            if len(buffer) - start - size < length:
                break
            messages.append(bytes(buffer[start + size : start + size + length]))
            start += size + length
        if start:
            del buffer[:start]
        return messages

    @property
    def partial(self) -> bool:
        """Whether part of a message is still waiting for the rest."""
        return bool(self._buffer)
