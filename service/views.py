"""Projection answers: the time-travel parameters, the `view` envelope, ETags and a byte cache."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import date, datetime
from typing import Annotated, Any, Final, NamedTuple
from urllib.parse import parse_qsl, urlencode

import anyio
import msgspec
from litestar import Litestar, Request, Response
from litestar.background_tasks import BackgroundTask, BackgroundTasks
from litestar.datastructures import Cookie
from litestar.di import NamedDependency
from litestar.enums import MediaType
from litestar.exceptions import NotFoundException
from litestar.openapi import ResponseSpec
from litestar.openapi.spec import OpenAPIFormat
from litestar.params import QueryParameter
from litestar.response.base import ASGIResponse
from litestar.status_codes import HTTP_200_OK, HTTP_304_NOT_MODIFIED
from litestar.types import Receive, Scope, Send, TypeEncodersMap

from events.dates import parse_moment
from events.errors import InvalidEvent
from projections import Projections, ViewSpec
from projections.paging import CursorKey, page_of, parse_cursor
from service.ledger import CachedAnswer, Ledger
from service.parameters import check_parameters, raise_pending
from service.problems import invalid, problem_responses
from service.query_rules import (
    at_position_error,
    known_at_error,
    limit_error,
    pending,
    with_pending,
)
from service.schemas import View, ViewAnswer, ViewPage

AsOf = Annotated[
    date | None,
    QueryParameter(description="Only what had certainly happened by this date (YYYY-MM-DD)"),
]
KnownAt = Annotated[
    str | None,
    QueryParameter(
        description="Only what the ledger knew at this moment (RFC 3339 with offset; digits"
        " past the microsecond are cut)",
        format=OpenAPIFormat.DATE_TIME,
        max_length=64,
    ),
]
AtPosition = Annotated[
    int | None,
    QueryParameter(
        ge=0,
        description="Only the events up to this log position",
        schema_extra={"minimum": 0},  # Litestar leaves out a bound of 0
    ),
]
Limit = Annotated[
    int | None,
    QueryParameter(
        ge=1,
        description="At most this many entries per page; by default, and at most, the page"
        " limit (1000 unless configured). A list longer than a page ends with `next`.",
    ),
]
After = Annotated[
    str | None,
    QueryParameter(
        max_length=512,
        description="Start after this cursor: the `next` link of the page before gives it",
    ),
]


class PageAsk(NamedTuple):
    """What a list request asks of paging: a page of `limit` entries, after a cursor or not."""

    limit: int
    after: str | None


_ENCODER = msgspec.json.Encoder(decimal_format="string")

COMPRESSED_FROM: Final = 4096
"""Bodies from this size on are gzip-compressed (when asked for) by Litestar's middleware:
`service.hits` leaves them to Litestar, and a 304 of one says `Vary: Accept-Encoding`."""


def typed_answer(data: Any, name: str, *, pages: bool) -> type[msgspec.Struct]:  # noqa: ANN401 - a type
    """The answer envelope with its `data` typed, for the document: `{name}Answer`/`Page`.

    The answers themselves are encoded once from the projections (`EncodedAnswer`); this
    only tells a client what `data` holds (and lets schemathesis check it).
    """
    base = ViewPage if pages else ViewAnswer
    fields: list[tuple[str, Any]] = [("data", list[data] if pages else data)]
    answer: type[msgspec.Struct] = msgspec.defstruct(
        f"{name}{'Page' if pages else 'Answer'}", fields, bases=(base,), kw_only=True
    )
    answer.__doc__ = base.__doc__
    return answer


def view_responses(
    *statuses: int,
    data: Any,  # noqa: ANN401 - a type
    name: str,
    pages: bool = False,
) -> dict[int, ResponseSpec]:
    """OpenAPI `responses` of a projection route: the view envelope, 304 and its problems.

    `data`: the type of the route's data (of each entry, with `pages`); `name` names it.
    `pages`: a list route, whose answer is one page of the list (`ViewPage`).
    """
    return {
        200: ResponseSpec(
            typed_answer(data, name, pages=pages),
            generate_examples=False,
            description="The view it was computed at, and the data"
            + (" (one page of it, with `next`: null on the last page)" if pages else ""),
        ),
        304: ResponseSpec(
            None,
            description="Not modified: the `If-None-Match` ETag still holds",
            generate_examples=False,
        ),
        **problem_responses(400, 422, *statuses),
    }


def view_spec(
    ledger: Ledger, as_of: date | None, known_at: str | None, at_position: int | None
) -> ViewSpec:
    """Validate the time-travel parameters (422 naming each bad one)."""
    errors = []
    moment: datetime | None = None
    if known_at is not None:
        error = known_at_error(known_at)
        if error is None:
            moment = parse_moment(known_at)
        else:
            errors.append(error)
    if at_position is not None:
        error = at_position_error(at_position, ledger.log.head())
        if error is not None:
            errors.append(error)
    if errors and not pending():  # else the route names them all (`raise_pending`)
        raise invalid(errors)
    return ViewSpec(as_of=as_of, known_at=moment, at_position=None if errors else at_position)


def provide_view_spec(
    ledger: NamedDependency[Ledger],
    as_of: AsOf = None,
    known_at: KnownAt = None,
    at_position: AtPosition = None,
) -> ViewSpec:
    """The `spec` dependency of every projection route: its three time-travel parameters."""
    return view_spec(ledger, as_of, known_at, at_position)


def provide_page_ask(
    ledger: NamedDependency[Ledger], limit: Limit = None, after: After = None
) -> PageAsk:
    """The `page` dependency of the list routes: `limit` within the page limit (else 422).

    Without `limit`, a page is the page limit: no answer is larger than the limit allows.
    """
    page_limit = ledger.settings.page_limit
    error = None if limit is None else limit_error(limit, page_limit)
    if error is not None:
        if not pending():  # else the route names them all (`raise_pending`)
            raise invalid([error])
        limit = page_limit
    return PageAsk(page_limit if limit is None else limit, after)


def paging(name: str, ask: PageAsk) -> Paging:
    """The page a list request asks for, its cursor parsed.

    A 422 names `after` if it does not parse, with every other error the hook kept.
    """
    try:
        after = None if ask.after is None else parse_cursor(name, ask.after)
    except ValueError as exc:
        raise invalid(with_pending([InvalidEvent(str(exc), "query.after")])) from None
    raise_pending()
    return Paging(name, after, ask.limit)


async def answer(  # noqa: PLR0913 - the request, the view, how to make its data, a page
    request: Request[Any, Any, Any],
    ledger: Ledger,
    spec: ViewSpec,
    projection: str,
    make: Callable[[Projections], Any],
    missing: str | None = None,
    page: Paging | None = None,
) -> Response[Any]:
    """The `{"view", "data"}` answer with a weak ETag; 304 on a matching `If-None-Match`.

    `make` returning None means the thing asked for does not exist: 404 with `missing`.
    With `page`, `make` gives a whole list and the answer holds one page of it, with `next`
    (the URL of the following page, also a `Link` header) while entries remain.
    An answer is a function of the URL and the log position it is computed at, so it is
    cached, encoded, by both: a view at an unchanged position costs one read of the head
    (an append by any process moves it) and no fold or encoding. Only a miss goes to a
    worker thread, where the projections catch up and the answer is encoded once.
    """
    raise_pending()  # first: the route's parameters, every error kept for them
    scope = request.scope
    url = (scope["path"], scope["query_string"])
    upto = spec.at_position if spec.at_position is not None else ledger.log.head()
    cached = ledger.answers.get((*url, upto))
    if cached is None:
        made = _Made(url, scope["path_template"], projection, make, missing, page)
        cached = await anyio.to_thread.run_sync(_compute, ledger, spec, upto, made)
    return _respond(request, cached)


async def cached_answer(request: Request[Any, Any, Any]) -> Response[Any] | None:
    """`before_request` of the projection routes: the answer at the head, if already encoded.

    A hit skips parsing the parameters and calling the handler: the same URL was parsed and
    answered at this very position before. A miss checks the parameters' names
    (`service.parameters`), as the app's own hook would. A miss (and a view pinned by `at_position`,
    cached under that position) goes on to the handler, which computes and caches it.
    """
    scope = request.scope
    if scope["method"] != "GET":  # an OPTIONS of the same URL is not its answer
        await check_parameters(request)
        return None
    ledger: Ledger = request.app.state.ledger
    cached = ledger.answers.get((scope["path"], scope["query_string"], ledger.log.head()))
    if cached is None:
        await check_parameters(request)  # the app's hook, which this one stands in for
        return None
    return _respond(request, cached)


def not_modified(headers: Iterable[tuple[bytes, bytes]], etag: str) -> bool:
    """Whether an `If-None-Match` header among the request's ASGI `headers` matches `etag`.

    By RFC 9110's weak comparison (`W/"x"` matches `"x"`), and `*` matches any answer.
    """
    opaque = etag.removeprefix("W/")
    for name, value in headers:
        if name == b"if-none-match":
            for given in value.decode("latin-1").split(","):
                tag = given.strip()
                if tag == "*" or tag.removeprefix("W/") == opaque:
                    return True
    return False


def _respond(request: Request[Any, Any, Any], cached: CachedAnswer) -> Response[Any]:
    """200 with the encoded answer, or 304 if an `If-None-Match` ETag is this one."""
    if not_modified(request.scope["headers"], cached.etag):
        # RFC 9110 15.4.5: a 304 has the `Vary` its 200 would have (a compressed one does)
        varies = len(cached.body) >= COMPRESSED_FROM
        return EncodedAnswer(cached.etag, b"", HTTP_304_NOT_MODIFIED, varies=varies)
    return EncodedAnswer(cached.etag, cached.body, link=cached.link)


class EncodedAnswer(Response[bytes]):
    """An answer encoded once: sent as it is, without Litestar rebuilding its headers.

    The same messages Litestar's `Response` would send (ETag, Cache-Control, then the type
    and length but on a 304), at a fraction of the cost; anything this does not cover (a
    cookie, a header or a background task from a layer, a HEAD request) takes Litestar's
    own path.
    """

    def __init__(
        self,
        etag: str,
        body: bytes,
        status: int = HTTP_200_OK,
        link: str | None = None,
        *,
        varies: bool = False,
    ) -> None:
        headers = {"ETag": etag, "Cache-Control": "no-cache"}
        if link is not None:
            headers["Link"] = f'<{link}>; rel="next"'
        if varies:
            headers["Vary"] = "Accept-Encoding"
        super().__init__(body, status_code=status, media_type="application/json", headers=headers)
        self.etag = etag
        self.body = body
        self.status = status
        self.link = link
        self.varies = varies

    def to_asgi_response(  # noqa: PLR0913 - Litestar's signature
        self,
        app: Litestar | None,
        request: Request[Any, Any, Any],
        *,
        background: BackgroundTask | BackgroundTasks | None = None,
        cookies: Iterable[Cookie] | None = None,
        encoded_headers: Iterable[tuple[bytes, bytes]] | None = None,
        headers: dict[str, str] | None = None,
        is_head_response: bool = False,
        media_type: MediaType | str | None = None,
        status_code: int | None = None,
        type_encoders: TypeEncodersMap | None = None,
    ) -> ASGIResponse:
        """The two messages, or Litestar's `ASGIResponse` when a layer adds anything."""
        plain = not (background or cookies or encoded_headers or headers or is_head_response)
        if plain and not (self.background or self.cookies) and request.method != "HEAD":
            return _Sent(self.status, self.etag, self.body, self.link, varies=self.varies)
        return super().to_asgi_response(
            app,
            request,
            background=background,
            cookies=cookies,
            encoded_headers=encoded_headers,
            headers=headers,
            is_head_response=is_head_response,
            media_type=media_type,
            status_code=status_code,
            type_encoders=type_encoders,
        )


