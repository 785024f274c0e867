"""`/v1/capacity`: manufacturing capacity per site, and summaries."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from litestar import Controller, Request, Response, get
from litestar.di import NamedDependency
from litestar.params import FromPath, QueryParameter

from service.ledger import Ledger
from service.views import (
    AsOf,
    AtPosition,
    KnownAt,
    answer,
    cached_answer,
    view_responses,
    view_spec,
)


class CapacityController(Controller):
    """What capacity exists or is planned where, who owns it, what was committed."""

    path = "/v1/capacity"
    tags = ["projections"]  # noqa: RUF012 - Litestar's declared class attribute
    before_request = staticmethod(cached_answer)

    @get(
        "/sites",
        operation_id="ListSites",
        summary="Capacity state of every site",
        responses=view_responses(401, 503),
    )
    async def list_sites(
        self,
        request: Request[Any, Any, Any],
        ledger: NamedDependency[Ledger],
        as_of: AsOf = None,
        known_at: KnownAt = None,
        at_position: AtPosition = None,
    ) -> Response[Any]:
        """Every site: owner, acquisition, plans, initiatives, investments, totals per currency."""
        spec = view_spec(ledger, as_of, known_at, at_position)
        return await answer(request, ledger, spec, "capacity", lambda p: p.capacity_sites())

    @get(
        "/sites/{site_id:str}",
        operation_id="GetSite",
        summary="Capacity state of one site",
        responses=view_responses(401, 404, 503),
    )
    async def get_site(  # noqa: PLR0913 - path and view parameters
        self,
        request: Request[Any, Any, Any],
        ledger: NamedDependency[Ledger],
        site_id: FromPath[str],
        as_of: AsOf = None,
        known_at: KnownAt = None,
        at_position: AtPosition = None,
    ) -> Response[Any]:
        """One site; 404 if it is unknown in this view."""
        spec = view_spec(ledger, as_of, known_at, at_position)
        return await answer(
            request,
            ledger,
            spec,
            "capacity",
            lambda p: p.capacity_site(site_id),
            missing=f"no site {site_id} in this view",
        )

    @get(
        "/summary",
        operation_id="GetCapacitySummary",
        summary="Money, jobs and sites by country or organization",
        responses=view_responses(401, 503),
    )
    async def summary(  # noqa: PLR0913 - the grouping and view parameters
        self,
        request: Request[Any, Any, Any],
        ledger: NamedDependency[Ledger],
        by: Annotated[
            Literal["country", "organization"],
            QueryParameter(description="Group by country or by top-level organization"),
        ] = "country",
        as_of: AsOf = None,
        known_at: KnownAt = None,
        at_position: AtPosition = None,
    ) -> Response[Any]:
        """Money per currency (never summed across currencies), jobs and sites per group."""
        spec = view_spec(ledger, as_of, known_at, at_position)
        return await answer(request, ledger, spec, "capacity", lambda p: p.capacity_summary(by))
