"""The bundled seed (DESIGN §4): verbatim quotes, fixed ids, idempotent, the article's facts."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest
from conformance import event

from events.envelope import NewEvent
from events.payloads import (
    FacilityPlanAnnounced,
    InitiativeLaunched,
    InvestmentCommitted,
    Location,
    MemorandumSigned,
    Money,
    OrganizationRegistered,
    PartnershipAgreed,
    SiteAcquired,
)
from events.seed import SEED_URL, article, seed_events
from events.sqlite import SQLiteEventLog

SHARED_ARTICLE = Path(__file__).resolve().parents[2] / "shared/seed/lotte-merck-announcement.txt"
SEED = seed_events()


def of_type(cls: type) -> list[NewEvent]:
    """The seed events whose payload is a `cls`."""
    return [e for e in SEED if isinstance(e.data, cls)]


def organization(org_id: str) -> OrganizationRegistered:
    """The seed's registration of one organization."""
    (found,) = [e.data for e in of_type(OrganizationRegistered) if e.data.id == org_id]  # type: ignore[union-attr]
    assert isinstance(found, OrganizationRegistered)
    return found


class TestProvenance:
    @pytest.mark.parametrize(
        "seed_event", SEED, ids=[f"{n}-{e.type}" for n, e in enumerate(SEED, start=1)]
    )
    def test_every_quote_is_verbatim_in_the_packaged_article(self, seed_event: NewEvent) -> None:
        """Each event's `source.quote` appears word for word in the article the package ships."""
        assert seed_event.source.quote
        assert seed_event.source.quote in article()

    @pytest.mark.skipif(not SHARED_ARTICLE.exists(), reason=f"{SHARED_ARTICLE} is not here")
    @pytest.mark.parametrize(
        "seed_event", SEED, ids=[f"{n}-{e.type}" for n, e in enumerate(SEED, start=1)]
    )
    def test_every_quote_is_verbatim_in_the_shared_article(self, seed_event: NewEvent) -> None:
        """Each event's `source.quote` appears word for word in `shared/seed/`'s article."""
        assert seed_event.source.quote
        assert seed_event.source.quote in SHARED_ARTICLE.read_text(encoding="utf-8")

    @pytest.mark.skipif(not SHARED_ARTICLE.exists(), reason=f"{SHARED_ARTICLE} is not here")
    def test_the_packaged_article_is_the_shared_one(self) -> None:
        """The package ships the article exactly as `shared/seed/` has it."""
        assert article() == SHARED_ARTICLE.read_text(encoding="utf-8")

    def test_every_source_is_the_seed_urn(self) -> None:
        """Every seed event's `source.url` is the seed's URN, and nothing else is guessed."""
        assert {e.source.url for e in SEED} == {SEED_URL} == {"urn:seed:lotte-merck-announcement"}
        assert {(e.source.publisher, e.source.title) for e in SEED} == {(None, None)}


class TestIdentity:
    def test_event_ids_are_fixed(self) -> None:
        """Two builds of the seed have the same event ids, all distinct, in the same order."""
        ids = [e.event_id for e in seed_events()]
        assert ids == [e.event_id for e in seed_events()] == [e.event_id for e in SEED]
        assert len(set(ids)) == len(ids) == 10

    def test_two_builds_are_equal(self) -> None:
        """The seed is the same value each time it is built."""
        assert seed_events() == seed_events()

    def test_seeding_twice_writes_nothing_the_second_time(self, fresh_log: SQLiteEventLog) -> None:
        """The second seed replays: same positions, head unchanged, nothing new stored."""
        first = fresh_log.append(seed_events())
        second = fresh_log.append(seed_events())
        assert not first.replayed
        assert second.replayed
        assert second.events == first.events
        assert fresh_log.head() == first.head == 10
        assert fresh_log.verify().ok

    def test_seeding_after_other_events_still_replays(self, fresh_log: SQLiteEventLog) -> None:
        """A seed repeated after other appends still answers its original positions."""
        first = fresh_log.append(seed_events())
        fresh_log.append([event("unrelated")])
        again = fresh_log.append(seed_events())
        assert again.replayed
        assert [c.position for c in again.events] == [c.position for c in first.events]
        assert fresh_log.head() == 11


