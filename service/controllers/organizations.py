"""`/v1/organizations`: organizations with parents, subsidiaries, partners and sites."""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, Response, get
from litestar.di import NamedDependency
from litestar.params import FromPath

from projections import OrganizationView, ViewSpec
from service.ledger import Ledger
from service.openapi import ETAG_HEADER, LINK_HEADER
from service.problems import echoed
from service.views import PageAsk, answer, cached_answer, paging, view_responses


class OrganizationsController(Controller):
    """The organizations the ledger knows."""

    path = "/v1/organizations"
    tags = ["projections"]  # noqa: RUF012 - Litestar's declared class attribute
    before_request = staticmethod(cached_answer)
    response_headers = [ETAG_HEADER]  # noqa: RUF012 - Litestar's declared class attribute

    @get(
        "/",
        operation_id="ListOrganizations",
        summary="Every organization",
        responses=view_responses(401, 503, data=OrganizationView, name="Organizations", pages=True),
        response_headers=[LINK_HEADER],
    )
    async def list_organizations(
        self,
        request: Request[Any, Any, Any],
        ledger: NamedDependency[Ledger],
        spec: NamedDependency[ViewSpec],
        page: NamedDependency[PageAsk],
    ) -> Response[Any]:
        """Organizations with parent, subsidiaries, partners (rolled up) and sites."""
        return await answer(
            request,
            ledger,
            spec,
            "organizations",
            lambda p: p.organizations(),
            page=paging("organizations", page),
        )

    @get(
        "/{org_id:str}",
        operation_id="GetOrganization",
        summary="One organization",
        responses=view_responses(401, 404, 503, data=OrganizationView, name="Organization"),
    )
    async def get_organization(
        self,
        request: Request[Any, Any, Any],
        ledger: NamedDependency[Ledger],
        org_id: FromPath[str],
        spec: NamedDependency[ViewSpec],
    ) -> Response[Any]:
        """One organization; 404 if it is unknown in this view."""
        return await answer(
            request,
            ledger,
            spec,
            "organizations",
            lambda p: p.organization(org_id),
            missing=f"no organization {echoed(org_id)} in this view",
        )
