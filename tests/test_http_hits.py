"""Cached projection answers served in front of the router (`service.hits`)."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from http_fixtures import assert_problem, bearer, init_ledger, make_token, org_event, serving
from litestar import Litestar
from litestar.testing import TestClient
from test_http_ops import capture, requests_total, scrape

from events.seed import DAEJEON, LOTTE, MERCK
from service.hits import cached_answers_middleware
from service.metrics import RequestMetrics, prometheus_config
from service.views import COMPRESSED_FROM

PAIR = f"/v1/partnerships/{LOTTE}/{MERCK}"
PAIR_ROUTE = "/v1/partnerships/{org_a}/{org_b}"
COMPARED_HEADERS = ("etag", "cache-control", "content-type", "content-length")


@pytest.fixture
def fresh(tmp_path: Path) -> Iterator[tuple[TestClient[Litestar], dict[str, str]]]:
    db = init_ledger(tmp_path / "ledger.db")
    with serving(db) as client:
        yield client, bearer(make_token(db, "writer", "append"))


def headers_of(response: Any) -> dict[str, str]:
    return {name: response.headers.get(name) for name in COMPARED_HEADERS}


class TestHits:
    @pytest.mark.parametrize(
        "url",
        [
            PAIR,
            "/v1/partnerships",
            f"/v1/capacity/sites/{DAEJEON}",
            "/v1/capacity/summary?by=organization",
        ],
    )
    def test_a_hit_is_the_first_answer_byte_for_byte(self, fresh, url) -> None:
        """A repeated GET answers the same body and headers as the one that computed it."""
        client, _ = fresh
        first, second = client.get(url), client.get(url)
        assert first.status_code == second.status_code == 200
        assert second.content == first.content
        assert headers_of(second) == headers_of(first)
        assert int(second.headers["content-length"]) == len(second.content)

    def test_a_hit_is_counted_and_logged_like_any_request(self, fresh) -> None:
        """Hits count under their route template and status, and each has its log line and id."""
        client, _ = fresh
        before = scrape(client)
        etag = client.get(PAIR).headers["etag"]
        with capture() as logs:
            hit = client.get(PAIR, headers={"X-Request-ID": "hit-1"})
            not_modified = client.get(PAIR, headers={"If-None-Match": etag})
        after = scrape(client)
        assert hit.status_code == 200
        assert hit.headers["x-request-id"] == "hit-1"
        assert not_modified.status_code == 304
        assert not_modified.content == b""
        assert not_modified.headers["etag"] == etag
        lines = [entry for entry in logs if entry["event"] == "request"]
        assert [(line["path"], line["status"]) for line in lines] == [(PAIR, 200), (PAIR, 304)]
        assert lines[0]["request_id"] == "hit-1"
        for status, count in [(200, 2), (304, 1)]:
            delta = requests_total(after, "GET", PAIR_ROUTE, status) - requests_total(
                before, "GET", PAIR_ROUTE, status
            )
            assert delta == count, status

    def test_an_append_ends_the_hits(self, fresh) -> None:
        """After an append moves the head, the next GET is computed anew at the new head."""
        client, auth = fresh
        first = client.get("/v1/organizations").json()
        event = org_event()
        assert client.post("/v1/events", json={"events": [event]}, headers=auth).status_code == 201
        after = client.get("/v1/organizations").json()
        assert after["view"]["position"] == first["view"]["position"] + 1
        assert event["data"]["id"] in {org["id"] for org in after["data"]}

    def test_a_large_answer_is_still_compressed(self, fresh) -> None:
        """An answer past the compression threshold is gzipped on a hit as on a miss."""
        client, auth = fresh
        events = [org_event() for _ in range(40)]
        assert client.post("/v1/events", json={"events": events}, headers=auth).status_code == 201
        gz = {"Accept-Encoding": "gzip"}
        first, second = (
            client.get("/v1/timeline", headers=gz),
            client.get("/v1/timeline", headers=gz),
        )
        raw = client.get("/v1/timeline", headers={"Accept-Encoding": "identity"})
        assert len(raw.content) >= COMPRESSED_FROM
        for response in (first, second):
            assert response.headers["content-encoding"] == "gzip"
            assert response.json() == raw.json()

    @pytest.mark.parametrize(
        ("accept", "coded"),
        [
            ("gzip;q=0", None),  # refused
            ("gzip;q=0, *;q=0", None),
            ("gzip; q=0.000", None),
            ("GZIP", "gzip"),  # coding names are case-insensitive
            ("br;q=1, gzip;q=0.5", "gzip"),
            ("identity", None),
        ],
    )
    def test_accept_encoding_is_read_as_http_says(self, fresh, accept, coded) -> None:
        """RFC 9110 12.5.3: a weight of 0 refuses a coding; names ignore case."""
        client, _ = fresh
        raw = client.get("/v1/timeline", headers={"Accept-Encoding": "identity"})
        assert len(raw.content) >= COMPRESSED_FROM
        response = client.get("/v1/timeline", headers={"Accept-Encoding": accept})
        assert response.headers.get("content-encoding") == coded
        assert response.json() == raw.json()

    def test_a_304_of_a_compressible_answer_says_what_it_varies_on(self, fresh) -> None:
        """RFC 9110 15.4.5: a 304 carries the `Vary` its 200 would have."""
        client, _ = fresh
        gz = {"Accept-Encoding": "gzip"}
        full = client.get("/v1/timeline", headers=gz)
        assert full.headers["vary"] == "Accept-Encoding"
        again = client.get("/v1/timeline", headers={**gz, "If-None-Match": full.headers["etag"]})
        assert again.status_code == 304
        assert again.headers["vary"] == "Accept-Encoding"
        small = client.get(PAIR)  # under the threshold: never compressed, nothing to vary
        revalidated = client.get(PAIR, headers={"If-None-Match": small.headers["etag"]})
        assert revalidated.status_code == 304
        assert "vary" not in revalidated.headers

    @pytest.mark.parametrize("url", ["/v1/timeline", "/v1/events?limit=100"])
    @pytest.mark.parametrize("accept", [None, "identity", "gzip;q=0", "gzip"])
    def test_a_compressible_answer_says_it_varies_however_it_is_sent(
        self, fresh, url, accept
    ) -> None:
        """RFC 9110 12.5.5: sent plain too, a compressible answer says `Vary` (a review).

        Only the gzipped copy said it; a shared cache could then keep the plain one for all.
        """
        client, auth = fresh
        events = [org_event() for _ in range(40)]
        assert client.post("/v1/events", json={"events": events}, headers=auth).status_code == 201
        headers = {} if accept is None else {"Accept-Encoding": accept}
        for _ in range(2):  # a miss, then a hit of the answer cache
            response = client.get(url, headers=headers)
            assert response.status_code == 200
            assert response.headers.get_list("vary") == ["Accept-Encoding"]
        small = client.get(PAIR, headers=headers)
        assert "vary" not in small.headers
        # a large 201 (or 422) too: gzip would code it as well
        body = {"events": [org_event() for _ in range(40)]}
        created = client.post("/v1/events", json=body, headers={**auth, **headers})
        assert created.status_code == 201
        assert created.headers.get_list("vary") == ["Accept-Encoding"]

    def test_no_hit_skips_a_required_read_token(self, tmp_path) -> None:
        """With reads behind a token, a cached URL still answers 401 without one."""
        db = init_ledger(tmp_path / "ledger.db")
        reader = bearer(make_token(db, "reader", "append"))
        with serving(db, read_token_required=True) as client:
            assert client.get(PAIR, headers=reader).status_code == 200
            assert client.get(PAIR, headers=reader).status_code == 200
            assert_problem(client.get(PAIR), 401)

    def test_a_failing_store_is_a_problem_not_a_crash(self, fresh, monkeypatch) -> None:
        """If the head cannot be read, reads answer as without the layer: problem details."""
        client, _ = fresh
        assert client.get(PAIR).status_code == 200

        def broken() -> int:
            msg = "disk I/O error"
            raise sqlite3.OperationalError(msg)

        monkeypatch.setattr(client.app.state.ledger.log, "head", broken)
        assert client.get("/health/live").status_code == 200
        assert_problem(client.get(PAIR), 500)


class TestLayer:
    def test_a_cached_url_never_reaches_the_router(self, fresh) -> None:
        """The layer answers a URL cached at the head itself, and passes anything else on."""
        client, _ = fresh
        expected = client.get(PAIR)
        ledger = client.app.state.ledger
        passed: list[str] = []

        async def router(scope: Any, receive: Any, send: Any) -> None:
            passed.append(scope["path"])
            await send({"type": "http.response.start", "status": 599, "headers": []})
            await send({"type": "http.response.body", "body": b""})

        layer = cached_answers_middleware(
            router, lambda: ledger, RequestMetrics(router, prometheus_config())
        )

        def call(path: str, method: str = "GET") -> list[dict[str, Any]]:
            sent: list[dict[str, Any]] = []

            async def send(message: Any) -> None:
                sent.append(message)

            async def receive() -> Any:
                return {"type": "http.request", "body": b""}

            scope = {
                "type": "http",
                "method": method,
                "path": path,
                "query_string": b"",
                "headers": [],
            }
            asyncio.run(layer(scope, receive, send))
            return sent

        start, body = call(PAIR)
        assert start["status"] == 200
        assert body["body"] == expected.content
        assert passed == []
        assert call("/v1/partnerships/nobody/else")[0]["status"] == 599
        assert call(PAIR, "HEAD")[0]["status"] == 599
        assert passed == ["/v1/partnerships/nobody/else", PAIR]
        heads = 0
        read_head = ledger.log.head

        def counted() -> int:
            nonlocal heads
            heads += 1
            return read_head()

        ledger.log.head = counted
        try:
            for path in ("/health/live", "/v1/events", "/metrics"):
                assert call(path)[0]["status"] == 599
            assert heads == 0, "only projection routes are looked up"
            assert call(PAIR)[0]["status"] == 200
            assert heads == 1
        finally:
            del ledger.log.head
