"""The folds and view selection on small hand-made histories, without a database."""

from __future__ import annotations

import datetime as dt
import gc
from decimal import Decimal

import msgspec
import pytest
from event_factory import BASE
from event_factory import stored_event as ev
from hypothesis import given, settings
from hypothesis import strategies as st

from events.dates import period_start
from events.envelope import Event
from events.payloads import (
    EventCorrected,
    EventRetracted,
    FacilityPlanAnnounced,
    InvestmentCommitted,
    Location,
    MemorandumSigned,
    Money,
    OrganizationRegistered,
    PartnershipAgreed,
    Payload,
    SiteAcquired,
)
from projections import PROJECTION_NAMES, ViewSpec, build, fold, sort_key
from projections.advance import with_entries
from projections.selection import select
from projections.state import FoldState, period_start_text


def org(org_id: str, parent: str | None = None) -> OrganizationRegistered:
    return OrganizationRegistered(id=org_id, name=org_id.upper(), parent=parent)


def usd(amount: int, currency: str = "USD") -> Money:
    return Money(amount=Decimal(amount), currency=currency)


def invest(org_id: str, site: str, money: Money, jobs: int | None = None) -> InvestmentCommitted:
    return InvestmentCommitted(org=org_id, site=site, amount=money, jobs=jobs)


def mou(*parties: str, agreement: str = "m") -> MemorandumSigned:
    return MemorandumSigned(agreement=agreement, parties=parties)


def correct(
    number: int,
    target: Event,
    data: Payload,
    position: int | None = None,
    occurred_on: str = "2030",
) -> Event:
    fix = EventCorrected(
        corrects=target.event_id, replacement=msgspec.to_builtins(data), reason="fix"
    )
    return ev(number, fix, occurred_on, position=position)


class TestValidTime:
    """as_of counts an event from the end of its period, and ordering is by valid time."""

    @pytest.mark.parametrize(
        ("occurred_on", "included_from"),
        [
            ("2023", dt.date(2023, 12, 31)),
            ("2023-05", dt.date(2023, 5, 31)),
            ("2023-05-07", dt.date(2023, 5, 7)),
        ],
    )
    def test_period_end(self, occurred_on, included_from):
        """An event counts from the last day of its period, not a day before."""
        events = [ev(1, invest("a", "s", usd(1)), occurred_on)]
        assert build(events, ViewSpec(as_of=included_from)).capacity_site("s") is not None
        before = included_from - dt.timedelta(days=1)
        assert build(events, ViewSpec(as_of=before)).capacity_site("s") is None

    @pytest.mark.parametrize("text", ["2022", "2022-02", "2022-02-28", "1999-12-31"])
    def test_period_start_text_is_the_period_start(self, text):
        """The sort key's text equals events.dates.period_start in ISO form."""
        assert period_start_text(text) == period_start(text).isoformat()

    def test_fold_order_ignores_position(self):
        """Events fold by (period start, sequence, id), never by position."""
        later = ev(1, org("a"), "2023", position=1)
        earlier = ev(2, org("b"), "2022-06", position=2)
        same_period = ev(3, org("c"), "2022", position=3, sequence=5)
        selection = select([later, earlier, same_period], ViewSpec())
        assert [e.event_id for e in selection.facts] == [
            same_period.event_id,
            earlier.event_id,
            later.event_id,
        ]
        assert selection.frontier == sort_key(later)

    def test_sequence_orders_within_a_period(self):
        """Within one period a lower sequence folds first; None counts as 0."""
        events = [
            ev(1, org("x"), sequence=2),
            ev(2, org("y"), sequence=None),
            ev(3, org("z"), sequence=1),
        ]
        assert [e.occurred_on for e in build(events).timeline()] == ["2022"] * 3
        assert [e.event_id[-1] for e in build(events).timeline()] == ["2", "3", "1"]


