"""Capacity state: per site, who owns it, what was planned, launched and invested there.

Money stays per currency: a site's `committed` maps each currency to the total of its
investments in that currency, never a sum across currencies. Sums are Decimal additions
at `SUM_DIGITS` digits: exact, whatever the order of addition, unless a total would be
longer (only amounts of absurd exponents get there), which is then rounded.
"""

from __future__ import annotations

import decimal
from collections.abc import Sequence
from decimal import Decimal
from typing import Literal

from events.envelope import Source
from events.payloads import (
    FacilityPlanAnnounced,
    InitiativeLaunched,
    InvestmentCommitted,
    Location,
    Money,
    SiteAcquired,
)
from projections.registry import upto
from projections.schema import ReadOnlyDict, View
from projections.state import Fact, FoldState

SUM_DIGITS = 1000
"""Digits of a money total; a longer one (amounts of absurd exponents) is rounded."""
_SUMS = decimal.Context(prec=SUM_DIGITS, Emax=decimal.MAX_EMAX, Emin=decimal.MIN_EMIN)

SiteRole = Literal["owner", "former_owner", "seller", "plan", "initiative", "investment"]
SummaryBy = Literal["country", "organization"]


class AcquisitionView(View, frozen=True):
    """A site changing hands: when, to whom, from whom, for how much."""

    acquired_on: str
    acquirer: str
    seller: str | None
    price: Money | None
    event_id: str
    source: Source
    corrected_by: str | None = None


class PlanView(View, frozen=True):
    """A facility plan announced for a site."""

    org: str
    announced_on: str
    purpose: str | None
    location: Location | None
    event_id: str
    source: Source
    corrected_by: str | None = None


class InitiativeView(View, frozen=True):
    """An initiative launched at a site."""

    initiative: str
    name: str
    org: str
    launched_on: str
    description: str | None
    event_id: str
    source: Source
    corrected_by: str | None = None


class InvestmentView(View, frozen=True):
    """Money (and jobs) committed to a site."""

    org: str
    committed_on: str
    amount: Money
    jobs: int | None
    jobs_by_year: int | None
    modalities: tuple[str, ...]
    capabilities: tuple[str, ...]
    event_id: str
    source: Source
    corrected_by: str | None = None


class SiteView(View, frozen=True):
    """Capacity at one site.

    `owner` is the acquirer of the latest acquisition, with its `acquired_on`, `seller`
    and `price` (all acquisitions in `acquisitions`); `location` is the latest one any
    event gives; `committed` is the total invested per currency, `jobs` the jobs promised,
    `jobs_by_year` the latest year by which any of them are due; `modalities` and
    `capabilities` gather the investments' in order of first mention; `orgs` lists every
    organization with a role at the site.
    """

    site: str
    name: str | None
    location: Location | None
    owner: str | None
    acquired_on: str | None
    seller: str | None
    price: Money | None
    acquisitions: tuple[AcquisitionView, ...]
    plans: tuple[PlanView, ...]
    initiatives: tuple[InitiativeView, ...]
    investments: tuple[InvestmentView, ...]
    committed: dict[str, Decimal]
    jobs: int
    jobs_by_year: int | None
    modalities: tuple[str, ...]
    capabilities: tuple[str, ...]
    orgs: tuple[str, ...]


class SummaryRow(View, frozen=True):
    """Capacity totals of one country or one top-level organization.

    `committed`: invested money per currency; `acquisitions`: prices paid for sites per
    currency; `jobs`: jobs promised; `sites`: how many sites (listed in `site_ids`). By
    country, `key` is the site's country (None when no event locates it); by organization
    it is the top-level parent of the organizations involved (owner, planners, initiative
    launchers, investors), money and jobs counting for the group that committed them.
    """

    key: str | None
    committed: dict[str, Decimal]
    acquisitions: dict[str, Decimal]
    jobs: int
    sites: int
    site_ids: tuple[str, ...]


def add_money(totals: dict[str, Decimal], money: Money) -> None:
    """Add an amount to its currency's total (exactly; currencies never mix)."""
    total = totals.get(money.currency)
    totals[money.currency] = money.amount if total is None else _SUMS.add(total, money.amount)


