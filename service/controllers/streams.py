"""`/v1/streams/{stream}`: one stream's events and version."""

from __future__ import annotations

from litestar import Controller, get
from litestar.di import NamedDependency
from litestar.exceptions import NotFoundException
from litestar.params import FromPath

from service.ledger import Ledger
from service.problems import problem_responses
from service.schemas import StreamAnswer, event_out


class StreamsController(Controller):
    """Streams: the unit of optimistic concurrency."""

    path = "/v1/streams"
    tags = ["events"]  # noqa: RUF012 - Litestar's declared class attribute

    @get(
        "/{stream:str}",
        operation_id="GetStream",
        summary="One stream's events and version",
        responses=problem_responses(400, 401, 404, 503),
        sync_to_thread=True,
    )
    def get_stream(self, stream: FromPath[str], ledger: NamedDependency[Ledger]) -> StreamAnswer:
        """Every event of the stream in order and its current version; 404 for an unknown stream."""
        events, version = ledger.log.stream(stream)
        if not events:
            raise NotFoundException(detail=f"no stream {stream}")
        return StreamAnswer(stream=stream, version=version, events=[event_out(e) for e in events])
