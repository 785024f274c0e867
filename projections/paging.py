"""Pages of a projection's list: entries after a cursor, in the list's own order.

Every list a projection answers is sorted by a key that depends on its entries only: the
timeline by valid time (`state.sort_key`: period start, sequence, event id), partnerships
by their pair of ids, organizations and sites by id. A cursor is that key of the last entry
of a page, written as text; the next page starts at the first entry whose key is greater.
So a cursor stays meaningful when the list changes between two pages: an entry retracted or
corrected away since still marks a place in the order, and nothing before it is repeated.
Pure functions, no I/O.
"""

from __future__ import annotations

import re
from bisect import bisect_right
from collections.abc import Callable, Sequence
from typing import Any, Final, NamedTuple, TypeVar

from projections.capacity import SiteView
from projections.organizations import OrganizationView
from projections.partnerships import PartnershipView
from projections.state import period_start_text
from projections.timeline import TimelineEntry

T = TypeVar("T")

DEFAULT_PAGE: Final = 100
"""Entries per page of `ledger show` given a cursor without a limit, and of `GET /v1/events`
and `/v1/streams/{stream}` without a limit (the projection lists over HTTP page by the page
limit: `service.views.provide_page_ask`)."""

CursorKey = tuple[str | int, ...]
"""The sort key of one entry: what a cursor holds."""

_ID: Final = r"[a-z0-9-]+"
_SHAPES: Final[dict[str, re.Pattern[str]]] = {
    "timeline": re.compile(rf"([0-9]{{4}}-[0-9]{{2}}-[0-9]{{2}}),([0-9]{{1,18}}),({_ID})"),
    "partnerships": re.compile(rf"({_ID}),({_ID})"),
    "organizations": re.compile(rf"({_ID})"),
    "sites": re.compile(rf"({_ID})"),
}
_FORMS: Final = {
    "timeline": "<period start YYYY-MM-DD>,<sequence>,<event id>",
    "partnerships": "<org id>,<org id>",
    "organizations": "<org id>",
    "sites": "<site id>",
}


def _timeline_key(entry: TimelineEntry) -> CursorKey:
    return (period_start_text(entry.occurred_on), entry.sequence or 0, entry.event_id)


def _partnership_key(view: PartnershipView) -> CursorKey:
    return view.orgs


def _organization_key(view: OrganizationView) -> CursorKey:
    return (view.id,)


def _site_key(view: SiteView) -> CursorKey:
    return (view.site,)


KEYS: Final[dict[str, Callable[[Any], CursorKey]]] = {
    "timeline": _timeline_key,
    "partnerships": _partnership_key,
    "organizations": _organization_key,
    "sites": _site_key,
}
"""Each pageable list's sort key, by list name."""


class Page(NamedTuple):
    """The entries of one page, and the cursor of the next one (None on the last page)."""

    entries: list[Any]
    next_cursor: str | None


def cursor_text(key: CursorKey) -> str:
    """A key written as a cursor: its parts joined by commas (no id holds a comma)."""
    return ",".join(str(part) for part in key)


def parse_cursor(name: str, text: str) -> CursorKey:
    """The key a cursor of list `name` stands for; `ValueError` saying the expected form."""
    match = _SHAPES[name].fullmatch(text)
    if match is None:
        msg = f"is not a cursor of this list (expected {_FORMS[name]})"
        raise ValueError(msg)
    parts = match.groups()
    if name == "timeline":
        return (parts[0], int(parts[1]), parts[2])
    return parts


def page_of(name: str, entries: Sequence[T], after: CursorKey | None, limit: int) -> Page:
    """Up to `limit` entries of the sorted list `name` whose keys follow `after`."""
    key = KEYS[name]
    start = 0 if after is None else bisect_right(entries, after, key=key)
    chunk = list(entries[start : start + limit])
    more = start + limit < len(entries)
    return Page(chunk, cursor_text(key(chunk[-1])) if more and chunk else None)
