"""`/v1/timeline`: every announcement in valid-time order, with provenance."""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, Response, get
from litestar.di import NamedDependency

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


class TimelineController(Controller):
    """The announcements as a story."""

    path = "/v1/timeline"
    tags = ["projections"]  # noqa: RUF012 - Litestar's declared class attribute
    before_request = staticmethod(cached_answer)

    @get(
        "/",
        operation_id="GetTimeline",
        summary="Announcements in valid-time order",
        responses=view_responses(401, 503),
    )
    async def timeline(
        self,
        request: Request[Any, Any, Any],
        ledger: NamedDependency[Ledger],
        as_of: AsOf = None,
        known_at: KnownAt = None,
        at_position: AtPosition = None,
    ) -> Response[Any]:
        """Every announcement in valid-time order, with its source and supporting sentence."""
        spec = view_spec(ledger, as_of, known_at, at_position)
        return await answer(request, ledger, spec, "timeline", lambda p: p.timeline())
