"""Answers carried from one live view to the next, after in-order appends.

A live state only grows at the end while events arrive in valid-time order (`Live.apply`),
so the view at a new head is the view at an earlier one plus a few facts at the end. An
answer derived at that earlier head is carried forward instead of derived again from
every fact: unchanged when the new facts do not touch it, or brought up to date from
them alone (the sites and pairs they touch, the timeline entries they add). What may be
carried, and when, is decided here from the new facts (`Delta`); `Projections` does the
carrying (`projections.build`). Anything else (a rebuild, a merge, a snapshot load)
gives a new state, and everything is derived again.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final, NamedTuple

from events.payloads import (
    FacilityPlanAnnounced,
    InitiativeLaunched,
    InvestmentCommitted,
    MemorandumSigned,
    OrganizationRegistered,
    PartnershipAgreed,
    SiteAcquired,
)
from projections.capacity import SiteView, derive_site
from projections.partnerships import (
    AgreementView,
    Pair,
    PartnershipView,
    agreement_of,
    partnership_of,
)
from projections.registry import Registry
from projections.state import Fact

MAX_DELTA: Final = 4_096
"""More new facts than this (or than the view held before) are derived again from zero."""


class Carried(NamedTuple):
    """An answer derived by an earlier view of the same live state, at `at` facts."""

    at: int
    value: object


class Delta:
    """What the facts after an earlier count touch: registrations, sites, agreements."""

    __slots__ = ("agreements", "registrations", "sites")

    def __init__(self, facts: list[Fact], start: int, end: int) -> None:
        self.registrations = False
        self.sites: set[str] = set()
        self.agreements: list[int] = []
        for index in range(start, end):
            data = facts[index].data
            if isinstance(data, OrganizationRegistered):
                self.registrations = True
            elif isinstance(data, (MemorandumSigned, PartnershipAgreed)):
                self.agreements.append(index)
            elif (
                isinstance(
                    data,
                    (SiteAcquired, InvestmentCommitted, FacilityPlanAnnounced, InitiativeLaunched),
                )
                and data.site is not None
            ):
                self.sites.add(data.site)

    @staticmethod
    def of(facts: list[Fact], start: int, end: int) -> Delta | None:
        """The delta of `facts[start:end]`, or None when it is too large to be worth it."""
        if start > end or end - start > min(MAX_DELTA, max(start, 1)):
            return None
        return Delta(facts, start, end)


def advance_sites(
    previous: Mapping[str, SiteView],
    facts: list[Fact],
    indexes: Mapping[str, list[int]],
    count: int,
    touched: set[str],
) -> tuple[dict[str, SiteView], set[str]]:
    """The sites after new facts: the touched ones derived again, the others as they were.

    And the ids of the sites made again (the only entries not carried as they were).
    """
    sites = dict(previous)
    made = set()
    for site_id in touched:
        view = derive_site(facts, indexes.get(site_id, []), count, site_id)
        if view is not None:
            sites[site_id] = view
            made.add(site_id)
    if any(site_id not in previous for site_id in made):
        return dict(sorted(sites.items())), made
    return sites, made


def advance_partnerships(
    previous: Mapping[Pair, PartnershipView],
    facts: list[Fact],
    agreements: list[int],
    registry: Registry,
) -> tuple[dict[Pair, PartnershipView], set[Pair]]:
    """The partnerships after new agreements, which come after every earlier one in order.

    And the pairs made again (the only entries not carried as they were).
    """
    added: dict[Pair, list[AgreementView]] = {}
    for index in agreements:
        made = agreement_of(facts[index], registry)
        if made is None:
            continue
        view, pairs = made
        for pair in pairs:
            added.setdefault(pair, []).append(view)
    if not added:
        return dict(previous), set()
    partnerships = dict(previous)
    for pair, views in added.items():
        old = partnerships.get(pair)
        earlier = list(old.agreements) if old is not None else []
        partnerships[pair] = partnership_of(pair, earlier + views)
    if any(pair not in previous for pair in added):
        return dict(sorted(partnerships.items())), set(added)
    return partnerships, set(added)
