"""Operations: one log line per request with its request id, and the Prometheus metrics."""

from __future__ import annotations

import math
import re
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema_rs
import pytest
import structlog
from http_fixtures import (
    SEED_COUNT,
    assert_problem,
    bearer,
    init_ledger,
    make_token,
    org_event,
    serving,
)
from litestar import Litestar
from litestar.testing import TestClient
from prometheus_client.parser import text_string_to_metric_families

from events.seed import DAEJEON

GENERATED_ID = re.compile(r"^[0-9a-f]{32}$")


@pytest.fixture(scope="module")
def ledger_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return init_ledger(tmp_path_factory.mktemp("ops") / "ledger.db")


@pytest.fixture(scope="module")
def client(ledger_db: Path) -> Iterator[TestClient[Litestar]]:
    with serving(ledger_db) as client:
        yield client


@pytest.fixture(scope="module")
def auth(ledger_db: Path, client: TestClient[Litestar]) -> dict[str, str]:
    return bearer(make_token(ledger_db, "ops", "append"))


def capture():
    """Capture log entries with the request's bound context merged in, as production does."""
    return structlog.testing.capture_logs(processors=[structlog.contextvars.merge_contextvars])


class TestRequestLog:
    @pytest.mark.parametrize(
        ("method", "url", "status"),
        [
            ("GET", "/v1/organizations", 200),
            ("GET", f"/v1/capacity/sites/{DAEJEON}?as_of=2024-04-30", 200),
            ("GET", "/v1/events/nothing", 404),
            ("GET", "/v1/events?limit=0", 422),
            ("DELETE", "/v1/events", 405),
            ("GET", "/no/such/route", 404),
            ("POST", "/v1/events", 401),
            ("GET", "/health/live", 200),
            ("GET", "/metrics", 200),
        ],
    )
    def test_one_line_per_request(self, client, method, url, status) -> None:
        """Each request writes exactly one `request` line: id, method, path, status, duration."""
        with capture() as logs:
            response = client.request(method, url)
        assert response.status_code == status
        lines = [e for e in logs if e["event"] == "request"]
        assert len(lines) == 1
        line = lines[0]
        assert line["method"] == method
        assert line["path"] == url.split("?")[0]
        assert line["status"] == status
        assert isinstance(line["duration_ms"], float)
        assert line["duration_ms"] >= 0
        assert line["log_level"] == "info"
        assert GENERATED_ID.match(line["request_id"])
        assert response.headers["x-request-id"] == line["request_id"]

    def test_an_append_is_logged_with_201(self, client, auth) -> None:
        """A successful append writes one line with status 201."""
        with capture() as logs:
            client.post("/v1/events", json={"events": [org_event()]}, headers=auth)
        assert [(e["method"], e["status"]) for e in logs if e["event"] == "request"] == [
            ("POST", 201)
        ]

    def test_request_ids_differ_between_requests(self, client) -> None:
        """Every request without an `X-Request-ID` gets a fresh id."""
        with capture() as logs:
            for _ in range(5):
                client.get("/health/live")
        ids = [e["request_id"] for e in logs if e["event"] == "request"]
        assert len(set(ids)) == 5

    @pytest.mark.parametrize("incoming", ["abc-123", "req.7:retry_2", str(uuid.uuid4()), "A" * 128])
    def test_an_incoming_request_id_is_kept_and_echoed(self, client, incoming) -> None:
        """A well-formed `X-Request-ID` is the id of the log line and comes back in the answer."""
        with capture() as logs:
            response = client.get("/v1/partnerships", headers={"X-Request-ID": incoming})
        (line,) = [e for e in logs if e["event"] == "request"]
        assert line["request_id"] == incoming
        assert response.headers["x-request-id"] == incoming

    @pytest.mark.parametrize("incoming", ["", "has space", "A" * 129, "semi;colon", "ünï"])
    def test_a_malformed_request_id_is_replaced(self, client, incoming) -> None:
        """An `X-Request-ID` that is empty, too long or has odd characters gets a fresh id."""
        with capture() as logs:
            response = client.get("/health/live", headers={"X-Request-ID": incoming.encode()})
        (line,) = [e for e in logs if e["event"] == "request"]
        assert GENERATED_ID.match(line["request_id"])
        assert response.headers["x-request-id"] == line["request_id"]

    def test_lines_inside_a_request_carry_its_id(self, tmp_path, monkeypatch) -> None:
        """A line logged while a request runs (here: its crash) has the request's id."""
        with serving(init_ledger(tmp_path / "ledger.db")) as own:

            def boom() -> None:
                msg = "boom"
                raise RuntimeError(msg)

            monkeypatch.setattr(own.app.state.ledger.log, "verify", boom)
            with capture() as logs:
                own.get("/v1/audit/verify", headers={"X-Request-ID": "crash-1"})
        by_event = {e["event"]: e for e in logs}
        assert by_event["unhandled error"]["request_id"] == "crash-1"
        assert by_event["request"]["request_id"] == "crash-1"
        assert by_event["request"]["status"] == 500


