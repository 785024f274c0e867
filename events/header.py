"""A new event's header, checked before it is placed: what the chain hashes must be well formed.

Events that come in over HTTP or the command line are validated as a whole on intake
(`events.intake`), and `events.intake.new_event` builds one in Python the same way. A
`NewEvent(...)` made by hand is not: msgspec validates on decoding, not on `__init__`. Its
payload, source and metadata are stored as their canonical bytes and hashed as stored, but
the header fields are hashed as values and stored as columns, so a stream given as the
integer 123 was stored as the text "123" and broke the chain at that position. These
checks (the wire form's own patterns and bounds, about a microsecond an event, on the
caller's thread when the batch is prepared) keep every header the ledger stores one it can
verify. What is inside the payload, the source and the metadata of a hand-made event is not
checked here (decoding them again would cost more than the rest of an append in a batch):
one msgspec would refuse is stored, verifies, and is refused when read. Build events with
`new_event`.
"""

from __future__ import annotations

import functools
import re
from typing import Any, Final, get_args

from msgspec import Meta

from events.dates import parse_partial_date
from events.envelope import Metadata, NewEvent, PartialDate, Sequence, Source, StreamName
from events.errors import InvalidEvent
from events.payloads import PAYLOAD_TYPES, EventId


def _meta(alias: Any) -> Meta:  # noqa: ANN401 - an `Annotated` alias
    meta = get_args(alias)[1]
    assert isinstance(meta, Meta)  # noqa: S101 - the aliases are ours
    return meta


def _pattern(alias: Any) -> re.Pattern[str]:  # noqa: ANN401 - an `Annotated` alias
    pattern = _meta(alias).pattern
    assert pattern is not None  # noqa: S101 - the aliases are ours
    return re.compile(pattern)


_EVENT_ID: Final = _pattern(EventId)
_STREAM: Final = _pattern(StreamName)
_STREAM_MAX: Final = _meta(StreamName).max_length or 200
_DATE: Final = _pattern(PartialDate)
_SEQUENCE_MIN: Final = int(_meta(Sequence).ge or 0)
_SEQUENCE_MAX: Final = int(_meta(Sequence).le or 0)


def header_error(event: Any) -> InvalidEvent | None:  # noqa: ANN401 - any object given
    """What is wrong with a new event's header (path under the event), or None.

    Checked: `event_id`, `stream`, `type` (and that `data` is its payload class), `occurred_on`
    (a real date), `sequence`, and that `source` and `metadata` are theirs. The common case,
    everything right, is one expression (this runs for every event appended).
    """
    if type(event) is not NewEvent:
        return InvalidEvent("is not a NewEvent", "$")
    event_id, stream, occurred_on, sequence = (
        event.event_id,
        event.stream,
        event.occurred_on,
        event.sequence,
    )
    if (
        type(event_id) is str
        and _EVENT_ID.search(event_id) is not None
        and type(stream) is str
        and len(stream) <= _STREAM_MAX
        and _STREAM.search(stream) is not None
        and type(event.data) is PAYLOAD_TYPES.get(event.type)
        and type(occurred_on) is str
        and _real_date(occurred_on)
        and (sequence is None or (type(sequence) is int and 0 <= sequence <= _SEQUENCE_MAX))
        and type(event.source) is Source
        and type(event.metadata) is Metadata
    ):
        return None
    return _first_error(event)


def _first_error(event: NewEvent) -> InvalidEvent:  # noqa: PLR0911 - one return per field
    """The first field `header_error` found wrong, with what is wrong with it."""
    event_id, stream, kind = event.event_id, event.stream, event.type
    if type(event_id) is not str or _EVENT_ID.search(event_id) is None:
        return InvalidEvent("is not a UUID in lower-case text", "$.event_id")
    if type(stream) is not str or len(stream) > _STREAM_MAX or _STREAM.search(stream) is None:
        return InvalidEvent("is not a stream name", "$.stream")
    cls = PAYLOAD_TYPES.get(kind) if type(kind) is str else None
    if cls is None:
        return InvalidEvent("is not an event type", "$.type")
    if type(event.data) is not cls:
        return InvalidEvent(f"is not a {cls.__name__}", "$.data")
    occurred_on = event.occurred_on
    if type(occurred_on) is not str or _DATE.search(occurred_on) is None:
        form = "is not a date of the form YYYY, YYYY-MM or YYYY-MM-DD"
        return InvalidEvent(form, "$.occurred_on")
    try:
        parse_partial_date(occurred_on)
    except ValueError as exc:
        return InvalidEvent(str(exc), "$.occurred_on")
    sequence = event.sequence
    if sequence is not None and (
        type(sequence) is not int or not _SEQUENCE_MIN <= sequence <= _SEQUENCE_MAX
    ):
        bounds = f"from {_SEQUENCE_MIN} to {_SEQUENCE_MAX}"
        return InvalidEvent(f"is not an integer {bounds}", "$.sequence")
    if type(event.source) is not Source:
        return InvalidEvent("is not a Source", "$.source")
    return InvalidEvent("is not a Metadata", "$.metadata")


@functools.lru_cache(maxsize=4096)
def _real_date(text: str) -> bool:
    """Whether a text is a partial date on the calendar (cached: few dates recur often)."""
    try:
        return _DATE.search(text) is not None and bool(parse_partial_date(text))
    except ValueError:
        return False


def check_headers(batch: Any) -> None:  # noqa: ANN401 - any sequence given
    """Raise the first header error of a batch, at `$[index].field`."""
    for index, event in enumerate(batch):
        error = header_error(event)
        if error is not None:
            raise error.under(f"$[{index}]")
