"""The timeline: every announcement of a view in valid-time order, with its provenance.

Organizations' registrations are announcements too and are included. A corrected event
shows its corrected data and names the correction (`corrected_by`); a retracted one is
gone.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

import msgspec

from events.envelope import Source
from events.payloads import (
    AnyPayload,
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
from projections.schema import View
from projections.state import Fact


class TimelineEntry(View, frozen=True):
    """One announcement with its provenance and a one-line summary of what it says.

    `position` and `recorded_at` say where and when the ledger recorded it; they depend
    on arrival, so the timeline's digest leaves them out (see `stable_form`).
    """

    position: int
    recorded_at: dt.datetime
    event_id: str
    type: str
    occurred_on: str
    sequence: int | None
    stream: str
    summary: str
    source: Source
    corrected_by: str | None


class StableEntry(msgspec.Struct, frozen=True, array_like=True, gc=False):
    """What a timeline entry shows of an event, minus what depends on arrival: digest input.

    The event's id, type, valid time, stream, (corrected) data, source and correction;
    not `position` or `recorded_at`, and not the summary, which is rendered from the data.
    Encoded as a JSON array.
    """

    event_id: str
    type: str
    occurred_on: str
    sequence: int | None
    stream: str
    data: AnyPayload
    source: Source
    corrected_by: str | None


def stable_form(event: Fact, corrected_by: str | None = None) -> StableEntry:
    """The digest input of one event's timeline entry."""
    return StableEntry(
        event.event_id,
        event.type,
        event.occurred_on,
        event.sequence,
        event.stream,
        event.data,
        event.source,
        corrected_by,
    )


def timeline_entry(event: Fact, corrected_by: str | None = None) -> TimelineEntry:
    """The timeline entry of one (possibly corrected) event."""
    return TimelineEntry(
        position=event.position,
        recorded_at=event.recorded_at,
        event_id=event.event_id,
        type=event.type,
        occurred_on=event.occurred_on,
        sequence=event.sequence,
        stream=event.stream,
        summary=summary(event),
        source=event.source,
        corrected_by=corrected_by,
    )


def _money(money: Money) -> str:
    return f"{money.currency} {money.amount:,f}"


def _place(location: Location) -> str:
    return ", ".join(part for part in (location.city, location.region, location.country) if part)


def _names(ids: Sequence[str]) -> str:
    if len(ids) <= 2:
        return " and ".join(ids)
    return ", ".join(ids[:-1]) + " and " + ids[-1]


def _on(scope: Sequence[str]) -> str:
    return f" on {', '.join(scope)}" if scope else ""


def _at(site: str | None) -> str:
    return f" at {site}" if site else ""


def _registered(data: OrganizationRegistered) -> str:
    details = [part for part in (data.country, data.kind) if part]
    text = f"{data.name} ({data.id}) registered"
    if details:
        text += f" ({', '.join(details)})"
    if data.parent:
        text += f", part of {data.parent}"
    if data.aliases:
        text += f", also known as {'; '.join(data.aliases)}"
    return text


def _describe(event: Fact) -> str:  # noqa: C901, PLR0911 - one line per event type
    data = event.data
    if isinstance(data, OrganizationRegistered):
        return _registered(data)
    if isinstance(data, SiteAcquired):
        text = f"{data.acquirer} acquired {data.site} ({data.name}, {_place(data.location)})"
        if data.seller:
            text += f" from {data.seller}"
        return text + (f" for {_money(data.price)}" if data.price else "")
    if isinstance(data, MemorandumSigned):
        return (
            f"{_names(data.parties)} signed memorandum {data.agreement}"
            f"{_on(data.scope)}{_at(data.site)}"
        )
    if isinstance(data, PartnershipAgreed):
        text = f"{_names(data.parties)} agreed partnership {data.agreement}{_on(data.scope)}"
        if data.initiative:
            text += f", for {data.initiative}"
        return text + _at(data.site)
    if isinstance(data, FacilityPlanAnnounced):
        text = f"{data.org} announced a facility plan{_at(data.site)}"
        if data.location:
            text += f" in {_place(data.location)}"
        return text + (f": {data.purpose}" if data.purpose else "")
    if isinstance(data, InitiativeLaunched):
        return f"{data.org} launched {data.name} ({data.initiative}){_at(data.site)}"
    if isinstance(data, InvestmentCommitted):
        text = f"{data.org} committed {_money(data.amount)} to {data.site}"
        if data.jobs is not None:
            text += f", {data.jobs:,} jobs"
        return text + (f" by {data.jobs_by_year}" if data.jobs_by_year else "")
    return event.type.replace("_", " ")


def summary(event: Fact) -> str:
    """A one-line summary of what an event says (whitespace collapsed)."""
    return " ".join(_describe(event).split())
