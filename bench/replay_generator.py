"""The generated log of `bench/replay.py`: its events, deterministic from `SEED`.

What it holds (a realistic mix of organizations, sites, agreements, plans, investments,
backfill bursts, corrections and retractions) is described in `bench/replay.py`'s
docstring; `replay_log.generate` appends it. Imported by that script, which puts the
repository root on `sys.path` first.
"""

from __future__ import annotations

import random
import uuid
from datetime import date, timedelta
from decimal import Decimal

import msgspec

from events.envelope import Source
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

GENERATOR_VERSION = 2  # bump when the generated log changes: it names the cached files
TAIL = 1_000  # the snapshots' tail: the last 2 * TAIL events are ordinary in-order news
SEED = 20240531

CURRENCIES = ("USD", "USD", "USD", "EUR", "EUR", "KRW", "JPY", "CHF", "GBP", "CNY", "SGD", "INR")
COUNTRIES = ("US", "US", "KR", "DE", "CH", "JP", "CN", "GB", "IE", "SG", "IN", "FR", "BE", "NL")
REGIONS = ("New York", "Massachusetts", "Gyeonggi", "Hesse", "Basel", "Kanagawa", "Jiangsu")
KINDS = ("CDMO", "CMO", "pharma", "biotech", "life science tools", "investor", "conglomerate")
MODALITIES = (
    "vaccines",
    "cell and gene therapies",
    "monoclonal antibodies",
    "antibody-drug conjugates",
    "mRNA",
    "peptides",
    "oligonucleotides",
    "viral vectors",
)
CAPABILITIES = (
    "process development",
    "clinical research",
    "commercial biological manufacturing",
    "fill-finish",
    "analytical testing",
    "drug substance",
    "drug product",
)
SCOPES = (
    "raw-material supply",
    "stable raw-material supply chain",
    "expansion",
    "staff training",
    "technology transfer",
    "co-development",
    "commercial manufacturing",
    "capacity reservation",
    "joint research",
)
PUBLISHERS = (
    "Fierce Pharma",
    "Endpoints News",
    "BioSpace",
    "Korea Biomedical Review",
    "Reuters",
    "Press release",
    "Pharmaceutical Technology",
    "BioPharma Dive",
)
PURPOSES = (
    "commercial production for customers in the region",
    "clinical supply",
    "a second drug-substance line",
    "late-stage and commercial fill-finish",
)
FIRST_DAY = date(2000, 1, 1)
DAYS = (date(2025, 12, 31) - FIRST_DAY).days
# announcement kinds and their weights (organizations and record events are counted apart)
MIX = (
    ("site_acquired", 8),
    ("memorandum_signed", 15),
    ("facility_plan_announced", 8),
    ("initiative_launched", 6),
    ("investment_committed", 32),
    ("partnership_agreed", 22),
)
LATE = 0.01  # share of announcements recorded late, in backfill bursts
BURST = 200  # a backfill burst holds about this many older announcements


class _Item(msgspec.Struct):
    """One event of the generated log before it is appended: its arrival key and content."""

    arrival: float
    event_id: str
    stream: str
    type: str
    occurred_on: str
    sequence: int | None
    data: Payload
    source: Source


