"""RFC 9457 problem details: domain errors mapped to HTTP once, here, at the edge."""

from __future__ import annotations

from collections.abc import Mapping
from functools import partial
from typing import Any, Final

import msgspec
import structlog
from litestar import Request, Response
from litestar.exceptions import HTTPException, ValidationException
from litestar.exceptions.http_exceptions import RequestEntityTooLarge
from litestar.openapi import ResponseSpec
from litestar.plugins.problem_details import (
    ProblemDetailsConfig,
    ProblemDetailsException,
    ProblemDetailsPlugin,
)
from litestar.status_codes import HTTP_500_INTERNAL_SERVER_ERROR

from events.errors import (
    ConflictError,
    IdempotencyConflict,
    InvalidEvent,
    LedgerError,
    StoreError,
    TargetConflict,
    VersionConflict,
)
from service.query_rules import merged

PROBLEM_JSON = "application/problem+json"
_TYPE = "https://partnership-ledger.invalid/problems/"
PROBLEM_TYPES = _TYPE
"""Where the problem `type` URIs live (a slug follows)."""


def problem_json(status: int, slug: str, title: str, detail: str) -> bytes:
    """The JSON of a plain problem, for the answers sent without Litestar.

    Those are the 408 of a stalled body, the 500 of an error that escaped Litestar's
    handlers, and the 400 of a request that is not HTTP at all (`service.http_protocol`).
    """
    problem = {"status": status, "type": f"{PROBLEM_TYPES}{slug}", "title": title, "detail": detail}
    return msgspec.json.encode(problem)


class FieldError(msgspec.Struct, kw_only=True):
    """One bad field of a request: its JSON path (`$.events[0].stream`, `query.limit`)."""

    path: str
    message: str


class ProblemBody(msgspec.Struct, kw_only=True):
    """An RFC 9457 problem as the API answers it; for the OpenAPI doc.

    `errors` on a 422 only; on a 409 `version-conflict`, `stream`, `expected_version` and
    `current_version`; on a 409 `event-id-conflict`, `event_id`.
    """

    type: str
    title: str
    status: int
    detail: str
    errors: list[FieldError] | None = None
    stream: str | None = None
    expected_version: int | None = None
    current_version: int | None = None
    event_id: str | None = None


_WHEN = {
    400: "The request cannot be read: a body that is not JSON",
    401: "No bearer token, or an unknown or revoked one",
    403: "The token lacks the scope this needs",
    404: "Nothing by that id",
    408: "The body stopped arriving (nothing for 10 s); nothing of it was stored",
    409: (
        "`type` …/version-conflict (a stream is not at the expected version: `stream`, "
        "`expected_version`, `current_version`), …/event-id-conflict (an `event_id` stored "
        "with other content), or …/target-conflict (a correction or retraction of an "
        "unknown, wrong-kind or retracted event)"
    ),
    413: "The body or the batch is over its limit",
    415: "The body is not application/json",
    422: (
        "A bad field or parameter, or a parameter the route does not take; "
        "`errors` names the JSON path of each"
    ),
    500: "The server failed; the error is logged, not shown",
    503: "The store does not answer, or the service is not ready",
}


ECHOED: Final = 120
"""The most of a client's value (an id in a path, say) a problem's detail repeats."""


def echoed(value: str) -> str:
    """`value` as a detail repeats it: cut to `ECHOED` characters, so the answer stays small."""
    return value if len(value) <= ECHOED else value[:ECHOED] + "…"


def problem_responses(*statuses: int) -> dict[int, ResponseSpec]:
    """OpenAPI `responses` declaring these statuses (and 500) as problem details."""
    return {
        status: ResponseSpec(
            data_container=ProblemBody,
            media_type=PROBLEM_JSON,
            description=_WHEN[status],
            generate_examples=False,
        )
        for status in sorted({500, *statuses})
    }


