"""Live state: O(1) folding in valid-time order, refusal otherwise, equal to a from-zero build."""

from __future__ import annotations

import threading
import time
from decimal import Decimal

import msgspec
from event_factory import stored_event as ev

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
    SiteAcquired,
)
from projections import Live, build


def invest(amount: int) -> InvestmentCommitted:
    return InvestmentCommitted(
        org="a", site="s", amount=Money(amount=Decimal(amount), currency="USD")
    )


HISTORY = [
    ev(1, OrganizationRegistered(id="a", name="A"), "2022"),
    ev(2, OrganizationRegistered(id="b", name="B", parent="c"), "2022-03"),
    ev(3, MemorandumSigned(agreement="m", parties=("a", "b")), "2022-04-01"),
    ev(4, invest(10), "2023"),
]


def live_of(events: list[Event]) -> Live:
    live = Live()
    for event in events:
        assert live.apply(event)
    return live


class TestApply:
    """apply folds what comes after the frontier and refuses the rest."""

    def test_in_order_events_fold(self):
        """Events in valid-time order all fold, and the state equals a build of them."""
        live = live_of(HISTORY)
        assert live.position == 4
        assert live.frontier == ("2023-01-01", 0, HISTORY[-1].event_id)
        proj = live.projections()
        assert proj.digests() == build(HISTORY).digests()
        assert proj.timeline() == build(HISTORY).timeline()
        assert proj.position == 4

    def test_empty_live(self):
        """A new Live is empty, at position 0, like a build of nothing."""
        live = Live()
        assert (live.position, live.frontier) == (0, None)
        assert live.projections().digests() == build([]).digests()

    def test_event_in_the_past_is_refused(self):
        """An event dated before the frontier is refused and nothing changes."""
        live = live_of(HISTORY)
        before = (live.projections().digests(), live.position, live.frontier)
        late = ev(5, OrganizationRegistered(id="c", name="C"), "2022-02")
        assert not live.apply(late)
        assert (live.projections().digests(), live.position, live.frontier) == before
        live.rebuild([*HISTORY, late])
        assert live.projections().digests() == build([*HISTORY, late]).digests()
        assert live.position == 5

    def test_same_event_twice_is_refused(self):
        """The event at the frontier itself is not folded again."""
        live = live_of(HISTORY)
        assert not live.apply(HISTORY[-1])

    def test_an_event_redelivered_after_a_retraction_is_refused(self):
        """A retracted event delivered again is refused, as any repeat is.

        (Found by a review: the retraction had moved the frontier back before it, so it was
        folded again and came back.)
        """
        target = HISTORY[-1]
        retraction = ev(5, EventRetracted(retracts=target.event_id, reason="x"), "2099")
        live = Live()
        live.rebuild([*HISTORY, retraction])
        assert live.position == 5
        assert not live.apply(target)
        assert live.projections().digests() == build([*HISTORY, retraction]).digests()

    def test_records_are_refused(self):
        """Corrections and retractions always ask for a rebuild."""
        live = live_of(HISTORY)
        target = HISTORY[-1].event_id
        fix = EventCorrected(
            corrects=target, replacement=msgspec.to_builtins(invest(20)), reason="x"
        )
        for record in (
            ev(5, fix, "2099"),
            ev(6, EventRetracted(retracts=target, reason="x"), "2099"),
        ):
            assert not live.apply(record)
        everything = [*HISTORY, ev(5, fix, "2099")]
        live.rebuild(everything)
        site = live.projections().capacity_site("s")
        assert site is not None
        assert site.committed == {"USD": Decimal(20)}
        assert live.projections().digests() == build(everything).digests()

    def test_fold_after_rebuild(self):
        """After a rebuild with corrections, later events fold on top of the corrected state."""
        target = HISTORY[-1].event_id
        fix = ev(
            5,
            EventCorrected(
                corrects=target, replacement=msgspec.to_builtins(invest(20)), reason="x"
            ),
            "2099",
        )
        live = Live()
        live.rebuild([*HISTORY, fix])
        later = ev(6, invest(5), "2024")
        assert live.apply(later)
        assert live.projections().digests() == build([*HISTORY, fix, later]).digests()
        assert live.projections().timeline() == build([*HISTORY, fix, later]).timeline()