class TestRecords:
    """Corrections and retractions as facts about the record."""

    @pytest.mark.parametrize("recorded", ["in date order", "against date order"])
    def test_the_correction_latest_in_valid_time_wins(self, recorded):
        """Of two corrections of one event the later-dated counts, whichever came first.

        A view is a function of the set of events (DESIGN 5), not of their recording order.
        """
        target = ev(1, invest("a", "s", usd(1)))
        early = correct(2, target, invest("a", "s", usd(2)), occurred_on="2030-01")
        late = correct(3, target, invest("a", "s", usd(3)), occurred_on="2030-02")
        if recorded == "in date order":
            early, late = (
                msgspec.structs.replace(early, position=2),
                msgspec.structs.replace(late, position=3),
            )
        else:
            early, late = (
                msgspec.structs.replace(early, position=3),
                msgspec.structs.replace(late, position=2),
            )
        proj = build([target, early, late])
        site = proj.capacity_site("s")
        assert site is not None
        assert site.committed == {"USD": Decimal(3)}
        assert proj.timeline()[0].corrected_by == late.event_id

    def test_corrections_dated_alike_are_ordered_by_sequence_then_id(self):
        """Dated alike: the higher `sequence` wins; with none, the higher id.

        (The ids the ledger makes are time-ordered: the correction made later wins.)
        """
        target = ev(1, invest("a", "s", usd(1)))
        higher_id = correct(9, target, invest("a", "s", usd(2)), position=3)
        lower_id = correct(2, target, invest("a", "s", usd(3)), position=2)
        site = build([target, higher_id, lower_id]).capacity_site("s")
        assert site is not None
        assert site.committed == {"USD": Decimal(2)}
        sequenced = msgspec.structs.replace(lower_id, sequence=1)
        site = build([target, higher_id, sequenced]).capacity_site("s")
        assert site is not None
        assert site.committed == {"USD": Decimal(3)}

    def test_correction_keeps_the_event_in_place(self):
        """A corrected event keeps its valid time: a replacement cannot move it in the fold."""
        target = ev(1, org("a", parent="p"), "2022")
        fixed = correct(2, target, org("a", parent="q"))
        proj = build([target, fixed, ev(3, org("b"), "2023")])
        assert [entry.occurred_on for entry in proj.timeline()] == ["2022", "2023"]
        org_a = proj.organization("a")
        assert org_a is not None
        assert org_a.parent == "q"

    def test_as_of_never_filters_records(self):
        """A correction dated after as_of still applies to the events as_of keeps."""
        target = ev(1, invest("a", "s", usd(1)), "2022")
        proj = build(
            [target, correct(2, target, invest("a", "s", usd(5)))],
            ViewSpec(as_of=dt.date(2022, 12, 31)),
        )
        site = proj.capacity_site("s")
        assert site is not None
        assert site.committed == {"USD": Decimal(5)}

    def test_retraction_removes_and_correction_of_retracted_is_moot(self):
        """A retracted event is gone even if it was corrected too."""
        target = ev(1, invest("a", "s", usd(1)))
        retract = ev(3, EventRetracted(retracts=target.event_id, reason="no"), "2030")
        proj = build([target, correct(2, target, invest("a", "s", usd(2))), retract])
        assert proj.capacity_sites() == []
        assert proj.timeline() == []
        assert proj.position == 3

    def test_refused_replacement_is_ignored(self):
        """A replacement the payload schema refuses leaves the original standing."""
        target = ev(1, invest("a", "s", usd(1)))
        bad = ev(
            2,
            EventCorrected(corrects=target.event_id, replacement={"org": "a"}, reason="x"),
            "2030",
        )
        site = build([target, bad]).capacity_site("s")
        assert site is not None
        assert site.committed == {"USD": Decimal(1)}

    def test_known_at_selects_records_too(self):
        """known_at keeps only the corrections recorded by then; naive times are UTC."""
        target = ev(1, invest("a", "s", usd(1)))
        fix = correct(2, target, invest("a", "s", usd(2)))
        naive = (BASE + dt.timedelta(seconds=1)).replace(tzinfo=None)
        site = build([target, fix], ViewSpec(known_at=naive)).capacity_site("s")
        assert site is not None
        assert site.committed == {"USD": Decimal(1)}


class TestRollUp:
    """Subsidiaries roll up to their top-level parents, whatever order facts arrive in."""

    def test_registration_after_the_agreement(self):
        """A parent registered after (in arrival and valid time) the agreement still rolls it up."""
        events = [ev(1, mou("x", "sub"), "2022"), ev(2, org("sub", parent="parent"), "2024")]
        proj = build(events)
        pair = proj.partnership("x", "parent")
        assert pair is not None
        assert pair.through == {"parent": ("sub",), "x": ("x",)}
        assert proj.partnership("sub", "x") == pair
        assert (
            build(events, ViewSpec(as_of=dt.date(2023, 1, 1))).partnership("x", "sub") is not None
        )

    def test_multi_party_agreement(self):
        """Three parties give three pairs; two parties of one group sign for the same side."""
        events = [
            ev(1, org("m1", parent="g")),
            ev(2, org("m2", parent="g")),
            ev(3, PartnershipAgreed(agreement="p", parties=("m1", "m2", "x", "y"))),
        ]
        proj = build(events)
        assert [p.orgs for p in proj.partnerships()] == [("g", "x"), ("g", "y"), ("x", "y")]
        pair = proj.partnership("x", "g")
        assert pair is not None
        assert pair.through["g"] == ("m1", "m2")
        assert proj.partnership("m1", "m2") is None

    def test_parent_cycle_rolls_up_to_the_smallest_id(self):
        """A cycle of parents (a data error) rolls up to its smallest id, from every member."""
        events = [
            ev(1, org("b", parent="c")),
            ev(2, org("c", parent="b")),
            ev(3, org("a", parent="b")),
        ]
        proj = build(events)
        assert {o.id: o.top for o in proj.organizations()} == {"a": "b", "b": "b", "c": "b"}

    def test_unregistered_organizations_are_listed(self):
        """A party never registered appears, unregistered, with its partners."""
        proj = build([ev(1, mou("x", "y"))])
        x = proj.organization("x")
        assert x is not None
        assert (x.registered, x.name, x.partners) == (False, None, ("y",))
        assert proj.organization("nobody") is None