class _SiteBuilder:
    """The mutable accumulator behind one `SiteView`."""

    def __init__(self, site: str) -> None:
        self.site = site
        self.name: str | None = None
        self.location: Location | None = None
        self.acquisitions: list[AcquisitionView] = []
        self.plans: list[PlanView] = []
        self.initiatives: list[InitiativeView] = []
        self.investments: list[InvestmentView] = []
        self.committed: dict[str, Decimal] = {}
        self.jobs = 0
        self.jobs_by_year: int | None = None
        self.modalities: dict[str, None] = {}
        self.capabilities: dict[str, None] = {}

    def add(self, event: Fact) -> None:
        data = event.data
        if isinstance(data, InvestmentCommitted):
            self.investments.append(
                InvestmentView(
                    org=data.org,
                    committed_on=event.occurred_on,
                    amount=data.amount,
                    jobs=data.jobs,
                    jobs_by_year=data.jobs_by_year,
                    modalities=data.modalities,
                    capabilities=data.capabilities,
                    event_id=event.event_id,
                    source=event.source,
                    corrected_by=event.corrected_by,
                )
            )
            add_money(self.committed, data.amount)
            self.jobs += data.jobs or 0
            if data.jobs_by_year is not None:
                self.jobs_by_year = max(self.jobs_by_year or data.jobs_by_year, data.jobs_by_year)
            self.modalities.update(dict.fromkeys(data.modalities))
            self.capabilities.update(dict.fromkeys(data.capabilities))
            self.location = data.location or self.location
        elif isinstance(data, SiteAcquired):
            self.acquisitions.append(
                AcquisitionView(
                    acquired_on=event.occurred_on,
                    acquirer=data.acquirer,
                    seller=data.seller,
                    price=data.price,
                    event_id=event.event_id,
                    source=event.source,
                    corrected_by=event.corrected_by,
                )
            )
            self.name = data.name
            self.location = data.location
        elif isinstance(data, FacilityPlanAnnounced):
            self.plans.append(
                PlanView(
                    org=data.org,
                    announced_on=event.occurred_on,
                    purpose=data.purpose,
                    location=data.location,
                    event_id=event.event_id,
                    source=event.source,
                    corrected_by=event.corrected_by,
                )
            )
            self.location = data.location or self.location
        elif isinstance(data, InitiativeLaunched):
            self.initiatives.append(
                InitiativeView(
                    initiative=data.initiative,
                    name=data.name,
                    org=data.org,
                    launched_on=event.occurred_on,
                    description=data.description,
                    event_id=event.event_id,
                    source=event.source,
                    corrected_by=event.corrected_by,
                )
            )
            self.location = data.location or self.location

    def view(self) -> SiteView:
        last = self.acquisitions[-1] if self.acquisitions else None
        orgs = {
            org
            for _, org in _roles(self.acquisitions, self.plans, self.initiatives, self.investments)
        }
        return SiteView(
            site=self.site,
            name=self.name,
            location=self.location,
            owner=last.acquirer if last else None,
            acquired_on=last.acquired_on if last else None,
            seller=last.seller if last else None,
            price=last.price if last else None,
            acquisitions=tuple(self.acquisitions),
            plans=tuple(self.plans),
            initiatives=tuple(self.initiatives),
            investments=tuple(self.investments),
            committed=ReadOnlyDict(sorted(self.committed.items())),
            jobs=self.jobs,
            jobs_by_year=self.jobs_by_year,
            modalities=tuple(self.modalities),
            capabilities=tuple(self.capabilities),
            orgs=tuple(sorted(orgs)),
        )


def _roles(
    acquisitions: Sequence[AcquisitionView],
    plans: Sequence[PlanView],
    initiatives: Sequence[InitiativeView],
    investments: Sequence[InvestmentView],
) -> set[tuple[SiteRole, str]]:
    roles: set[tuple[SiteRole, str]] = set()
    owner = acquisitions[-1].acquirer if acquisitions else None
    for acquisition in acquisitions:
        if acquisition.acquirer != owner:
            roles.add(("former_owner", acquisition.acquirer))
        if acquisition.seller is not None:
            roles.add(("seller", acquisition.seller))
    if owner is not None:
        roles.add(("owner", owner))
    roles.update(("plan", plan.org) for plan in plans)
    roles.update(("initiative", initiative.org) for initiative in initiatives)
    roles.update(("investment", investment.org) for investment in investments)
    return roles


def site_roles(site: SiteView) -> set[tuple[SiteRole, str]]:
    """Every (role, organization) at a site: owner, former owners, sellers, planners and so on."""
    return _roles(site.acquisitions, site.plans, site.initiatives, site.investments)


def derive_site(facts: list[Fact], indexes: list[int], count: int, site_id: str) -> SiteView | None:
    """One site from the facts at it (`indexes`) among the first `count`; None if none."""
    seen = upto(indexes, count)
    if not seen:
        return None
    builder = _SiteBuilder(site_id)
    for index in seen:
        builder.add(facts[index])
    return builder.view()


def derive_sites(state: FoldState, count: int) -> dict[str, SiteView]:
    """Every site the view's facts mention, by id, in id order."""
    facts = state.facts
    sites: dict[str, SiteView] = {}
    for site_id in sorted(state.sites):  # a copy of the keys: a live fold may add some
        view = derive_site(facts, state.sites[site_id], count, site_id)
        if view is not None:
            sites[site_id] = view
    return sites
