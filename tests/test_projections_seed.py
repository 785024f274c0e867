"""The seed's facts as the projections state them at dates through the article's story."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import msgspec
import pytest

from events.envelope import Event
from events.seed import (
    BIO_VENTURE,
    BMS,
    DAEJEON,
    DEAL_2024,
    EAST_SYRACUSE,
    LOTTE,
    MERCK,
    MILLIPORE,
    MOU_2022,
    SEED_URL,
    SONGDO,
    seed_events,
)
from events.sqlite import SQLiteEventLog
from projections import PROJECTION_NAMES, Projections, ViewSpec, build

TODAY = dt.datetime.now(dt.UTC).date()


@pytest.fixture(scope="module")
def seeded(tmp_path_factory: pytest.TempPathFactory) -> list[Event]:
    log = SQLiteEventLog(tmp_path_factory.mktemp("seed") / "x.db")
    try:
        log.append(seed_events())
        return list(log.iter_events())
    finally:
        log.close()


def view(events: list[Event], as_of: dt.date | None) -> Projections:
    return build(events, ViewSpec(as_of=as_of))


# as_of, agreements of the Lotte-Merck pair, sites, Daejeon's committed money, timeline length
STORY = [
    (dt.date(2021, 12, 31), [], [], None, 0),
    (dt.date(2022, 12, 31), [MOU_2022], [EAST_SYRACUSE], None, 6),
    (dt.date(2023, 6, 30), [MOU_2022], [DAEJEON, EAST_SYRACUSE], {}, 7),
    (dt.date(2023, 12, 31), [MOU_2022], [DAEJEON, EAST_SYRACUSE, SONGDO], {}, 8),
    (
        dt.date(2024, 4, 30),
        [MOU_2022],
        [DAEJEON, EAST_SYRACUSE, SONGDO],
        {"USD": Decimal(326_000_000)},
        9,
    ),
    (
        TODAY,
        [MOU_2022, DEAL_2024],
        [DAEJEON, EAST_SYRACUSE, SONGDO],
        {"USD": Decimal(326_000_000)},
        10,
    ),
    (
        None,
        [MOU_2022, DEAL_2024],
        [DAEJEON, EAST_SYRACUSE, SONGDO],
        {"USD": Decimal(326_000_000)},
        10,
    ),
]


class TestStory:
    """The article's story, date by date."""

    @pytest.mark.parametrize("moment", STORY)
    def test_state_at(self, seeded, moment):
        """Each date shows exactly the agreements, sites, money and announcements known by then."""
        as_of, agreements, sites, daejeon, entries = moment
        proj = view(seeded, as_of)
        pair = proj.partnership(LOTTE, MERCK)
        assert ([a.agreement for a in pair.agreements] if pair else []) == agreements
        assert [site.site for site in proj.capacity_sites()] == sites
        site = proj.capacity_site(DAEJEON)
        assert (site.committed if site else None) == daejeon
        assert len(proj.timeline()) == entries
        assert proj.position == 10

    def test_nothing_before_2022(self, seeded):
        """Before the first event's period ends, every projection is empty."""
        proj = view(seeded, dt.date(2021, 12, 31))
        assert proj.organizations() == []
        assert proj.partnerships() == []
        assert proj.capacity_summary("country") == []
        assert proj.capacity_summary("organization") == []

    @pytest.mark.parametrize("as_of", [None, TODAY, dt.date(2024, 5, 31)])
    def test_today_equals_now(self, seeded, as_of):
        """Every event has happened by today, so as_of today is the current view."""
        assert view(seeded, as_of).digests() == build(seeded).digests()

    def test_digests_change_with_the_story(self, seeded):
        """Each step of the story changes the timeline digest."""
        digests = [view(seeded, row[0]).digests()["timeline"] for row in STORY[:-1]]
        assert len(set(digests)) == len(digests)
        assert set(build(seeded).digests()) == set(PROJECTION_NAMES)


