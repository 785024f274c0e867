"""`/health/live` and `/health/ready`: for orchestrators and load balancers."""

from __future__ import annotations

from litestar import Controller, Response, get
from litestar.status_codes import HTTP_200_OK, HTTP_503_SERVICE_UNAVAILABLE

from service.ledger import Ledger
from service.schemas import Health


class HealthController(Controller):
    """Liveness and readiness."""

    path = "/health"
    tags = ["operations"]  # noqa: RUF012 - Litestar's declared class attribute

    @get("/live", operation_id="Live", summary="The process answers")
    async def live(self) -> Health:
        """Always 200 while the process serves requests."""
        return Health(status="ok")

    @get("/ready", operation_id="Ready", summary="The store is open and the projections caught up", sync_to_thread=True)
    def ready(self, ledger: Ledger) -> Response[Health]:
        """200 when the store answers and the live projections have folded up to the head, else 503."""
        if not ledger.ready:
            return Response(Health(status="stopping"), status_code=HTTP_503_SERVICE_UNAVAILABLE)
        try:
            ledger.projector.catch_up()
            head = ledger.log.head()
        except Exception as exc:  # noqa: BLE001 - readiness reports any failure as not ready
            return Response(
                Health(status="unavailable", detail=str(exc)), status_code=HTTP_503_SERVICE_UNAVAILABLE
            )
        projected = ledger.projector.position
        ok = projected >= head
        return Response(
            Health(status="ok" if ok else "catching-up", head=head, projected=projected),
            status_code=HTTP_200_OK if ok else HTTP_503_SERVICE_UNAVAILABLE,
        )
