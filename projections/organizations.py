"""Organizations: who they are, their group, their partners and their sites.

Every organization the view's facts register or mention (a party, an acquirer, a seller,
a parent) has an entry; one never registered has `registered=False` and no name.
Partners are top-level organizations; a parent's partners and sites include those of its
subsidiaries, each site role naming the organization that holds it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from itertools import islice
from typing import TypeVar

import msgspec

from events.envelope import Source
from events.payloads import (
    FacilityPlanAnnounced,
    InitiativeLaunched,
    MemorandumSigned,
    PartnershipAgreed,
)
from projections.advance import with_entries
from projections.capacity import SiteRole, SiteView, site_roles
from projections.partnerships import Pair, PartnershipView, agreement_of
from projections.registry import Registry, upto
from projections.schema import View
from projections.state import Fact, FoldState

T = TypeVar("T")


class OrgSite(View, frozen=True):
    """A site an organization (or one of its subsidiaries, `org`) has a role at."""

    site: str
    role: SiteRole
    org: str


class RegistrationView(View, frozen=True):
    """The registration an organization's entry shows: its valid time, event and source."""

    registered_on: str
    event_id: str
    source: Source
    corrected_by: str | None = None


class OrganizationView(View, frozen=True):
    """An organization as the view knows it.

    `parent` is the direct parent, `top` the top-level parent it rolls up to (itself if
    none), `subsidiaries` the direct ones; `partners` are the top-level organizations it
    or its subsidiaries signed agreements with; `sites` its and its subsidiaries' roles
    at sites (owner, former owner, seller, plan, initiative, investment).
    `registration` is where its name, country, kind, aliases and parent come from (the
    latest registration in valid time, corrected if a correction says so; None if never
    registered).
    """

    id: str
    name: str | None
    country: str | None
    kind: str | None
    aliases: tuple[str, ...]
    registered: bool
    parent: str | None
    top: str
    subsidiaries: tuple[str, ...]
    partners: tuple[str, ...]
    sites: tuple[OrgSite, ...]
    registration: RegistrationView | None = None


def _partners(registry: Registry, partnerships: dict[Pair, PartnershipView]) -> dict[str, set[str]]:
    """Each organization's partners: those of its own agreements and its subsidiaries'."""
    by_signer: dict[str, set[str]] = {}
    for (org_a, org_b), partnership in partnerships.items():
        through = partnership.through
        for signer in through[org_a]:
            by_signer.setdefault(signer, set()).add(org_b)
        for signer in through[org_b]:
            by_signer.setdefault(signer, set()).add(org_a)
    return _up_the_chain(registry, by_signer)


def _up_the_chain(registry: Registry, own: dict[str, set[T]]) -> dict[str, set[T]]:
    """Each organization's own entries together with those of its subsidiaries."""
    merged: dict[str, set[T]] = {}
    for org, entries in own.items():
        for holder in registry.chain(org):
            held = merged.get(holder)
            if held is None:
                merged[holder] = set(entries)
            else:
                held |= entries
    return merged


def _sites(registry: Registry, sites: dict[str, SiteView]) -> dict[str, set[OrgSite]]:
    """Each organization's roles at sites: its own and its subsidiaries'."""
    own: dict[str, set[OrgSite]] = {}
    for site in sites.values():
        for role, org in site_roles(site):
            own.setdefault(org, set()).add(OrgSite(site=site.site, role=role, org=org))
    return _up_the_chain(registry, own)


def _known(
    state: FoldState, count: int, registry: Registry, sites: dict[str, SiteView]
) -> set[str]:
    """Every organization the view's facts register or name.

    Registered, or named as a parent, a party, at a site, or as the organization of a plan
    or initiative at no site.
    """
    known: set[str] = set(registry.registered) | set(registry.parent.values())
    for index in upto(state.agreements, count):
        data = state.facts[index].data
        if isinstance(data, (MemorandumSigned, PartnershipAgreed)):
            known.update(data.parties)
    for site in sites.values():
        known.update(site.orgs)
    for fact in islice(state.facts, count):  # no index holds them: one pass
        data = fact.data
        if isinstance(data, (FacilityPlanAnnounced, InitiativeLaunched)) and data.site is None:
            known.add(data.org)
    return known


def _site_order(entry: OrgSite) -> tuple[str, str, str]:
    return (entry.site, entry.role, entry.org)


def derive_organizations(
    state: FoldState,
    count: int,
    registry: Registry,
    partnerships: dict[Pair, PartnershipView],
    sites: dict[str, SiteView],
) -> dict[str, OrganizationView]:
    """Every organization of the view, by id, in id order."""
    partners = _partners(registry, partnerships)
    org_sites = _sites(registry, sites)
    children = registry.subsidiaries()
    return {
        org_id: _view(
            org_id,
            registry,
            children,
            partners.get(org_id, ()),
            sorted(org_sites.get(org_id, ()), key=_site_order),
        )
        for org_id in sorted(_known(state, count, registry, sites))
    }