class Problem(ProblemDetailsException):
    """A problem with a stable `type` slug (its URI lives under the project's problem namespace)."""

    def __init__(  # noqa: PLR0913 - the fields of RFC 9457
        self,
        status: int,
        slug: str,
        title: str,
        detail: str,
        extra: Mapping[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(
            status_code=status,
            type_=_TYPE + slug,
            title=title,
            detail=detail,
            extra=dict(extra) if extra else None,
            headers=headers,
        )


def invalid(errors: list[InvalidEvent], detail: str | None = None) -> Problem:
    """A 422 naming the JSON path of every bad field."""
    items = [{"path": e.path, "message": e.message} for e in errors]
    return Problem(
        422,
        "validation",
        "Invalid request",
        detail or "; ".join(f"{e.path}: {e.message}" for e in errors),
        {"errors": items},
    )


def _from_ledger(exc: LedgerError) -> ProblemDetailsException:
    if isinstance(exc, InvalidEvent):
        # the log names a batch's event by its index (`$[2].data`); the body holds the
        # batch under `events`
        if exc.path.startswith("$["):
            exc = InvalidEvent(exc.message, "$.events" + exc.path.removeprefix("$"))
        return invalid([exc])
    if isinstance(exc, ConflictError):
        return _conflict(exc)
    if isinstance(exc, StoreError):
        return Problem(503, "store-unavailable", "Store unavailable", str(exc))
    return Problem(400, "bad-request", "Bad request", str(exc))


def _conflict(exc: ConflictError) -> ProblemDetailsException:
    """A 409 whose `type` tells a program what to do, with the members it needs.

    `version-conflict` (reload the stream, retry on its `current_version`),
    `event-id-conflict` (an `event_id` stored with other content: a client bug, no retry
    helps), `target-conflict` (a correction or retraction the log cannot take).
    """
    if isinstance(exc, VersionConflict):
        members = {
            "stream": exc.stream,
            "expected_version": exc.expected,
            "current_version": exc.actual,
        }
        return Problem(409, "version-conflict", "Version conflict", str(exc), members)
    if isinstance(exc, IdempotencyConflict):
        members = {"event_id": exc.event_id}
        return Problem(409, "event-id-conflict", "Event id conflict", str(exc), members)
    if isinstance(exc, TargetConflict):
        return Problem(409, "target-conflict", "Target conflict", str(exc))
    return Problem(409, "conflict", "Conflict", str(exc))


def _no_body(exc: ValidationException) -> bool:
    """Whether Litestar refused a request for having no body at all.

    It says so as a body error keyed `data` (the handler's body parameter) whose message is
    that name quoted: the `KeyError` of the missing body.
    """
    items = exc.extra if isinstance(exc.extra, list) else []
    return len(items) == 1 and isinstance(items[0], Mapping) and items[0].get("message") == "'data'"


_PLAINER = {"Invalid RFC3339 encoded date": "expected a date, YYYY-MM-DD"}
"""Litestar's (msgspec's) wording of a parameter's error, where it leaves out what to send."""


def _from_validation(exc: ValidationException) -> ProblemDetailsException:
    if _no_body(exc):  # as for a body that is not JSON: a 400, said plainly
        return Problem(400, "bad-request", "Bad request", "the request has no body: send JSON")
    errors: list[dict[str, Any]] = []
    if isinstance(exc.extra, list):
        for item in exc.extra:
            if isinstance(item, Mapping):
                key = item.get("key")
                source = item.get("source")
                source = getattr(source, "value", source)  # Litestar's ParamType enum
                if source == "body":  # the JSON path in the body, as the domain's errors say it
                    path = "$" if key in {None, "data"} else f"$.{key}"
                else:
                    path = f"{source}.{key}" if source and key else str(key or "$")
                message = str(item.get("message", ""))
                errors.append({"path": path, "message": _PLAINER.get(message, message)})
    errors = merged(errors)  # and what the raw parameters break beyond their types
    detail = "; ".join(f"{e['path']}: {e['message']}" for e in errors) or str(exc.detail)
    if exc.status_code == 400 and errors:
        return Problem(422, "validation", "Invalid request", detail, {"errors": errors})
    return Problem(exc.status_code, "validation", "Invalid request", detail, {"errors": errors})


CLIENT_CLOSED: Final = 499
"""nginx's status for a client that went away before its request was read: not a 5xx."""
_DISCONNECTED: Final = "client disconnected prematurely"  # Litestar's words, reading a body


def _from_http(exc: HTTPException, body_limit: int) -> ProblemDetailsException:
    if exc.status_code == HTTP_500_INTERNAL_SERVER_ERROR and exc.detail == _DISCONNECTED:
        # nobody reads this answer; the log line and the metrics must not count a 500
        detail = "the client went away before its request's body was read"
        return Problem(CLIENT_CLOSED, "client-closed-request", "Client closed request", detail)
    title = {
        400: "Bad request",
        401: "Unauthorized",
        403: "Forbidden",
        404: "Not found",
        405: "Method not allowed",
        408: "Request timeout",
        413: "Request too large",
        415: "Unsupported media type",
        429: "Too many requests",
        503: "Service unavailable",
    }.get(exc.status_code, "Error")
    slug = title.lower().replace(" ", "-")
    detail = str(exc.detail)
    if isinstance(exc, RequestEntityTooLarge):  # Litestar's, for `request_max_body_size`
        detail = f"the request body is over the limit of {body_limit:,} bytes"
    return Problem(exc.status_code, slug, title, detail, headers=exc.headers)


def internal_error(request: Request[Any, Any, Any], exc: Exception) -> Response[dict[str, Any]]:
    """A 500 with no traceback in the answer; the traceback goes to the log only."""
    structlog.get_logger().error(
        "unhandled error", path=request.url.path, method=request.method, exc_info=exc
    )
    problem = Problem(
        HTTP_500_INTERNAL_SERVER_ERROR,
        "internal",
        "Internal server error",
        "the server failed to answer; the error is logged",
    )
    return problem.to_response(request)


def problem_details_plugin(body_limit: int) -> ProblemDetailsPlugin:
    """The plugin with every mapping of the service (`body_limit`: to name it in a 413)."""
    return ProblemDetailsPlugin(
        ProblemDetailsConfig(
            enable_for_all_http_exceptions=True,
            exception_to_problem_detail_map={
                LedgerError: _from_ledger,
                ValidationException: _from_validation,
                HTTPException: partial(_from_http, body_limit=body_limit),
            },
        )
    )
