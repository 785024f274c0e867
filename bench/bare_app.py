"""The baseline of `bench/http.py`: bare Litestar routes, as cheap as Litestar serves them.

    uvicorn --factory bench.bare_app:application                     # from the repository root
    granian --interface asgi --factory bench.bare_app:application

- `GET /bare/answer`: a msgspec Struct of the same shape and encoded size as the service's
  answer, read once from the file `BARE_ANSWER` names (default: a 1,900-byte stand-in);
- `POST /bare/events`: decodes the body into the service's own `AppendBody` (the same
  validation), stores nothing, and answers 201 with a small `AppendAnswer`;
- `GET /health/ready`: so the benchmark waits for it as for the service.

No middleware, no guards, no logging, no plugins: what any Litestar app pays per request.
"""

from __future__ import annotations

import os
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import msgspec
from litestar import Litestar, get, post
from litestar.status_codes import HTTP_201_CREATED

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from events.envelope import Committed
from service.schemas import AppendAnswer, AppendBody


class Answer(msgspec.Struct):
    """The `{"view", "data"}` shape of a projection answer, its contents as plain JSON."""

    view: dict[str, Any]
    data: dict[str, Any]


def _answer() -> Answer:
    path = os.environ.get("BARE_ANSWER")
    if path:
        return msgspec.json.decode(Path(path).read_bytes(), type=Answer)
    return Answer(view={"position": 10}, data={"filler": "x" * 1860})


ANSWER = _answer()
ANSWER_SIZE = len(msgspec.json.encode(ANSWER))
APPENDED = AppendAnswer(
    head=11,
    events=[
        Committed(
            event_id="00000000-0000-4000-8000-000000000000",
            position=11,
            stream="organization-bench",
            stream_version=1,
            recorded_at=datetime(2025, 1, 1, tzinfo=UTC),
        )
    ],
)


@get("/bare/answer")
async def bare_answer() -> Answer:
    """The stand-in answer, encoded by Litestar on every request."""
    return ANSWER


@post("/bare/events", status_code=HTTP_201_CREATED)
async def bare_append(data: AppendBody) -> AppendAnswer:
    """The body decoded and validated into `AppendBody`; nothing stored."""
    del data
    return APPENDED


@get("/health/ready")
async def ready() -> dict[str, str]:
    """Always ready."""
    return {"status": "ok"}


def application() -> Litestar:
    """The bare app (a factory, like `service.asgi:application`)."""
    return Litestar(route_handlers=[bare_answer, bare_append, ready], debug=False)