def _view(
    org_id: str,
    registry: Registry,
    children: dict[str, list[str]],
    partners: Iterable[str],
    sites: Iterable[OrgSite],
) -> OrganizationView:
    """An organization's entry: its registration, group, partners and (sorted) site roles."""
    registration = registry.registered.get(org_id)
    fact = registry.registration.get(org_id)
    return OrganizationView(
        id=org_id,
        name=registration.name if registration else None,
        country=registration.country if registration else None,
        kind=registration.kind if registration else None,
        aliases=registration.aliases if registration else (),
        registered=registration is not None,
        parent=registration.parent if registration else None,
        top=registry.top(org_id),
        subsidiaries=tuple(children.get(org_id, ())),
        partners=tuple(sorted(partners)),
        sites=tuple(sites),
        registration=None
        if fact is None
        else RegistrationView(
            registered_on=fact.occurred_on,
            event_id=fact.event_id,
            source=fact.source,
            corrected_by=fact.corrected_by,
        ),
    )


def advance_organizations(  # noqa: PLR0913 - the earlier answer and what changed since
    previous: dict[str, OrganizationView],
    registry: Registry,
    facts: list[Fact],
    agreements: list[int],
    old_sites: Mapping[str, SiteView],
    sites: Mapping[str, SiteView],
    touched_sites: set[str],
    named_elsewhere: Iterable[str] = (),
) -> tuple[dict[str, OrganizationView], set[str]]:
    """The organizations after in-order appends that register nobody (`projections.advance`).

    With the registry unchanged, new facts only add: an agreement adds partners to its
    signers and their parents, and a touched site's roles change (an owner becomes a
    former owner). A site role names the organization holding it, so the roles a parent
    lists (its own and its subsidiaries') never overlap and can be edited one by one. The
    entries of the organizations concerned, and of those the facts name for the first
    time (`named_elsewhere` too: those of plans and initiatives at no site), are made
    again (their ids come with the answer); every other entry is carried as it was.
    """
    partners, named = _new_partners(registry, facts, agreements)
    named.update(named_elsewhere)
    gone, new = _role_changes(registry, old_sites, sites, touched_sites)
    made: dict[str, OrganizationView] = {}
    children = None
    for org_id in named | partners.keys() | gone.keys() | new.keys():
        view = previous.get(org_id)
        if view is None:
            children = registry.subsidiaries() if children is None else children
            view = _view(org_id, registry, children, (), ())
        held = (set(view.sites) - gone.get(org_id, set())) | new.get(org_id, set())
        made[org_id] = msgspec.structs.replace(
            view,
            partners=tuple(sorted(set(view.partners) | partners.get(org_id, set()))),
            sites=tuple(sorted(held, key=_site_order)),
        )
    return with_entries(previous, made), set(made)


def _new_partners(
    registry: Registry, facts: list[Fact], agreements: list[int]
) -> tuple[dict[str, set[str]], set[str]]:
    """The partners new agreements give each signer and its parents; every party named."""
    partners: dict[str, set[str]] = {}
    named: set[str] = set()
    for index in agreements:
        data = facts[index].data
        if isinstance(data, (MemorandumSigned, PartnershipAgreed)):
            named.update(data.parties)
        made = agreement_of(facts[index], registry)
        if made is None:
            continue
        sides = made[0].through
        for top, signers in sides.items():
            others = {other for other in sides if other != top}
            for signer in signers:
                for holder in registry.chain(signer):
                    partners.setdefault(holder, set()).update(others)
    return partners, named


def _role_changes(
    registry: Registry,
    old_sites: Mapping[str, SiteView],
    sites: Mapping[str, SiteView],
    touched: set[str],
) -> tuple[dict[str, set[OrgSite]], dict[str, set[OrgSite]]]:
    """The site roles each organization (or a subsidiary) lost and gained at touched sites."""
    gone: dict[str, set[OrgSite]] = {}
    new: dict[str, set[OrgSite]] = {}
    for site_id in touched:
        before = site_roles(old_sites[site_id]) if site_id in old_sites else set()
        after = site_roles(sites[site_id]) if site_id in sites else set()
        for changes, roles in ((gone, before - after), (new, after - before)):
            for role, org in roles:
                entry = OrgSite(site=site_id, role=role, org=org)
                for holder in registry.chain(org):
                    changes.setdefault(holder, set()).add(entry)
    return gone, new