class Generator:
    """Builds the events of a generated log, deterministically from `SEED`."""

    def __init__(self, count: int) -> None:
        self.rng = random.Random(SEED)
        self.count = count
        self.orgs = max(40, count // 40)
        self.sites = max(20, count // 25)
        self.corrections = max(3, count // 3_000)
        self.retractions = max(2, count // 10_000)
        self.agreements = 0
        self.initiatives = 0

    def uuid(self) -> str:
        return str(uuid.UUID(int=self.rng.getrandbits(128), version=4))

    def org(self) -> str:
        return f"org-{int(self.orgs * self.rng.random() ** 2)}"  # a few big players

    def site(self) -> str:
        return f"site-{int(self.sites * self.rng.random() ** 1.5)}"

    def location(self, site: str) -> Location:
        number = int(site.rsplit("-", 1)[1])
        return Location(
            country=COUNTRIES[number % len(COUNTRIES)],
            city=f"City {number % 997}",
            region=REGIONS[number % len(REGIONS)] if number % 3 else None,
        )

    def money(self, low: int, high: int) -> Money:
        currency = self.rng.choice(CURRENCIES)
        scale = 1_000 if currency in {"KRW", "JPY"} else 1
        amount = self.rng.randrange(low, high) * 100_000 * scale
        return Money(amount=Decimal(amount), currency=currency)

    def when(self) -> tuple[str, date]:
        """A valid time (day, month or year precision) and the day it was published."""
        day = FIRST_DAY + timedelta(days=self.rng.randrange(DAYS))
        roll = self.rng.random()
        if roll < 0.75:
            return day.isoformat(), day
        if roll < 0.93:
            return day.isoformat()[:7], day
        return day.isoformat()[:4], day

    def source(self, published: date, quote: str) -> Source:
        publisher = self.rng.choice(PUBLISHERS)
        slug = publisher.lower().replace(" ", "-")
        article = self.rng.randrange(10_000_000)
        return Source(
            url=f"https://news.example.com/{slug}/{published.year}/{article}",
            publisher=publisher,
            published_on=published.isoformat(),
            title=f"{quote[:60].rstrip()} …",
            quote=quote,
        )

    def organization(self, number: int) -> tuple[str, Payload, str]:
        org_id = f"org-{number}"
        parent = (
            f"org-{self.rng.randrange(number)}" if number and self.rng.random() < 0.35 else None
        )
        data = OrganizationRegistered(
            id=org_id,
            name=f"Company {number} Biologics",
            country=self.rng.choice(COUNTRIES),
            kind=self.rng.choice(KINDS),
            parent=parent,
            aliases=(f"C{number} Bio",) if self.rng.random() < 0.2 else (),
        )
        quote = f"Company {number} Biologics, a {data.kind}, said it would expand its operations."
        if parent:
            quote += f" The company is part of {parent}."
        return f"organization-{org_id}", data, quote

    def announcement(self, kind: str) -> tuple[str, Payload, str]:
        rng = self.rng
        if kind == "site_acquired":
            site = self.site()
            acquirer, seller = self.org(), self.org() if rng.random() < 0.7 else None
            price = self.money(100, 20_000) if rng.random() < 0.8 else None
            data: Payload = SiteAcquired(
                site=site,
                name=f"Manufacturing site {site}",
                location=self.location(site),
                acquirer=acquirer,
                seller=seller,
                price=price,
            )
            return f"site-{site}", data, f"{acquirer} bought the {site} facility from {seller}."
        if kind in {"memorandum_signed", "partnership_agreed"}:
            self.agreements += 1
            parties = tuple(
                dict.fromkeys(self.org() for _ in range(rng.choice((2, 2, 2, 2, 3, 4))))
            )
            if len(parties) < 2:
                parties = (*parties, f"org-{self.orgs - 1 - self.agreements % 7}")
            scope = tuple(rng.sample(SCOPES, rng.randrange(1, 4)))
            site = self.site() if rng.random() < 0.4 else None
            if kind == "memorandum_signed":
                agreement = f"mou-{self.agreements}"
                data = MemorandumSigned(
                    agreement=agreement, parties=parties, scope=scope, site=site
                )
            else:
                agreement = f"deal-{self.agreements}"
                initiative = (
                    f"initiative-{rng.randrange(self.initiatives)}"
                    if self.initiatives and rng.random() < 0.2
                    else None
                )
                data = PartnershipAgreed(
                    agreement=agreement,
                    parties=parties,
                    scope=scope,
                    initiative=initiative,
                    site=site,
                )
            quote = f"{' and '.join(parties)} signed an agreement focused on {', '.join(scope)}."
            return f"agreement-{agreement}", data, quote
        if kind == "facility_plan_announced":
            site, org = self.site(), self.org()
            data = FacilityPlanAnnounced(
                org=org, site=site, location=self.location(site), purpose=rng.choice(PURPOSES)
            )
            return f"site-{site}", data, f"{org} unveiled plans to establish a plant at {site}."
        if kind == "initiative_launched":
            initiative = f"initiative-{self.initiatives}"
            self.initiatives += 1
            site, org = self.site(), self.org()
            data = InitiativeLaunched(
                org=org,
                initiative=initiative,
                name=f"Bio Venture Initiative {self.initiatives}",
                site=site,
                description="joint lab space and expertise to support biopharma upstarts",
            )
            return f"site-{site}", data, f"{org} revealed plans to set up {initiative} at {site}."
        site, org = self.site(), self.org()
        amount = self.money(10, 50_000)
        data = InvestmentCommitted(
            org=org,
            site=site,
            amount=amount,
            location=self.location(site) if rng.random() < 0.5 else None,
            jobs=rng.randrange(10, 2_000) if rng.random() < 0.7 else None,
            jobs_by_year=rng.randrange(2005, 2035) if rng.random() < 0.5 else None,
            modalities=tuple(rng.sample(MODALITIES, rng.randrange(0, 4))),
            capabilities=tuple(rng.sample(CAPABILITIES, rng.randrange(0, 4))),
        )
        quote = (
            f"{org} announced it would pump {amount.currency} {amount.amount} into a new "
            f"manufacturing center at {site}."
        )
        return f"site-{site}", data, quote

    def item(self, stream: str, data: Payload, quote: str) -> _Item:
        occurred_on, published = self.when()
        sequence = self.rng.choice((1, 2)) if self.rng.random() < 0.05 else None
        return _Item(
            0.0,
            self.uuid(),
            stream,
            data.TYPE,
            occurred_on,
            sequence,
            data,
            self.source(published, quote),
        )

    def items(self) -> list[_Item]:
        """Every event, in arrival order (see the docstring of `bench/replay.py`)."""
        rng = self.rng
        records = self.corrections + self.retractions
        announcements = self.count - self.orgs - records
        kinds = rng.choices([k for k, _ in MIX], [w for _, w in MIX], k=announcements)
        items = [self.item(*self.organization(n)) for n in range(self.orgs)]
        items += [self.item(*self.announcement(kind)) for kind in kinds]
        items.sort(key=_valid_time)
        total = len(items)
        for index, item in enumerate(items):
            item.arrival = float(index)
        # backfill bursts: older announcements recorded together, later than their time
        bursts = max(1, int(total * LATE) // BURST)
        clean = total - 2 * TAIL  # the last events are ordinary in-order news
        for _ in range(bursts):
            at = rng.randrange(total // 10, clean - 2)
            for _ in range(BURST):
                item = items[rng.randrange(at)]
                if item.arrival < at:
                    item.arrival = at + rng.random()
        # corrections and retractions: recorded some time after their target
        targets = rng.sample(range(total // 2), self.corrections + self.retractions)
        records_out: list[_Item] = []
        for number, target_index in enumerate(targets):
            target = items[target_index]
            if number < self.corrections:
                data: Payload = EventCorrected(
                    corrects=target.event_id,
                    replacement=msgspec.to_builtins(self.corrected(target.data)),
                    reason="the source published a correction",
                )
            else:
                data = EventRetracted(retracts=target.event_id, reason="the source withdrew it")
            record = self.item(target.stream, data, "The publisher corrected its report.")
            record.occurred_on = target.occurred_on
            record.arrival = min(target.arrival + rng.randrange(1, total // 4), clean - 1.5) + 0.5
            records_out.append(record)
        items += records_out
        items.sort(key=lambda item: item.arrival)
        return items

    def corrected(self, data: Payload) -> Payload:  # noqa: PLR0911 - one per type
        if isinstance(data, InvestmentCommitted):
            return msgspec.structs.replace(data, amount=self.money(10, 50_000), jobs=None)
        if isinstance(data, SiteAcquired):
            return msgspec.structs.replace(data, price=self.money(100, 20_000))
        if isinstance(data, OrganizationRegistered):
            return msgspec.structs.replace(data, name=f"{data.name} Inc")
        if isinstance(data, (MemorandumSigned, PartnershipAgreed)):
            return msgspec.structs.replace(data, scope=(*data.scope, "corrected scope"))
        if isinstance(data, FacilityPlanAnnounced):
            return msgspec.structs.replace(data, purpose="corrected purpose")
        if isinstance(data, InitiativeLaunched):
            return msgspec.structs.replace(data, description="corrected description")
        return data


def _valid_time(item: _Item) -> tuple[str, int, str]:
    size = len(item.occurred_on)
    start = item.occurred_on + ("" if size == 10 else "-01" if size == 7 else "-01-01")
    return (start, item.sequence or 0, item.event_id)