def scrape(client: TestClient[Litestar]) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """`/metrics` as {(sample name, labels): value}."""
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


def requests_total(samples, method: str, path: str, status: int) -> float:
    labels = frozenset(
        {"app_name": "ledger", "method": method, "path": path, "status_code": str(status)}.items()
    )
    return samples.get(("litestar_requests_total", labels), 0.0)


def value(samples, name: str, **labels: str) -> float:
    return samples[(name, frozenset(labels.items()))]


@pytest.fixture
def fresh(tmp_path: Path) -> Iterator[tuple[TestClient[Litestar], dict[str, str]]]:
    """A client on its own ledger, the one the ledger gauges read from (the latest opened)."""
    db = init_ledger(tmp_path / "ledger.db")
    with serving(db) as client:
        yield client, bearer(make_token(db, "metrics", "append"))


class TestMetrics:
    def test_a_scrape_after_another_ledger_closed_still_answers(self, tmp_path: Path) -> None:
        """The gauges read the last ledger opened; once it is closed they read NaN, not a 503.

        (One ledger per process in service; tests open several, and a scrape reading a
        closed log was a 503 once reads after `close()` were refused.)
        """
        with serving(init_ledger(tmp_path / "a.db")) as first:
            with serving(init_ledger(tmp_path / "b.db")) as second:
                assert second.get("/metrics").status_code == 200
            response = first.get("/metrics")
            assert response.status_code == 200
            (head,) = [
                sample.value
                for family in text_string_to_metric_families(response.text)
                for sample in family.samples
                if sample.name == "ledger_log_head"
            ]
            assert math.isnan(head)  # no ledger bound: nothing stale claimed

    def test_requests_are_counted_by_route_template_and_status(self, fresh) -> None:
        """The request counter groups by route template (not the raw path) and status."""
        client, auth = fresh
        before = scrape(client)
        client.get(f"/v1/events/{uuid.uuid4()}")
        client.get(f"/v1/events/{uuid.uuid4()}")
        client.post("/v1/events", json={"events": [org_event()]}, headers=auth)
        client.get("/v1/organizations")
        after = scrape(client)
        for method, path, status, count in [
            ("GET", "/v1/events/{event_id}", 404, 2),
            ("POST", "/v1/events", 201, 1),
            ("GET", "/v1/organizations", 200, 1),
        ]:
            delta = requests_total(after, method, path, status) - requests_total(
                before, method, path, status
            )
            assert delta == count, (method, path, status)
        assert not any("/metrics" in dict(labels).get("path", "") for _, labels in after)

    def test_requests_no_route_took_and_head_requests_are_counted(self, fresh) -> None:
        """404s and 405s without a route count under one path label; HEAD counts as HEAD.

        Litestar's middleware runs only on a matched route: a scan of unknown paths never
        showed, and a HEAD (served as GET) counted as a GET.
        """
        client, _ = fresh
        before = scrape(client)
        assert client.get("/wp-login.php").status_code == 404
        assert client.get("/v1/nothing/here").status_code == 404
        assert client.delete("/v1/timeline").status_code == 405
        assert client.head("/v1/organizations").status_code == 200  # answered, then cached
        assert client.head("/v1/organizations").status_code == 200
        assert client.head("/health/live").status_code == 200
        assert client.get("/health/live").status_code == 200
        after = scrape(client)

        def delta(method: str, path: str, status: int) -> float:
            return requests_total(after, method, path, status) - requests_total(
                before, method, path, status
            )

        assert delta("GET", "(no route)", 404) == 2
        assert delta("DELETE", "(no route)", 405) == 1
        assert delta("HEAD", "/v1/organizations", 200) == 2
        assert delta("GET", "/v1/organizations", 200) == 0
        assert delta("HEAD", "/health/live", 200) == 1
        assert delta("GET", "/health/live", 200) == 1
        assert not any("wp-login" in dict(labels).get("path", "") for _, labels in after)

    def test_unrouted_labels_stay_bounded_and_scrapes_are_not_counted(self, fresh) -> None:
        """A made-up method counts as OTHER; `/metrics` is not counted, not even unrouted.

        A route's own path holding "metrics" counts under the route.
        """
        client, _ = fresh
        before = scrape(client)
        for method in ("FOO", "BAR1", "ZZZZZ"):
            assert client.request(method, "/x").status_code == 404
        assert client.get("/v1/events/metrics").status_code == 404  # the route: no such event
        scrape(client)
        after = scrape(client)

        def delta(method: str, path: str, status: int) -> float:
            return requests_total(after, method, path, status) - requests_total(
                before, method, path, status
            )

        assert delta("OTHER", "(no route)", 404) == 3
        assert not any(dict(labels).get("method") == "FOO" for _, labels in after)
        assert delta("GET", "/v1/events/{event_id}", 404) == 1
        assert delta("GET", "(no route)", 404) == 0
        assert delta("GET", "(no route)", 200) == 0  # the scrapes

    def test_the_ledger_gauges_follow_the_log(self, fresh) -> None:
        """`ledger_log_head` is the head; `ledger_projection_lag` is what is not folded yet."""
        client, auth = fresh
        samples = scrape(client)
        assert value(samples, "ledger_log_head") == SEED_COUNT
        assert value(samples, "ledger_projection_lag") == 0
        events = [org_event(), org_event()]
        client.post("/v1/events", json={"events": events}, headers=auth)
        samples = scrape(client)
        head, lag = value(samples, "ledger_log_head"), value(samples, "ledger_projection_lag")
        assert head == SEED_COUNT + 2
        assert lag == head - value(samples, "ledger_projection_position")
        assert client.get("/health/ready").status_code == 200
        assert value(scrape(client), "ledger_projection_lag") == 0

    def test_appends_are_counted_by_outcome(self, fresh) -> None:
        """Appended events count once; replays and conflicts count as outcomes, not events."""
        client, auth = fresh
        before = scrape(client)
        batch = [org_event(event_id=str(uuid.uuid4())) for _ in range(3)]
        assert client.post("/v1/events", json={"events": batch}, headers=auth).status_code == 201
        assert client.post("/v1/events", json={"events": batch}, headers=auth).status_code == 200
        clash = [org_event(event_id=batch[0]["event_id"])]
        assert client.post("/v1/events", json={"events": clash}, headers=auth).status_code == 409
        after = scrape(client)

        def delta(name: str, **labels: str) -> float:
            key = (name, frozenset(labels.items()))
            return after.get(key, 0.0) - before.get(key, 0.0)

        assert delta("ledger_events_appended_total") == 3
        assert delta("ledger_appends_total", outcome="appended") == 1
        assert delta("ledger_appends_total", outcome="replayed") == 1
        assert delta("ledger_appends_total", outcome="conflict") == 1


