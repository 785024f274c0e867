"""`/v1/timeline`: every announcement in valid-time order, with provenance."""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, Response, get
from litestar.di import NamedDependency

from projections import TimelineEntry, ViewSpec
from service.ledger import Ledger
from service.openapi import ETAG_HEADER, LINK_HEADER
from service.views import PageAsk, answer, cached_answer, paging, view_responses


class TimelineController(Controller):
    """The announcements as a story."""

    path = "/v1/timeline"
    tags = ["projections"]  # noqa: RUF012 - Litestar's declared class attribute
    before_request = staticmethod(cached_answer)
    response_headers = [ETAG_HEADER]  # noqa: RUF012 - Litestar's declared class attribute

    @get(
        "/",
        operation_id="GetTimeline",
        summary="Announcements in valid-time order",
        responses=view_responses(401, 503, data=TimelineEntry, name="Timeline", pages=True),
        response_headers=[LINK_HEADER],
    )
    async def timeline(
        self,
        request: Request[Any, Any, Any],
        ledger: NamedDependency[Ledger],
        spec: NamedDependency[ViewSpec],
        page: NamedDependency[PageAsk],
    ) -> Response[Any]:
        """Every announcement in valid-time order, with its source and supporting sentence."""
        return await answer(
            request, ledger, spec, "timeline", lambda p: p.timeline(), page=paging("timeline", page)
        )
