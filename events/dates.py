"""Valid time: dates of the precision a source gives (`YYYY`, `YYYY-MM`, `YYYY-MM-DD`)."""

from __future__ import annotations

import calendar
import functools
import re
from datetime import UTC, date, datetime

_PARTIAL_DATE = re.compile(r"^([0-9]{4})(?:-([0-9]{2})(?:-([0-9]{2}))?)?$")
_MOMENT = re.compile(
    r"^[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt][0-9]{2}:[0-9]{2}:[0-9]{2}(?:\.([0-9]+))?(?:[Zz]|[+-][0-9]{2}:[0-9]{2})$"
)


@functools.lru_cache(maxsize=4096)
def parse_partial_date(text: str) -> tuple[int, int | None, int | None]:
    """Split a partial date into year, month and day, refusing anything not on the calendar."""
    match = _PARTIAL_DATE.fullmatch(text)
    if match is None:
        msg = f"{text!r} is not a date of the form YYYY, YYYY-MM or YYYY-MM-DD"
        raise ValueError(msg)
    year = int(match[1])
    month = int(match[2]) if match[2] else None
    day = int(match[3]) if match[3] else None
    if year < 1:
        msg = f"{text!r} has no year 0"
        raise ValueError(msg)
    if month is not None and not 1 <= month <= 12:
        msg = f"{text!r} has no month {month}"
        raise ValueError(msg)
    if month is not None and day is not None:
        last = calendar.monthrange(year, month)[1]
        if not 1 <= day <= last:
            msg = f"{text!r} is not a real date"
            raise ValueError(msg)
    return year, month, day


def period_start(text: str) -> date:
    """The first day of the period a partial date names (`2023-05` gives 2023-05-01)."""
    year, month, day = parse_partial_date(text)
    return date(year, month or 1, day or 1)


def period_end(text: str) -> date:
    """The last day of the period (`2023-05` gives 2023-05-31): from then on it surely happened."""
    year, month, day = parse_partial_date(text)
    if month is None:
        return date(year, 12, 31)
    if day is None:
        return date(year, month, calendar.monthrange(year, month)[1])
    return date(year, month, day)


def parse_moment(text: str) -> datetime:
    """An RFC 3339 timestamp with an offset, in UTC; `ValueError` saying what is wrong.

    Digits past the microsecond are cut, never rounded: `known_at=…:00.1234569Z` must not
    take in an event recorded at `.123457`, after the moment asked for. A moment whose UTC
    form is off the calendar (`9999-12-31T23:59:59-00:01`) is refused, not a crash.
    """
    match = _MOMENT.fullmatch(text)
    if match is None:
        msg = f"{text!r} is not an RFC 3339 timestamp with an offset (Z for UTC)"
        raise ValueError(msg)
    fraction = match[1]
    if fraction is not None and len(fraction) > 6:
        start = match.start(1)
        text = text[:start] + fraction[:6] + text[start + len(fraction) :]
    try:
        return datetime.fromisoformat(text.upper()).astimezone(UTC)
    except ValueError:
        msg = f"{text!r} is not a real moment"
        raise ValueError(msg) from None
    except OverflowError:
        msg = f"{text!r} is out of range in UTC"
        raise ValueError(msg) from None


def format_timestamp(moment: datetime) -> str:
    """A fixed-width UTC RFC 3339 timestamp with microseconds, so text order is time order."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def utc_now() -> datetime:
    """The current moment in UTC."""
    return datetime.now(UTC)
