"""`ledger show …` (projections as tables or JSON, with time travel) and `ledger replay`."""

from __future__ import annotations

import sys
from collections.abc import Iterable, Mapping, Sequence
from datetime import date, datetime
from decimal import Decimal
from typing import Any

import click
import msgspec

from events.dates import format_timestamp, parse_moment
from events.log import EventLog
from events.payloads import Money
from projections import (
    Projections,
    ViewSpec,
)
from projections.capacity import SummaryBy
from projections.organizations import OrgSite
from projections.paging import DEFAULT_PAGE, CursorKey, Page, page_of, parse_cursor
from service.cli.common import (
    Context,
    PlainTable,
    opened,
    pass_context,
    stdout,
)
from service.projector import build_view

_ENCODER = msgspec.json.Encoder(decimal_format="string")
_LISTS: Mapping[str, str] = {
    "partnerships": "partnerships",
    "organizations": "organizations",
    "timeline": "timeline",
    "capacity": "sites",
}
"""The pageable list (`projections.paging`) each projection shows: capacity pages its sites."""


class DateParam(click.ParamType[date]):
    """A calendar date, YYYY-MM-DD."""

    name = "YYYY-MM-DD"

    def convert(  # noqa: D102 - click's documented hook
        self,
        value: Any,  # noqa: ANN401 - click hands over whatever the user or a default gave
        param: click.Parameter | None,
        ctx: click.Context | None,
    ) -> date:
        if isinstance(value, date):
            return value
        try:
            return date.fromisoformat(str(value))
        except ValueError:
            self.fail(f"{value!r} is not a date (YYYY-MM-DD)", param, ctx)


class TimestampParam(click.ParamType[datetime]):
    """An RFC 3339 timestamp with an offset."""

    name = "RFC3339"

    def convert(  # noqa: D102 - click's documented hook
        self,
        value: Any,  # noqa: ANN401 - click hands over whatever the user or a default gave
        param: click.Parameter | None,
        ctx: click.Context | None,
    ) -> datetime:
        if isinstance(value, datetime):
            return value
        try:
            return parse_moment(str(value))
        except ValueError as exc:
            self.fail(str(exc), param, ctx)


def money(value: Money | None) -> str:
    """`USD 326,000,000`."""
    if value is None:
        return ""
    return f"{value.currency} {value.amount:,f}"  # `f`: never 1E-7 for 0.0000001


PREVIEW = 8
"""Ids a table cell lists before it says how many more there are (`--json` lists them all)."""


def preview(ids: Sequence[str]) -> str:
    """The first `PREVIEW` ids, then how many more: a cell a person can read."""
    if len(ids) <= PREVIEW:
        return ", ".join(ids)
    return f"{', '.join(ids[:PREVIEW])}, … (+{len(ids) - PREVIEW:,} more)"


def site_roles_text(roles: Iterable[OrgSite]) -> list[str]:
    """Each site once, with the organization's roles there: `east-syracuse (seller)`."""
    by_site: dict[str, set[str]] = {}
    for role in roles:
        by_site.setdefault(role.site, set()).add(role.role.replace("_", " "))
    return [f"{site} ({', '.join(sorted(kinds))})" for site, kinds in sorted(by_site.items())]


_PROSE = {"location": 24, "modalities": 28}
"""Widths the capacity table's prose columns stop at, leaving the figures their room."""


def totals(values: Mapping[str, Decimal]) -> str:
    """Money per currency, never summed across currencies: one currency a line."""
    return "\n".join(f"{currency} {amount:,f}" for currency, amount in sorted(values.items()))


def _view_spec(
    log: EventLog, as_of: date | None, known_at: datetime | None, at_position: int | None
) -> ViewSpec:
    if at_position is not None and at_position > log.head():
        msg = f"{at_position} is past the head of the log ({log.head()})"
        raise click.BadParameter(msg, param_hint="'--at-position'")
    return ViewSpec(as_of=as_of, known_at=known_at, at_position=at_position)


