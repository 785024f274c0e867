"""`build`: a view of the log, and `Projections`: its answers, derived once and cached.

A `Projections` reads a fold state up to a number of facts (`count`); the state only
grows at the end, so the answers of a `Projections` never change, even one taken from a
`Live` state that keeps folding.

Digests (`projections.digests`), each of a projection's query output in canonical form
(`events.codec.canonical`, sorted-key msgspec JSON): the organizations and the
partnerships are keyed digests (`KeyedHash`: the SHA-256 of the SHA-256s of runs of
about 32 entries in key order, cut where a key says so), so that a live view re-encodes
only the runs whose entries changed; capacity is the SHA-256 of
`{"sites": <keyed digest of the sites>, "by_country", "by_organization"}`. The
timeline's answer carries each event's `position` and `recorded_at`, which depend on
when and in what order the events were recorded, not on the events; so its digest is of
a position-free form of the timeline's state instead (`sha256(canonical(list))`, grown
entry by entry): per entry, in order, the event's id, type, valid time, sequence,
stream, (corrected) data, source and correction id (`timeline.stable_form`), everything
an entry shows but `position`, `recorded_at` and the summary rendered from the data.
Nothing else in any answer depends on arrival, so
equal sets of events give equal digests whatever their arrival order.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from functools import cached_property
from typing import Any, Final, cast

from events.envelope import Event
from events.replay import Replayed
from projections.advance import (
    MAX_DELTA,
    Carried,
    Delta,
    advance_partnerships,
    advance_sites,
)
from projections.capacity import SiteView, SummaryBy, SummaryRow, derive_sites
from projections.digests import KeyedHash, ListHash, digest_of
from projections.gcpause import paused_gc, without_gc
from projections.organizations import (
    OrganizationView,
    advance_organizations,
    derive_organizations,
)
from projections.partnerships import Pair, PartnershipView, derive_partnerships, pair_of
from projections.registry import Registry
from projections.selection import Selection, ViewSpec, select, select_replayed
from projections.state import FoldState, fold_all
from projections.summaries import advance_summary, summarize
from projections.timeline import StableEntry, TimelineEntry, stable_form, timeline_entry

PROJECTION_NAMES: Final = ("organizations", "partnerships", "capacity", "timeline")
"""The projections a view has, each with its digest."""

_SUMMARY_BY: Final = ("country", "organization")
_CARRIED: Final = {
    "registry": "_registry",
    "partnerships": "_partnerships",
    "sites": "_sites",
    "organizations": "_organizations",
    "timeline": "_timeline",
    "timeline_hash": "_timeline_hash",
}
"""The answers a later view may carry, by name, and the cached attribute holding each."""
_UNSEEN: Final = object()


class Projections:
    """The answers of one view: organizations, partnerships, capacity, timeline, digests.

    Immutable once made; each answer is derived on first use and cached. Lists returned
    are fresh copies of immutable entries.
    """

    def __init__(
        self,
        state: FoldState,
        *,
        count: int | None = None,
        position: int = 0,
        spec: ViewSpec | None = None,
        carried: Mapping[str, Carried] | None = None,
    ) -> None:
        self._state = state
        self._count = len(state.facts) if count is None else count
        self.position = position
        """The highest position among the events the view considered (0 if none)."""
        self.spec = spec if spec is not None else ViewSpec()
        """Where the view stands."""
        self._summaries: dict[str, list[SummaryRow]] = {}
        self._digests: dict[str, str] = {}
        self._keyed_hashes: dict[str, KeyedHash] = {}
        self._made: dict[str, tuple[object, set[Any]]] = {}  # advanced from, keys made again
        self._summary_sites: dict[str, dict[str, SiteView]] = {}
        self._carried = carried or {}
        self._deltas: dict[int, Delta | None] = {}

    # -- answers carried from an earlier view of the same live state (projections.advance)

    def _carry(self, name: str) -> tuple[object, Delta] | None:
        """An earlier view's answer `name` and what the facts since then touch, if any."""
        carried = self._carried.get(name)
        if carried is None:
            return None
        delta = self._deltas.get(carried.at, _UNSEEN)
        if delta is _UNSEEN:
            delta = self._deltas[carried.at] = Delta.of(self._state.facts, carried.at, self._count)
        return None if delta is None else (carried.value, cast("Delta", delta))

    def carry(self) -> dict[str, Carried]:
        """What a later view of the same live state may carry from this one (see `Live`)."""
        mine = {name: Carried(self._count, value) for name, value in self._derived().items()}
        count = self._count
        kept = {  # what a later view could still bring up to date (see `Delta.of`)
            name: carried
            for name, carried in self._carried.items()
            if count - carried.at <= min(MAX_DELTA, max(carried.at, 1))
        }
        return {**kept, **mine}

    def _derived(self) -> dict[str, object]:
        derived: dict[str, object] = {
            name: self.__dict__[attribute]
            for name, attribute in _CARRIED.items()
            if attribute in self.__dict__
        }
        if "organizations" in derived:  # what they were derived from: `_organizations` needs it
            derived["organizations:sites"] = self.__dict__["_sites"]
        # copies first (one C call each): another thread may be deriving more meanwhile
        derived.update((f"summary:{by}", rows) for by, rows in dict(self._summaries).items())
        derived.update((f"keyed:{name}", keyed) for name, keyed in dict(self._keyed_hashes).items())
        derived.update(
            (f"summary:{by}:sites", sites) for by, sites in dict(self._summary_sites).items()
        )
        derived.update(
            (f"digest:{name}", (self._digest_keys(name), digest))
            for name, digest in dict(self._digests).items()
            if name != "timeline"
        )
        return derived

    def _digest_keys(self, name: str) -> tuple[object, ...]:
        """The answers a digest is of: it is carried while they are the same objects."""
        if name == "organizations":
            return (self._organizations,)
        if name == "partnerships":
            return (self._partnerships,)
        for by in _SUMMARY_BY:  # carried or derived, and kept: the digest is of these rows
            self.capacity_summary(by)
        return (self._sites, self._summaries["country"], self._summaries["organization"])

    @cached_property
    @without_gc
    def _registry(self) -> Registry:
        carry = self._carry("registry")
        if carry is not None and not carry[1].registrations:
            return cast("Registry", carry[0])
        return Registry(self._state, self._count)

    @cached_property
    @without_gc
    def _partnerships(self) -> dict[Pair, PartnershipView]:
        carry = self._carry("partnerships")
        if carry is not None and not carry[1].registrations:
            previous = cast("dict[Pair, PartnershipView]", carry[0])
            if not carry[1].agreements:
                return previous
            advanced, made = advance_partnerships(
                previous, self._state.facts, carry[1].agreements, self._registry
            )
            self._made["partnerships"] = (previous, made)
            return advanced
        return derive_partnerships(self._state, self._count, self._registry)

    @cached_property
    @without_gc
    def _sites(self) -> dict[str, SiteView]:
        carry = self._carry("sites")
        if carry is not None:
            previous = cast("dict[str, SiteView]", carry[0])
            if not carry[1].sites:
                return previous
            state = self._state
            advanced, made = advance_sites(
                previous, state.facts, state.sites, self._count, carry[1].sites
            )
            self._made["sites"] = (previous, made)
            return advanced
        return derive_sites(self._state, self._count)

    @cached_property
    @without_gc
    def _organizations(self) -> dict[str, OrganizationView]:
        carry = self._carry("organizations")
        inputs = self._carried.get("organizations:sites")
        if carry is not None and not carry[1].registrations:
            delta, previous = carry[1], cast("dict[str, OrganizationView]", carry[0])
            if not (delta.agreements or delta.sites or delta.named):
                _ = self._sites  # unchanged (carried): what a later view advances from
                return previous
            if inputs is not None and inputs.at == self._carried["organizations"].at:
                advanced, made = advance_organizations(
                    previous,
                    self._registry,
                    self._state.facts,
                    delta.agreements,
                    cast("dict[str, SiteView]", inputs.value),
                    self._sites,
                    delta.sites,
                    delta.named,
                )
                self._made["organizations"] = (previous, made)
                return advanced
        return derive_organizations(
            self._state, self._count, self._registry, self._partnerships, self._sites
        )

    @cached_property
    @without_gc
    def _timeline(self) -> list[TimelineEntry]:
        carry = self._carry("timeline")
        start = 0 if carry is None else self._carried["timeline"].at
        corrected = self._state.corrected
        facts = self._state.facts[start : self._count]
        if not corrected:
            entries = [timeline_entry(event) for event in facts]
        else:
            entries = [timeline_entry(event, corrected.get(event.event_id)) for event in facts]
        return entries if carry is None else [*cast("list[TimelineEntry]", carry[0]), *entries]

    @cached_property
    @without_gc
    def _timeline_hash(self) -> ListHash:
        carry = self._carry("timeline_hash")
        start = 0 if carry is None else self._carried["timeline_hash"].at
        base = ListHash() if carry is None else cast("ListHash", carry[0])
        return base.extended(self._timeline_state(start))

    def _timeline_state(self, start: int = 0) -> Iterator[StableEntry]:
        corrected = self._state.corrected
        facts = self._state.facts[start : self._count]
        if not corrected:
            return (stable_form(fact) for fact in facts)
        return (stable_form(fact, corrected.get(fact.event_id)) for fact in facts)

    def derive(self) -> Projections:
        """Derive every answer now (what is otherwise done on first use) and return self.

        Organizations, partnerships, sites, both capacity summaries and the timeline: after
        this, every query is a lookup or a copy of a list. One GC pause for all of it.
        """
        with paused_gc():
            for by in _SUMMARY_BY:
                self.capacity_summary(by)
            _ = self._organizations, self._partnerships, self._sites, self._timeline
        return self

    def organizations(self) -> list[OrganizationView]:
        """Every organization, by id."""
        return list(self._organizations.values())

    def organization(self, org_id: str) -> OrganizationView | None:
        """One organization, or None if the view does not know it."""
        return self._organizations.get(org_id)

    def partnerships(self) -> list[PartnershipView]:
        """Every partnership, by pair of top-level ids."""
        return list(self._partnerships.values())

    def partnership(self, org_a: str, org_b: str) -> PartnershipView | None:
        """The partnership of two organizations, in either order, rolled up to their tops.

        None when they have none, or when both roll up to the same group.
        """
        top_a, top_b = self._registry.top(org_a), self._registry.top(org_b)
        if top_a == top_b:
            return None
        return self._partnerships.get(pair_of(top_a, top_b))

    def capacity_sites(self) -> list[SiteView]:
        """Every site, by id."""
        return list(self._sites.values())

    def capacity_site(self, site_id: str) -> SiteView | None:
        """One site, or None if the view does not know it."""
        return self._sites.get(site_id)

    def capacity_summary(self, by: SummaryBy) -> list[SummaryRow]:
        """Capacity totals by `country` or by (top-level) `organization`."""
        if by not in _SUMMARY_BY:
            msg = f"a capacity summary is by country or by organization, not {by!r}"
            raise ValueError(msg)
        rows = self._summaries.get(by)
        if rows is None:
            with paused_gc():
                rows = self._summaries[by] = self._summary(by)
        return list(rows)

    def _summary(self, by: SummaryBy) -> list[SummaryRow]:
        """A summary carried, brought up to date from the sites that changed, or derived."""
        carry = self._carry(f"summary:{by}")
        self._summary_sites[by] = self._sites  # what a later view brings it up to date from
        if carry is not None and not carry[1].registrations:
            previous, touched = cast("list[SummaryRow]", carry[0]), carry[1].sites
            if not touched:
                return previous
            inputs = self._carried.get(f"summary:{by}:sites")
            if inputs is not None and inputs.at == self._carried[f"summary:{by}"].at:
                old_sites = cast("dict[str, SiteView]", inputs.value)
                rows = advance_summary(
                    previous, old_sites, self._sites, touched, by, self._registry
                )
                if rows is not None:
                    return rows
        return summarize(self._sites, by, self._registry)

    def timeline(self) -> list[TimelineEntry]:
        """Every announcement in valid-time order, with its provenance."""
        return list(self._timeline)

    def _compute_digest(self, name: str) -> str:
        carried = self._carried.get(f"digest:{name}")
        if carried is not None:
            keys, digest = cast("tuple[tuple[object, ...], str]", carried.value)
            if all(
                mine is theirs for mine, theirs in zip(self._digest_keys(name), keys, strict=True)
            ):
                return digest
        if name in ("organizations", "partnerships"):
            return self._keyed(name).hexdigest()
        if name == "capacity":
            return digest_of(
                {
                    "sites": self._keyed("sites").hexdigest(),
                    "by_country": self.capacity_summary("country"),
                    "by_organization": self.capacity_summary("organization"),
                }
            )
        if name == "timeline":
            return self._timeline_hash.hexdigest()
        msg = f"no projection {name!r} (known: {', '.join(PROJECTION_NAMES)})"
        raise KeyError(msg)

    def _keyed(self, name: str) -> KeyedHash:
        """The `KeyedHash` of the organizations, partnerships or sites (carried if it can be)."""
        keyed = self._keyed_hashes.get(name)
        if keyed is None:
            entries: Mapping[object, object] = getattr(self, _CARRIED[name])
            carried = self._carried.get(f"keyed:{name}")
            if carried is None:
                keyed = KeyedHash.of(entries)
            else:
                earlier = cast("KeyedHash", carried.value)
                previous, made = self._made.get(name, (None, None))
                # the keys made again since the entries it hashed, when they are known
                keyed = earlier.updated(entries, made if previous is earlier.entries else None)
            self._keyed_hashes[name] = keyed
        return keyed

    def digest(self, name: str) -> str:
        """One projection's digest, deriving only what that projection needs.

        `KeyError` for a name not in `PROJECTION_NAMES`.
        """
        digest = self._digests.get(name)
        if digest is None:
            with paused_gc():
                digest = self._digests[name] = self._compute_digest(name)
        return digest

    def digests(self) -> dict[str, str]:
        """Each projection's digest, by name (`PROJECTION_NAMES`); see the module docstring."""
        with paused_gc():
            return {name: self.digest(name) for name in PROJECTION_NAMES}


def build(events: Iterable[Event], spec: ViewSpec = ViewSpec()) -> Projections:  # noqa: B008 - frozen
    """The view `spec` (default: everything, now) of a log's events, from zero."""
    with paused_gc():
        selection = select(events, spec)
    return _built(selection, spec)


def build_replayed(rows: Iterable[Replayed], spec: ViewSpec = ViewSpec()) -> Projections:  # noqa: B008 - frozen
    """`build` from the lean rows of a replay (`events.replay`, `iter_replay` of a log).

    The same view as `build` of the same events, without decoding whole envelopes.
    """
    with paused_gc():
        selection = select_replayed(rows, spec)
    return _built(selection, spec)


def _built(selection: Selection, spec: ViewSpec) -> Projections:
    with paused_gc():
        state = fold_all(selection.facts)
    state.corrected = selection.corrected
    return Projections(state, position=selection.position, spec=spec)