class TestCapacity:
    """Money per currency, jobs and sites."""

    def test_money_never_sums_across_currencies(self):
        """Two currencies stay two totals at the site and in the summaries."""
        events = [
            ev(1, invest("a", "s", usd(100), jobs=10)),
            ev(2, invest("a", "s", usd(7, "EUR"), jobs=5)),
            ev(3, invest("a", "s", usd(50))),
        ]
        proj = build(events)
        site = proj.capacity_site("s")
        assert site is not None
        assert site.committed == {"EUR": Decimal(7), "USD": Decimal(150)}
        assert site.jobs == 15
        (row,) = proj.capacity_summary("organization")
        assert row.committed == {"EUR": Decimal(7), "USD": Decimal(150)}
        assert msgspec.json.encode(row.committed) == b'{"EUR":"7","USD":"150"}'

    def test_latest_acquisition_owns_the_site(self):
        """The last acquirer owns the site; the earlier one is a former owner."""
        place = Location(country="US")
        events = [
            ev(1, SiteAcquired(site="s", name="S", location=place, acquirer="a", price=usd(1))),
            ev(
                2,
                SiteAcquired(site="s", name="S2", location=place, acquirer="b", seller="a"),
                "2023",
            ),
        ]
        proj = build(events)
        site = proj.capacity_site("s")
        assert site is not None
        assert (site.owner, site.seller, site.name, site.price) == ("b", "a", "S2", None)
        a = proj.organization("a")
        assert a is not None
        assert {(s.role, s.org) for s in a.sites} == {("former_owner", "a"), ("seller", "a")}

    def test_summary_by_country_and_unknown_by(self):
        """Sites are counted by country; a plan without location is under None."""
        events = [
            ev(1, invest("a", "s", usd(1))),
            ev(2, FacilityPlanAnnounced(org="a", site="t", location=Location(country="KR"))),
            ev(3, FacilityPlanAnnounced(org="a", site="u")),
        ]
        proj = build(events)
        assert [(r.key, r.sites) for r in proj.capacity_summary("country")] == [
            ("KR", 1),
            (None, 2),
        ]
        with pytest.raises(ValueError, match="country or by organization"):
            proj.capacity_summary("planet")  # type: ignore[arg-type]


class TestDigestsAndPositions:
    """Digests leave out what depends on arrival; the position is the view's."""

    def test_positions_do_not_change_digests(self):
        """The same events at other positions and times give the same digests."""
        first = [ev(1, org("a"), position=1), ev(2, mou("a", "b"), position=2)]
        second = [ev(1, org("a"), position=2), ev(2, mou("a", "b"), position=1)]
        assert build(first).digests() == build(second).digests()
        assert build(first).timeline() != build(second).timeline()

    def test_digest_names(self):
        """One digest per projection; a single one can be asked for by name."""
        proj = build([ev(1, org("a"))])
        digests = proj.digests()
        assert tuple(digests) == PROJECTION_NAMES
        assert all(proj.digest(name) == digests[name] for name in PROJECTION_NAMES)
        with pytest.raises(KeyError):
            proj.digest("nothing")

    def test_position_of_a_view(self):
        """A view's position is the highest among the events it considered."""
        events = [ev(n, org(f"o{n}")) for n in range(1, 6)]
        assert build(events).position == 5
        assert build(events, ViewSpec(at_position=3)).position == 3
        assert build(events, ViewSpec(as_of=dt.date(2000, 1, 1))).position == 5
        assert build([]).position == 0
        assert build([]).digests() == build([], ViewSpec(at_position=0)).digests()

    def test_garbage_collector_is_left_as_found(self):
        """Building and deriving pause the cyclic collector and restore it, on or off."""
        events = [ev(1, org("a", parent="b")), ev(2, mou("a", "c"))]
        assert gc.isenabled()
        build(events).digests()
        assert gc.isenabled()
        gc.disable()
        try:
            build(events).digests()
            assert not gc.isenabled()
        finally:
            gc.enable()

    def test_fold_is_a_plain_function(self):
        """A fold adds an event to a state without any database."""
        state = fold(FoldState(), ev(1, org("a")))
        assert len(state.facts) == 1
        assert state.organizations == {"a": [0]}


class TestWithEntries:
    @settings(max_examples=300, deadline=None)
    @given(
        previous=st.dictionaries(st.text("abcde", max_size=4), st.integers(), max_size=40),
        entries=st.dictionaries(st.text("abcde", max_size=4), st.integers(), max_size=10),
    )
    def test_the_same_as_sorting_again(self, previous, entries) -> None:
        """Entries replaced where they are and new keys inserted in order, as a sort would."""
        ordered = dict(sorted(previous.items()))
        merged = with_entries(ordered, entries)
        assert list(merged.items()) == sorted({**ordered, **entries}.items())
        assert ordered == dict(sorted(previous.items()))  # the earlier mapping is unchanged
