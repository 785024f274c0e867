"""`/v1/capacity`: manufacturing capacity per site, and summaries."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from litestar import Controller, Request, Response, get
from litestar.di import NamedDependency
from litestar.params import FromPath, QueryParameter

from projections import SiteView, SummaryRow, ViewSpec
from service.ledger import Ledger
from service.openapi import ETAG_HEADER, LINK_HEADER
from service.problems import echoed
from service.views import PageAsk, answer, cached_answer, paging, view_responses


class CapacityController(Controller):
    """What capacity exists or is planned where, who owns it, what was committed."""

    path = "/v1/capacity"
    tags = ["projections"]  # noqa: RUF012 - Litestar's declared class attribute
    before_request = staticmethod(cached_answer)
    response_headers = [ETAG_HEADER]  # noqa: RUF012 - Litestar's declared class attribute

    @get(
        "/sites",
        operation_id="ListSites",
        summary="Capacity state of every site",
        responses=view_responses(401, 503, data=SiteView, name="Sites", pages=True),
        response_headers=[LINK_HEADER],
    )
    async def list_sites(
        self,
        request: Request[Any, Any, Any],
        ledger: NamedDependency[Ledger],
        spec: NamedDependency[ViewSpec],
        page: NamedDependency[PageAsk],
    ) -> Response[Any]:
        """Every site: owner, acquisition, plans, initiatives, investments, totals per currency."""
        return await answer(
            request,
            ledger,
            spec,
            "capacity",
            lambda p: p.capacity_sites(),
            page=paging("sites", page),
        )

    @get(
        "/sites/{site_id:str}",
        operation_id="GetSite",
        summary="Capacity state of one site",
        responses=view_responses(401, 404, 503, data=SiteView, name="Site"),
    )
    async def get_site(
        self,
        request: Request[Any, Any, Any],
        ledger: NamedDependency[Ledger],
        site_id: FromPath[str],
        spec: NamedDependency[ViewSpec],
    ) -> Response[Any]:
        """One site; 404 if it is unknown in this view."""
        return await answer(
            request,
            ledger,
            spec,
            "capacity",
            lambda p: p.capacity_site(site_id),
            missing=f"no site {echoed(site_id)} in this view",
        )

    @get(
        "/summary",
        operation_id="GetCapacitySummary",
        summary="Money, jobs and sites by country or organization",
        responses=view_responses(401, 503, data=list[SummaryRow], name="Summary"),
    )
    async def summary(
        self,
        request: Request[Any, Any, Any],
        ledger: NamedDependency[Ledger],
        spec: NamedDependency[ViewSpec],
        by: Annotated[
            Literal["country", "organization"],
            QueryParameter(description="Group by country or by top-level organization"),
        ] = "country",
    ) -> Response[Any]:
        """Money per currency (never summed across currencies), jobs and sites per group."""
        return await answer(request, ledger, spec, "capacity", lambda p: p.capacity_summary(by))