def _entries(what: str, proj: Projections) -> Sequence[Any]:
    """The list a projection shows (capacity: its sites), in its own order."""
    if what == "partnerships":
        return proj.partnerships()
    if what == "organizations":
        return proj.organizations()
    if what == "timeline":
        return proj.timeline()
    return proj.capacity_sites()


def _tables(  # noqa: C901, PLR0912 - one branch per projection
    what: str, proj: Projections, entries: Sequence[Any]
) -> list[PlainTable]:
    if what == "partnerships":
        table = PlainTable(title="Partnerships (top-level organizations)")
        for column in ("pair", "since", "date", "type", "signed by", "scope", "site"):
            table.add_column(column)
        for pair in entries:
            for i, agreement in enumerate(pair.agreements):
                table.add_row(
                    " / ".join(pair.orgs) if i == 0 else "",
                    pair.since if i == 0 else "",
                    agreement.occurred_on,
                    agreement.type + (" (corrected)" if agreement.corrected_by else ""),
                    ", ".join(agreement.parties),
                    "; ".join(agreement.scope),
                    agreement.site or "",
                )
        return [table]
    if what == "organizations":
        table = PlainTable(title="Organizations")
        for column in (
            "id",
            "name",
            "country",
            "kind",
            "parent",
            "subsidiaries",
            "partners",
            "sites",
        ):
            table.add_column(column)
        for org in entries:
            corrected = org.registration is not None and org.registration.corrected_by
            table.add_row(
                org.id + (" (corrected)" if corrected else ""),
                org.name or "",
                org.country or "",
                org.kind or "",
                org.parent or "",
                preview(org.subsidiaries),
                preview(org.partners),
                preview(site_roles_text(org.sites)),
            )
        return [table]
    if what == "timeline":
        table = PlainTable(title="Timeline")
        for column in ("date", "type", "summary", "source"):
            table.add_column(column)
        for entry in entries:
            summary = entry.summary + (" (corrected)" if entry.corrected_by else "")
            table.add_row(entry.occurred_on, entry.type, summary, entry.source.url)
        return [table]
    sites = PlainTable(title="Capacity by site")
    for column in (
        "site",
        "location",
        "owner",
        "acquired",
        "price",
        "committed",
        "jobs",
        "modalities",
    ):
        figure = column in {"price", "committed", "jobs"}
        sites.add_column(
            column,
            justify="right" if figure else "left",
            overflow="fold",  # folded where too narrow, never cut
            max_width=_PROSE.get(column),
        )
    for site in entries:
        place = (
            ", ".join(
                p for p in (site.location.city, site.location.region, site.location.country) if p
            )
            if site.location
            else ""
        )
        jobs = (
            f"{site.jobs:,}" + (f" by {site.jobs_by_year}" if site.jobs_by_year else "")
            if site.jobs
            else ""
        )
        parts = (*site.acquisitions, *site.plans, *site.initiatives, *site.investments)
        corrected = any(part.corrected_by for part in parts)
        sites.add_row(
            site.site + (" (corrected)" if corrected else ""),
            place,
            site.owner or "",
            site.acquired_on or "",
            money(site.price),
            totals(site.committed),
            jobs,
            ", ".join(site.modalities),
        )
    tables = [sites]
    plans = PlainTable(title="Plans and initiatives by site")
    for column in ("site", "date", "what", "by"):
        plans.add_column(column, overflow="fold")
    for site in entries:
        for plan in site.plans:
            plans.add_row(site.site, plan.announced_on, plan.purpose or "a plan", plan.org)
        for initiative in site.initiatives:
            plans.add_row(site.site, initiative.launched_on, initiative.name, initiative.org)
    if plans.row_count:
        tables.append(plans)
    by: SummaryBy
    for by in ("country", "organization"):
        summary = PlainTable(title=f"Capacity by {by}")
        for column in (by, "committed", "acquisitions", "jobs", "sites"):
            summary.add_column(column, justify="left" if column == by else "right", overflow="fold")
        for row in proj.capacity_summary(by):
            summary.add_row(
                row.key or "(unknown)",
                totals(row.committed),
                totals(row.acquisitions),
                f"{row.jobs:,}",
                str(row.sites),
            )
        tables.append(summary)
    return tables


