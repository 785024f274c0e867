"""Every bad field of an invalid event, not only the first: what a 422 lists.

msgspec stops decoding at the first field that does not fit. Once an event has failed, it
is split into its fields (still raw JSON, so numbers keep every digit) and each field of
the envelope, and of the payload when its type is known, is decoded on its own, so that a
client sending four mistakes hears of four. Only for events that failed: the valid path
decodes once.
"""

from __future__ import annotations

from functools import cache
from typing import Any

import msgspec

from events.codec import invalid_from
from events.dates import parse_partial_date
from events.envelope import EventIn
from events.errors import InvalidEvent
from events.payloads import PAYLOAD_TYPES
from events.upcasters import current_version

_FIELDS = msgspec.json.Decoder(dict[str, msgspec.Raw])


@cache
def _decoder(kind: Any) -> msgspec.json.Decoder[Any]:  # noqa: ANN401 - any field's type
    return msgspec.json.Decoder(kind)


def every_error(raw: bytes | str, first: InvalidEvent) -> list[InvalidEvent]:
    """The bad fields of a JSON event that failed with `first`, each with its JSON path.

    `first` is always among them (a rule across fields shows only there); an event that is
    not a JSON object has only `first`.
    """
    try:
        fields = _FIELDS.decode(raw)
    except (msgspec.DecodeError, RecursionError):
        return [first]
    errors = _struct_errors(EventIn, fields, "$", nested=frozenset({"data"}))
    if "occurred_on" in fields and not any(e.path == "$.occurred_on" for e in errors):
        errors.extend(_calendar_error(fields["occurred_on"], "$.occurred_on"))
    event_type, version = _decoded(fields, "type"), _decoded(fields, "schema_version")
    if not isinstance(event_type, str) or any(e.path == "$.type" for e in errors):
        pass  # the type's own error is listed: a payload of no known type is not checked
    elif event_type not in PAYLOAD_TYPES:
        errors.append(InvalidEvent(f"unknown event type {event_type!r}", "$.type"))
    elif "data" in fields and version in (None, current_version(event_type)):
        # (a payload at an older schema version is upcast first: only `first` speaks for it)
        try:
            data = _FIELDS.decode(fields["data"])
        except (msgspec.DecodeError, RecursionError):
            errors.append(InvalidEvent("Expected `object`", "$.data"))
        else:
            errors.extend(_struct_errors(PAYLOAD_TYPES[event_type], data, "$.data"))
    found = {first.path: first}  # msgspec's own words for the field it stopped at
    for error in errors:
        found.setdefault(error.path, error)
    return list(found.values())


def _struct_errors(
    cls: type[msgspec.Struct],
    fields: dict[str, msgspec.Raw],
    prefix: str,
    nested: frozenset[str] = frozenset(),
) -> list[InvalidEvent]:
    """Each field of `fields` that `cls` refuses (unknown, missing, or not of its type)."""
    known = {field.encode_name: field for field in msgspec.structs.fields(cls)}
    errors = [
        InvalidEvent(f"Object contains unknown field `{name}`", f"{prefix}.{name}")
        for name in fields
        if name not in known
    ]
    for name, field in known.items():
        if name not in fields:
            if field.required:
                errors.append(
                    InvalidEvent(f"Object missing required field `{name}`", f"{prefix}.{name}")
                )
            continue
        if name in nested:
            continue
        try:
            _decoder(field.type).decode(fields[name])
        except msgspec.ValidationError as exc:
            errors.append(invalid_from(exc).under(f"{prefix}.{name}"))
        except (msgspec.DecodeError, RecursionError):
            errors.append(InvalidEvent("not valid JSON", f"{prefix}.{name}"))
    return errors


def _calendar_error(raw: msgspec.Raw, path: str) -> list[InvalidEvent]:
    """A date of the right form that is not on the calendar (`2024-02-30`)."""
    try:
        text = msgspec.json.decode(raw)
        if isinstance(text, str):
            parse_partial_date(text)
    except (msgspec.DecodeError, ValueError) as exc:
        return [InvalidEvent(str(exc), path)]
    return []


def _decoded(fields: dict[str, msgspec.Raw], name: str) -> object:
    """A field's JSON value, or None if it is missing or not JSON."""
    try:
        return msgspec.json.decode(fields[name]) if name in fields else None
    except (msgspec.DecodeError, RecursionError):
        return None
