"""Schemathesis over the app's own OpenAPI document, in process: no 5xx, every answer as declared.

Every operation is fuzzed with valid inputs (and, where it takes any, with invalid ones),
a bounded number of examples from a fixed seed, through the ASGI app with a real ledger.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from http_fixtures import bearer, build_app, init_ledger, make_token, org_event
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.python import asgi
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from events.intake import parse_event
from events.sqlite import SQLiteEventLog
from service.app import create_app
from service.settings import Settings

MAX_EXAMPLES = 25
CHECKS = [
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
    content_type_conformance,
]
DOCUMENT: dict[str, Any] = create_app(Settings(), configure_logs=False).openapi_schema.to_schema()
OPERATIONS = sorted(
    (method.upper(), path) for path, item in DOCUMENT["paths"].items() for method in item
)
ADMIN_ONLY = {("POST", "/v1/audit/replay")}


class Fuzzing:
    """The loaded schema, the tokens to send, and the statuses seen per operation.

    A status is counted negated when the request carried a token other than ours.
    """

    def __init__(self, schema: Any, append: str, admin: str) -> None:
        self.schema = schema
        self.append = append
        self.admin = admin
        self.statuses: dict[tuple[str, str], Counter[int]] = {}

    def headers(self, method: str, path: str) -> dict[str, str]:
        return bearer(self.admin if (method, path) in ADMIN_ONLY else self.append)


@pytest.fixture(scope="module")
def fuzzing(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fuzzing]:
    """The seeded app, its OpenAPI document loaded by schemathesis from the app itself."""
    db = init_ledger(tmp_path_factory.mktemp("schemathesis") / "ledger.db")
    log = SQLiteEventLog(db)  # an event with every optional envelope field, for the reads
    try:
        metadata = {"tags": ["fuzz", "tagged"], "correlation_id": "c-1", "causation_id": "c-0"}
        log.append([parse_event(json.dumps(org_event(sequence=1, metadata=metadata)))])
    finally:
        log.close()
    append, admin = make_token(db, "fuzz", "append"), make_token(db, "fuzz-admin", "admin")
    app = build_app(db)
    schema = schemathesis.openapi.from_asgi("/schema/openapi.json", app)
    try:
        yield Fuzzing(schema, append, admin)
    finally:
        asgi.shutdown_lifespans()  # closes the ledger the schemathesis client opened


def negatable(method: str, path: str) -> bool:
    """Whether a request can be made invalid: a body or a query (a path string takes anything)."""
    operation = DOCUMENT["paths"][path][method.lower()]
    query = [p for p in operation.get("parameters", ()) if p["in"] != "path"]
    return bool(query or operation.get("requestBody"))


CASES = [(m, p, GenerationMode.POSITIVE) for m, p in OPERATIONS] + [
    (m, p, GenerationMode.NEGATIVE) for m, p in OPERATIONS if negatable(m, p)
]


@pytest.mark.parametrize(("method", "path", "mode"), CASES)
def test_operation_conforms(fuzzing, method, path, mode) -> None:
    """No server error and no answer outside the document, for valid and invalid requests."""
    operation = fuzzing.schema[path][method]
    headers = fuzzing.headers(method, path)
    seen = fuzzing.statuses.setdefault((method, path), Counter())

    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(
        max_examples=MAX_EXAMPLES,
        derandomize=True,
        database=None,
        deadline=None,
        suppress_health_check=list(HealthCheck),
    )
    def check(case: Any) -> None:
        response = case.call_and_validate(headers=headers, checks=CHECKS)
        # the document declares the bearer scheme: a negative case may send a token of its own
        ours = response.request.headers.get("Authorization") == headers["Authorization"]
        seen[response.status_code if ours else -response.status_code] += 1

    check()
    assert sum(seen.values()) > 0


def test_the_tokens_reached_the_handlers(fuzzing) -> None:
    """The writes reached their handlers: no fuzzed append was refused for its token; replay ran."""
    appends = fuzzing.statuses.get(("POST", "/v1/events"))
    replays = fuzzing.statuses.get(("POST", "/v1/audit/replay"))
    assert appends is not None, "the fuzzing of POST /v1/events did not run"
    assert replays is not None, "the fuzzing of POST /v1/audit/replay did not run"
    assert appends[401] == appends[403] == 0  # with our token
    assert sum(appends.values()) > appends[-401] > 0  # with schemathesis's: refused, not all
    assert appends[422] > 0
    assert replays[200] > 0
