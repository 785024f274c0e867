"""The service with its appends answered at once, storing nothing: `bench/http_cpu.py`'s
`service_nostore` app.

    LEDGER_DATABASE=/tmp/ledger.db uvicorn --factory bench.nostore_app:application

`service.asgi:application` as it is, but `Ledger.append_awaited` prepares the batch as the
store does on the loop (`events.prepared.prepare_batch`: canonical bytes and data hashes)
and answers at once with the places the events would get, without queueing them: no writer
thread, no commit, no wait. The request path is all there: the fast path's header and
token checks, reading, decoding and validating the body, the answer, the request log line,
the request metrics and the middleware around it. What a real append adds on the loop is
not: its future and the hand-off to the writer (`events.awaitable`: the outcome, the
queueing at the end of the loop's turn, the wake-up and settling after the commit,
`asyncio.shield`), the request's suspension until then, the append-outcome counters and
the follower's nudge (`service.ledger`). Its loop time per request against the service's
says how much of a durable POST's interpreter time is the request path's own. Never for
serving: nothing it acknowledges is stored.
"""

from __future__ import annotations

import itertools
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from litestar import Litestar

from events.dates import utc_now
from events.envelope import AppendResult, Committed, NewEvent
from events.prepared import prepare_batch
from service.app import create_app
from service.ledger import Ledger
from service.settings import load_settings

_positions = itertools.count(1_000_000)  # past any bench ledger's head: not taken for real


async def _answered_at_once(
    self: Ledger, batch: Sequence[NewEvent], expected_versions: Mapping[str, int] | None
) -> AppendResult:
    """Prepared as the store prepares a batch on the loop, then placed without storing."""
    del self, expected_versions
    prepared = prepare_batch(batch)
    moment = utc_now()
    events = tuple(
        Committed(event.event_id, next(_positions), event.stream, 1, moment) for event in prepared
    )
    return AppendResult(head=events[-1].position, events=events)


def application() -> Litestar:
    """The service's app on the `LEDGER_*` settings, its appends answered at once."""
    Ledger.append_awaited = _answered_at_once  # type: ignore[method-assign]
    return create_app(load_settings())
