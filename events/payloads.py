"""The typed payloads of the log (DESIGN §3): one msgspec Struct per event type.

Each type has a stable snake_case tag, never its class name. The tag lives on the
envelope (`type`), not inside `data`, so `data` is exactly the payload's fields.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Any, ClassVar, TypeAlias

import msgspec
from msgspec import Meta

# msgspec checks a pattern with `re.search`, where a final `$` also matches before a trailing
# newline: `(?!\n)$` refuses "usd\n" and stays a valid ECMA-262 pattern in the OpenAPI document
# (Python's `\Z` is not one).
Id = Annotated[str, Meta(pattern=r"^[a-z0-9]+(-[a-z0-9]+)*(?!\n)$", max_length=120)]
"""A slug identifier of an organization, site, agreement or initiative."""

Country = Annotated[str, Meta(pattern=r"^[A-Z]{2}(?!\n)$")]
"""ISO 3166-1 alpha-2."""

Currency = Annotated[str, Meta(pattern=r"^[A-Z]{3}(?!\n)$")]
"""ISO 4217."""

EventId = Annotated[
    str, Meta(pattern=r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}(?!\n)$")
]
"""A UUID in its lower-case canonical text form."""

Text = Annotated[str, Meta(min_length=1, max_length=10_000)]
Label = Annotated[str, Meta(min_length=1, max_length=500)]
Year = Annotated[int, Meta(ge=1900, le=2200)]
Count = Annotated[int, Meta(ge=0, le=10_000_000_000)]

_MAX_DIGITS = 30


class Model(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """Base of every schema: immutable, unknown fields refused, keyword-only."""


class Money(Model, frozen=True):
    """An amount of money: a non-negative Decimal and its ISO 4217 currency, never a float."""

    amount: Decimal
    currency: Currency

    def __post_init__(self) -> None:
        amount = self.amount
        if not isinstance(amount, Decimal):  # built in Python with a float, an int, a str
            msg = f"amount: must be a Decimal, not {type(amount).__name__} (money is never a float)"
            raise TypeError(msg)
        if not amount.is_finite():
            msg = "amount: must be a finite number"
            raise ValueError(msg)
        if amount < 0 or amount.is_signed():
            msg = "amount: must not be negative"
            raise ValueError(msg)
        if len(amount.as_tuple().digits) > _MAX_DIGITS:
            msg = f"amount: at most {_MAX_DIGITS} digits"
            raise ValueError(msg)


class Location(Model, frozen=True):
    """Where something is: city and region as the source gives them, the country always."""

    country: Country
    city: Label | None = None
    region: Label | None = None


class Payload(Model, frozen=True):
    """Base of every event payload; `TYPE` is its stable tag."""

    TYPE: ClassVar[str]


class OrganizationRegistered(Payload, frozen=True):
    """A company or group enters the ledger, with its parent if it has one."""

    TYPE: ClassVar[str] = "organization_registered"
    id: Id
    name: Label
    country: Country | None = None
    kind: Label | None = None
    parent: Id | None = None
    aliases: tuple[Label, ...] = ()


class SiteAcquired(Payload, frozen=True):
    """An organization buys a site (a plant, a campus) from another or from the market."""

    TYPE: ClassVar[str] = "site_acquired"
    site: Id
    name: Label
    location: Location
    acquirer: Id
    seller: Id | None = None
    price: Money | None = None


class MemorandumSigned(Payload, frozen=True):
    """Two or more organizations sign a memorandum of understanding."""

    TYPE: ClassVar[str] = "memorandum_signed"
    agreement: Id
    parties: Annotated[tuple[Id, ...], Meta(min_length=2, max_length=20)]
    scope: tuple[Label, ...] = ()
    site: Id | None = None


class FacilityPlanAnnounced(Payload, frozen=True):
    """An organization announces a plan for a facility."""

    TYPE: ClassVar[str] = "facility_plan_announced"
    org: Id
    site: Id | None = None
    location: Location | None = None
    purpose: Text | None = None


class InitiativeLaunched(Payload, frozen=True):
    """An organization launches a named initiative, perhaps at a site."""

    TYPE: ClassVar[str] = "initiative_launched"
    org: Id
    initiative: Id
    name: Label
    site: Id | None = None
    location: Location | None = None
    description: Text | None = None


class InvestmentCommitted(Payload, frozen=True):
    """An organization commits money (and jobs) to a site."""

    TYPE: ClassVar[str] = "investment_committed"
    org: Id
    site: Id
    amount: Money
    location: Location | None = None
    jobs: Count | None = None
    jobs_by_year: Year | None = None
    modalities: tuple[Label, ...] = ()
    capabilities: tuple[Label, ...] = ()


class PartnershipAgreed(Payload, frozen=True):
    """Two or more organizations agree a partnership deal."""

    TYPE: ClassVar[str] = "partnership_agreed"
    agreement: Id
    parties: Annotated[tuple[Id, ...], Meta(min_length=2, max_length=20)]
    scope: tuple[Label, ...] = ()
    initiative: Id | None = None
    site: Id | None = None


class EventCorrected(Payload, frozen=True):
    """A fact about the record: the event `corrects` is replaced by `replacement` (same type)."""

    TYPE: ClassVar[str] = "event_corrected"
    corrects: EventId
    replacement: dict[str, Any]
    reason: Text


class EventRetracted(Payload, frozen=True):
    """A fact about the record: the event `retracts` no longer counts."""

    TYPE: ClassVar[str] = "event_retracted"
    retracts: EventId
    reason: Text


AnyPayload: TypeAlias = (
    OrganizationRegistered
    | SiteAcquired
    | MemorandumSigned
    | FacilityPlanAnnounced
    | InitiativeLaunched
    | InvestmentCommitted
    | PartnershipAgreed
    | EventCorrected
    | EventRetracted
)

PAYLOAD_TYPES: dict[str, type[Payload]] = {
    cls.TYPE: cls
    for cls in (
        OrganizationRegistered,
        SiteAcquired,
        MemorandumSigned,
        FacilityPlanAnnounced,
        InitiativeLaunched,
        InvestmentCommitted,
        PartnershipAgreed,
        EventCorrected,
        EventRetracted,
    )
}
"""Every payload type by its tag."""

RECORD_TYPES = frozenset({EventCorrected.TYPE, EventRetracted.TYPE})
"""Types that are facts about the record rather than about the world."""
