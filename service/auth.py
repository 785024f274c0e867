"""Bearer tokens on writes (and on reads when configured): 401 without, 403 with the wrong scope."""

from __future__ import annotations

from typing import Any

from litestar.connection import ASGIConnection, Request
from litestar.exceptions import NotAuthorizedException, PermissionDeniedException
from litestar.handlers.base import BaseRouteHandler

from service.parameters import check_parameters
from service.tokens import TokenInfo, TokenStore

_CHALLENGE = {"WWW-Authenticate": 'Bearer realm="ledger"'}
_INVALID = {"WWW-Authenticate": 'Bearer realm="ledger", error="invalid_token"'}  # RFC 6750 3.1
MAX_HEADER = 128
"""The longest `Authorization` value looked at: a token is 59 characters; longer is none."""


def bearer_token(header: str) -> str | None:
    """The token of an `Authorization` header's value, if it is a bearer token.

    A value longer than any token (`MAX_HEADER`) is not one: it is neither stripped nor
    hashed, whatever its size.
    """
    if len(header) > MAX_HEADER:
        return None
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


def bearer(connection: ASGIConnection[Any, Any, Any, Any]) -> str | None:
    """The bearer token of a request, if it has one."""
    return bearer_token(connection.headers.get("authorization", ""))


def grants(info: TokenInfo, needed: str) -> bool:
    """Whether a token may do what needs scope `needed` (admin has every scope)."""
    return needed in info.scopes or "admin" in info.scopes


def _tokens(connection: ASGIConnection[Any, Any, Any, Any]) -> TokenStore:
    store: TokenStore = connection.app.state.tokens
    return store


def authenticate(connection: ASGIConnection[Any, Any, Any, Any]) -> TokenInfo:
    """The token's owner, or 401; kept as the request's `auth` (see `principal`)."""
    header = connection.headers.get("authorization", "")
    token = bearer_token(header)
    if token is None:
        if header:
            detail = "the Authorization header is not a bearer token of this ledger"
            raise NotAuthorizedException(detail=detail, headers=_INVALID)
        raise NotAuthorizedException(detail="a bearer token is required", headers=_CHALLENGE)
    info = _tokens(connection).check(token)
    if info is None:
        raise NotAuthorizedException(detail="the token is unknown or revoked", headers=_INVALID)
    connection.scope["auth"] = info
    return info


async def require_scope(request: Request[Any, Any, Any]) -> None:
    """`before_request` of a write: its handler's `opt["scope"]` must be among the token's.

    401 without a live token, 403 without the scope (admin has every scope). A hook, not a
    guard: it runs at the same point (before the body is read or validated), but Litestar
    copies the route handler for every guard call, a cost each append would pay. Async, so
    it runs on the event loop; the token lookup is one indexed SQLite read.

    Unlike guards, `before_request` hooks do not stack: the one nearest the handler wins.
    A route that sets a hook of its own must call this one first; a route without this
    hook never reaches `principal()`'s token (it fails closed, with a 500, writing nothing).
    """
    needed = request.route_handler.opt["scope"]
    info = authenticate(request)
    if not grants(info, needed):
        challenge = f'Bearer realm="ledger", error="insufficient_scope", scope="{needed}"'
        raise PermissionDeniedException(
            detail=f"this needs a token with scope {needed!r}",
            headers={"WWW-Authenticate": challenge},
        )
    await check_parameters(request)  # the app's hook, which this one stands in for


async def require_reader(
    connection: ASGIConnection[Any, Any, Any, Any], handler: BaseRouteHandler
) -> None:
    """App guard with `read_token_required`: reads of `/v1` need a token too.

    Health probes, `/metrics` and the OpenAPI document stay open (probes and scrapers carry
    no token); a write is checked by its own `require_scope`. Decided by the path Litestar
    routed (the prefix stripped), not the URL: behind a path prefix (an ASGI `root_path`)
    the URL starts with the prefix.
    """
    if "scope" not in handler.opt and (connection.scope["path"] + "/").startswith("/v1/"):
        authenticate(connection)


def principal(connection: ASGIConnection[Any, Any, Any, Any]) -> TokenInfo:
    """The authenticated token of a request that passed `require_scope`."""
    info: TokenInfo = connection.scope["auth"]
    return info