async def send_encoded(  # noqa: PLR0913 - the answer's parts
    send: Send,
    status: int,
    etag: str,
    body: bytes,
    link: str | None = None,
    *,
    varies: bool = False,
) -> None:
    """Send an encoded answer (no body on a 304), with the headers Litestar would send.

    `link` is the next page's URL, sent as a `Link` header with the page (not on a 304);
    `varies`: the answer depends on `Accept-Encoding` (a 304 of a compressible answer).
    """
    headers = [(b"etag", etag.encode()), (b"cache-control", b"no-cache")]
    if varies:
        headers.append((b"vary", b"Accept-Encoding"))
    if status != HTTP_304_NOT_MODIFIED:
        if link is not None:
            headers.append((b"link", f'<{link}>; rel="next"'.encode("latin-1")))
        headers.append((b"content-type", b"application/json"))
        headers.append((b"content-length", str(len(body)).encode()))
    else:
        body = b""
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body, "more_body": False})


class _Sent(ASGIResponse):
    """The start and body messages of an `EncodedAnswer`."""

    __slots__ = ("_etag", "_link", "_varies")

    def __init__(
        self, status: int, etag: str, body: bytes, link: str | None, *, varies: bool
    ) -> None:
        self.status_code = status
        self._etag = etag
        self._link = link
        self._varies = varies
        self.body = body

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:  # noqa: ARG002 - ASGI's
        """Send the answer."""
        await send_encoded(
            send, self.status_code, self._etag, self.body, self._link, varies=self._varies
        )


