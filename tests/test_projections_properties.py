"""Hypothesis: a view is a function of the set of events, whatever the arrival order.

Generated histories hold organizations with parents (cycles included), every kind of
announcement, several events on one date, corrections (several of one event too) and
retractions. An arrival order keeps each record event after its target, as the log
requires; the corrections of one event arrive in any order (the one latest in valid time
wins, whatever was recorded last).
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import msgspec
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from events.envelope import Event, Metadata, Source
from events.payloads import (
    EventCorrected,
    EventRetracted,
    FacilityPlanAnnounced,
    InitiativeLaunched,
    InvestmentCommitted,
    Location,
    MemorandumSigned,
    Money,
    OrganizationRegistered,
    PartnershipAgreed,
    Payload,
    SiteAcquired,
)
from projections import (
    PROJECTION_NAMES,
    Live,
    Projections,
    ViewSpec,
    build,
    dump_snapshot,
    load_snapshot,
    sort_key,
)

ORGS = ("a", "b", "c", "d", "e")
SITES = ("s1", "s2", "s3")
DATES = ("2022", "2022-05", "2022-05-31", "2023", "2023-01-15", "2024-02")
BASE = dt.datetime(2025, 1, 1, tzinfo=dt.UTC)
SETTINGS = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])

orgs = st.sampled_from(ORGS)
sites = st.sampled_from(SITES)
labels = st.sampled_from(("x", "y", "z"))
scopes = st.lists(labels, max_size=2, unique=True).map(tuple)
parties = st.lists(orgs, min_size=2, max_size=3, unique=True).map(tuple)
money = st.builds(
    Money,
    amount=st.integers(0, 10**12).map(Decimal) | st.sampled_from([Decimal("0.5"), Decimal("1E+3")]),
    currency=st.sampled_from(("USD", "EUR")),
)
locations = st.builds(
    Location, country=st.sampled_from(("US", "KR")), city=st.none() | st.just("Town")
)

PAYLOADS: dict[str, st.SearchStrategy[Any]] = {
    "organization_registered": st.builds(
        OrganizationRegistered,
        id=orgs,
        name=st.sampled_from(("Org", "Group")),
        parent=st.none() | orgs,
        aliases=st.lists(labels, max_size=1).map(tuple),
    ),
    "site_acquired": st.builds(
        SiteAcquired,
        site=sites,
        name=st.sampled_from(("Plant", "Campus")),
        location=locations,
        acquirer=orgs,
        seller=st.none() | orgs,
        price=st.none() | money,
    ),
    "memorandum_signed": st.builds(
        MemorandumSigned,
        agreement=st.sampled_from(("m1", "m2")),
        parties=parties,
        scope=scopes,
        site=st.none() | sites,
    ),
    "facility_plan_announced": st.builds(
        FacilityPlanAnnounced,
        org=orgs,
        site=st.none() | sites,
        location=st.none() | locations,
        purpose=st.none() | labels,
    ),
    "initiative_launched": st.builds(
        InitiativeLaunched,
        org=orgs,
        initiative=st.sampled_from(("i1", "i2")),
        name=labels,
        site=st.none() | sites,
    ),
    "investment_committed": st.builds(
        InvestmentCommitted,
        org=orgs,
        site=sites,
        amount=money,
        location=st.none() | locations,
        jobs=st.none() | st.integers(0, 1000),
        jobs_by_year=st.none() | st.integers(2024, 2030),
        modalities=scopes,
        capabilities=scopes,
    ),
    "partnership_agreed": st.builds(
        PartnershipAgreed,
        agreement=st.sampled_from(("p1", "p2")),
        parties=parties,
        scope=scopes,
        initiative=st.none() | st.just("i1"),
        site=st.none() | sites,
    ),
}

SOURCE = Source(url="urn:test", quote="q")


class Draft(msgspec.Struct, frozen=True):
    """An event before the log places it: id, valid time, payload."""

    event_id: str
    occurred_on: str
    sequence: int | None
    data: Payload


def event_id(number: int) -> str:
    return f"00000000-0000-4000-8000-{number:012x}"


@st.composite
def histories(draw: st.DrawFn) -> list[Draft]:
    """Announcements then record events about them, in an order the log could hold."""
    kinds = draw(st.lists(st.sampled_from(sorted(PAYLOADS)), min_size=1, max_size=12))
    total = len(kinds) + 6
    numbers = draw(st.permutations(range(1, total + 1)))
    drafts = [
        Draft(
            event_id(numbers[index]),
            draw(st.sampled_from(DATES)),
            draw(st.none() | st.integers(0, 2)),
            draw(PAYLOADS[kind]),
        )
        for index, kind in enumerate(kinds)
    ]
    retracted: set[int] = set()
    for number in numbers[len(kinds) : len(kinds) + draw(st.integers(0, 6))]:
        target = draw(st.integers(0, len(kinds) - 1))
        target_id = drafts[target].event_id
        if target not in retracted and draw(st.booleans()):
            retracted.add(target)
            record: Payload = EventRetracted(retracts=target_id, reason="wrong")
        else:
            replacement = msgspec.to_builtins(draw(PAYLOADS[kinds[target]]))
            record = EventCorrected(corrects=target_id, replacement=replacement, reason="fix")
        sequence = draw(st.none() | st.integers(0, 2))
        drafts.append(Draft(event_id(number), draw(st.sampled_from(DATES)), sequence, record))
    return drafts


def target_of(draft: Draft) -> str | None:
    data = draft.data
    if isinstance(data, EventCorrected):
        return data.corrects
    if isinstance(data, EventRetracted):
        return data.retracts
    return None


@st.composite
def arrival_orders(draw: st.DrawFn, drafts: list[Draft]) -> list[Draft]:
    """A shuffle of the announcements with each record event placed after its target.

    Record events about one target land in any order among themselves.
    """
    announcements = [draft for draft in drafts if target_of(draft) is None]
    order = list(draw(st.permutations(announcements)))
    for draft in draw(st.permutations(drafts[len(announcements) :])):
        target = target_of(draft)
        after = next(index for index, placed in enumerate(order) if placed.event_id == target)
        order.insert(draw(st.integers(after + 1, len(order))), draft)
    return order


def stored(order: list[Draft]) -> list[Event]:
    """The events as a log stores them, positions and times by arrival."""
    return [
        Event(
            position=position,
            event_id=draft.event_id,
            stream="s",
            stream_version=position,
            type=draft.data.TYPE,
            schema_version=1,
            occurred_on=draft.occurred_on,
            sequence=draft.sequence,
            recorded_at=BASE + dt.timedelta(seconds=position),
            data=draft.data,
            source=SOURCE,
            metadata=Metadata(),
            data_hash="0" * 64,
            prev_hash="0" * 64,
            hash="0" * 64,
        )
        for position, draft in enumerate(order, start=1)
    ]


def answers(proj: Projections) -> tuple[object, ...]:
    """Every answer of a view except the timeline's positions and recording times."""
    return (
        proj.organizations(),
        proj.partnerships(),
        proj.capacity_sites(),
        proj.capacity_summary("country"),
        proj.capacity_summary("organization"),
        [msgspec.structs.replace(entry, position=0, recorded_at=BASE) for entry in proj.timeline()],
    )


