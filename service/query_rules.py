"""What a query parameter must keep beyond its type, said once for every place that checks.

Litestar checks each parameter's type (a date, an integer ≥ 0) and stops there with a
422; the rules below (an RFC 3339 moment, a position not past the head, a page within the
page limit, a known event type) are checked later, by the routes' dependencies. So a
request bad in both ways would hear of its type errors first and of the rest only once
those were fixed. The parameter-name hook (`service.parameters`) therefore also applies
these rules to the raw strings before Litestar parses anything and keeps what it finds
for this request (`pending`); the 422 of Litestar's type errors adds them
(`service.problems`), and so does the first rule error a dependency raises (`with_pending`):
one answer lists every bad parameter. (A parameter the route does not take is refused at
once, with the rule errors but before Litestar's own.)
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextvars import ContextVar
from typing import Any, Final, get_args

from events.codec import payload_class
from events.dates import parse_moment
from events.errors import InvalidEvent
from projections.capacity import SummaryBy

SUMMARY_BY: Final[tuple[str, ...]] = get_args(SummaryBy)
"""What the capacity summary groups by."""
MAX_DIGITS: Final = 18
"""The longest integer a rule reads: past it, a position or a limit is out of range anyway."""
_PENDING: ContextVar[tuple[InvalidEvent, ...]] = ContextVar("query_rule_errors", default=())


def known_at_error(raw: str) -> InvalidEvent | None:
    """`known_at` must be an RFC 3339 moment with an offset."""
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
        return InvalidEvent(f"is {' or '.join(SUMMARY_BY)}, not {raw!r}", "query.by")
    return None


def _integer(raw: str) -> int | None:
    # plain ASCII digits of a 64-bit integer ('¹' is a digit to `isdigit`, not to `int`);
    # anything else is Litestar's type error to name
    return int(raw) if raw.isascii() and raw.isdigit() and len(raw) <= MAX_DIGITS else None


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


def keep_rule_errors(query: Any, names: Sequence[str], state: Any) -> None:  # noqa: ANN401
    """Keep what the raw `query` values break of the rules, for this request (`pending`).

    Only the parameters the route takes (`names`) are looked at.
    """
    errors: list[InvalidEvent] = []
    for name in names:
        rule = _RULES.get(name)
        if rule is None:
            continue
        for raw in query.getall(name, ()):
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


def forget() -> None:
    """Keep no rule errors for the request being answered (it checks none)."""
    _PENDING.set(())
