"""What a query parameter must keep beyond its type, said once for every place that checks.

Litestar checks each parameter's type (a date, an integer ≥ 0) and stops with a 422; the
rules below (an RFC 3339 moment, a position not past the head, a page within the page
limit, a known event type, a grouping) are checked later, by the routes. So a request bad
in both ways would hear of its type errors first and of the rest only once those were
fixed. The parameter-name hook (`service.parameters`) therefore applies these rules to
the raw strings before Litestar parses anything (the last value of a parameter taken
once, as Litestar reads it; every `type`) and keeps what it finds for this request
(`pending`). Litestar's 422 adds them (`merged`, in `service.problems`); without a type
error, each route raises them all before its own checks (`raise_pending`), and the
dependencies that check the same rules let them pass, so the answer does not depend on
the order Litestar resolves dependencies in. Limits: of Litestar's type errors, only the
first failing signature's are known (one dependency's parameters, or the route's own),
and a parameter the route does not take is refused at once, with the rule errors but
before any type error.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from collections.abc import Set as AbstractSet
from contextvars import ContextVar
from typing import Any, Final, get_args

from events.codec import payload_class
from events.dates import parse_moment
from events.errors import InvalidEvent
from projections.capacity import SummaryBy

SUMMARY_BY: Final[tuple[str, ...]] = get_args(SummaryBy)
"""What the capacity summary groups by."""
MAX_DIGITS: Final = 18
"""The longest integer a rule reads; a longer one counts as `BEYOND`."""
BEYOND: Final = 10**MAX_DIGITS
"""Past any position or limit (a 64-bit integer has 19 digits at most)."""
MAX_MOMENT: Final = 64
"""The longest `known_at` (the parameter's declared `max_length`)."""
SHOWN: Final = 40
"""The most of a bad value an error repeats."""
SINGLE_VALUED: Final = frozenset(
    {"as_of", "known_at", "at_position", "limit", "by", "after", "stream"}
)
"""Parameters taken once: given twice, a 422 (Litestar would quietly read the last one)."""
_PLAIN_INTEGER: Final = re.compile(r"-?[0-9]+")
_PENDING: ContextVar[tuple[InvalidEvent, ...]] = ContextVar("query_rule_errors", default=())


def known_at_error(raw: str) -> InvalidEvent | None:
    """`known_at` must be an RFC 3339 moment with an offset (and short)."""
    if len(raw) > MAX_MOMENT:
        return InvalidEvent(f"is longer than {MAX_MOMENT} characters", "query.known_at")
    try:
        parse_moment(raw)
    except ValueError as exc:
        return InvalidEvent(str(exc), "query.known_at")
    return None


def at_position_error(position: int, head: int) -> InvalidEvent | None:
    """`at_position` must not be past the head."""
    if position > head:
        return InvalidEvent(f"is past the head ({head})", "query.at_position")
    return None


def limit_error(limit: int, page_limit: int) -> InvalidEvent | None:
    """`limit` must be within the page limit."""
    if limit > page_limit:
        return InvalidEvent(f"at most {page_limit} per page", "query.limit")
    return None


def type_error(name: str) -> InvalidEvent | None:
    """Each `type` must be an event type (a misspelt one would read as a log without it)."""
    try:
        payload_class(name)
    except InvalidEvent as exc:
        return InvalidEvent(exc.message, "query.type")
    return None


def by_error(raw: str) -> InvalidEvent | None:
    """`by` (the capacity summary's grouping) is `country` or `organization`."""
    if raw not in SUMMARY_BY:
        return InvalidEvent(f"is {' or '.join(SUMMARY_BY)}, not {_shown(raw)}", "query.by")
    return None


def _shown(raw: str) -> str:
    """A value as an error repeats it: quoted, and cut if long (the answer stays small)."""
    return repr(raw if len(raw) <= SHOWN else raw[:SHOWN] + "…")


def _integer(raw: str) -> int | None:
    """The value of plain ASCII digits ('¹' is a digit to `isdigit`, not to `int`).

    Past `MAX_DIGITS` of them, a value beyond any bound. None for anything else: Litestar's
    type error to name.
    """
    if not (raw.isascii() and raw.isdigit()):
        return None
    return int(raw) if len(raw) <= MAX_DIGITS else BEYOND


def _position(raw: str, state: Any) -> InvalidEvent | None:  # noqa: ANN401 - the app's state
    position = _integer(raw)
    return None if position is None else at_position_error(position, state.ledger.log.head())


def _limit(raw: str, state: Any) -> InvalidEvent | None:  # noqa: ANN401 - the app's state
    limit = _integer(raw)
    return None if limit is None else limit_error(limit, state.ledger.settings.page_limit)


_RULES: Final[dict[str, Callable[[str, Any], InvalidEvent | None]]] = {
    "known_at": lambda raw, _state: known_at_error(raw),
    "at_position": _position,
    "limit": _limit,
    "type": lambda raw, _state: type_error(raw),
    "by": lambda raw, _state: by_error(raw),
}


def integer_error(raw: str, name: str) -> InvalidEvent | None:
    """An integer parameter is written in plain digits (Litestar would read `1e3` or `2.0`)."""
    if _PLAIN_INTEGER.fullmatch(raw):
        return None
    return InvalidEvent(f"is not an integer in plain digits: {_shown(raw)}", f"query.{name}")


def keep_rule_errors(
    query: Any,  # noqa: ANN401 - Litestar's MultiDict
    names: Sequence[str],
    state: Any,  # noqa: ANN401 - the app's state
    integers: AbstractSet[str] = frozenset(),
) -> None:
    """Keep what the raw `query` values break of the rules, for this request (`pending`).

    Only the parameters the route takes (`names`) are looked at; those in `integers` (typed
    `int`) must also be plain digits, or a negative sign and digits (Litestar then says
    what the lower bound is).
    """
    errors: list[InvalidEvent] = []
    for name in names:
        count = len(query.getall(name, ())) if name in SINGLE_VALUED else 0
        if count > 1:  # `?as_of=2023-12-31&as_of=2022-06-30`: which view was meant?
            errors.append(InvalidEvent(f"is given {count} times; give it once", f"query.{name}"))
    for name in names:
        rule = _RULES.get(name)
        if rule is None and name not in integers:
            continue
        values = query.getall(name, ())
        if name in SINGLE_VALUED:
            values = values[-1:]
        for raw in dict.fromkeys(values):  # a value given twice is one error
            error = integer_error(raw, name) if name in integers else None
            if error is None and rule is not None:
                error = rule(raw, state)
            if error is not None:
                errors.append(error)
    _PENDING.set(tuple(errors))


def pending() -> tuple[InvalidEvent, ...]:
    """The rule errors kept for the request being answered (none if none were checked)."""
    return _PENDING.get()


def with_pending(errors: Sequence[InvalidEvent]) -> list[InvalidEvent]:
    """`errors` and, after them, the kept rule errors not among them: every bad parameter."""
    seen = {(error.path, error.message) for error in errors}
    return [*errors, *(e for e in pending() if (e.path, e.message) not in seen)]


def merged(errors: list[dict[str, str]]) -> list[dict[str, str]]:
    """Litestar's type errors (`path`, `message`) with the kept rule errors.

    Where both name a parameter, the rule's words replace Litestar's ("is country or
    organization, not 'x'" for "Invalid enum value 'x'"); every other rule error follows.
    """
    ours = list(pending())
    result = []
    for error in errors:
        same = next((e for e in ours if e.path == error["path"]), None)
        if same is None:
            result.append(error)
        else:
            ours.remove(same)
            result.append({"path": same.path, "message": same.message})
    result.extend({"path": e.path, "message": e.message} for e in ours)
    return result


def forget() -> None:
    """Keep no rule errors for the request being answered (it checks none)."""
    _PENDING.set(())