def everything(proj: Projections) -> tuple[object, ...]:
    return (answers(proj), proj.timeline(), proj.digests(), proj.position)


def live_fold(live: Live, seen: list[Event], tail: list[Event]) -> Live:
    """Apply each event, rebuilding from everything seen when `apply` refuses it."""
    for event in tail:
        seen.append(event)
        if not live.apply(event):
            live.rebuild(seen)
    return live


class TestArrivalOrder:
    """Equal sets of events give equal views, whatever order they arrived in."""

    @SETTINGS
    @given(data=st.data(), drafts=histories())
    def test_every_arrival_order_gives_the_same_digests(self, data, drafts):
        """Two arrival orders of one history give equal digests and answers, now and as of dates."""
        first = stored(data.draw(arrival_orders(drafts)))
        second = stored(data.draw(arrival_orders(drafts)))
        for as_of in (None, dt.date(2022, 5, 30), dt.date(2023, 1, 15)):
            spec = ViewSpec(as_of=as_of)
            one, other = build(first, spec), build(second, spec)
            assert one.digests() == other.digests()
            assert answers(one) == answers(other)

    @SETTINGS
    @given(data=st.data(), drafts=histories())
    def test_input_order_does_not_matter(self, data, drafts):
        """The same stored events handed to build in any order give the same view."""
        events = stored(data.draw(arrival_orders(drafts)))
        shuffled = data.draw(st.permutations(events))
        assert everything(build(shuffled)) == everything(build(events))


