"""`/v1/organizations`: organizations with parents, subsidiaries, partners and sites."""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, Response, get
from litestar.di import NamedDependency
from litestar.params import FromPath

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


class OrganizationsController(Controller):
    """The organizations the ledger knows."""

    path = "/v1/organizations"
    tags = ["projections"]  # noqa: RUF012 - Litestar's declared class attribute
    before_request = staticmethod(cached_answer)

    @get(
        "/",
        operation_id="ListOrganizations",
        summary="Every organization",
        responses=view_responses(401, 503),
    )
    async def list_organizations(
        self,
        request: Request[Any, Any, Any],
        ledger: NamedDependency[Ledger],
        as_of: AsOf = None,
        known_at: KnownAt = None,
        at_position: AtPosition = None,
    ) -> Response[Any]:
        """Organizations with parent, subsidiaries, partners (rolled up) and sites."""
        spec = view_spec(ledger, as_of, known_at, at_position)
        return await answer(request, ledger, spec, "organizations", lambda p: p.organizations())

    @get(
        "/{org_id:str}",
        operation_id="GetOrganization",
        summary="One organization",
        responses=view_responses(401, 404, 503),
    )
    async def get_organization(  # noqa: PLR0913 - path and view parameters
        self,
        request: Request[Any, Any, Any],
        ledger: NamedDependency[Ledger],
        org_id: FromPath[str],
        as_of: AsOf = None,
        known_at: KnownAt = None,
        at_position: AtPosition = None,
    ) -> Response[Any]:
        """One organization; 404 if it is unknown in this view."""
        spec = view_spec(ledger, as_of, known_at, at_position)
        return await answer(
            request,
            ledger,
            spec,
            "organizations",
            lambda p: p.organization(org_id),
            missing=f"no organization {org_id} in this view",
        )
