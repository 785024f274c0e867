"""`/v1/streams/{stream}`: one stream's events and version."""

from __future__ import annotations

from typing import Annotated
from urllib.parse import quote, urlencode

from litestar import Controller, Response, get
from litestar.di import NamedDependency
from litestar.exceptions import NotFoundException
from litestar.params import FromPath, QueryParameter

from events.log import MAX_POSITION
from projections.paging import DEFAULT_PAGE
from service.ledger import Ledger
from service.openapi import LINK_HEADER, POSITION_BOUNDS
from service.parameters import raise_pending
from service.problems import echoed, invalid, problem_responses
from service.query_rules import limit_error
from service.schemas import StreamAnswer, event_out


class StreamsController(Controller):
    """Streams: the unit of optimistic concurrency."""

    path = "/v1/streams"
    tags = ["events"]  # noqa: RUF012 - Litestar's declared class attribute

    @get(
        "/{stream:str}",
        operation_id="GetStream",
        summary="One stream's events and version",
        responses=problem_responses(400, 401, 404, 422, 503),
        response_headers=[LINK_HEADER],
        sync_to_thread=True,
    )
    def get_stream(
        self,
        stream: FromPath[str],
        ledger: NamedDependency[Ledger],
        after: Annotated[
            int,
            QueryParameter(
                ge=0,
                le=MAX_POSITION,
                description="Start after this stream version",
                schema_extra=POSITION_BOUNDS,
            ),
        ] = 0,
        limit: Annotated[
            int | None,
            QueryParameter(ge=1, description="Page size (default 100, or the page limit if lower)"),
        ] = None,
    ) -> Response[StreamAnswer]:
        """The stream's events in version order, a page at a time, and its current version.

        404 for a stream with no events; `next` (and `Link`) for the next page.
        """
        raise_pending()  # every error the parameter hook kept, at once
        page_limit = ledger.settings.page_limit
        size = min(DEFAULT_PAGE, page_limit) if limit is None else limit
        error = limit_error(size, page_limit)
        if error is not None:
            raise invalid([error])
        events, version = ledger.log.stream(stream, after=after, limit=size)
        if version == 0:
            raise NotFoundException(detail=f"no stream {echoed(stream)}")
        next_url = None
        headers: dict[str, str] = {}
        if events and events[-1].stream_version < version:
            query = urlencode([("after", events[-1].stream_version), ("limit", size)])
            next_url = f"/v1/streams/{quote(stream, safe='')}?{query}"
            headers["Link"] = f'<{next_url}>; rel="next"'
        answer = StreamAnswer(
            stream=stream, version=version, events=[event_out(e) for e in events], next=next_url
        )
        return Response(answer, headers=headers)