class TestOpenAPIRoute:
    def test_the_document_is_served(self, client) -> None:
        """`/schema/openapi.json` serves the OpenAPI 3 document of every /v1 route."""
        response = client.get("/schema/openapi.json")
        assert response.status_code == 200
        document = response.json()
        assert document["openapi"].startswith("3.")
        assert document["info"]["title"] == "partnership-ledger"
        assert {"/v1/events", "/v1/partnerships/{org_a}/{org_b}", "/health/ready"} <= set(
            document["paths"]
        )

    def test_a_tagged_event_read_back_matches_its_declared_schema(self, fresh) -> None:
        """A real `GET /v1/events/{id}` answer, tags and all, validates against `EventOut`.

        Litestar rendered `metadata.tags` with items `oneOf: [string, {}]`, which no string
        satisfies (it matches both): every tagged event broke the published schema.
        """
        client, auth = fresh
        event = org_event(
            event_id=str(uuid.uuid4()),
            metadata={"tags": ["deal", "korea"], "correlation_id": "c-1"},
        )
        assert client.post("/v1/events", json={"events": [event]}, headers=auth).status_code == 201
        document = client.get("/schema/openapi.json").json()
        answer = client.get(f"/v1/events/{event['event_id']}").json()
        assert answer["metadata"]["tags"] == ["deal", "korea"]
        schema = {"$ref": "#/components/schemas/EventOut", "components": document["components"]}
        validator = jsonschema_rs.Draft202012Validator(schema)
        assert [error.message for error in validator.iter_errors(answer)] == []
        tags = document["components"]["schemas"]["Metadata"]["properties"]["tags"]
        assert tags["items"] == {"type": "string"}
        assert tags["maxItems"] == 50

    def test_the_document_is_the_same_every_time(self, tmp_path: Path) -> None:
        """Two apps give byte-identical documents: no random examples, nothing run-dependent."""
        documents = []
        for name in ("a", "b"):
            with serving(init_ledger(tmp_path / f"{name}.db")) as client:
                documents.append(client.get("/schema/openapi.json").content)
        assert documents[0] == documents[1]
        assert b'"examples"' not in documents[0]

    @pytest.mark.parametrize("reads_need_a_token", [False, True])
    def test_the_bearer_scheme_is_declared_where_a_token_is_needed(
        self, tmp_path: Path, reads_need_a_token: bool
    ) -> None:
        """Writes name the bearer scheme; reads too when the service requires a token for them."""
        db = init_ledger(tmp_path / "ledger.db")
        with serving(db, read_token_required=reads_need_a_token) as client:
            document = client.get("/schema/openapi.json").json()
        scheme = document["components"]["securitySchemes"]["bearer"]
        assert (scheme["type"], scheme["scheme"]) == ("http", "bearer")
        paths = document["paths"]
        assert paths["/v1/events"]["post"]["security"] == [{"bearer": []}]
        assert paths["/v1/audit/replay"]["post"]["security"] == [{"bearer": []}]
        assert "security" not in paths["/v1/events"]["get"]
        assert document.get("security") == ([{"bearer": []}] if reads_need_a_token else None)
        for probe in ("/health/live", "/health/ready"):  # open whatever reads need
            assert paths[probe]["get"]["security"] == [{}]

    def test_an_empty_batch_is_outside_the_declared_body(self, client) -> None:
        """`{"events": []}` is a 422, and the document says so (`minItems: 1`).

        Schemathesis had found a request the document declared valid refused.
        """
        document = client.get("/schema/openapi.json").json()
        events = document["components"]["schemas"]["AppendBody"]["properties"]["events"]
        assert events["minItems"] == 1

    def test_the_schema_root_answers(self, client) -> None:
        """`/schema` answers (the renderers' index), without the need of a token."""
        assert client.get("/schema").status_code == 200


