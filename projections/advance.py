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

from bisect import bisect_left
from collections.abc import Mapping
from itertools import islice
from typing import Any, Final, NamedTuple, TypeVar

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

K = TypeVar("K", bound=Any)
V = TypeVar("V")

MAX_DELTA: Final = 4_096
"""More new facts than this (or than the view held before) are derived again from zero."""


class Carried(NamedTuple):
    """An answer derived by an earlier view of the same live state, at `at` facts."""

    at: int
    value: object


class Delta:
    """What the facts after an earlier count touch: registrations, sites, agreements.

    `named`: the organizations of plans and initiatives at no site (they name an
    organization, which then has an entry, and touch no site).
    """

    __slots__ = ("agreements", "named", "registrations", "sites")

    def __init__(self, facts: list[Fact], start: int, end: int) -> None:
        self.registrations = False
        self.sites: set[str] = set()
        self.agreements: list[int] = []
        self.named: set[str] = set()
        for index in range(start, end):
            data = facts[index].data
            if isinstance(data, OrganizationRegistered):
                self.registrations = True
            elif isinstance(data, (MemorandumSigned, PartnershipAgreed)):
                self.agreements.append(index)
            elif isinstance(
                data,
                (SiteAcquired, InvestmentCommitted, FacilityPlanAnnounced, InitiativeLaunched),
            ):
                if data.site is not None:
                    self.sites.add(data.site)
                elif isinstance(data, (FacilityPlanAnnounced, InitiativeLaunched)):
                    self.named.add(data.org)

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
    made: dict[str, SiteView] = {}
    for site_id in touched:
        view = derive_site(facts, indexes.get(site_id, []), count, site_id)
        if view is not None:
            made[site_id] = view
    return with_entries(previous, made), set(made)


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
    remade: dict[Pair, PartnershipView] = {}
    for pair, views in added.items():
        old = previous.get(pair)
        earlier = list(old.agreements) if old is not None else []
        remade[pair] = partnership_of(pair, earlier + views)
    return with_entries(previous, remade), set(remade)


def with_entries(previous: Mapping[K, V], entries: Mapping[K, V]) -> dict[K, V]:
    """A key-sorted mapping with `entries` set: replaced where they are, new keys in order.

    Linear in the size, without sorting: the new keys (sorted) are placed by bisection
    among the earlier ones, and everything else is copied in runs.
    """
    new = sorted(key for key in entries if key not in previous)
    if new:
        keys, items, done = list(previous), iter(previous.items()), 0
        merged: dict[K, V] = {}
        for key in new:
            at = bisect_left(keys, key)
            merged.update(islice(items, at - done))
            merged[key] = entries[key]
            done = at
        merged.update(items)
    else:
        merged = dict(previous)
    merged.update(entries)  # the new keys again, the replaced ones where they were
    return merged
