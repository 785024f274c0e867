"""`/v1/events`: append a batch, read the log in order, one event by id."""

from __future__ import annotations

from typing import Annotated, Any, cast
from urllib.parse import urlencode

import anyio
from litestar import Controller, Request, Response, get, post
from litestar.di import NamedDependency
from litestar.exceptions import ClientException, NotFoundException
from litestar.openapi import ResponseSpec
from litestar.params import FromPath, JSONBody, QueryParameter
from litestar.status_codes import HTTP_200_OK, HTTP_201_CREATED

from events.log import MAX_POSITION, EventLog
from projections.paging import DEFAULT_PAGE
from service.auth import principal, require_scope
from service.batch import BatchDTO, BatchIn, events_of
from service.fastpost import FAILED_APPEND
from service.ledger import Ledger
from service.openapi import LINK_HEADER, POSITION_BOUNDS, WRITE_SECURITY
from service.parameters import raise_pending
from service.problems import echoed, invalid, problem_responses
from service.query_rules import limit_error, type_error
from service.schemas import AppendAnswer, EventOut, EventPage, event_out

JSON_TYPES = frozenset({"application/json", "application/problem+json"})
"""The body types an append takes (checked before the body is read: `append_checks`)."""
ON_THE_LOOP = 32
"""A batch of more events is validated in a worker thread: 1,000 events take tens of ms."""


_UTF8 = frozenset({"utf-8", "utf8", "us-ascii", "ascii"})
"""Charsets a JSON body may declare: UTF-8, or ASCII (a subset of it)."""


async def append_checks(request: Request[Any, Any, Any]) -> None:
    """`before_request` of the append: the token's scope, then a JSON body in no coding.

    All before the body is read: a gzip body would otherwise fail as malformed JSON (400),
    and a body of another type be judged by its content (400 or 422), where HTTP says 415
    (RFC 9110 15.5.16) whatever the body.
    """
    await require_scope(request)
    coding = request.headers.get("content-encoding", "").strip().lower()
    if coding not in {"", "identity"}:
        raise ClientException(status_code=415, detail=f"send the body uncoded, not in {coding!r}")
    content_type, options = request.content_type
    if content_type not in JSON_TYPES:
        raise ClientException(
            status_code=415, detail=f"send application/json, not {content_type or 'nothing'}"
        )
    charset = options.get("charset", "utf-8").strip().lower()
    if charset not in _UTF8:  # JSON is UTF-8 (RFC 8259 8.1): never read as another
        raise ClientException(
            status_code=415, detail=f"send the body in UTF-8, not charset={echoed(charset)}"
        )