class TestAllow:
    @pytest.mark.parametrize(
        ("method", "path", "status", "allow"),
        [
            # Litestar's own OPTIONS answer left out GET, declared by another controller
            ("OPTIONS", "/v1/events", 204, "GET, HEAD, OPTIONS, POST"),
            ("PUT", "/v1/events", 405, "GET, HEAD, OPTIONS, POST"),
            ("OPTIONS", "/v1/events/any-id", 204, "GET, HEAD, OPTIONS"),
            ("OPTIONS", "/v1/partnerships/a/b", 204, "GET, HEAD, OPTIONS"),
            ("DELETE", "/v1/timeline", 405, "GET, HEAD, OPTIONS"),
            ("OPTIONS", "/v1/audit/replay", 204, "OPTIONS, POST"),
            ("HEAD", "/v1/audit/replay", 405, "OPTIONS, POST"),  # no GET: no HEAD either
        ],
    )
    def test_allow_lists_every_method_the_route_answers(
        self, client, method: str, path: str, status: int, allow: str
    ) -> None:
        """`Allow` (RFC 9110 10.2.1) names each method the path answers, HEAD included."""
        response = client.request(method, path)
        assert response.status_code == status
        assert response.headers.get_list("allow") == [allow]

    def test_every_method_allowed_is_answered(self, client) -> None:
        """What `Allow` lists for the events path, the path does answer (not 405)."""
        allowed = client.options("/v1/events").headers["allow"].split(", ")
        for method in allowed:
            assert client.request(method, "/v1/events").status_code != 405, method


class TestDocumentedHeaders:
    @pytest.mark.parametrize(
        ("path", "url", "declared"),
        [
            ("/v1/organizations", "/v1/organizations?limit=1", {"ETag", "Link", "X-Request-ID"}),
            ("/v1/timeline", "/v1/timeline?limit=1", {"ETag", "Link", "X-Request-ID"}),
            (
                "/v1/capacity/sites/{site_id}",
                "/v1/capacity/sites/daejeon",
                {"ETag", "X-Request-ID"},
            ),
            ("/v1/events", "/v1/events?limit=1", {"Link", "X-Request-ID"}),
            ("/v1/streams/{stream}", "/v1/streams/site-daejeon?limit=1", {"Link", "X-Request-ID"}),
            ("/health/live", "/health/live", {"X-Request-ID"}),
        ],
    )
    def test_the_document_names_the_headers_an_answer_carries(
        self, client, path: str, url: str, declared: set[str]
    ) -> None:
        """What the 200 of the document lists, a real answer (a page with more after it) has."""
        document = client.get("/schema/openapi.json").json()
        answer = document["paths"][path]["get"]["responses"]["200"]
        assert set(answer["headers"]) == declared
        response = client.get(url)
        assert response.status_code == 200
        assert declared <= {
            name.title().replace("Etag", "ETag").replace("-Id", "-ID") for name in response.headers
        }


