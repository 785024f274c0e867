"""Capacity summaries: money per currency, jobs and sites by country or by organization.

`summarize` derives every row from every site. `advance_summary` brings an earlier
summary up to date after in-order appends that register nobody: only the rows the
touched sites' new money and moved memberships concern are made again.
"""

from __future__ import annotations

import decimal
from collections.abc import Callable, Iterable, Mapping
from decimal import Decimal
from typing import Final

from events.payloads import Money
from projections.capacity import (
    SUM_DIGITS,
    SiteRole,
    SiteView,
    SummaryBy,
    SummaryRow,
    add_money,
    site_roles,
)
from projections.registry import Registry
from projections.schema import ReadOnlyDict

Key = str | None
"""A summary row's key: a country (None: not located), or a top-level organization."""

_INVOLVED: Final[frozenset[SiteRole]] = frozenset({"owner", "plan", "initiative", "investment"})


class _RowBuilder:
    def __init__(self) -> None:
        self.committed: dict[str, Decimal] = {}
        self.acquisitions: dict[str, Decimal] = {}
        self.jobs = 0
        self.site_ids: set[str] = set()

    def row(self, key: Key) -> SummaryRow:
        return SummaryRow(
            key=key,
            committed=ReadOnlyDict(sorted(self.committed.items())),
            acquisitions=ReadOnlyDict(sorted(self.acquisitions.items())),
            jobs=self.jobs,
            sites=len(self.site_ids),
            site_ids=tuple(sorted(self.site_ids)),
        )


class _Rows(dict[Key, _RowBuilder]):
    """Summary rows by key, made on first use."""

    def __missing__(self, key: Key) -> _RowBuilder:
        row = self[key] = _RowBuilder()
        return row


def _add(rows: _Rows, site: SiteView, by: SummaryBy, top: Callable[[str], str]) -> None:
    """Add what a site counts for to the rows of its groups."""
    if by == "country":
        row = rows[site.location.country if site.location else None]
        row.site_ids.add(site.site)
        for investment in site.investments:
            add_money(row.committed, investment.amount)
            row.jobs += investment.jobs or 0
        for acquisition in site.acquisitions:
            if acquisition.price is not None:
                add_money(row.acquisitions, acquisition.price)
        return
    for key in {top(org) for role, org in site_roles(site) if role in _INVOLVED}:
        rows[key].site_ids.add(site.site)
    for investment in site.investments:
        row = rows[top(investment.org)]
        add_money(row.committed, investment.amount)
        row.jobs += investment.jobs or 0
    for acquisition in site.acquisitions:
        if acquisition.price is not None:
            add_money(rows[top(acquisition.acquirer)].acquisitions, acquisition.price)


def _ordered(rows: Iterable[SummaryRow]) -> list[SummaryRow]:
    """Rows ordered by key, None last."""
    return sorted(rows, key=lambda row: (row.key is None, row.key or ""))


def summarize(sites: dict[str, SiteView], by: SummaryBy, registry: Registry) -> list[SummaryRow]:
    """Capacity totals by country or by top-level organization, ordered by key (None last)."""
    rows = _Rows()
    top = registry.top
    for site in sites.values():
        _add(rows, site, by, top)
    return _ordered(row.row(key) for key, row in rows.items())


class _Edit:
    """What a row gains from new facts: money, jobs, sites in, sites out."""

    def __init__(self) -> None:
        self.committed: list[Money] = []
        self.acquisitions: list[Money] = []
        self.jobs = 0
        self.joined: set[str] = set()
        self.left: set[str] = set()

    def applied(self, key: Key, row: SummaryRow | None) -> SummaryRow | None:
        """The row with this edit (None: the row is gone, counting nothing)."""
        made = _RowBuilder()
        if row is not None:
            made.committed, made.acquisitions = dict(row.committed), dict(row.acquisitions)
            made.jobs, made.site_ids = row.jobs, set(row.site_ids)
        for money in self.committed:
            _add_exactly(made.committed, money)
        for money in self.acquisitions:
            _add_exactly(made.acquisitions, money)
        made.jobs += self.jobs
        made.site_ids = made.site_ids - self.left | self.joined
        return made.row(key) if made.site_ids or made.committed or made.acquisitions else None