class EventsController(Controller):
    """The log itself."""

    path = "/v1/events"
    tags = ["events"]  # noqa: RUF012 - Litestar's declared class attribute

    @post(
        "/",
        operation_id="AppendEvents",
        summary="Append a batch of events atomically",
        opt={"scope": "append"},
        security=WRITE_SECURITY,
        before_request=append_checks,
        dto=BatchDTO,
        return_dto=None,
        status_code=HTTP_201_CREATED,
        response_description="Appended: the head, and where each event landed",
        responses={
            200: ResponseSpec(
                AppendAnswer,
                description="An idempotent replay: the first places",
                generate_examples=False,
            ),
            **problem_responses(400, 401, 403, 408, 409, 413, 415, 422, 503),
        },
    )
    async def append(
        self,
        request: Request[Any, Any, Any],
        data: JSONBody[BatchIn],
    ) -> Response[AppendAnswer]:
        """Append every event of the batch or none; 201 with positions, 200 for a replay.

        `expected_versions` maps a stream to its current version (0: must not exist yet); a
        mismatch, or a known `event_id` with other content, is 409. `metadata.recorded_by`
        is the token's subject, whatever the client sent.
        """
        # Validation runs on the event loop (a large batch's in a worker thread, so the loop
        # keeps serving); the commit on the log's writer thread, with the appends of other
        # requests waiting at the same time (one transaction, one fsync); the answer waits
        # for that commit without a thread parked per request.
        ledger: Ledger = request.app.state.ledger  # not a dependency: nothing to resolve
        limit = ledger.settings.batch_limit
        if len(data.events) > limit:
            raise ClientException(
                status_code=413,
                detail=f"a batch holds at most {limit} events, not {len(data.events)}",
            )
        subject = principal(request).subject
        if len(data.events) > ON_THE_LOOP:
            batch = await anyio.to_thread.run_sync(events_of, data, subject)
        else:
            batch = events_of(data, subject)
        failed = cast("dict[str, Any]", request.scope).get(FAILED_APPEND)
        if isinstance(
            failed, Exception
        ):  # tried in front of the router (service.fastpost): not twice
            raise failed
        result = await ledger.append_awaited(batch, data.expected_versions)
        answer = AppendAnswer(
            head=result.head, events=list(result.events), replayed=result.replayed
        )
        return Response(answer, status_code=HTTP_200_OK if result.replayed else HTTP_201_CREATED)

    @get(
        "/",
        operation_id="ListEvents",
        summary="Read the log in order, a page at a time",
        responses=problem_responses(400, 401, 422, 503),
        response_headers=[LINK_HEADER],
        sync_to_thread=True,
    )
    def list_events(
        self,
        ledger: NamedDependency[Ledger],
        after: Annotated[
            int,
            QueryParameter(
                ge=0,
                le=MAX_POSITION,
                description="Start after this position",
                schema_extra=POSITION_BOUNDS,
            ),
        ] = 0,
        limit: Annotated[
            int | None,
            QueryParameter(ge=1, description="Page size (default 100, or the page limit if lower)"),
        ] = None,
        stream: Annotated[str | None, QueryParameter(description="Only this stream")] = None,
        types: Annotated[
            list[str] | None, QueryParameter(name="type", description="Only these types")
        ] = None,
    ) -> Response[EventPage]:
        """Whole envelopes after a position, in order; `next` (and `Link`) for the next page."""
        page_limit = ledger.settings.page_limit
        size = min(DEFAULT_PAGE, page_limit) if limit is None else limit
        raise_pending()  # every error the parameter hook kept, at once
        found = [limit_error(size, page_limit), *(type_error(name) for name in types or ())]
        errors = [error for error in found if error is not None]
        if errors:
            raise invalid(errors)
        log: EventLog = ledger.log
        # The head first: every event up to it is visible (positions become visible in
        # order), so a short page read after it holds all of them, and a reader that
        # keeps `head` as its checkpoint skips nothing. Read after the page, it could name
        # events committed since, beyond a page that ends with `next: null`.
        head = log.head()
        filtered = stream is not None or bool(types)
        # filtered, the page's last event may be the last that matches: one more row says
        # whether a next page holds anything (else `next` led to an empty page)
        events = log.read(after=after, limit=size + filtered, stream=stream, types=types)
        more = len(events) > size
        events = events[:size]
        if events:
            head = max(head, events[-1].position)
        next_url = None
        headers: dict[str, str] = {}
        if (more if filtered else len(events) == size) and events[-1].position < head:
            query: list[tuple[str, Any]] = [("after", events[-1].position), ("limit", size)]
            if stream is not None:
                query.append(("stream", stream))
            query.extend(("type", t) for t in types or ())
            next_url = f"/v1/events?{urlencode(query)}"
            headers["Link"] = f'<{next_url}>; rel="next"'
        return Response(
            EventPage(events=[event_out(e) for e in events], head=head, next=next_url),
            headers=headers,
        )

    @get(
        "/{event_id:str}",
        operation_id="GetEvent",
        summary="One event with its envelope",
        responses=problem_responses(400, 401, 404, 422, 503),
        sync_to_thread=True,
    )
    def get_event(self, event_id: FromPath[str], ledger: NamedDependency[Ledger]) -> EventOut:
        """The stored event with this id, or 404 (a UUID in upper case is the same id)."""
        event = ledger.log.get(event_id.lower())  # RFC 9562: UUIDs are read in any case
        if event is None:
            raise NotFoundException(detail=f"no event {echoed(event_id)}")
        return event_out(event)
