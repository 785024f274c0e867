"""The append's success path in front of the router (`service.fastpost`), and its fall-through."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from http_fixtures import (
    assert_problem,
    bearer,
    init_ledger,
    make_token,
    org_event,
    revoke_tokens,
    serving,
)
from litestar import Litestar
from litestar.testing import TestClient
from test_http_ops import capture, requests_total, scrape, value

from events.errors import StoreError
from service.fastpost import APPEND_PATH, APPEND_SCOPE, FAST_BATCH, fast_append_middleware
from service.metrics import RequestMetrics, prometheus_config

ROUTED = "application/json; charset=utf-8"
"""A JSON content type the fast path leaves to the route (only exactly `application/json`)."""


@pytest.fixture
def fresh(tmp_path: Path) -> Iterator[tuple[TestClient[Litestar], dict[str, str], Path]]:
    db = init_ledger(tmp_path / "ledger.db")
    with serving(db, batch_limit=20, body_limit=16384) as client:
        yield client, bearer(make_token(db, "writer", "append")), db


def post(client, body: Any, auth: dict[str, str], content_type: str = "application/json"):
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return client.post("/v1/events", content=raw, headers={**auth, "Content-Type": content_type})


def shape(response: Any) -> dict[str, Any]:
    """An append answer with what differs between two appends (ids, places, times) blanked."""
    body = response.json()
    return {
        "status": response.status_code,
        "content-type": response.headers["content-type"],
        "length-ok": int(response.headers["content-length"]) == len(response.content),
        "request-id": bool(response.headers.get("x-request-id")),
        "keys": sorted(body),
        "event-keys": [sorted(event) for event in body["events"]],
        "replayed": body["replayed"],
    }


class Layer:
    """The layer alone, in front of a stand-in router that records what reaches it."""

    def __init__(self, client: TestClient[Litestar]) -> None:
        self.ledger = client.app.state.ledger
        self.passed: list[tuple[dict[str, Any], list[dict[str, Any]]]] = []

        async def router(scope: Any, receive: Any, send: Any) -> None:
            received = []
            while True:
                message = await receive()
                received.append(message)
                if message["type"] != "http.request" or not message.get("more_body"):
                    break
            self.passed.append((scope, received))
            await send({"type": "http.response.start", "status": 599, "headers": []})
            await send({"type": "http.response.body", "body": b""})

        self.app = fast_append_middleware(
            router, lambda: self.ledger, RequestMetrics(router, prometheus_config())
        )

    def call(
        self,
        headers: list[tuple[bytes, bytes]],
        messages: list[dict[str, Any]],
        query_string: bytes = b"",
    ) -> tuple[int, bytes]:
        sent: list[dict[str, Any]] = []
        queue = list(messages)

        async def receive() -> Any:
            return queue.pop(0) if queue else {"type": "http.disconnect"}

        async def send(message: Any) -> None:
            sent.append(message)

        scope = {
            "type": "http",
            "method": "POST",
            "path": APPEND_PATH,
            "query_string": query_string,
            "headers": headers,
        }
        asyncio.run(self.app(scope, receive, send))
        return sent[0]["status"], b"".join(m.get("body", b"") for m in sent[1:])


def headers_for(token: str, body: bytes, **over: bytes) -> list[tuple[bytes, bytes]]:
    values = {
        b"content-type": b"application/json",
        b"authorization": f"Bearer {token}".encode(),
        b"content-length": str(len(body)).encode(),
    }
    values.update({name.replace("_", "-").encode(): v for name, v in over.items()})
    return list(values.items())


def one_event() -> bytes:
    return json.dumps({"events": [org_event(event_id=str(uuid.uuid4()))]}).encode()


class TestThroughTheApp:
    def test_a_valid_append_answers_as_the_route_does(self, fresh) -> None:
        """201 with positions, 200 for a replay: the same answer whichever path took it."""
        client, auth, _ = fresh
        event = org_event(event_id=str(uuid.uuid4()))
        fast = post(client, {"events": [event]}, auth)
        fast_replay = post(client, {"events": [event]}, auth)
        routed_replay = post(client, {"events": [event]}, auth, ROUTED)
        routed = post(client, {"events": [org_event()]}, auth, ROUTED)
        assert (fast.status_code, fast_replay.status_code) == (201, 200)
        assert shape(fast) == shape(routed)
        assert shape(fast_replay) == shape(routed_replay)
        assert fast_replay.content == routed_replay.content
        assert fast_replay.json()["events"] == fast.json()["events"]
        stored = client.get(f"/v1/events/{event['event_id']}").json()
        assert stored["metadata"]["recorded_by"] == "writer"
        assert stored["position"] == fast.json()["head"]

    @pytest.mark.parametrize(
        ("case", "status"),
        [
            ("no-token", 401),
            ("unknown-token", 401),
            ("not-json", 400),
            ("text-plain", 415),
            ("invalid-event", 422),
            ("empty-batch", 422),
            ("batch-over-limit", 413),
            ("body-over-limit", 413),
        ],
    )
    def test_every_error_is_the_routes_problem(self, fresh, case, status) -> None:
        """Errors take Litestar's route, which answers its usual problem details."""
        client, auth, _ = fresh
        body: Any = {"events": [org_event()]}
        content_type = "application/json"
        if case == "no-token":
            auth = {}
        elif case == "unknown-token":
            auth = bearer("pl_no_such_token")
        elif case == "not-json":
            body = b'{"events": ['
        elif case == "text-plain":
            content_type = "text/plain"
        elif case == "invalid-event":
            body = {"events": [org_event(occurred_on="2024-13-01")]}
        elif case == "empty-batch":
            body = {"events": []}
        elif case == "batch-over-limit":
            body = {"events": [org_event() for _ in range(21)]}
        elif case == "body-over-limit":
            body = {
                "events": [org_event(source={"url": "https://x.invalid", "quote": "x" * 17000})]
            }
        with capture() as logs:
            response = post(client, body, auth, content_type)
        assert_problem(response, status)
        (line,) = [entry for entry in logs if entry["event"] == "request"]
        assert (line["status"], line["request_id"]) == (status, response.headers["x-request-id"])

    def test_a_batch_larger_than_the_fast_path_takes_the_route(self, fresh) -> None:
        """More than FAST_BATCH events (their answer may be compressed) go through Litestar."""
        client, auth, _ = fresh
        events = [org_event() for _ in range(FAST_BATCH + 1)]
        response = client.post(
            "/v1/events",
            json={"events": events},
            headers={**auth, "Accept-Encoding": "gzip"},
        )
        assert response.status_code == 201
        assert len(response.json()["events"]) == FAST_BATCH + 1

    def test_a_revoked_token_is_refused_at_the_next_request(self, fresh) -> None:
        """Revocation by another connection (the command line's) holds from the next request."""
        client, auth, db = fresh
        assert post(client, {"events": [org_event()]}, auth).status_code == 201
        revoke_tokens(db, "writer")
        assert_problem(post(client, {"events": [org_event()]}, auth), 401)

    @pytest.mark.parametrize("expected", [3, 0], ids=["version", "content"])
    def test_a_failed_append_is_answered_by_the_route_not_tried_twice(
        self, fresh, monkeypatch, expected
    ) -> None:
        """A 409 comes from the route, counted once; the append itself ran once."""
        client, auth, _ = fresh
        event = org_event(event_id=str(uuid.uuid4()))
        assert post(client, {"events": [event]}, auth).status_code == 201
        ledger = client.app.state.ledger
        calls = []
        original = ledger.append_awaited

        async def counted(*args: Any) -> Any:
            calls.append(args)
            return await original(*args)

        monkeypatch.setattr(ledger, "append_awaited", counted)
        if expected:  # a stream that is at version 1, expected at 3
            body = {"events": [org_event()], "expected_versions": {event["stream"]: expected}}
        else:  # the same id with other content
            body = {"events": [{**event, "occurred_on": "2023-01-01"}]}
        before = scrape(client)
        assert_problem(post(client, body, auth), 409)
        after = scrape(client)
        assert len(calls) == 1
        conflicts = value(after, "ledger_appends_total", outcome="conflict") - before.get(
            ("ledger_appends_total", frozenset({"outcome": "conflict"}.items())), 0.0
        )
        assert conflicts == 1
        assert requests_total(after, "POST", APPEND_PATH, 409) == 1 + requests_total(
            before, "POST", APPEND_PATH, 409
        )

    def test_a_store_error_is_a_503_once(self, fresh, monkeypatch) -> None:
        """An append that fails in the store is the route's 503, not retried."""
        client, auth, _ = fresh
        calls = []

        async def failing(*args: Any) -> Any:
            calls.append(args)
            msg = "disk I/O error"
            raise StoreError(msg)

        monkeypatch.setattr(client.app.state.ledger, "append_awaited", failing)
        assert (
            "disk I/O"
            in assert_problem(post(client, {"events": [org_event()]}, auth), 503)["detail"]
        )
        assert len(calls) == 1

    def test_a_fast_append_is_counted_and_logged_like_any_request(self, fresh) -> None:
        """Its log line carries the request id; it counts under the route; nothing in progress."""
        client, auth, _ = fresh
        before = scrape(client)
        with capture() as logs:
            response = client.post(
                "/v1/events",
                json={"events": [org_event()]},
                headers={**auth, "X-Request-ID": "append-1"},
            )
        after = scrape(client)
        assert response.status_code == 201
        assert response.headers["x-request-id"] == "append-1"
        lines = [entry for entry in logs if entry["event"] == "request"]
        assert [(x["method"], x["path"], x["status"], x["request_id"]) for x in lines] == [
            ("POST", APPEND_PATH, 201, "append-1")
        ]
        assert requests_total(after, "POST", APPEND_PATH, 201) == 1 + requests_total(
            before, "POST", APPEND_PATH, 201
        )
        in_progress = {
            "app_name": "ledger",
            "method": "POST",
            "path": APPEND_PATH,
            "status_code": "200",
        }
        assert value(after, "litestar_requests_in_progress", **in_progress) == 0
        appended = value(after, "ledger_appends_total", outcome="appended")
        assert appended == 1 + value(before, "ledger_appends_total", outcome="appended")

    def test_the_route_still_asks_for_the_scope_the_fast_path_checks(self, fresh) -> None:
        """Both paths ask for the same scope."""
        client, _, _ = fresh
        (handler,) = [
            handler
            for route in client.app.routes
            if route.path == APPEND_PATH
            for handler in getattr(route, "route_handlers", ())
            if "POST" in handler.http_methods
        ]
        assert handler.opt["scope"] == APPEND_SCOPE