class TestFacts:
    @pytest.mark.parametrize(
        ("org_id", "name", "country", "kind", "parent"),
        [
            ("lotte-biologics", "Lotte Biologics", "KR", "CDMO", None),
            ("merck-kgaa", "Merck KGaA", "DE", "Germany-based pharma giant", None),
            ("milliporesigma", "MilliporeSigma", None, None, "merck-kgaa"),
            ("bristol-myers-squibb", "Bristol Myers Squibb", None, None, None),
        ],
    )
    def test_organizations(
        self, org_id: str, name: str, country: str | None, kind: str | None, parent: str | None
    ) -> None:
        """The four organizations of DESIGN §4 are registered with their countries and parents."""
        org = organization(org_id)
        assert (org.name, org.country, org.kind, org.parent) == (name, country, kind, parent)

    def test_organizations_are_dated_2022_and_come_first(self) -> None:
        """Organizations carry 2022 (their first appearance) and precede every announcement."""
        orgs = of_type(OrganizationRegistered)
        assert len(orgs) == 4
        assert {e.occurred_on for e in orgs} == {"2022"}
        assert SEED[:4] == orgs

    def test_milliporesigma_alias(self) -> None:
        """MilliporeSigma is known as Merck KGaA's life science business, as the article says."""
        (alias,) = organization("milliporesigma").aliases
        assert alias.replace("\u2019", "'") == "Merck KGaA's life science business"
        assert alias in article()

    def test_the_two_2022_events_are_ordered(self) -> None:
        """The site purchase (sequence 1) comes before the memorandum (sequence 2), both in 2022."""
        (acquired,) = of_type(SiteAcquired)
        (memorandum,) = of_type(MemorandumSigned)
        assert (acquired.occurred_on, acquired.sequence) == ("2022", 1)
        assert (memorandum.occurred_on, memorandum.sequence) == ("2022", 2)

    def test_announcements_in_the_article_order(self) -> None:
        """The six announcements have the types and dates of DESIGN §4's table."""
        announcements = [(e.occurred_on, e.type) for e in SEED[4:]]
        assert announcements == [
            ("2022", "site_acquired"),
            ("2022", "memorandum_signed"),
            ("2023-05", "facility_plan_announced"),
            ("2023-08", "initiative_launched"),
            ("2024-03", "investment_committed"),
            ("2024-05-31", "partnership_agreed"),
        ]

    def test_the_east_syracuse_purchase(self) -> None:
        """Lotte bought East Syracuse (New York, US) from Bristol Myers Squibb for USD 160M."""
        (acquired,) = of_type(SiteAcquired)
        data = acquired.data
        assert isinstance(data, SiteAcquired)
        assert (data.site, data.acquirer, data.seller) == (
            "east-syracuse",
            "lotte-biologics",
            "bristol-myers-squibb",
        )
        assert data.location == Location(city="East Syracuse", region="New York", country="US")
        assert data.price == Money(amount=Decimal(160_000_000), currency="USD")

    def test_the_memorandum(self) -> None:
        """Lotte and MilliporeSigma signed for expansion and staff training at East Syracuse."""
        (memorandum,) = of_type(MemorandumSigned)
        data = memorandum.data
        assert isinstance(data, MemorandumSigned)
        assert set(data.parties) == {"lotte-biologics", "milliporesigma"}
        assert set(data.scope) == {"expansion", "staff training"}
        assert data.site == "east-syracuse"

    def test_the_daejeon_plan_and_investment(self) -> None:
        """Merck KGaA's Korean plant and MilliporeSigma's USD 326M investment are at Daejeon."""
        (plan,) = of_type(FacilityPlanAnnounced)
        (investment,) = of_type(InvestmentCommitted)
        assert isinstance(plan.data, FacilityPlanAnnounced)
        assert isinstance(investment.data, InvestmentCommitted)
        assert (plan.data.org, plan.data.site) == ("merck-kgaa", "daejeon")
        assert plan.data.location == Location(city="Daejeon", country="KR")
        data = investment.data
        assert (data.org, data.site, data.jobs, data.jobs_by_year) == (
            "milliporesigma",
            "daejeon",
            300,
            2028,
        )
        assert data.amount == Money(amount=Decimal(326_000_000), currency="USD")
        assert data.location == Location(city="Daejeon", country="KR")
        assert set(data.modalities) == {
            "vaccines",
            "cell and gene therapies",
            "monoclonal antibodies",
        }
        assert set(data.capabilities) == {
            "process development",
            "clinical research",
            "commercial biological manufacturing",
        }

    def test_the_initiative_and_the_partnership_at_songdo(self) -> None:
        """The Bio Venture Initiative is Lotte's, at Songdo; the 2024 deal supports it there."""
        (initiative,) = of_type(InitiativeLaunched)
        (deal,) = of_type(PartnershipAgreed)
        assert isinstance(initiative.data, InitiativeLaunched)
        assert isinstance(deal.data, PartnershipAgreed)
        assert (initiative.data.org, initiative.data.site) == (
            "lotte-biologics",
            "songdo-bio-campus",
        )
        assert initiative.data.initiative == deal.data.initiative == "bio-venture-initiative"
        assert set(deal.data.parties) == {"lotte-biologics", "merck-kgaa"}
        assert deal.data.site == "songdo-bio-campus"
        assert len(deal.data.scope) == 3

    def test_every_referenced_organization_is_registered(self) -> None:
        """Every organization an announcement names is one the seed registers."""
        registered = {e.data.id for e in of_type(OrganizationRegistered)}  # type: ignore[union-attr]
        named: set[str] = set()
        for e in SEED:
            data = e.data
            for field in ("org", "acquirer", "seller", "parent"):
                value = getattr(data, field, None)
                if value is not None:
                    named.add(value)
            named.update(getattr(data, "parties", ()))
        assert named <= registered
        assert named == registered