class TestEndOf2023:
    """At 2023-12-31: the MoU only, East Syracuse bought, no Daejeon investment yet."""

    def test_pair_holds_the_mou_through_milliporesigma(self, seeded):
        """The 2022 MoU counts for Merck KGaA, signed through MilliporeSigma."""
        proj = view(seeded, dt.date(2023, 12, 31))
        pair = proj.partnership(LOTTE, MERCK)
        assert pair is not None
        assert pair.orgs == (LOTTE, MERCK)
        assert pair.since == "2022"
        assert pair.status == "active"
        assert pair.through == {LOTTE: (LOTTE,), MERCK: (MILLIPORE,)}
        (mou,) = pair.agreements
        assert mou.type == "memorandum"
        assert mou.occurred_on == "2022"
        assert mou.scope == ("expansion", "staff training")
        assert mou.site == EAST_SYRACUSE
        assert mou.parties == (LOTTE, MILLIPORE)
        assert mou.source.url == SEED_URL
        assert "memorandum of understanding" in (mou.source.quote or "")

    def test_lookups_accept_either_order_and_subsidiaries(self, seeded):
        """The pair is found from either side, and from the subsidiary that signed."""
        proj = view(seeded, dt.date(2023, 12, 31))
        pair = proj.partnership(LOTTE, MERCK)
        assert proj.partnership(MERCK, LOTTE) == pair
        assert proj.partnership(MILLIPORE, LOTTE) == pair
        assert proj.partnership(MERCK, MILLIPORE) is None
        assert proj.partnership(LOTTE, BMS) is None

    def test_east_syracuse_belongs_to_lotte(self, seeded):
        """Lotte bought East Syracuse from Bristol Myers Squibb for USD 160,000,000."""
        site = view(seeded, dt.date(2023, 12, 31)).capacity_site(EAST_SYRACUSE)
        assert site is not None
        assert site.owner == LOTTE
        assert site.seller == BMS
        assert site.acquired_on == "2022"
        assert site.price is not None
        assert (site.price.amount, site.price.currency) == (Decimal(160_000_000), "USD")
        assert site.location is not None
        assert (site.location.city, site.location.region, site.location.country) == (
            "East Syracuse",
            "New York",
            "US",
        )
        assert site.committed == {}

    def test_daejeon_is_a_plan_only(self, seeded):
        """Merck KGaA's 2023 plan is at Daejeon; no money or jobs yet."""
        site = view(seeded, dt.date(2023, 12, 31)).capacity_site(DAEJEON)
        assert site is not None
        assert [(plan.org, plan.announced_on) for plan in site.plans] == [(MERCK, "2023-05")]
        assert site.investments == ()
        assert site.jobs == 0

    def test_songdo_hosts_the_initiative(self, seeded):
        """The Bio Venture Initiative was launched by Lotte at Songdo in August 2023."""
        site = view(seeded, dt.date(2023, 12, 31)).capacity_site(SONGDO)
        assert site is not None
        (initiative,) = site.initiatives
        assert (initiative.initiative, initiative.org, initiative.launched_on) == (
            BIO_VENTURE,
            LOTTE,
            "2023-08",
        )


class TestApril2024:
    """At 2024-04-30: MilliporeSigma's Daejeon investment counts for Merck KGaA."""

    def test_daejeon_investment(self, seeded):
        """Daejeon holds USD 326,000,000 and 300 jobs by 2028, for the listed modalities."""
        site = view(seeded, dt.date(2024, 4, 30)).capacity_site(DAEJEON)
        assert site is not None
        assert site.committed == {"USD": Decimal(326_000_000)}
        assert (site.jobs, site.jobs_by_year) == (300, 2028)
        assert site.modalities == ("vaccines", "cell and gene therapies", "monoclonal antibodies")
        assert "process development" in site.capabilities
        (investment,) = site.investments
        assert investment.org == MILLIPORE
        assert investment.committed_on == "2024-03"
        assert msgspec.json.encode(investment.amount) == (
            b'{"amount":"326000000","currency":"USD"}'
        )

    def test_summary_by_organization_rolls_up_to_merck(self, seeded):
        """The money and jobs of MilliporeSigma count for Merck KGaA; Lotte's for Lotte."""
        rows = {
            row.key: row
            for row in view(seeded, dt.date(2024, 4, 30)).capacity_summary("organization")
        }
        assert set(rows) == {LOTTE, MERCK}
        assert rows[MERCK].committed == {"USD": Decimal(326_000_000)}
        assert (rows[MERCK].jobs, rows[MERCK].sites, rows[MERCK].site_ids) == (300, 1, (DAEJEON,))
        assert rows[LOTTE].committed == {}
        assert rows[LOTTE].acquisitions == {"USD": Decimal(160_000_000)}
        assert rows[LOTTE].site_ids == (EAST_SYRACUSE, SONGDO)

    def test_summary_by_country(self, seeded):
        """Korea holds the Daejeon money and both Korean sites; the US the East Syracuse buy."""
        rows = {
            row.key: row for row in view(seeded, dt.date(2024, 4, 30)).capacity_summary("country")
        }
        assert rows["KR"].committed == {"USD": Decimal(326_000_000)}
        assert rows["KR"].jobs == 300
        assert rows["US"].acquisitions == {"USD": Decimal(160_000_000)}
        assert rows["KR"].site_ids == (DAEJEON, SONGDO)
        assert rows["US"].site_ids == (EAST_SYRACUSE,)
        assert None not in rows


