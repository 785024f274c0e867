"""`/health/live` and `/health/ready`: for orchestrators and load balancers."""

from __future__ import annotations

from litestar import Controller, get
from litestar.di import NamedDependency

from service.ledger import Ledger
from service.problems import Problem, problem_responses
from service.schemas import Health


def _not_ready(detail: str, head: int | None = None, projected: int | None = None) -> Problem:
    extra = {"head": head, "projected": projected} if head is not None else None
    return Problem(503, "not-ready", "Service unavailable", detail, extra)


WARM_WAIT = 1.0
"""Seconds a readiness probe waits for the start's answers before it answers 503."""


class HealthController(Controller):
    """Liveness and readiness; open even when reads need a token (probes carry none)."""

    path = "/health"
    tags = ["operations"]  # noqa: RUF012 - Litestar's declared class attribute

    @get(
        "/live",
        operation_id="Live",
        summary="The process answers",
        responses=problem_responses(),
        security=[{}],  # open (an empty requirement), even where the rest asks a token
    )
    async def live(self) -> Health:
        """Always 200 while the process serves requests."""
        return Health(status="ok")

    @get(
        "/ready",
        operation_id="Ready",
        summary="The store is open, the projections caught up and their answers derived",
        responses=problem_responses(503),
        security=[{}],
        sync_to_thread=True,
    )
    def ready(self, ledger: NamedDependency[Ledger]) -> Health:
        """200 when the store answers and the projections have folded up to the head, else 503.

        503 too while the writer process, if it ended, is starting again.

        Not before the start has derived every answer (`Projector.warm`): until then a
        request would derive its projection itself. The probe waits up to a second for it.
        """
        if not ledger.ready:
            stopping = "the service is stopping"
            raise _not_ready(stopping)
        if not ledger.projector.warmed.wait(WARM_WAIT):
            deriving = "the start is deriving the projections' answers"
            raise _not_ready(deriving)
        if not ledger.writing:
            restarting = "the writer process ended and is starting again"
            raise _not_ready(restarting)
        try:  # the head first: an append committed during the catch-up is not a lag
            head = ledger.log.head()
            ledger.projector.catch_up()
        except Exception as exc:  # noqa: BLE001 - readiness reports any failure as not ready
            raise _not_ready(f"the store does not answer: {exc}") from None
        projected = ledger.projector.position
        if projected < head:
            raise _not_ready(f"the projections are at {projected} of {head}", head, projected)
        return Health(status="ok", head=max(head, projected), projected=projected)
