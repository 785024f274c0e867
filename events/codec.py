"""Canonical encoding, the hash chain, and decoding with errors that name each field's path.

The canonical encoding is msgspec's JSON with every object's keys sorted, Decimals as
strings, no whitespace, UTF-8: the same event gives the same bytes on any machine.
The stored `data` and `source` are these bytes, so hashes are checked against what is
stored, whatever later versions of the code decode it into.
"""

from __future__ import annotations

import hashlib
import re
from decimal import Decimal
from typing import Any, Final, TypeVar

import msgspec

from events.errors import InvalidEvent
from events.payloads import PAYLOAD_TYPES, AnyPayload, Payload
from events.upcasters import current_version, upcast

GENESIS = "0" * 64
"""The `prev_hash` of position 1."""

CANONICAL = msgspec.json.Encoder(order="sorted", decimal_format="string")
# `float_hook`: a number where the type says nothing (a correction's `replacement`) is read as
# the Decimal it spells, never a float: `1.10` stays `1.10`, `1234567890123456.78` whole.
_JSON_OBJECT = msgspec.json.Decoder(dict[str, Any], float_hook=Decimal)
_AS_SENT = msgspec.json.Encoder(order="sorted", decimal_format="number")
_DECODERS: dict[str, msgspec.json.Decoder[Any]] = {
    name: msgspec.json.Decoder(cls, float_hook=Decimal) for name, cls in PAYLOAD_TYPES.items()
}

_AT = re.compile(r"^(?P<msg>.*?)(?: - at (?:`key` in )?`(?P<path>\$[^`]*)`)?$", re.DOTALL)
_FIELD_PREFIX = re.compile(r"^(?P<field>[a-z_]+): (?P<msg>.*)$", re.DOTALL)
_NAMED_FIELD = re.compile(
    r"^Object (?:missing required|contains unknown) field `(?P<field>[^`]+)`$"
)

T = TypeVar("T")


def canonical(value: object) -> bytes:
    """The canonical bytes of any schema value."""
    return CANONICAL.encode(value)


_NO_NEWLINE: Final = repr("(?!\\n)")[1:-1]
"""The lookahead of the patterns (`events.payloads.Id`) as msgspec's messages quote it."""


def invalid_from(exc: msgspec.ValidationError | msgspec.DecodeError) -> InvalidEvent:
    """Turn msgspec's message into an error with the JSON path of the bad field."""
    match = _AT.match(str(exc))
    message = match["msg"] if match else str(exc)
    path = (match["path"] if match and match["path"] else None) or "$"
    named = _FIELD_PREFIX.match(message)
    if named:
        path, message = f"{path}.{named['field']}", named["msg"]
    else:
        field = _NAMED_FIELD.match(message)
        if field:
            path = f"{path}.{field['field']}"
    # the patterns' `(?!\n)` (see `events.payloads.Id`) says nothing to a reader: `^[A-Z]{3}$`
    return InvalidEvent(message.replace(_NO_NEWLINE, ""), path)


TOO_DEEP = "JSON nested too deeply"
"""The message of JSON nested past the interpreter's recursion limit (about 1,000 levels)."""


def decode(data: bytes | str, decoder: msgspec.json.Decoder[T]) -> T:
    """Decode JSON with a typed decoder, raising `InvalidEvent` with the bad field's path."""
    try:
        return decoder.decode(data)
    except (msgspec.ValidationError, msgspec.DecodeError) as exc:
        raise invalid_from(exc) from None
    except RecursionError:  # msgspec's depth guard: bad input, not a crash
        raise InvalidEvent(TOO_DEEP, "$") from None


def payload_class(event_type: str) -> type[Payload]:
    """The payload class of a type tag, or `InvalidEvent` at `$.type`."""
    try:
        return PAYLOAD_TYPES[event_type]
    except KeyError:
        known = ", ".join(sorted(PAYLOAD_TYPES))
        msg = f"unknown event type {event_type!r} (known: {known})"
        raise InvalidEvent(msg, "$.type") from None


def decode_payload(
    event_type: str, data: bytes | str, schema_version: int | None = None
) -> AnyPayload:
    """Decode `data` of a type, upcasting it first if its schema version is older than current.

    Errors name the path under `data` (`$.data.price.amount`).
    """
    payload_class(event_type)
    try:
        if schema_version is not None and schema_version < current_version(event_type):
            raw = upcast(event_type, schema_version, _JSON_OBJECT.decode(data))
            data = CANONICAL.encode(raw)
        elif schema_version is not None and schema_version > current_version(event_type):
            msg = f"schema version {schema_version} of {event_type} is newer than this code knows"
            raise InvalidEvent(msg, "$.schema_version")
        result: AnyPayload = _DECODERS[event_type].decode(data)
    except (msgspec.ValidationError, msgspec.DecodeError) as exc:
        raise invalid_from(exc).under("$.data") from None  # noqa: EM101 - a path, not a message
    except RecursionError:
        raise InvalidEvent(TOO_DEEP, "$.data") from None
    return result


def convert_payload(event_type: str, data: dict[str, Any]) -> AnyPayload:
    """Validate a payload given as plain JSON values (a correction's replacement, say).

    Errors name the path inside the payload (`$.price.amount`), not under `$.data`.
    """
    try:  # its numbers stay numbers: a text field refuses `2.50` here as it does in `data`
        return decode_payload(event_type, _AS_SENT.encode(data))
    except InvalidEvent as exc:
        raise InvalidEvent(exc.message, "$" + exc.path.removeprefix("$.data")) from None


def data_hash(data: bytes, source: bytes) -> str:
    """SHA-256 of the canonical `{"data": …, "source": …}`, from their canonical bytes."""
    return hashlib.sha256(b'{"data":' + data + b',"source":' + source + b"}").hexdigest()


def chain_hash(  # noqa: PLR0913 - one argument per hashed column, named as stored
    *,
    position: int,
    event_id: str,
    stream: str,
    stream_version: int,
    event_type: str,
    schema_version: int,
    occurred_on: str,
    sequence: int | None,
    recorded_at: str,
    metadata: bytes,
    data_hash: str,
    prev_hash: str,
) -> str:
    """SHA-256 over the canonical envelope, with `data_hash` standing for data and source."""
    header = {
        "data_hash": data_hash,
        "event_id": event_id,
        "metadata": msgspec.Raw(metadata),
        "occurred_on": occurred_on,
        "position": position,
        "prev_hash": prev_hash,
        "recorded_at": recorded_at,
        "schema_version": schema_version,
        "sequence": sequence,
        "stream": stream,
        "stream_version": stream_version,
        "type": event_type,
    }
    return hashlib.sha256(CANONICAL.encode(header)).hexdigest()