class TestToday:
    """Today: both agreements, the organizations and the whole timeline."""

    def test_both_agreements(self, seeded):
        """The 2024-05-31 deal follows the MoU, with its three scopes and the initiative."""
        pair = build(seeded).partnership(MERCK, LOTTE)
        assert pair is not None
        mou, deal = pair.agreements
        assert mou.agreement == MOU_2022
        assert deal.agreement == DEAL_2024
        assert deal.type == "partnership"
        assert deal.occurred_on == "2024-05-31"
        assert deal.scope == (
            "raw-material supply",
            "stable raw-material supply chain",
            "support for the Bio Venture Initiative",
        )
        assert (deal.initiative, deal.site) == (BIO_VENTURE, SONGDO)
        assert deal.through == {LOTTE: (LOTTE,), MERCK: (MERCK,)}
        assert pair.through == {LOTTE: (LOTTE,), MERCK: (MERCK, MILLIPORE)}

    def test_organizations(self, seeded):
        """Parents, subsidiaries, partners (rolled up) and sites of each organization."""
        orgs = {org.id: org for org in build(seeded).organizations()}
        assert list(orgs) == [BMS, LOTTE, MERCK, MILLIPORE]
        assert orgs[MILLIPORE].parent == MERCK
        assert orgs[MILLIPORE].top == MERCK
        assert orgs[MILLIPORE].aliases == ("Merck KGaA\u2019s life science business",)
        assert orgs[MERCK].subsidiaries == (MILLIPORE,)
        assert (orgs[MERCK].country, orgs[MERCK].kind) == ("DE", "Germany-based pharma giant")
        assert orgs[LOTTE].partners == (MERCK,)
        assert orgs[MERCK].partners == (LOTTE,)
        assert orgs[MILLIPORE].partners == (LOTTE,)
        assert orgs[BMS].partners == ()
        assert {(s.site, s.role, s.org) for s in orgs[MERCK].sites} == {
            (DAEJEON, "plan", MERCK),
            (DAEJEON, "investment", MILLIPORE),
        }
        assert {(s.site, s.role) for s in orgs[LOTTE].sites} == {
            (EAST_SYRACUSE, "owner"),
            (SONGDO, "initiative"),
        }
        assert [(s.site, s.role) for s in orgs[BMS].sites] == [(EAST_SYRACUSE, "seller")]

    def test_timeline_in_valid_time_order(self, seeded):
        """All ten announcements, organizations included, ordered by valid time with sources."""
        timeline = build(seeded).timeline()
        assert [entry.occurred_on for entry in timeline] == [
            *["2022"] * 6,
            "2023-05",
            "2023-08",
            "2024-03",
            "2024-05-31",
        ]
        types = [entry.type for entry in timeline]
        assert types[:4] == ["organization_registered"] * 4
        assert types[4:6] == ["site_acquired", "memorandum_signed"]
        assert all(entry.source.url == SEED_URL and entry.source.quote for entry in timeline)
        assert sorted(entry.position for entry in timeline) == list(range(1, 11))
        assert all("\n" not in entry.summary for entry in timeline)
        assert "USD 326,000,000" in timeline[8].summary