class TestProjectionsOfLive:
    """What live.projections() hands out."""

    def test_same_object_until_the_state_changes(self):
        """projections() is cached until apply or rebuild changes the state."""
        live = live_of(HISTORY[:2])
        first = live.projections()
        assert live.projections() is first
        live.apply(HISTORY[2])
        assert live.projections() is not first

    def test_taken_projections_keep_their_answers(self):
        """A Projections taken earlier answers for its own state while the Live folds on."""
        live = live_of(HISTORY[:2])
        taken = live.projections()
        for event in HISTORY[2:]:
            live.apply(event)
        assert taken.partnerships() == []
        assert taken.capacity_sites() == []
        assert taken.digests() == build(HISTORY[:2]).digests()
        assert len(taken.timeline()) == 2
        assert taken.position == 2


class TestConcurrentReaders:
    def test_a_reader_never_sees_a_fact_its_position_does_not_cover(self):
        """`projections()` from another thread while `apply` folds: each answer is consistent."""
        count = 3000
        events = [
            ev(n, OrganizationRegistered(id=f"o{n}", name=f"O{n}"), f"{2000 + n // 365}")
            for n in range(1, count + 1)
        ]
        events.sort(key=lambda e: (e.occurred_on, e.sequence or 0, e.event_id))
        events = [msgspec.structs.replace(e, position=n) for n, e in enumerate(events, 1)]
        live = Live()
        done = threading.Event()
        bad: list[tuple[int, int]] = []
        seen = 0

        def read() -> None:
            nonlocal seen
            deadline = time.monotonic() + 30
            while not done.is_set() and time.monotonic() < deadline:
                proj = live.projections()
                facts = proj._state.facts[: proj._count]
                highest = max((fact.position for fact in facts), default=0)
                if highest != proj.position:
                    bad.append((highest, proj.position))
                seen += 1

        reader = threading.Thread(target=read)
        reader.start()
        try:
            for event in events:
                assert live.apply(event)
        finally:
            done.set()
            reader.join()
        assert seen > 0
        assert bad == []
        assert live.projections().position == count


