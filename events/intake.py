"""From the wire to a validated `NewEvent`: JSON objects, NDJSON lines, batches."""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

import msgspec

from events.codec import decode, decode_payload, payload_class
from events.envelope import EventIn, Metadata, NewEvent
from events.errors import InvalidEvent
from events.ids import uuid7
from events.iso_codes import country_error, currency_error
from events.payloads import (
    AnyPayload,
    InvestmentCommitted,
    Label,
    MemorandumSigned,
    Money,
    OrganizationRegistered,
    PartnershipAgreed,
    SiteAcquired,
)

EVENT_IN = msgspec.json.Decoder(EventIn)
_BATCH_INDEX = re.compile(r"^\$\[(\d+)\](.*)$")


MAX_AMOUNT_DIGITS = 30
"""Money below 10**30, to at most 30 decimal places: exact sums stay within Decimal's reach."""


def check_rules(data: AnyPayload, at: str = "$.data") -> None:
    """What a new payload must keep beyond its type (`InvalidEvent` naming the field).

    `at`: the payload's own path (`$` for a correction's replacement, as `convert_payload`).

    Kept here, not in the payload types, so that rows stored before a rule existed still
    decode. (A retry of such a row, sent again, is refused like a new event: the intake
    cannot tell the two apart before the log is asked.)
    """
    if isinstance(data, OrganizationRegistered) and data.parent == data.id:
        msg = "an organization is not its own parent"
        raise InvalidEvent(msg, f"{at}.parent")
    if isinstance(data, MemorandumSigned | PartnershipAgreed):
        _check_parties(data.parties, f"{at}.parties")
    _check_codes(data, at)
    if isinstance(data, InvestmentCommitted):
        money, path = data.amount, f"{at}.amount.amount"
    elif isinstance(data, SiteAcquired) and data.price is not None:
        money, path = data.price, f"{at}.price.amount"
    else:
        return
    amount = money.amount
    places = -int(amount.as_tuple().exponent)  # finite: the type refuses NaN and infinities
    if places > MAX_AMOUNT_DIGITS or (amount and amount.adjusted() >= MAX_AMOUNT_DIGITS):
        msg = f"must be below 1E+{MAX_AMOUNT_DIGITS}, to at most {MAX_AMOUNT_DIGITS} decimal places"
        raise InvalidEvent(msg, path)
    if int(amount.as_tuple().exponent) > 0:  # kept as given: 1.5E+8 in every answer and total
        msg = f"write the amount in plain digits ({amount:f}, not {amount})"
        raise InvalidEvent(msg, path)


def _check_codes(data: AnyPayload, at: str) -> None:
    """Country and currency codes that ISO assigned, not only of the right shape."""
    location = getattr(data, "location", None)
    countries = {
        f"{at}.country": getattr(data, "country", None),
        f"{at}.location.country": getattr(location, "country", None),
    }
    for path, code in countries.items():
        message = country_error(code) if isinstance(code, str) else None
        if message is not None:
            raise InvalidEvent(message, path)
    for name in ("amount", "price"):
        money = getattr(data, name, None)
        message = currency_error(money.currency) if isinstance(money, Money) else None
        if message is not None:
            raise InvalidEvent(message, f"{at}.{name}.currency")


def _check_parties(parties: tuple[str, ...], path: str) -> None:
    """Each party once: an agreement of an organization with itself is no partnership."""
    seen: set[str] = set()
    for index, party in enumerate(parties):
        if party in seen:
            msg = f"{party} is a party already"
            raise InvalidEvent(msg, f"{path}[{index}]")
        seen.add(party)


def accept(event: EventIn, recorded_by: str | None = None) -> NewEvent:
    """Validate an incoming event's payload, choose its id if the client did not.

    `metadata.recorded_by` is always the ledger's value (the token's subject), never the client's.
    """
    payload_class(event.type)
    data = decode_payload(event.type, event.data, event.schema_version)
    check_rules(data)
    if recorded_by is not None:  # `replace` does not validate: a row must stay readable
        try:
            msgspec.convert(recorded_by, Label)
        except msgspec.ValidationError as exc:
            msg = f"the recorder's name does not fit: {exc}"
            raise InvalidEvent(msg, "$.metadata.recorded_by") from None
    metadata = msgspec.structs.replace(event.metadata, recorded_by=recorded_by)
    return NewEvent(
        event_id=event.event_id or uuid7(),
        stream=event.stream,
        type=event.type,
        occurred_on=event.occurred_on,
        sequence=event.sequence,
        data=data,
        source=event.source,
        metadata=metadata if metadata != Metadata() else Metadata(),
    )


def parse_event(line: bytes | str, recorded_by: str | None = None) -> NewEvent:
    """Decode and validate one JSON event; errors name the path of the bad field."""
    return accept(decode(line, EVENT_IN), recorded_by)


class LineError(InvalidEvent):
    """An invalid event in an NDJSON stream, with its 1-based line number."""

    def __init__(self, line: int, error: InvalidEvent) -> None:
        super().__init__(error.message, error.path)
        self.line = line
        self.args = (f"line {line}: {error.path}: {error.message}",)


def parse_ndjson(lines: Iterable[bytes | str], recorded_by: str | None = None) -> list[NewEvent]:
    """Every event of an NDJSON stream, or `LineError` at the first bad line (blanks skipped)."""
    return [event for _, event in numbered_ndjson(lines, recorded_by)]


def numbered_ndjson(
    lines: Iterable[bytes | str], recorded_by: str | None = None
) -> list[tuple[int, NewEvent]]:
    """`parse_ndjson`, each event with its 1-based line number (see `at_line`)."""
    events: list[tuple[int, NewEvent]] = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            events.append((number, parse_event(line, recorded_by)))
        except InvalidEvent as exc:
            raise LineError(number, exc) from None
    return events


def at_line(error: InvalidEvent, numbers: Sequence[int]) -> InvalidEvent:
    """An error the log raised about a batch's event (`$[2].data…`) as one about its line.

    `numbers` holds each event's line number, in batch order; other errors are as given.
    """
    match = _BATCH_INDEX.match(error.path)
    if match is None or int(match[1]) >= len(numbers):
        return error
    return LineError(numbers[int(match[1])], InvalidEvent(error.message, "$" + match[2]))


def new_event(  # noqa: PLR0913 - the envelope's fields
    data: msgspec.Struct,
    *,
    stream: str,
    occurred_on: str,
    source: msgspec.Struct,
    event_id: str | None = None,
    sequence: int | None = None,
) -> NewEvent:
    """Build a `NewEvent` in Python, validating it exactly as if it came over the wire."""
    wire = {
        "event_id": event_id,
        "stream": stream,
        "type": getattr(data, "TYPE", ""),
        "occurred_on": occurred_on,
        "sequence": sequence,
        "data": data,
        "source": source,
    }
    return parse_event(msgspec.json.encode(wire))
