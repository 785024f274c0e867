"""The fold state every projection reads: the selected facts in valid-time order, indexed.

The state keeps raw facts only (what the answers show of each event, with corrections
already applied) and a few indexes into them; every rolled-up answer (a subsidiary's
agreement counted for its parent, a site's total per currency) is derived from the state
at query time. So an `organization_registered` event folded after the agreements it
explains still rolls them up, whatever order the events arrived in.

The state only ever grows at the end: fact `i` and the index entries pointing at it never
change once folded. A reader that remembers how many facts there were (`count`) therefore
sees a fixed state even while a live fold keeps appending.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Final, Protocol

import msgspec

from events.envelope import Event, Source
from events.payloads import (
    PAYLOAD_TYPES,
    RECORD_TYPES,
    AnyPayload,
    FacilityPlanAnnounced,
    InitiativeLaunched,
    InvestmentCommitted,
    MemorandumSigned,
    OrganizationRegistered,
    PartnershipAgreed,
    SiteAcquired,
)

SortKey = tuple[str, int, str]
"""Valid-time order: period start (ISO text), sequence (None as 0), event id."""


class Fact(msgspec.Struct, frozen=True, array_like=True, gc=False):
    """What the folds keep of an announcement: the envelope fields answers show, and its data.

    Hashes, metadata and stream versions stay in the log. Each announcement type has its
    own subclass (`FACT_TYPES`), tagged with the type, so a list of facts encodes as
    arrays led by their type and decodes back in one pass.
    """

    event_id: str
    occurred_on: str
    sequence: int | None
    stream: str
    position: int
    recorded_at: datetime
    source: Source
    data: AnyPayload
    corrected_by: str | None = None
    """The correction whose replacement `data` is (`source` stays the announcement's own)."""

    @property
    def type(self) -> str:
        """The event's type tag."""
        return self.data.TYPE


FACT_TYPES: Final[dict[str, type[Fact]]] = {
    name: msgspec.defstruct(  # type: ignore[misc]  # defstruct is typed as making a plain Struct
        f"{payload.__name__}Fact",
        [("data", payload)],
        bases=(Fact,),
        tag=name,
        frozen=True,
        array_like=True,
        gc=False,
    )
    for name, payload in sorted(PAYLOAD_TYPES.items())
    if name not in RECORD_TYPES
}
"""The fact class of each announcement type."""


def fact_of(event: Event, data: AnyPayload | None = None) -> Fact:
    """The fact of an announcement (with `data` in place of its own, for a correction)."""
    return FACT_TYPES[event.type](
        event.event_id,
        event.occurred_on,
        event.sequence,
        event.stream,
        event.position,
        event.recorded_at,
        event.source,
        event.data if data is None else data,
    )


def period_start_text(occurred_on: str) -> str:
    """The ISO text of `events.dates.period_start`, by padding (`2023-05` -> `2023-05-01`).

    `occurred_on` is validated on intake (`YYYY`, `YYYY-MM`, `YYYY-MM-DD`, four-digit year),
    so text order of the result is date order.
    """
    size = len(occurred_on)
    if size == 10:
        return occurred_on
    if size == 7:
        return occurred_on + "-01"
    return occurred_on + "-01-01"


class Dated(Protocol):
    """Whatever has a place in valid-time order: an event, a fact, a correction's record."""

    @property
    def occurred_on(self) -> str: ...  # noqa: D102 - the envelope's field

    @property
    def sequence(self) -> int | None: ...  # noqa: D102 - the envelope's field

    @property
    def event_id(self) -> str: ...  # noqa: D102 - the envelope's field


def sort_key(event: Dated) -> SortKey:
    """An event's place in valid-time order; depends on the event only, never on its position."""
    return (period_start_text(event.occurred_on), event.sequence or 0, event.event_id)


def scan_order(facts: Iterable[Fact], *, strict: bool) -> tuple[bool, SortKey | None]:
    """Whether facts are in valid-time order (`strict`: no two equal keys), and the last key.

    The last key is that of the last fact scanned (the first out of order, if any). The
    key of `sort_key` is built inline: this runs over every fact of a replay or snapshot.
    """
    previous: SortKey | None = None
    for fact in facts:
        occurred_on = fact.occurred_on
        size = len(occurred_on)
        start = occurred_on if size == 10 else occurred_on + ("-01" if size == 7 else "-01-01")
        key = (start, fact.sequence or 0, fact.event_id)
        if previous is not None and (key <= previous if strict else key < previous):
            return False, key
        previous = key
    return True, previous


class FoldState(msgspec.Struct, kw_only=True):
    """What the folds keep: the facts in valid-time order and indexes into that list.

    `facts` are the selected announcements, corrected and without the retracted ones, in
    fold order; `organizations` maps an organization id to the facts registering it,
    `agreements` lists the memoranda and partnership deals, `sites` maps a site id to the
    acquisitions, plans, initiatives and investments there; `corrected` maps a corrected
    event's id to the id of the correction applied to it.
    """

    facts: list[Fact] = msgspec.field(default_factory=list)
    organizations: dict[str, list[int]] = msgspec.field(default_factory=dict)
    agreements: list[int] = msgspec.field(default_factory=list)
    sites: dict[str, list[int]] = msgspec.field(default_factory=dict)
    corrected: dict[str, str] = msgspec.field(default_factory=dict)


def fold_fact(state: FoldState, fact: Fact) -> FoldState:
    """Fold one fact into the state (in place, O(1)) and return the state.

    The caller folds in valid-time order (`sort_key`); corrections and retractions are
    applied before folding (see `projections.selection`), so they are never folded here.
    """
    index = len(state.facts)
    state.facts.append(fact)
    data = fact.data
    if isinstance(data, (InvestmentCommitted, SiteAcquired)):
        site: str | None = data.site
    elif isinstance(data, (MemorandumSigned, PartnershipAgreed)):
        state.agreements.append(index)
        return state
    elif isinstance(data, (FacilityPlanAnnounced, InitiativeLaunched)):
        site = data.site
    elif isinstance(data, OrganizationRegistered):
        registrations = state.organizations.get(data.id)
        if registrations is None:
            state.organizations[data.id] = [index]
        else:
            registrations.append(index)
        return state
    else:
        return state
    if site is not None:
        entries = state.sites.get(site)
        if entries is None:
            state.sites[site] = [index]
        else:
            entries.append(index)
    return state


def fold(state: FoldState, event: Event) -> FoldState:
    """Fold one stored announcement into the state (in place, O(1)) and return the state."""
    return fold_fact(state, fact_of(event))


def fold_all(facts: Iterable[Fact], state: FoldState | None = None) -> FoldState:
    """Fold facts already in valid-time order into a state (a new one unless given).

    `fold_fact` for each fact, with the dispatch on the payload's class done once per class.
    """
    if state is None:
        state = FoldState()
    folded, organizations, agreements, sites = (
        state.facts,
        state.organizations,
        state.agreements,
        state.sites,
    )
    kinds = _FOLD_KINDS
    index = len(folded)
    for fact in facts:
        folded.append(fact)
        data = fact.data
        kind = kinds.get(type(data))
        if kind is _SITE:
            site = data.site  # type: ignore[union-attr]  # every class of this kind has a site
            if site is not None:
                entries = sites.get(site)
                if entries is None:
                    sites[site] = [index]
                else:
                    entries.append(index)
        elif kind is _AGREEMENT:
            agreements.append(index)
        elif kind is _ORGANIZATION:
            org_id = data.id  # type: ignore[union-attr]  # an OrganizationRegistered
            registrations = organizations.get(org_id)
            if registrations is None:
                organizations[org_id] = [index]
            else:
                registrations.append(index)
        elif kind is None:  # a subclass of a payload class, say: the general path
            folded.pop()
            fold_fact(state, fact)
        index += 1
    return state


_SITE, _AGREEMENT, _ORGANIZATION, _OTHER = "site", "agreement", "organization", "other"
_FOLD_KINDS: Final[dict[type, str]] = {
    InvestmentCommitted: _SITE,
    SiteAcquired: _SITE,
    FacilityPlanAnnounced: _SITE,
    InitiativeLaunched: _SITE,
    MemorandumSigned: _AGREEMENT,
    PartnershipAgreed: _AGREEMENT,
    OrganizationRegistered: _ORGANIZATION,
    **{cls: _OTHER for name, cls in PAYLOAD_TYPES.items() if name in RECORD_TYPES},
}