class TestClosedObjects:
    @pytest.mark.parametrize(
        ("component", "where"),
        [
            ("AppendBody", "$.extra"),
            ("EventBody", "$.events[0].extra"),
            ("Source", "$.events[0].source.extra"),
            ("Metadata", "$.events[0].metadata.extra"),
        ],
    )
    def test_what_the_document_closes_the_service_refuses(
        self, fresh, component: str, where: str
    ) -> None:
        """`additionalProperties: false` where an unknown field is a 422, and only there."""
        client, auth = fresh
        schemas = client.get("/schema/openapi.json").json()["components"]["schemas"]
        assert schemas[component]["additionalProperties"] is False
        assert "additionalProperties" not in schemas["EventOut"]  # answers may grow fields
        event = org_event(metadata={"tags": []})
        body: dict[str, Any] = {"events": [event]}
        target: dict[str, Any] = {
            "$.extra": body,
            "$.events[0].extra": event,
            "$.events[0].source.extra": event["source"],
            "$.events[0].metadata.extra": event["metadata"],
        }[where]
        target["extra"] = 1
        problem = assert_problem(client.post("/v1/events", json=body, headers=auth), 422)
        assert [error["path"] for error in problem["errors"]] == [where]


def test_position_parameters_are_bounded_as_integers(client) -> None:
    """`at_position` ≥ 0 everywhere; a position `after` within 0 and 2**63-1, as integers.

    Litestar left out a bound of 0 and wrote `le=2**63-1` as a float past it (a client
    generated from the document sent 9223372036854775999 and met a 422).
    """
    document = client.get("/schema/openapi.json").json()
    seen = 0
    for path, item in document["paths"].items():
        for parameter in item.get("get", {}).get("parameters", []):
            schema = parameter["schema"]
            if parameter["name"] == "at_position":
                assert schema["minimum"] == 0, path
                seen += 1
            elif parameter["name"] == "after" and schema.get("type") == "integer":
                assert (schema["minimum"], schema["maximum"]) == (0, 2**63 - 1), path
                assert isinstance(schema["maximum"], int), path
                seen += 1
    assert seen == 10  # eight projection routes, the log, a stream


@pytest.mark.parametrize(
    ("path", "url", "component"),
    [
        ("/v1/organizations", "/v1/organizations?limit=2", "OrganizationsPage"),
        ("/v1/organizations/{org_id}", "/v1/organizations/milliporesigma", "OrganizationAnswer"),
        ("/v1/partnerships", "/v1/partnerships", "PartnershipsPage"),
        (
            "/v1/partnerships/{org_a}/{org_b}",
            "/v1/partnerships/lotte-biologics/merck-kgaa",
            "PartnershipAnswer",
        ),
        ("/v1/capacity/sites", "/v1/capacity/sites", "SitesPage"),
        ("/v1/capacity/sites/{site_id}", "/v1/capacity/sites/daejeon", "SiteAnswer"),
        ("/v1/capacity/summary", "/v1/capacity/summary?by=organization", "SummaryAnswer"),
        ("/v1/timeline", "/v1/timeline?limit=3", "TimelinePage"),
    ],
)
def test_each_projection_answer_matches_its_typed_schema(
    client, path: str, url: str, component: str
) -> None:
    """The document types each route's `data`; a real answer of the seed validates against it."""
    document = client.get("/schema/openapi.json").json()
    answer_ref = document["paths"][path]["get"]["responses"]["200"]["content"]
    assert answer_ref["application/json"]["schema"] == {"$ref": f"#/components/schemas/{component}"}
    schema = {"$ref": f"#/components/schemas/{component}", "components": document["components"]}
    answer = client.get(url).json()
    assert answer["data"]  # something to check
    validator = jsonschema_rs.Draft202012Validator(schema)
    assert [error.message for error in validator.iter_errors(answer)] == []