class TestTransactionTime:
    """at_position and known_at are views of a prefix of the log."""

    @SETTINGS
    @given(data=st.data(), drafts=histories())
    def test_prefix_views(self, data, drafts):
        """Up to position N, or known at the N-th recording time, equals a build of the first N."""
        events = stored(data.draw(arrival_orders(drafts)))
        cut = data.draw(st.integers(0, len(events)))
        expected = everything(build(events[:cut]))
        assert everything(build(events, ViewSpec(at_position=cut))) == expected
        known_at = BASE + dt.timedelta(seconds=cut, microseconds=500)
        assert everything(build(events, ViewSpec(known_at=known_at))) == expected


class TestLiveAndSnapshots:
    """Live folding, with its fallback, and snapshots equal a from-zero build."""

    @SETTINGS
    @given(data=st.data(), drafts=histories())
    def test_live_equals_build_equals_snapshot_plus_tail(self, data, drafts):
        """Incremental apply, rebuilds, and a snapshot resumed at any prefix all agree."""
        events = stored(data.draw(arrival_orders(drafts)))
        cut = data.draw(st.integers(0, len(events)))
        expected = everything(build(events))

        seen: list[Event] = []
        live = live_fold(Live(), seen, events[:cut])
        snapshot = dump_snapshot(live)
        live_fold(live, seen, events[cut:])
        assert everything(live.projections()) == expected

        resumed = load_snapshot(snapshot)
        assert resumed is not None
        assert everything(resumed.projections()) == everything(build(events[:cut]))
        live_fold(resumed, list(events[:cut]), events[cut:])
        assert everything(resumed.projections()) == expected
        assert resumed.frontier == live.frontier

    @SETTINGS
    @given(data=st.data(), drafts=histories())
    def test_earlier_projections_do_not_change(self, data, drafts):
        """A Projections taken from a Live keeps its answers while the Live goes on."""
        events = stored(data.draw(arrival_orders(drafts)))
        cut = data.draw(st.integers(0, len(events)))
        seen: list[Event] = []
        live = live_fold(Live(), seen, events[:cut])
        taken = live.projections()
        before = everything(taken)
        live_fold(live, seen, events[cut:])
        assert everything(taken) == before
        assert everything(taken) == everything(build(events[:cut]))

    @SETTINGS
    @given(data=st.data(), drafts=histories())
    def test_answers_carried_between_live_views(self, data, drafts):
        """Live views after each append, each asked for some answers first, equal a build.

        Announcements arrive in valid-time order (so each view carries what the one before
        it derived: `projections.advance`), then the corrections and retractions.
        """
        announcements = sorted((d for d in drafts if target_of(d) is None), key=sort_key)
        records = [d for d in data.draw(arrival_orders(drafts)) if target_of(d) is not None]
        events = stored(announcements + records)
        live, seen = Live(), []
        for event in events:
            live_fold(live, seen, [event])
            proj = live.projections()
            for ask in data.draw(st.lists(st.sampled_from(ASKS), max_size=4)):
                ask(proj)
            if data.draw(st.booleans()):
                assert everything(proj) == everything(build(seen))
        assert everything(live.projections()) == everything(build(events))


ASKS = (
    Projections.partnerships,
    Projections.organizations,
    Projections.capacity_sites,
    Projections.timeline,
    lambda proj: proj.capacity_summary("country"),
    lambda proj: proj.capacity_summary("organization"),
    *(lambda proj, name=name: proj.digest(name) for name in PROJECTION_NAMES),
)
"""Some of what a view can be asked, in any number and order (the rest derives later)."""
