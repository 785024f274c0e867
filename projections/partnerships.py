"""Partnership state: one entry per unordered pair of top-level organizations.

A subsidiary's agreement counts for its top-level parent, and the entry says through
which organization each side signed (the 2022 MoU: Lotte Biologics with MilliporeSigma,
which rolls up to Merck KGaA). An agreement of three or more parties gives an entry to
each pair of the top-level organizations among them; parties of one group do not make a
pair with themselves.
"""

from __future__ import annotations

from typing import Literal

from events.envelope import Source
from events.payloads import MemorandumSigned, PartnershipAgreed
from projections.registry import Registry, upto
from projections.schema import ReadOnlyDict, View
from projections.state import Fact, FoldState

Pair = tuple[str, str]
"""Two top-level organization ids, sorted."""

AgreementType = Literal["memorandum", "partnership"]


class AgreementView(View, frozen=True):
    """One agreement, as signed, listed under every pair of top-level organizations it joins.

    `type` is `memorandum` (a `memorandum_signed` event) or `partnership`
    (`partnership_agreed`); `parties` are the signing organizations as the source gives
    them; `through` maps each top-level organization among them to the organizations
    that signed for it (for a two-party agreement: the pair's two sides).
    """

    agreement: str
    type: AgreementType
    occurred_on: str
    scope: tuple[str, ...]
    site: str | None
    initiative: str | None
    parties: tuple[str, ...]
    through: dict[str, tuple[str, ...]]
    event_id: str
    source: Source
    corrected_by: str | None = None


class PartnershipView(View, frozen=True):
    """Who partners with whom (top-level organizations), since when, through whom, on what.

    `since` is the valid time of the earliest agreement; `status` is `active` (no event
    ends a partnership yet); `through` gathers, per side, every organization that signed
    any of the `agreements`, which are in valid-time order.
    """

    orgs: Pair
    since: str
    status: Literal["active"]
    through: dict[str, tuple[str, ...]]
    agreements: tuple[AgreementView, ...]


def pair_of(org_a: str, org_b: str) -> Pair:
    """The key of an unordered pair."""
    return (org_a, org_b) if org_a <= org_b else (org_b, org_a)


def _sides(parties: tuple[str, ...], registry: Registry) -> dict[str, tuple[str, ...]]:
    """The signing parties grouped by the top-level organization they count for, in id order."""
    if len(parties) == 2:  # the common case, without sorting
        first, second = parties
        top_first, top_second = registry.top(first), registry.top(second)
        if top_first < top_second:
            return {top_first: (first,), top_second: (second,)}
        if top_second < top_first:
            return {top_second: (second,), top_first: (first,)}
    sides: dict[str, set[str]] = {}
    for party in parties:
        sides.setdefault(registry.top(party), set()).add(party)
    return {top: tuple(sorted(sides[top])) for top in sorted(sides)}


def _union(agreements: list[AgreementView], side: str) -> tuple[str, ...]:
    if len(agreements) == 1:
        return agreements[0].through[side]
    return tuple(sorted({signer for view in agreements for signer in view.through[side]}))


def agreement_of(fact: Fact, registry: Registry) -> tuple[AgreementView, list[Pair]] | None:
    """An agreement's view and the pairs of top-level organizations it joins (None: no pair)."""
    data = fact.data
    if isinstance(data, PartnershipAgreed):
        kind: AgreementType = "partnership"
        initiative = data.initiative
    elif isinstance(data, MemorandumSigned):
        kind, initiative = "memorandum", None
    else:  # pragma: no cover - the fold indexes agreements only
        return None
    sides = _sides(data.parties, registry)
    if len(sides) < 2:
        return None
    view = AgreementView(
        agreement=data.agreement,
        type=kind,
        occurred_on=fact.occurred_on,
        scope=data.scope,
        site=data.site,
        initiative=initiative,
        parties=data.parties,
        through=ReadOnlyDict(sides),
        event_id=fact.event_id,
        source=fact.source,
        corrected_by=fact.corrected_by,
    )
    tops = list(sides)
    pairs = [(org_a, org_b) for first, org_a in enumerate(tops) for org_b in tops[first + 1 :]]
    return view, pairs


def partnership_of(pair: Pair, agreements: list[AgreementView]) -> PartnershipView:
    """A pair's partnership from its agreements, in valid-time order."""
    org_a, org_b = pair
    return PartnershipView(
        orgs=pair,
        since=agreements[0].occurred_on,
        status="active",
        through=ReadOnlyDict({org_a: _union(agreements, org_a), org_b: _union(agreements, org_b)}),
        agreements=tuple(agreements),
    )


def derive_partnerships(
    state: FoldState, count: int, registry: Registry
) -> dict[Pair, PartnershipView]:
    """Every pair's partnership, keyed and ordered by the sorted pair of ids."""
    facts = state.facts
    pending: dict[Pair, list[AgreementView]] = {}
    for index in upto(state.agreements, count):
        made = agreement_of(facts[index], registry)
        if made is None:
            continue
        view, pairs = made
        for pair in pairs:
            agreements = pending.get(pair)
            if agreements is None:
                pending[pair] = [view]
            else:
                agreements.append(view)
    return {pair: partnership_of(pair, pending[pair]) for pair in sorted(pending)}
