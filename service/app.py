"""The app factory: every route, plugin, handler and dependency wired in one place."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from typing import Any

import anyio
import structlog
from litestar import Litestar, Request
from litestar.config.compression import CompressionConfig
from litestar.datastructures import State
from litestar.di import Provide
from litestar.openapi import OpenAPIConfig
from litestar.openapi.plugins import JsonRenderPlugin, SwaggerRenderPlugin

from service.auth import require_reader
from service.controllers.audit import AuditController
from service.controllers.capacity import CapacityController
from service.controllers.events import EventsController
from service.controllers.health import HealthController
from service.controllers.organizations import OrganizationsController
from service.controllers.partnerships import PartnershipsController
from service.controllers.streams import StreamsController
from service.controllers.timeline import TimelineController
from service.edge import schema_not_found_problem
from service.fastpost import fast_append_middleware
from service.hits import cached_answers_middleware
from service.ledger import Ledger
from service.logging import configure_logging
from service.metrics import (
    MetricsController,
    RequestMetrics,
    prometheus_config,
    unrouted_counter,
)
from service.middleware import (
    accept_encoding_read,
    allow_header,
    allowed_methods,
    body_deadline,
    head_as_get,
    request_log_middleware,
)
from service.openapi import (
    REQUEST_ID_HEADER,
    WRITE_SECURITY,
    VariadicTuples,
    close_objects,
    components,
    document_headers,
    page_bounds,
    payload_schemas,
    zero_bounds,
)
from service.parameters import STATE_KEY as PARAMETERS_KEY
from service.parameters import KnownParameters, check_parameters
from service.problems import internal_error, problem_details_plugin
from service.settings import Settings
from service.views import COMPRESSED_FROM, provide_page_ask, provide_view_spec

VERSION = "0.1.0"
HANDLER_THREADS = 64
"""Threads for sync handlers (reads that miss the answer cache, the audit) and for appends to
a log that cannot be awaited; an append to SQLite waits in no thread (`Ledger.append_awaited`)."""


def create_app(settings: Settings | None = None, *, configure_logs: bool = True) -> Litestar:
    """A Litestar app serving the ledger the settings name."""
    settings = settings or Settings()
    if configure_logs:
        configure_logging(settings.log_level, settings.log_format)

    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        # Litestar runs sync handlers in the loop's default executor: min(32, CPUs + 4)
        # threads, 6 on two CPUs, which would cap a group commit at 6 appends of a log that
        # cannot be awaited (they wait there): make room for every concurrent request.
        asyncio.get_running_loop().set_default_executor(
            ThreadPoolExecutor(max_workers=HANDLER_THREADS, thread_name_prefix="handler")
        )
        ledger = await anyio.to_thread.run_sync(Ledger, settings)
        app.state.ledger = ledger
        app.state.tokens = ledger.tokens
        structlog.get_logger("service").info(
            "ledger open",
            database=settings.database,
            head=ledger.log.head(),
            projected=ledger.projector.position,
            event_loop=type(asyncio.get_running_loop()).__module__,
        )
        try:
            yield
        finally:
            await anyio.to_thread.run_sync(ledger.close)
            structlog.get_logger("service").info("ledger closed", snapshot=settings.snapshot_file)

    def provide_ledger() -> Ledger:
        """The ledger the lifespan opened (no parameters: nothing to parse per request)."""
        ledger: Ledger = app.state.ledger
        return ledger

    prometheus = prometheus_config()
    known_parameters = KnownParameters()  # a typo in a parameter is a 422, never ignored

    def on_500(request: Request[Any, Any, Any], exc: Exception) -> Any:  # noqa: ANN401 - Litestar's handler type
        return internal_error(request, exc)

    app = Litestar(
        route_handlers=[
            EventsController,
            StreamsController,
            OrganizationsController,
            PartnershipsController,
            CapacityController,
            TimelineController,
            AuditController,
            HealthController,
            MetricsController,
        ],
        dependencies={
            "ledger": Provide(provide_ledger, sync_to_thread=False),
            "spec": Provide(provide_view_spec, sync_to_thread=False),
            "page": Provide(provide_page_ask, sync_to_thread=False),
        },
        guards=[require_reader] if settings.read_token_required else [],
        before_request=check_parameters,
        response_headers=[REQUEST_ID_HEADER],
        lifespan=[lifespan],
        middleware=[prometheus.middleware],
        plugins=[problem_details_plugin(settings.body_limit), VariadicTuples()],
        exception_handlers={Exception: on_500},
        request_max_body_size=settings.body_limit,
        # no stdlib logging set-up of Litestar's own: `configure_logging` routes it (or, in
        # tests, leaves it to pytest)
        logging_config=None,
        compression_config=CompressionConfig(backend="gzip", minimum_size=COMPRESSED_FROM),
        openapi_config=OpenAPIConfig(
            title="partnership-ledger",
            version=VERSION,
            description=(
                "An event-sourced ledger of biopharma partnership and manufacturing-capacity "
                "announcements, with bitemporal views and audit replay."
            ),
            path="/schema",
            use_handler_docstrings=True,
            components=components(),
            security=WRITE_SECURITY if settings.read_token_required else None,
            render_plugins=[JsonRenderPlugin(), SwaggerRenderPlugin()],
        ),
        state=State({"settings": settings, PARAMETERS_KEY: known_parameters}),
        debug=False,
    )
    known_parameters.learn(app)
    document_headers(app)  # Link, ETag and X-Request-ID on every 2xx answer that has them
    close_objects(app)  # what refuses unknown fields says so
    zero_bounds(app)  # the bounds of 0 Litestar drops
    page_bounds(app, settings.page_limit)  # a page's largest size, as this service takes it
    payload_schemas(app)  # an event's `data`: one of the payload types
    # Litestar's `Allow` made whole (HEAD too) on OPTIONS and 405 answers.
    # and `Accept-Encoding` read as HTTP reads it (`gzip;q=0` refuses gzip).
    # and a 404 under /schema/ a problem, not Litestar's HTML page.
    router = allow_header(
        schema_not_found_problem(accept_encoding_read(app.asgi_handler)),
        allowed_methods(app.routes),
    )
    metrics = RequestMetrics(router, prometheus)
    # A valid append is answered without routing; anything else reaches the route
    # (service.fastpost).
    handler = fast_append_middleware(router, lambda: app.state.get("ledger"), metrics)
    if not settings.read_token_required:
        # A GET answered at the head before is sent again without routing (service.hits).
        handler = cached_answers_middleware(handler, lambda: app.state.get("ledger"), metrics)
    # Around the router, not a route: 404s and 405s (no route) get their log line and id too.
    # 404s and 405s (no route) are counted too (service.metrics.unrouted_counter).
    # A body that stops arriving is a 408, not a request held open (service.middleware).
    handler = body_deadline(handler)
    app.asgi_handler = request_log_middleware(head_as_get(handler), unrouted_counter(metrics))
    return app
