"""What the HTTP tests share: a seeded ledger, an app on it, tokens, valid bodies, problem checks.

Imported by the `test_http_*` modules (and the docs, serve and schemathesis tests); the
fixtures of `conftest.py` stay where they are.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
from litestar import Litestar
from litestar.testing import TestClient

from events.seed import seed_events
from events.sqlite import SQLiteEventLog
from service.app import create_app
from service.settings import Settings
from service.tokens import Scope, TokenStore

PROBLEM_JSON = "application/problem+json"
LEDGER_SET = frozenset(
    {"position", "stream_version", "recorded_at", "data_hash", "prev_hash", "hash"}
)
"""The envelope fields the ledger sets at commit: dropped before an event is posted back."""
SEED_COUNT = len(seed_events())
HEX64 = re.compile(r"^[0-9a-f]{64}$")

_numbers = itertools.count(1)


def init_ledger(path: Path, *, seeded: bool = True) -> Path:
    """Create the ledger file at `path` (with the bundled seed unless told otherwise)."""
    log = SQLiteEventLog(path)
    try:
        if seeded:
            log.append(seed_events())
    finally:
        log.close()
    return path


def make_token(path: Path, subject: str, *scopes: Scope) -> str:
    """A new token's secret, stored in the ledger at `path` (which must exist)."""
    store = TokenStore(path)
    try:
        secret, _ = store.create(subject, scopes or ("append",))
    finally:
        store.close()
    return secret


def revoke_tokens(path: Path, subject: str) -> None:
    """Revoke every live token of `subject`, as `ledger token revoke` would."""
    store = TokenStore(path)
    try:
        for info in store.list():
            if info.subject == subject and info.revoked_at is None:
                store.revoke(info.token_id)
    finally:
        store.close()


def build_app(path: Path, **settings: Any) -> Litestar:
    """The app on the ledger at `path`, no periodic snapshot, structlog left as it is."""
    values: dict[str, Any] = {"database": str(path), "snapshot_every": 0, **settings}
    return create_app(Settings(**values), configure_logs=False)


@contextmanager
def serving(path: Path, **settings: Any) -> Iterator[TestClient[Litestar]]:
    """A test client on a fresh app over `path`; the lifespan opens and closes the ledger."""
    with TestClient(build_app(path, **settings)) as client:
        yield client


def bearer(token: str) -> dict[str, str]:
    """The Authorization header of a token."""
    return {"Authorization": f"Bearer {token}"}


def org_event(name: str | None = None, **over: Any) -> dict[str, Any]:
    """A valid wire event registering a new organization (a fresh one on every call)."""
    name = name or f"test-org-{next(_numbers)}"
    event: dict[str, Any] = {
        "stream": f"organization-{name}",
        "type": "organization_registered",
        "occurred_on": "2024-06-01",
        "data": {"id": name, "name": name.replace("-", " ").title(), "country": "US"},
        "source": {"url": "https://example.invalid/news", "quote": f"{name} was founded."},
    }
    event.update(over)
    return event


def resubmittable(envelope: dict[str, Any]) -> dict[str, Any]:
    """A read-back envelope minus what the ledger sets: postable again as it is."""
    return {k: v for k, v in envelope.items() if k not in LEDGER_SET}


def assert_problem(response: httpx.Response, status: int) -> dict[str, Any]:
    """Check an RFC 9457 answer of this status and return its body."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].split(";")[0] == PROBLEM_JSON
    body: dict[str, Any] = response.json()
    assert body["status"] == status
    assert {"type", "title", "detail"} <= body.keys()
    assert body["type"].startswith("https://")
    assert body["title"]
    assert body["detail"]
    return body
