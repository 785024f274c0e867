"""The bundled seed (DESIGN §4): the facts of the Lotte Biologics / Merck KGaA article.

Every event carries the article's sentence that supports it, verbatim, as `source.quote`;
what the article does not say stays empty. Event ids are fixed, so seeding twice writes
nothing the second time.
"""

from __future__ import annotations

from decimal import Decimal
from importlib import resources

from events.envelope import NewEvent, Source
from events.ids import seed_id
from events.intake import new_event
from events.payloads import (
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

SEED_URL = "urn:seed:lotte-merck-announcement"

Q_DEAL = (
    "South Korean CDMO Lotte Biologics and Merck KGaA have signed a partnership deal focused on "
    "expanding biopharmaceutical production and process development."
)
Q_TERMS = (
    "Under terms of the agreement, the two companies will work together to ensure supplies of "
    "essential raw materials, establish a stable supply chain for raw materials and create a "
    "support system for the \u201cBio Venture Initiative\u201d at Lotte\u2019s Songdo Bio campus "
    "in South Korea, they said in a May 31 press release."
)
Q_INITIATIVE = (
    'Previously, Lotte revealed plans to set up the "Bio Venture Initiative" to facilitate '
    "collaboration among biopharma companies. The plan involves the operation of joint lab space "
    "plus the joining of expertise from companies of various sizes to support biopharma "
    "upstarts, Lotte said in an August 2023 press release."
)
Q_MOU = (
    "In 2022, Lotte signed a memorandum of understanding with Merck KGaA\u2019s life science "
    "business, MilliporeSigma, related to the expansion and staff training at the former Bristol "
    "Myers Squibb production facility in East Syracuse, New York."
)
Q_PURCHASE = (
    "Earlier that same year, the South Korean conglomerate purchased the site for $160 million."
)
Q_INVESTMENT = (
    "In late March, MilliporeSigma announced it would pump $326 million into a new manufacturing "
    "center in Daejeon, where it expects to create 300 new jobs by the end of 2028."
)
Q_PLAN = (
    "The Germany-based pharma giant unveiled plans in May 2023 to establish a Korean bioprocessing "
    "plant. At the time, the company said the plant would support commercial production for "
    "customers in the region."
)

QUOTES = (Q_DEAL, Q_TERMS, Q_INITIATIVE, Q_MOU, Q_PURCHASE, Q_INVESTMENT, Q_PLAN)

LOTTE, MERCK, MILLIPORE, BMS = (
    "lotte-biologics",
    "merck-kgaa",
    "milliporesigma",
    "bristol-myers-squibb",
)
EAST_SYRACUSE, DAEJEON, SONGDO = "east-syracuse", "daejeon", "songdo-bio-campus"
MOU_2022 = "lotte-milliporesigma-mou-2022"
DEAL_2024 = "lotte-merck-partnership-2024"
BIO_VENTURE = "bio-venture-initiative"


def article() -> str:
    """The text of the seed article, as shipped in the package."""
    return (
        resources.files("events")
        .joinpath("seed_data/lotte-merck-announcement.txt")
        .read_text(encoding="utf-8")
    )


def _event(  # noqa: PLR0913 - one seed fact
    name: str, stream: str, occurred_on: str, data: Payload, quote: str, sequence: int | None = None
) -> NewEvent:
    return new_event(
        data,
        event_id=seed_id(name),
        stream=stream,
        occurred_on=occurred_on,
        sequence=sequence,
        source=Source(url=SEED_URL, quote=quote),
    )


def seed_events() -> list[NewEvent]:
    """The seed, in the order it is appended: organizations first, then the announcements."""
    return [
        _event(
            "org-lotte-biologics",
            f"organization-{LOTTE}",
            "2022",
            OrganizationRegistered(id=LOTTE, name="Lotte Biologics", country="KR", kind="CDMO"),
            Q_DEAL,
        ),
        _event(
            "org-merck-kgaa",
            f"organization-{MERCK}",
            "2022",
            OrganizationRegistered(
                id=MERCK, name="Merck KGaA", country="DE", kind="Germany-based pharma giant"
            ),
            Q_PLAN,
        ),
        _event(
            "org-milliporesigma",
            f"organization-{MILLIPORE}",
            "2022",
            OrganizationRegistered(
                id=MILLIPORE,
                name="MilliporeSigma",
                parent=MERCK,
                aliases=("Merck KGaA\u2019s life science business",),
            ),
            Q_MOU,
        ),
        _event(
            "org-bristol-myers-squibb",
            f"organization-{BMS}",
            "2022",
            OrganizationRegistered(id=BMS, name="Bristol Myers Squibb"),
            Q_MOU,
        ),
        _event(
            "site-acquired-east-syracuse",
            f"site-{EAST_SYRACUSE}",
            "2022",
            SiteAcquired(
                site=EAST_SYRACUSE,
                name="Former Bristol Myers Squibb production facility",
                location=Location(city="East Syracuse", region="New York", country="US"),
                acquirer=LOTTE,
                seller=BMS,
                price=Money(amount=Decimal(160_000_000), currency="USD"),
            ),
            Q_PURCHASE,
            sequence=1,
        ),
        _event(
            "mou-lotte-milliporesigma-2022",
            f"agreement-{MOU_2022}",
            "2022",
            MemorandumSigned(
                agreement=MOU_2022,
                parties=(LOTTE, MILLIPORE),
                scope=("expansion", "staff training"),
                site=EAST_SYRACUSE,
            ),
            Q_MOU,
            sequence=2,
        ),
        _event(
            "facility-plan-daejeon-2023",
            f"site-{DAEJEON}",
            "2023-05",
            FacilityPlanAnnounced(
                org=MERCK,
                site=DAEJEON,
                location=Location(city="Daejeon", country="KR"),
                purpose="commercial production for customers in the region",
            ),
            Q_PLAN,
        ),
        _event(
            "initiative-bio-venture-2023",
            f"site-{SONGDO}",
            "2023-08",
            InitiativeLaunched(
                org=LOTTE,
                initiative=BIO_VENTURE,
                name="Bio Venture Initiative",
                site=SONGDO,
                location=Location(city="Songdo", country="KR"),
                description=(
                    "joint lab space plus the joining of expertise from companies of various sizes "
                    "to support biopharma upstarts"
                ),
            ),
            Q_INITIATIVE,
        ),
        _event(
            "investment-daejeon-2024",
            f"site-{DAEJEON}",
            "2024-03",
            InvestmentCommitted(
                org=MILLIPORE,
                site=DAEJEON,
                location=Location(city="Daejeon", country="KR"),
                amount=Money(amount=Decimal(326_000_000), currency="USD"),
                jobs=300,
                jobs_by_year=2028,
                modalities=("vaccines", "cell and gene therapies", "monoclonal antibodies"),
                capabilities=(
                    "process development",
                    "clinical research",
                    "commercial biological manufacturing",
                ),
            ),
            Q_INVESTMENT,
        ),
        _event(
            "partnership-lotte-merck-2024",
            f"agreement-{DEAL_2024}",
            "2024-05-31",
            PartnershipAgreed(
                agreement=DEAL_2024,
                parties=(LOTTE, MERCK),
                scope=(
                    "raw-material supply",
                    "stable raw-material supply chain",
                    "support for the Bio Venture Initiative",
                ),
                initiative=BIO_VENTURE,
                site=SONGDO,
            ),
            Q_TERMS,
        ),
    ]