class TestCarriedAnswers:
    """After an in-order append a live view carries what the last one derived."""

    def test_untouched_answers_are_carried_and_the_rest_brought_up_to_date(self):
        live = live_of(HISTORY)
        before = live.projections()
        before.derive()
        before.digests()
        later = ev(5, invest(5), "2024")
        assert live.apply(later)
        after = live.projections()
        # an investment touches no agreement: the same partnership entries, the same digest
        assert all(a is b for a, b in zip(after.partnerships(), before.partnerships(), strict=True))
        assert after.digest("partnerships") == before.digest("partnerships")
        # and the site it is at, the summaries and the timeline are brought up to date
        expected = build([*HISTORY, later])
        assert after.capacity_site("s") == expected.capacity_site("s")
        assert after.capacity_summary("organization") == expected.capacity_summary("organization")
        assert after.timeline() == expected.timeline()
        assert after.digests() == expected.digests()
        assert after.digests() != before.digests()

    def test_organizations_are_brought_up_to_date_entry_by_entry(self):
        """Agreements and site events without registrations: touched entries only, as built.

        The capacity summaries too: a site changing hands moves it between groups.
        """
        live = live_of(HISTORY)
        seen = [*HISTORY]
        steps = [
            # b (a subsidiary of c) signs with d, never registered: b, c and d change
            ev(5, MemorandumSigned(agreement="n", parties=("b", "d")), "2024-01"),
            # b buys the site a invested in, from a: a seller, b (and c) the owner
            ev(
                6,
                SiteAcquired(site="s", name="S", location=LOC, acquirer="b", seller="a"),
                "2024-02",
            ),
            # d buys it from b: b becomes a former owner, up the chain to c
            ev(
                7,
                SiteAcquired(site="s", name="S", location=LOC, acquirer="d", seller="b"),
                "2024-03",
            ),
            # a plan places the site in another country: its row by country moves
            ev(
                8,
                FacilityPlanAnnounced(org="d", site="s", location=Location(country="DE")),
                "2024-04",
            ),
            # and a plan at a site of its own: a new row
            ev(9, FacilityPlanAnnounced(org="a", site="t", location=LOC), "2024-05"),
        ]
        for step in steps:
            before = {org.id: org for org in live.projections().organizations()}
            live.projections().digests()
            assert live.apply(step)
            seen.append(step)
            after = live.projections()
            expected = build(seen)
            assert after.organizations() == expected.organizations()
            for by in ("country", "organization"):
                assert after.capacity_summary(by) == expected.capacity_summary(by)
            assert after.digest("organizations") == expected.digest("organizations")
            changed = {org.id for org in after.organizations() if before.get(org.id) is not org}
            named = {"b", "c", "d"} if step is steps[0] else {"a", "b", "c", "d"}
            assert changed <= named
        assert [row.key for row in after.capacity_summary("country")] == ["DE", "US"]
        c = after.organization("c")
        assert c is not None
        assert c.partners == ("a", "d")
        assert {(s.role, s.org) for s in c.sites} == {("former_owner", "b"), ("seller", "b")}

    def test_a_summary_that_would_round_is_summarized_again(self):
        """Totals past the summing precision round by order: the live view matches a build.

        An amount's digits are bounded, not its exponent (found by review: 3 + 1E+1000 + 3
        summed in arrival order gave another last digit than in site order).
        """

        def invest_at(site: str, amount: str) -> InvestmentCommitted:
            return InvestmentCommitted(
                org="o",
                site=site,
                amount=Money(amount=Decimal(amount), currency="USD"),
                location=LOC,
            )

        events = [
            ev(1, invest_at("a", "3"), "2022-01"),
            ev(2, invest_at("b", "1E+1000"), "2022-02"),
            ev(3, invest_at("a", "3"), "2022-03"),
        ]
        live = Live()
        for event in events:
            assert live.apply(event)
            live.projections().digests()
        expected = build(events)
        for by in ("country", "organization"):
            assert live.projections().capacity_summary(by) == expected.capacity_summary(by)
        assert live.projections().digest("capacity") == expected.digest("capacity")


LOC = Location(country="US")


class TestCarriedSummaries:
    """A summary derived in one live view is carried into the next and updated there."""

    def test_a_carried_summary_keeps_each_currency_apart(self):
        """USD at one site, then EUR at another of the same country and organization.

        The summaries carried from view to view keep two totals, as a from-zero build does
        (never one sum). Deterministic: the property test finds a bug of this kind only on
        some draws (found by mutation).
        """
        kr = Location(country="KR")

        def money(site: str, amount: int, currency: str) -> InvestmentCommitted:
            value = Money(amount=Decimal(amount), currency=currency)
            return InvestmentCommitted(org="a", site=site, amount=value, location=kr)

        events = [
            ev(1, OrganizationRegistered(id="a", name="A", country="KR"), "2022"),
            ev(2, money("s1", 10, "USD"), "2023"),
            ev(3, money("s2", 5, "EUR"), "2024"),
            ev(4, money("s1", 1, "USD"), "2025"),
        ]
        live = live_of(events[:2])
        for upto in (3, 4):
            before = live.projections()
            before.capacity_summary("country"), before.capacity_summary("organization")
            assert live.apply(events[upto - 1])
            after, built = live.projections(), build(events[:upto])
            for by in ("country", "organization"):
                assert after.capacity_summary(by) == built.capacity_summary(by)
        [country] = build(events).capacity_summary("country")
        assert msgspec.to_builtins(country)["committed"] == {"EUR": "5", "USD": "11"}
