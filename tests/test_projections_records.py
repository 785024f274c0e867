"""Corrections and retractions appended to a real SQLite log, seen through the three coordinates."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import msgspec
import pytest

from events.envelope import Event, Source
from events.ids import seed_id
from events.intake import new_event
from events.payloads import EventCorrected, EventRetracted, InvestmentCommitted
from events.seed import DAEJEON, MERCK, SONGDO, seed_events
from events.sqlite import SQLiteEventLog
from projections import Projections, ViewSpec, build

INVESTMENT = seed_id("investment-daejeon-2024")
INITIATIVE = seed_id("initiative-bio-venture-2023")
FIX_SOURCE = Source(url="urn:test:errata", quote="The amount was USD 330 million.")


class History(msgspec.Struct):
    events: list[Event]
    seed_head: int
    seed_recorded_at: dt.datetime
    correction: Event
    retraction: Event


@pytest.fixture(scope="module")
def history(tmp_path_factory: pytest.TempPathFactory) -> History:
    log = SQLiteEventLog(tmp_path_factory.mktemp("records") / "x.db")
    try:
        seeded = log.append(seed_events())
        original = log.get(INVESTMENT)
        assert original is not None
        assert isinstance(original.data, InvestmentCommitted)
        replacement = msgspec.structs.replace(
            original.data,
            amount=msgspec.structs.replace(original.data.amount, amount=Decimal(330_000_000)),
            jobs=350,
        )
        log.append(
            [
                new_event(
                    EventCorrected(
                        corrects=INVESTMENT,
                        replacement=msgspec.to_builtins(replacement),
                        reason="the press release said 330",
                    ),
                    stream=f"site-{DAEJEON}",
                    occurred_on="2026-01-15",
                    source=FIX_SOURCE,
                )
            ]
        )
        log.append(
            [
                new_event(
                    EventRetracted(retracts=INITIATIVE, reason="announced by another company"),
                    stream=f"site-{SONGDO}",
                    occurred_on="2026-01-16",
                    source=FIX_SOURCE,
                )
            ]
        )
        events = list(log.iter_events())
    finally:
        log.close()
    correction, retraction = events[-2:]
    assert correction.recorded_at > seeded.events[-1].recorded_at
    return History(
        events=events,
        seed_head=seeded.head,
        seed_recorded_at=seeded.events[-1].recorded_at,
        correction=correction,
        retraction=retraction,
    )


def daejeon(proj: Projections) -> tuple[dict[str, Decimal], int]:
    site = proj.capacity_site(DAEJEON)
    assert site is not None
    return site.committed, site.jobs


ORIGINAL = ({"USD": Decimal(326_000_000)}, 300)
CORRECTED = ({"USD": Decimal(330_000_000)}, 350)


class TestCurrentView:
    """Now, the correction and the retraction both count."""

    def test_correction_changes_the_amount(self, history):
        """Daejeon shows the corrected amount and jobs, and so does the summary."""
        proj = build(history.events)
        assert daejeon(proj) == CORRECTED
        rows = {row.key: row for row in proj.capacity_summary("organization")}
        assert rows[MERCK].committed == {"USD": Decimal(330_000_000)}
        assert rows[MERCK].jobs == 350
        assert proj.position == 12

    def test_corrected_event_keeps_its_place_and_names_the_correction(self, history):
        """The timeline shows the corrected event at its own date, with the correction's id."""
        timeline = build(history.events).timeline()
        (entry,) = [entry for entry in timeline if entry.event_id == INVESTMENT]
        assert entry.occurred_on == "2024-03"
        assert entry.corrected_by == history.correction.event_id
        assert "USD 330,000,000" in entry.summary
        assert "350 jobs" in entry.summary

    def test_the_corrected_investment_names_its_correction(self, history):
        """Daejeon's investment names the correction its data comes from.

        Found by an analyst's review: the site showed the corrected amount beside the
        original's quote, with nothing saying it had been corrected.
        """
        site = build(history.events).capacity_site(DAEJEON)
        assert site is not None
        (investment,) = site.investments
        assert investment.event_id == INVESTMENT
        assert investment.corrected_by == history.correction.event_id
        before = build(history.events[: history.correction.position - 1]).capacity_site(DAEJEON)
        assert before is not None
        assert [i.corrected_by for i in before.investments] == [None]
        assert all(a.corrected_by is None for a in site.acquisitions)

    def test_retraction_removes_the_initiative(self, history):
        """The retracted initiative is gone: no Songdo site, no timeline entry."""
        proj = build(history.events)
        assert proj.capacity_site(SONGDO) is None
        assert INITIATIVE not in {entry.event_id for entry in proj.timeline()}
        assert len(proj.timeline()) == 9
        assert {entry.type for entry in proj.timeline()}.isdisjoint(
            {"event_corrected", "event_retracted"}
        )

    def test_as_of_does_not_filter_corrections(self, history):
        """A 2026 correction of a 2024 amount changes what the ledger says about April 2024."""
        proj = build(history.events, ViewSpec(as_of=dt.date(2024, 4, 30)))
        assert daejeon(proj) == CORRECTED
        assert proj.capacity_site(SONGDO) is None


class TestEarlierViews:
    """Views known before the corrections show the original facts."""

    def test_known_at_before_shows_the_original(self, history):
        """Known at the seed's commit, the original amount and the initiative stand."""
        proj = build(history.events, ViewSpec(known_at=history.seed_recorded_at))
        assert daejeon(proj) == ORIGINAL
        assert proj.capacity_site(SONGDO) is not None
        assert proj.position == history.seed_head
        assert proj.digests() == build(history.events[: history.seed_head]).digests()

    def test_known_at_between(self, history):
        """Known when the correction was recorded, not the retraction: corrected, not retracted."""
        proj = build(history.events, ViewSpec(known_at=history.correction.recorded_at))
        assert daejeon(proj) == CORRECTED
        assert proj.capacity_site(SONGDO) is not None

    @pytest.mark.parametrize(
        ("at_position", "expected", "songdo"),
        [(10, ORIGINAL, True), (11, CORRECTED, True), (12, CORRECTED, False)],
    )
    def test_at_position(self, history, at_position, expected, songdo):
        """Up to the seed the original stands; each record event counts from its position."""
        proj = build(history.events, ViewSpec(at_position=at_position))
        assert daejeon(proj) == expected
        assert (proj.capacity_site(SONGDO) is not None) is songdo
        assert proj.position == at_position

    def test_combined_coordinates(self, history):
        """as_of and at_position combine: before 2024, and before the corrections."""
        proj = build(history.events, ViewSpec(as_of=dt.date(2023, 12, 31), at_position=10))
        site = proj.capacity_site(DAEJEON)
        assert site is not None
        assert site.investments == ()
        assert proj.capacity_site(SONGDO) is not None