class TestLayer:
    def test_a_valid_append_never_reaches_the_router(self, fresh) -> None:
        """Answered in front of the router, even with its body in several messages."""
        client, _, db = fresh
        layer = Layer(client)
        body = one_event()
        token = make_token(db, "layer", "append")
        halves = [
            {"type": "http.request", "body": body[:100], "more_body": True},
            {"type": "http.request", "body": body[100:], "more_body": False},
        ]
        status, answer = layer.call(headers_for(token, body), halves)
        assert status == 201
        assert (
            json.loads(answer)["events"][0]["event_id"] == json.loads(body)["events"][0]["event_id"]
        )
        assert layer.passed == []

    @pytest.mark.parametrize(
        "case",
        [
            "duplicate-content-type",
            "charset",
            "chunked",
            "no-length",
            "length-too-short",
            "length-too-long",
            "disconnect",
            "admin-only-route-token-ok",
            "invalid",
            "query-string",
        ],
    )
    def test_what_it_does_not_answer_reaches_the_router_with_every_message(
        self, fresh, case
    ) -> None:
        """The router receives the very messages the client sent, in order, then the rest."""
        client, _, db = fresh
        layer = Layer(client)
        token = make_token(db, "layer", "append")
        body = one_event()
        headers = headers_for(token, body)
        messages: list[dict[str, Any]] = [
            {"type": "http.request", "body": body[:50], "more_body": True},
            {"type": "http.request", "body": body[50:], "more_body": False},
        ]
        if case == "duplicate-content-type":
            headers.append((b"content-type", b"application/json"))
        elif case == "charset":
            headers = headers_for(token, body, content_type=b"application/json; charset=utf-8")
        elif case == "chunked":
            headers.append((b"transfer-encoding", b"chunked"))
        elif case == "no-length":
            headers = [h for h in headers if h[0] != b"content-length"]
        elif case == "length-too-short":
            headers = headers_for(token, body, content_length=str(len(body) - 1).encode())
        elif case == "length-too-long":
            headers = headers_for(token, body, content_length=str(len(body) + 1).encode())
        elif case == "disconnect":
            messages = [messages[0], {"type": "http.disconnect"}]
        elif case == "admin-only-route-token-ok":  # an admin token is fine; the body is not
            admin = make_token(db, "admin", "admin")
            body = b'{"events": [}'
            headers = headers_for(admin, body)
            messages = [{"type": "http.request", "body": body, "more_body": False}]
        elif case == "invalid":
            body = json.dumps({"events": [org_event(stream="Not A Stream")]}).encode()
            headers = headers_for(token, body)
            messages = [{"type": "http.request", "body": body, "more_body": False}]
        query = b"dry_run=true" if case == "query-string" else b""  # the route refuses it
        status, _ = layer.call(headers, messages, query)
        assert status == 599
        ((scope, received),) = layer.passed
        assert scope["headers"] == headers
        assert received == messages
