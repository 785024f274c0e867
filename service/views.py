"""Projection answers: the time-travel parameters, the `view` envelope, ETags and a byte cache."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime
from typing import Annotated, Any

import msgspec
from litestar import Request, Response
from litestar.exceptions import NotFoundException
from litestar.openapi import ResponseSpec
from litestar.params import QueryParameter
from litestar.status_codes import HTTP_304_NOT_MODIFIED

from events.errors import InvalidEvent
from projections import Projections, ViewSpec
from service.ledger import Ledger
from service.problems import invalid, problem_responses
from service.schemas import View, ViewAnswer

AsOf = Annotated[
    date | None,
    QueryParameter(description="Only what had certainly happened by this date (YYYY-MM-DD)"),
]
KnownAt = Annotated[
    datetime | None,
    QueryParameter(description="Only what the ledger knew at this moment (RFC 3339 with offset)"),
]
AtPosition = Annotated[
    int | None, QueryParameter(ge=0, description="Only the events up to this log position")
]

_ENCODER = msgspec.json.Encoder(decimal_format="string")


def view_responses(*statuses: int) -> dict[int, ResponseSpec]:
    """OpenAPI `responses` of a projection route: the view envelope, 304 and its problems."""
    return {
        200: ResponseSpec(ViewAnswer, description="The view it was computed at, and the data"),
        304: ResponseSpec(None, description="Not modified: the `If-None-Match` ETag still holds"),
        **problem_responses(400, 422, *statuses),
    }


def view_spec(
    ledger: Ledger, as_of: date | None, known_at: datetime | None, at_position: int | None
) -> ViewSpec:
    """Validate the time-travel parameters (422 naming each bad one)."""
    errors = []
    if known_at is not None and known_at.utcoffset() is None:
        errors.append(
            InvalidEvent(
                "must be an RFC 3339 timestamp with an offset (Z for UTC)", "query.known_at"
            )
        )
    if at_position is not None and at_position > ledger.log.head():
        errors.append(InvalidEvent(f"is past the head ({ledger.log.head()})", "query.at_position"))
    if errors:
        raise invalid(errors)
    return ViewSpec(
        as_of=as_of,
        known_at=known_at.astimezone(UTC) if known_at is not None else None,
        at_position=at_position,
    )


def answer(  # noqa: PLR0913 - the request, the view and how to make its data
    request: Request[Any, Any, Any],
    ledger: Ledger,
    spec: ViewSpec,
    projection: str,
    make: Callable[[Projections], Any],
    missing: str | None = None,
) -> Response[Any]:
    """The `{"view", "data"}` answer with a strong ETag; 304 on a matching `If-None-Match`.

    `make` returning None means the thing asked for does not exist: 404 with `missing`.
    The encoded body is cached by URL and ETag, so an unchanged view is encoded once.
    """
    proj = ledger.projector.view(spec)
    digest = proj.digest(projection)
    etag = f'"{proj.position}-{digest[:32]}"'
    headers = {"ETag": etag, "Cache-Control": "no-cache"}
    key = (str(request.url), etag)
    body = ledger.answers.get(key)
    if body is None:
        data = make(proj)
        if data is None:
            raise NotFoundException(detail=missing or "not found")
        view = View(
            position=proj.position,
            as_of=spec.as_of,
            known_at=spec.known_at,
            at_position=spec.at_position,
            digest=digest,
        )
        body = _ENCODER.encode(ViewAnswer(view=view, data=data))
        ledger.answers.put(key, body)
    if etag in {t.strip() for t in request.headers.get("if-none-match", "").split(",")}:
        return Response(content=b"", status_code=HTTP_304_NOT_MODIFIED, headers=headers)
    return Response(content=body, media_type="application/json", headers=headers)