def _data(what: str, proj: Projections, entries: Sequence[Any]) -> Any:  # noqa: ANN401 - each projection has its own shape
    if what != "capacity":
        return entries
    return {
        "sites": entries,
        "summary": {by: proj.capacity_summary(by) for by in ("country", "organization")},
    }


def _cursor(what: str, after: str | None) -> CursorKey | None:
    """`--after` parsed as a cursor of the list `what` shows (exit 2 naming it if it is not)."""
    if after is None:
        return None
    try:
        return parse_cursor(_LISTS[what], after)
    except ValueError as exc:
        raise click.BadParameter(f"{after!r} {exc}", param_hint="'--after'") from None


@click.command()
@click.argument(
    "what", type=click.Choice(["partnerships", "capacity", "organizations", "timeline"])
)
@click.option("--as-of", type=DateParam(), help="Only what had certainly happened by this date.")
@click.option(
    "--known-at", type=TimestampParam(), help="Only what the ledger knew at this moment (RFC 3339)."
)
@click.option("--at-position", type=click.IntRange(min=0), help="Only the log up to this position.")
@click.option(
    "--limit",
    type=click.IntRange(min=1),
    help="A page: at most this many entries (capacity: sites), then the next page's cursor.",
)
@click.option(
    "--after",
    metavar="CURSOR",
    help=f"Start after this cursor, as the page before ends with ({DEFAULT_PAGE} per page "
    "unless --limit says).",
)
@click.option("--json", "as_json", is_flag=True, help='{"view", "data"} as JSON, for programs.')
@pass_context
def show(  # noqa: PLR0913 - one parameter per option
    ctx: Context,
    what: str,
    as_of: date | None,
    known_at: datetime | None,
    at_position: int | None,
    limit: int | None,
    after: str | None,
    as_json: bool,
) -> None:
    """Show a projection: tables for people, --json for programs; time travel by the options.

    With --limit or --after, one page of its list (capacity: of its sites, the summaries
    only in JSON), in the order of the HTTP lists, and the cursor of the next page: as JSON
    `next`, after a table a line.
    """
    cursor = _cursor(what, after)
    with opened(ctx, must_exist=True) as log:
        spec = _view_spec(log, as_of, known_at, at_position)
        proj = build_view(log, spec, at_position)
    entries = _entries(what, proj)
    page: Page | None = None
    if limit is not None or after is not None:
        page = page_of(_LISTS[what], entries, cursor, limit or DEFAULT_PAGE)
        entries = page.entries
    if as_json:
        view = {
            "position": proj.position,
            "as_of": as_of,
            "known_at": known_at,
            "at_position": at_position,
            "digest": proj.digest(what),
        }
        answer: dict[str, Any] = {"view": view, "data": _data(what, proj, entries)}
        if page is not None:
            answer["next"] = page.next_cursor
        sys.stdout.buffer.write(_ENCODER.encode(answer) + b"\n")
        return
    console = stdout()
    tables = _tables(what, proj, entries)
    if page is not None:  # a page of capacity is one of its sites: not the summaries again
        tables = tables[:1]
    for table in tables:
        console.print(table)
    coordinates = "".join(  # so that a table pasted elsewhere keeps what it is a view of
        f"{label} {value}, "
        for label, value in (
            ("as of", as_of),
            ("known at", None if known_at is None else format_timestamp(known_at)),
        )
        if value is not None
    )
    console.print(
        f"view {coordinates}at position {proj.position}; digest {proj.digest(what)[:16]}…",
        markup=False,
        highlight=False,
    )
    if page is not None and page.next_cursor is not None:
        click.echo(f"next page: --after {page.next_cursor}")  # one line, never wrapped