class _Made(NamedTuple):
    """What `_compute` needs of the request and the route: where, and how to make the data."""

    url: tuple[str, bytes]
    route: str
    projection: str
    make: Callable[[Projections], Any]
    missing: str | None
    page: Paging | None


class Paging(NamedTuple):
    """One page of the list `name` (see `projections.paging`): after a key, at most `limit`."""

    name: str
    after: CursorKey | None
    limit: int


def _next_url(url: tuple[str, bytes], cursor: str) -> str:
    """The URL of the next page: the same path and parameters, `after` set to the cursor."""
    path, query = url
    # latin-1 both ways: the other parameters' bytes come back as they were sent
    pairs = parse_qsl(query.decode("latin-1"), keep_blank_values=True, encoding="latin-1")
    kept = [(k, v) for k, v in pairs if k != "after"]
    return f"{path}?{urlencode([*kept, ('after', cursor)], encoding='latin-1')}"


def _compute(ledger: Ledger, spec: ViewSpec, upto: int, made: _Made) -> CachedAnswer:
    """Fold or build the view at `upto`, encode the answer, cache it under its position."""
    proj = ledger.projector.view(spec, head=upto)
    digest = proj.digest(made.projection)
    # weak: the same tag for the answer gzip-compressed or not (RFC 9110 8.8.3: a strong one
    # would have to differ by content coding); If-None-Match compares weakly anyway
    etag = f'W/"{proj.position}-{digest[:32]}"'
    data = made.make(proj)
    if data is None:
        raise NotFoundException(detail=made.missing or "not found")
    view = View(
        position=proj.position,
        as_of=spec.as_of,
        known_at=spec.known_at,
        at_position=spec.at_position,
        digest=digest,
    )
    if made.page is None:
        answer = CachedAnswer(etag, _ENCODER.encode(ViewAnswer(view=view, data=data)), made.route)
    else:
        page = page_of(made.page.name, data, made.page.after, made.page.limit)
        link = None if page.next_cursor is None else _next_url(made.url, page.next_cursor)
        body = _ENCODER.encode(ViewPage(view=view, data=page.entries, next=link))
        answer = CachedAnswer(etag, body, made.route, link)
    # The live view folds every committed event: by now perhaps past `upto`, and its own.
    at = proj.position if spec == ViewSpec() else upto
    ledger.answers.put((*made.url, at), answer)
    return answer