_EXACT: Final = decimal.Context(
    prec=SUM_DIGITS,
    Emax=decimal.MAX_EMAX,
    Emin=decimal.MIN_EMIN,
    traps=[decimal.Inexact, decimal.Rounded],
)


def _add_exactly(totals: dict[str, Decimal], money: Money) -> None:
    """`add_money`, or `decimal.Rounded` (or `Inexact`) if this sum or the one before may round.

    `summarize` adds at `SUM_DIGITS` digits in site order: while every total stays
    shorter, each sum is exact and the order does not matter (amounts are never
    negative, so no partial sum is longer than the total); past that, only the same
    order gives the same rounding.
    """
    total = totals.get(money.currency)
    if total is None:
        totals[money.currency] = money.amount
        return
    if len(total.as_tuple().digits) >= SUM_DIGITS - 1:
        raise decimal.Rounded
    added = _EXACT.add(total, money.amount)
    if len(added.as_tuple().digits) >= SUM_DIGITS - 1:
        raise decimal.Rounded
    totals[money.currency] = added


class _Edits(dict[Key, _Edit]):
    def __missing__(self, key: Key) -> _Edit:
        edit = self[key] = _Edit()
        return edit


def _involved(site: SiteView | None, top: Callable[[str], str]) -> set[Key]:
    if site is None:
        return set()
    return {top(org) for role, org in site_roles(site) if role in _INVOLVED}


def _country(site: SiteView) -> Key:
    return site.location.country if site.location else None


def _edit(
    edits: _Edits, old: SiteView | None, new: SiteView, by: SummaryBy, top: Callable[[str], str]
) -> bool:
    """Add what a site gained since `old` to the edits of its rows; False: it lost something."""
    had_invested = old.investments if old else ()
    had_bought = old.acquisitions if old else ()
    if (
        new.investments[: len(had_invested)] != had_invested
        or new.acquisitions[: len(had_bought)] != had_bought
    ):
        return False
    invested = new.investments[len(had_invested) :]
    prices = [
        (a.acquirer, a.price) for a in new.acquisitions[len(had_bought) :] if a.price is not None
    ]
    if by == "country":
        if old is not None and _country(old) != _country(new):
            return False
        edit = edits[_country(new)]
        edit.joined.add(new.site)
        edit.committed.extend(investment.amount for investment in invested)
        edit.jobs += sum(investment.jobs or 0 for investment in invested)
        edit.acquisitions.extend(price for _, price in prices)
        return True
    before, after = _involved(old, top), _involved(new, top)
    for key in before - after:
        edits[key].left.add(new.site)
    for key in after - before:
        edits[key].joined.add(new.site)
    for investment in invested:
        edit = edits[top(investment.org)]
        edit.committed.append(investment.amount)
        edit.jobs += investment.jobs or 0
    for acquirer, price in prices:
        edits[top(acquirer)].acquisitions.append(price)
    return True


def advance_summary(  # noqa: PLR0913 - the earlier summary, its sites and what changed
    previous: list[SummaryRow],
    old_sites: Mapping[str, SiteView],
    sites: Mapping[str, SiteView],
    touched: Iterable[str],
    by: SummaryBy,
    registry: Registry,
) -> list[SummaryRow] | None:
    """The summary after `touched` sites changed from `old_sites` to `sites`; None: derive it.

    For in-order appends that register nobody: a site then only gains investments and
    acquisitions (after the ones it had), so its new money is added to its groups' rows
    and only its memberships may move (an owner that sold it). The sums are exact, so
    the order of addition does not matter; a sum that could be rounded (a total of about
    `SUM_DIGITS` digits: amounts of absurd exponents) answers None, and so does anything
    else (a site that moved country, lost an investment or vanished).
    """
    top = registry.top
    edits = _Edits()
    for site_id in touched:
        new = sites.get(site_id)
        if new is None or not _edit(edits, old_sites.get(site_id), new, by, top):
            return None
    rows = {row.key: row for row in previous}
    reordered = False  # a row added or gone: sort again
    for key, edit in edits.items():
        try:
            row = edit.applied(key, rows.get(key))
        except (decimal.Inexact, decimal.Rounded):  # a sum that is or may be rounded
            return None
        reordered = reordered or (row is None) != (key not in rows)
        if row is None:
            rows.pop(key, None)
        else:
            rows[key] = row
    return _ordered(rows.values()) if reordered else list(rows.values())
