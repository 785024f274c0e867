"""`/v1/partnerships`: partnership state per pair of top-level organizations."""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, Response, get
from litestar.di import NamedDependency
from litestar.params import FromPath

from projections import PartnershipView, ViewSpec
from service.ledger import Ledger
from service.openapi import ETAG_HEADER, LINK_HEADER
from service.problems import echoed
from service.views import PageAsk, answer, cached_answer, paging, view_responses


class PartnershipsController(Controller):
    """Who partners with whom, on what, since when; rolled up to parents."""

    path = "/v1/partnerships"
    tags = ["projections"]  # noqa: RUF012 - Litestar's declared class attribute
    before_request = staticmethod(cached_answer)
    response_headers = [ETAG_HEADER]  # noqa: RUF012 - Litestar's declared class attribute

    @get(
        "/",
        operation_id="ListPartnerships",
        summary="Every partnership pair",
        responses=view_responses(401, 503, data=PartnershipView, name="Partnerships", pages=True),
        response_headers=[LINK_HEADER],
    )
    async def list_partnerships(
        self,
        request: Request[Any, Any, Any],
        ledger: NamedDependency[Ledger],
        spec: NamedDependency[ViewSpec],
        page: NamedDependency[PageAsk],
    ) -> Response[Any]:
        """One entry per pair of top-level organizations, each agreement in valid-time order."""
        return await answer(
            request,
            ledger,
            spec,
            "partnerships",
            lambda p: p.partnerships(),
            page=paging("partnerships", page),
        )

    @get(
        "/{org_a:str}/{org_b:str}",
        operation_id="GetPartnership",
        summary="One pair's partnership",
        responses=view_responses(401, 404, 503, data=PartnershipView, name="Partnership"),
    )
    async def get_partnership(
        self,
        request: Request[Any, Any, Any],
        ledger: NamedDependency[Ledger],
        org_a: FromPath[str],
        org_b: FromPath[str],
        spec: NamedDependency[ViewSpec],
    ) -> Response[Any]:
        """The pair's agreements (ids in either order; subsidiaries roll up); 404 if none."""
        return await answer(
            request,
            ledger,
            spec,
            "partnerships",
            lambda p: p.partnership(org_a, org_b),
            missing=f"no partnership between {echoed(org_a)} and {echoed(org_b)} in this view",
        )
