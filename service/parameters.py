"""Query parameters a route does not take are refused (422), never silently ignored.

A typo in a time-travel parameter (`?asof=2023-01-01`, `?knownat=`) would otherwise answer
the current view as if it were the past one asked for: the quietest wrong answer an
analyst can get. Each `/v1` route takes the query parameters its handler and its
dependencies declare (Litestar's kwargs model of the route, read once when the app is
made); any other name is a 422 naming `query.<name>`, with the closest known name when
there is one. Routes outside `/v1` (health, metrics, the OpenAPI document) and OPTIONS
(a CORS preflight carries the URL's query) are left alone: probes and scrapers may add
their own parameters.

The check is a `before_request` hook (`check_parameters`), not a guard: Litestar copies
the route handler for every guard call. The app sets it; a route with a hook of its own
calls it, after its token check (a write without a token is a 401 first) or, for a
projection, on a miss of the answer cache (a cached URL passed it before).
"""

from __future__ import annotations

from difflib import get_close_matches
from typing import Any

from litestar import Litestar, Request
from litestar.handlers import HTTPRouteHandler
from litestar.routes import HTTPRoute

from events.errors import InvalidEvent
from service.problems import echoed, invalid
from service.query_rules import forget, keep_rule_errors, pending, with_pending

CHECKED_PREFIX = "/v1/"
LISTED = 20
"""The most unknown parameter names one answer lists (the rest are counted)."""
STATE_KEY = "known_parameters"
"""Where the app keeps its `KnownParameters`."""


class KnownParameters:
    """The query parameters each `/v1` route handler takes (in the app's state), and the check."""

    def __init__(self) -> None:
        # by the handler's function: Litestar hands a guard a copy of the handler it routed to
        self._known: dict[object, tuple[str, ...]] = {}
        self._integers: dict[object, frozenset[str]] = {}

    def learn(self, app: Litestar) -> None:
        """Read each `/v1` route's query parameters off the app's routes (once, when made)."""
        for route in app.routes:
            if isinstance(route, HTTPRoute) and (route.path + "/").startswith(CHECKED_PREFIX):
                for handler, kwargs_model in route.route_handler_map.values():
                    if handler.http_methods == {"OPTIONS"}:
                        continue
                    names = {p.field_alias for p in kwargs_model.expected_query_params}
                    self._known[handler.fn] = tuple(sorted(names))
                    self._integers[handler.fn] = frozenset(names & _integer_parameters(handler))

    def check(self, request: Request[Any, Any, Any]) -> None:
        """Refuse (422) a request naming a query parameter its route does not take.

        Also keeps what the route's parameters break of `service.query_rules`, for the
        422 that names every bad parameter.
        """
        known = self._known.get(request.route_handler.fn) if request.scope["query_string"] else None
        if known is None:
            forget()
            return
        integers = self._integers[request.route_handler.fn]
        keep_rule_errors(request.query_params, known, request.app.state, integers)
        unknown = sorted(set(request.query_params) - set(known))
        if unknown:
            errors = [
                InvalidEvent(_message(name, known), f"query.{echoed(name)}")
                for name in unknown[:LISTED]
            ]
            if len(unknown) > LISTED:  # the answer stays small, whatever the query's size
                more = len(unknown) - LISTED
                errors.append(InvalidEvent(f"and {more} more this route does not take", "query"))
            raise invalid(with_pending(errors))


def _integer_parameters(handler: HTTPRouteHandler) -> set[str]:
    """The names typed `int` (or `int | None`) in the handler's signature and its dependencies'."""
    signatures = [handler.parsed_fn_signature]
    signatures += [
        provider.parsed_fn_signature
        for provider in handler.resolve_dependencies().values()
        if getattr(provider, "parsed_fn_signature", None) is not None
    ]
    return {
        name
        for signature in signatures
        for name, field in signature.parameters.items()
        if field.is_subclass_of(int)
        or any(inner.annotation is int for inner in field.inner_types or ())
    }


def raise_pending() -> None:
    """422 naming every rule error the hook kept (`service.query_rules`), if any.

    Each route calls it before its own checks, once Litestar has parsed every parameter
    (a type error would have been a 422 listing them already): the dependencies that
    check the same rules let them pass, whatever order Litestar resolved them in.
    """
    errors = pending()
    if errors:
        raise invalid(list(errors))


async def check_parameters(request: Request[Any, Any, Any]) -> None:
    """`before_request`: 422 for a query parameter the route does not take (see module)."""
    known: KnownParameters | None = request.app.state.get(STATE_KEY)
    if known is not None:
        known.check(request)


def _message(name: str, known: tuple[str, ...]) -> str:
    """Why `name` is refused, with the name probably meant (or what the route takes)."""
    if not known:
        return "is not a parameter of this route (it takes none)"
    close = get_close_matches(name.lower().replace("-", "_"), known, n=1, cutoff=0.6)
    if close:
        return f"is not a parameter of this route (did you mean {close[0]}?)"
    return "is not a parameter of this route (it takes " + ", ".join(known) + ")"
