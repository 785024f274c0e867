"""Every error the service answers is an RFC 9457 problem (`application/problem+json`)."""

from __future__ import annotations

import asyncio
import importlib
import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import structlog
from http_fixtures import (
    PROBLEM_JSON,
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

from events.errors import StoreError
from events.seed import DAEJEON, LOTTE, MERCK
from service.middleware import request_log_middleware

BODY_LIMIT = 4096
BATCH_LIMIT = 3


@pytest.fixture(scope="module")
def ledger_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return init_ledger(tmp_path_factory.mktemp("errors") / "ledger.db")


@pytest.fixture(scope="module")
def client(ledger_db: Path) -> Iterator[TestClient[Litestar]]:
    """A client on the seeded ledger with small body and batch limits."""
    with serving(ledger_db, body_limit=BODY_LIMIT, batch_limit=BATCH_LIMIT) as client:
        yield client


@pytest.fixture(scope="module")
def auth(ledger_db: Path, client: TestClient[Litestar]) -> dict[str, str]:
    return bearer(make_token(ledger_db, "writer", "append"))


def post_json(client: TestClient[Litestar], body: object, auth: dict[str, str]):
    return client.post("/v1/events", json=body, headers=auth)


class Test400:
    @pytest.mark.parametrize("raw", [b"{not json", b'{"events": [', b"\xff\xfe", b"nul"])
    def test_malformed_json_is_400(self, client, auth, raw) -> None:
        """A body that is not JSON is a 400 problem."""
        headers = {**auth, "Content-Type": "application/json"}
        assert_problem(client.post("/v1/events", content=raw, headers=headers), 400)

    @pytest.mark.parametrize("where", ["events", "quote"])
    def test_json_nested_too_deeply_is_400_and_stores_nothing(self, client, auth, where) -> None:
        """Arrays nested past msgspec's depth guard: a 400 saying so, not a 500; no event."""
        deep = "[" * 1200 + "]" * 1200
        event = json.dumps(org_event())
        if where == "quote":
            event = event.replace('"quote": "', f'"quote": {deep}, "x": "', 1)
            body = f'{{"events": [{event}]}}'
        else:
            body = f'{{"events": [{deep}]}}'
        head = client.get("/v1/events", params={"limit": 1}).json()["head"]
        headers = {**auth, "Content-Type": "application/json"}
        response = client.post("/v1/events", content=body.encode(), headers=headers)
        assert "nested too deeply" in assert_problem(response, 400)["detail"]
        assert client.get("/v1/events", params={"limit": 1}).json()["head"] == head

    def test_an_empty_body_is_400_said_plainly(self, client, auth) -> None:
        """No body at all: a 400 that says so (not Litestar's bare `'data'`)."""
        headers = {**auth, "Content-Type": "application/json"}
        problem = assert_problem(client.post("/v1/events", content=b"", headers=headers), 400)
        assert "no body" in problem["detail"]


class Test401:
    @pytest.mark.parametrize(
        "headers",
        [
            {},
            {"Authorization": "Bearer pl_nothing_like_a_real_token"},
            {"Authorization": "Bearer "},
            {"Authorization": "Basic YWxpY2U6c2VjcmV0"},
            {"Authorization": "pl_token_without_a_scheme"},
        ],
        ids=["none", "unknown", "empty", "basic", "no-scheme"],
    )
    def test_a_write_without_a_valid_token_is_401(self, client, headers) -> None:
        """A POST without a known bearer token is a 401 with a Bearer challenge."""
        response = client.post("/v1/events", json={"events": [org_event()]}, headers=headers)
        assert_problem(response, 401)
        assert response.headers["www-authenticate"].startswith("Bearer")

    def test_a_revoked_token_is_401(self, ledger_db, client) -> None:
        """A token revoked while the service runs is refused from the next request on."""
        token = make_token(ledger_db, "short-lived", "append")
        first = client.post("/v1/events", json={"events": [org_event()]}, headers=bearer(token))
        assert first.status_code == 201
        revoke_tokens(ledger_db, "short-lived")
        second = client.post("/v1/events", json={"events": [org_event()]}, headers=bearer(token))
        assert "revoked" in assert_problem(second, 401)["detail"]


class Test403:
    def test_an_append_token_cannot_replay(self, client, auth) -> None:
        """`POST /v1/audit/replay` with a token of scope append only is a 403."""
        body = assert_problem(client.post("/v1/audit/replay", headers=auth), 403)
        assert "admin" in body["detail"]


class Test404:
    @pytest.mark.parametrize(
        "url",
        [
            f"/v1/events/{uuid.uuid4()}",
            "/v1/events/not-even-a-uuid",
            "/v1/streams/no-such-stream",
            "/v1/organizations/no-such-org",
            "/v1/capacity/sites/no-such-site",
            f"/v1/partnerships/{LOTTE}/no-such-org",
            f"/v1/partnerships/{MERCK}/milliporesigma",
            f"/v1/partnerships/{LOTTE}/{LOTTE}",
            "/v1/no-such-route",
            "/nothing/here",
        ],
    )
    def test_unknown_things_are_404(self, client, url) -> None:
        """Unknown ids, streams, pairs (a group with itself included) and routes are 404."""
        assert_problem(client.get(url), 404)


class Test405:
    @pytest.mark.parametrize(
        ("method", "url"),
        [
            ("DELETE", "/v1/events"),
            ("PUT", "/v1/events"),
            ("PATCH", f"/v1/events/{uuid.uuid4()}"),
            ("POST", "/v1/organizations"),
            ("GET", "/v1/audit/replay"),
            ("DELETE", f"/v1/capacity/sites/{DAEJEON}"),
        ],
    )
    def test_a_wrong_method_is_405(self, client, method, url) -> None:
        """A method a route does not take is a 405 problem."""
        assert_problem(client.request(method, url), 405)


class TestHead:
    @pytest.mark.parametrize(
        "url",
        [
            "/v1/organizations",
            f"/v1/capacity/sites/{DAEJEON}",
            "/v1/events?limit=2",
            "/health/live",
            "/v1/organizations/nobody",
        ],
    )
    def test_head_answers_as_get_without_a_body(self, client, url) -> None:
        """HEAD: GET's status, type, length and ETag, and no body (RFC 9110 9.3.2)."""
        got, head = client.get(url), client.head(url)
        assert head.status_code == got.status_code
        assert head.content == b""
        for name in ("content-type", "content-length", "etag"):
            assert head.headers.get(name) == got.headers.get(name), name

    def test_head_of_a_post_only_route_is_405(self, client) -> None:
        """A route without GET takes no HEAD either."""
        response = client.head("/v1/audit/replay")
        assert response.status_code == 405
        assert response.content == b""


class Test409:
    def test_a_version_conflict_is_409(self, client, auth) -> None:
        """An `expected_versions` that is not the stream's version is a 409 problem."""
        body = {"events": [org_event()], "expected_versions": {"site-daejeon": 0}}
        assert "expected" in assert_problem(post_json(client, body, auth), 409)["detail"]

    def test_a_known_id_with_other_content_is_409(self, client, auth) -> None:
        """An event id already stored with other content is a 409 problem."""
        event_id = str(uuid.uuid4())
        assert (
            post_json(client, {"events": [org_event(event_id=event_id)]}, auth).status_code == 201
        )
        response = post_json(client, {"events": [org_event(event_id=event_id)]}, auth)
        assert event_id in assert_problem(response, 409)["detail"]


def record(kind: str, target: str) -> dict[str, Any]:
    """A retraction of `target`, or a correction of it to another organization name."""
    if kind == "retraction":
        data: dict[str, Any] = {"retracts": target, "reason": "not true"}
    else:
        replacement = {"id": "test-org", "name": "Renamed", "country": "US"}
        data = {"corrects": target, "replacement": replacement, "reason": "a typo"}
    kind_type = {"retraction": "event_retracted", "correction": "event_corrected"}[kind]
    return org_event(stream="records", type=kind_type, occurred_on="2026", data=data)


class Test409OfRecords:
    """Corrections and retractions that cannot apply: a 409 at append time (issue 4).

    Of an unknown id, or of a retracted event; nothing of the batch is stored.
    """

    @pytest.mark.parametrize("kind", ["retraction", "correction"])
    def test_of_an_unknown_event(self, client, auth, kind) -> None:
        head = client.get("/v1/events", params={"limit": 1}).json()["head"]
        unknown = str(uuid.uuid4())
        batch = [org_event(), record(kind, unknown)]
        body = assert_problem(post_json(client, {"events": batch}, auth), 409)
        assert f"a {kind} of {unknown}: no such event is stored" in body["detail"]
        assert body["type"].endswith("/target-conflict")
        assert client.get("/v1/events", params={"limit": 1}).json()["head"] == head

    @pytest.mark.parametrize("kind", ["retraction", "correction"])
    def test_of_a_retracted_event(self, client, auth, kind) -> None:
        target = org_event(event_id=str(uuid.uuid4()))
        assert post_json(client, {"events": [target]}, auth).status_code == 201
        first = record("retraction", target["event_id"])
        assert post_json(client, {"events": [first]}, auth).status_code == 201
        head = client.get("/v1/events", params={"limit": 1}).json()["head"]
        batch = [org_event(), record(kind, target["event_id"])]
        body = assert_problem(post_json(client, {"events": batch}, auth), 409)
        assert "retracted" in body["detail"]
        assert client.get("/v1/events", params={"limit": 1}).json()["head"] == head


class Test413:
    def test_a_body_over_the_limit_is_413(self, client, auth) -> None:
        """A request body over `body_limit` is a 413 problem naming the limit."""
        event = org_event()
        event["source"]["quote"] = "x" * BODY_LIMIT
        problem = assert_problem(post_json(client, {"events": [event]}, auth), 413)
        assert f"{BODY_LIMIT:,} bytes" in problem["detail"]

    def test_a_batch_over_the_limit_is_413(self, client, auth) -> None:
        """A batch of more than `batch_limit` events is a 413 problem naming the limit."""
        body = {"events": [org_event() for _ in range(BATCH_LIMIT + 1)]}
        assert str(BATCH_LIMIT) in assert_problem(post_json(client, body, auth), 413)["detail"]

    def test_a_batch_at_the_limit_is_taken(self, client, auth) -> None:
        """A batch of exactly `batch_limit` events is appended."""
        body = {"events": [org_event() for _ in range(BATCH_LIMIT)]}
        assert post_json(client, body, auth).status_code == 201


class Test415:
    def test_the_identity_coding_is_taken(self, client, auth) -> None:
        """`Content-Encoding: identity` is no coding at all: the append is taken."""
        raw = json.dumps({"events": [org_event()]}).encode()
        headers = {**auth, "Content-Type": "application/json", "Content-Encoding": "identity"}
        assert client.post("/v1/events", content=raw, headers=headers).status_code == 201

    @pytest.mark.parametrize("coding", ["gzip", "br", "deflate"])
    def test_a_coded_body_is_415(self, client, auth, coding) -> None:
        """A body in a content coding the service does not take: 415 saying so, not a 400."""
        raw = json.dumps({"events": [org_event()]}).encode()
        headers = {**auth, "Content-Type": "application/json", "Content-Encoding": coding}
        problem = assert_problem(client.post("/v1/events", content=raw, headers=headers), 415)
        assert coding in problem["detail"]

    @pytest.mark.parametrize(
        "content_type", ["text/plain", "application/x-www-form-urlencoded", "application/xml"]
    )
    def test_a_body_that_is_not_json_by_type_is_415(self, client, auth, content_type) -> None:
        """`POST /v1/events` with a Content-Type other than JSON is a 415 problem."""
        raw = json.dumps({"events": [org_event()]})
        response = client.post(
            "/v1/events", content=raw, headers={**auth, "Content-Type": content_type}
        )
        assert_problem(response, 415)

    @pytest.mark.parametrize(
        ("charset", "status"),
        [
            ("utf-8", 201),
            ("UTF-8", 201),
            ("utf8", 201),
            ("us-ascii", 201),
            ("latin-1", 415),
            ("utf-16", 415),
        ],
    )
    def test_a_charset_other_than_utf8_is_415(self, client, auth, charset, status) -> None:
        """JSON is UTF-8 (RFC 8259): a body declared in another charset is not read as one."""
        raw = json.dumps({"events": [org_event()]}).encode()
        headers = {**auth, "Content-Type": f"application/json; charset={charset}"}
        response = client.post("/v1/events", content=raw, headers=headers)
        assert response.status_code == status, response.text
        if status == 415:
            assert f"not charset={charset.lower()}" in response.json()["detail"]

    @pytest.mark.parametrize("body", [b"{}", b"[]", b"{bad", b'{"events": []}', b""])
    @pytest.mark.parametrize("content_type", ["text/plain", None])
    def test_the_type_is_judged_before_the_body(self, client, auth, body, content_type) -> None:
        """415 whatever the body holds: a bad body of another type was a 400 or a 422."""
        headers = dict(auth) if content_type is None else {**auth, "Content-Type": content_type}
        response = client.post("/v1/events", content=body, headers=headers)
        problem = assert_problem(response, 415)
        assert problem["detail"] == f"send application/json, not {content_type or 'nothing'}"


def memorandum(parties: list[str]) -> dict[str, Any]:
    return org_event(
        stream="agreement-test",
        type="memorandum_signed",
        data={"agreement": "test-mou", "parties": parties, "scope": ["a scope"]},
    )


def site_acquired(**data: Any) -> dict[str, Any]:
    event = org_event(
        stream="site-test",
        type="site_acquired",
        data={
            "site": "test-site",
            "name": "A test site",
            "location": {"country": "US"},
            "acquirer": LOTTE,
            "price": {"amount": "100", "currency": "USD"},
        },
    )
    event["data"].update(data)
    return event


class Test422:
    @pytest.mark.parametrize(
        ("events", "paths"),
        [
            (
                [site_acquired(price={"amount": "lots", "currency": "USD"})],
                ["$.events[0].data.price.amount"],
            ),
            (
                [site_acquired(price={"amount": "-5", "currency": "USD"})],
                ["$.events[0].data.price.amount"],
            ),
            (
                [site_acquired(price={"amount": "1", "currency": "dollars"})],
                ["$.events[0].data.price.currency"],
            ),
            (
                [site_acquired(location={"country": "USA"})],
                ["$.events[0].data.location.country"],
            ),
            (
                [
                    site_acquired(price={"amount": "lots", "currency": "USD"}),
                    org_event(occurred_on="2024-13-01"),
                ],
                ["$.events[0].data.price.amount", "$.events[1].occurred_on"],
            ),
            ([org_event(), org_event(occurred_on="last May")], ["$.events[1].occurred_on"]),
            ([org_event(stream="Not A Stream")], ["$.events[0].stream"]),
            ([org_event(type="no_such_type")], ["$.events[0].type"]),
            ([org_event(data={"name": "no id"})], ["$.events[0].data.id"]),
            ([org_event(source={"quote": "no url"})], ["$.events[0].source"]),
            ([org_event(event_id="not-a-uuid")], ["$.events[0].event_id"]),
            ([org_event(position=3)], ["$.events[0]"]),
            ([], ["$.events"]),
        ],
        ids=[
            "amount-text",
            "amount-negative",
            "currency",
            "country",
            "two-events",
            "occurred-on",
            "stream",
            "type",
            "missing-field",
            "source",
            "event-id",
            "ledger-field",
            "empty-batch",
        ],
    )
    def test_bad_fields_are_named_by_json_path(self, client, auth, events, paths) -> None:
        """A bad event is a 422 whose `errors` name each bad field's JSON path."""
        body = assert_problem(post_json(client, {"events": events}, auth), 422)
        found = [e["path"] for e in body["errors"]]
        assert all(p.startswith("$") for p in found), found
        assert [p for p in paths if not any(f.startswith(p) for f in found)] == [], found
        assert all(e["message"] for e in body["errors"])

    @pytest.mark.parametrize(
        "body",
        [{"events": "all of them"}, {"events": [org_event()], "extra": 1}, [org_event()], {}],
        ids=["events-not-a-list", "unknown-field", "not-an-object", "no-events"],
    )
    def test_a_bad_batch_shape_is_422(self, client, auth, body) -> None:
        """A body that is JSON but not a batch is a 422 naming where it is wrong."""
        problem = assert_problem(post_json(client, body, auth), 422)
        assert all(e["path"].startswith("$") for e in problem["errors"])

    def test_a_batch_with_bad_events_writes_nothing(self, client, auth) -> None:
        """A 422 batch writes none of its events, the valid ones included."""
        good = org_event(event_id=str(uuid.uuid4()))
        response = post_json(client, {"events": [good, org_event(occurred_on="soon")]}, auth)
        assert_problem(response, 422)
        assert client.get(f"/v1/events/{good['event_id']}").status_code == 404

    def test_every_bad_field_of_an_event_is_listed(self, client, auth) -> None:
        """Four mistakes in one event, two in another: a 422 names all six, nothing stored.

        msgspec stops at the first; the envelope's and the payload's fields are each checked.
        """
        first = site_acquired(
            location={"country": "us"}, price={"amount": "1.10", "currency": "usd"}
        )
        first.update(stream="Not A Stream", occurred_on="2024-02-30")
        second = org_event(type="no_such_type", extra=1)
        head = client.get("/v1/events", params={"limit": 1}).json()["head"]
        body = assert_problem(post_json(client, {"events": [first, second]}, auth), 422)
        assert sorted(e["path"] for e in body["errors"]) == [
            "$.events[0].data.location.country",
            "$.events[0].data.price.currency",
            "$.events[0].occurred_on",
            "$.events[0].stream",
            "$.events[1].extra",
            "$.events[1].type",
        ]
        assert client.get("/v1/events", params={"limit": 1}).json()["head"] == head

    @pytest.mark.parametrize(
        ("change", "paths"),
        [
            ({"type": [1]}, ["$.events[0].type"]),
            ({"type": {"a": 1}}, ["$.events[0].type"]),
            ({"schema_version": [1]}, ["$.events[0].schema_version"]),
            ({"data": [1]}, ["$.events[0].data"]),
            ({"data": None}, ["$.events[0].data"]),
        ],
        ids=["type-array", "type-object", "version-array", "data-array", "data-null"],
    )
    def test_odd_json_in_an_event_is_a_422_naming_it(self, client, auth, change, paths) -> None:
        """A field of the wrong JSON kind, where listing every error looks closer: a 422."""
        event = {**org_event(), **change}
        body = assert_problem(post_json(client, {"events": [event]}, auth), 422)
        assert sorted(e["path"] for e in body["errors"]) == paths

    @pytest.mark.parametrize(
        ("event", "path"),
        [
            (
                org_event("selfish", data={"id": "selfish", "name": "S", "parent": "selfish"}),
                "parent",
            ),
            (site_acquired(price={"amount": "1E+1000", "currency": "USD"}), "price.amount"),
            (site_acquired(price={"amount": "1E+30", "currency": "USD"}), "price.amount"),
            (site_acquired(price={"amount": "1E-31", "currency": "USD"}), "price.amount"),
            (site_acquired(price={"amount": "0E-5000", "currency": "USD"}), "price.amount"),
            (site_acquired(price={"amount": "1.5E+8", "currency": "USD"}), "price.amount"),
            (site_acquired(price={"amount": "0E+100", "currency": "USD"}), "price.amount"),
            (memorandum(["acme", "beta", "acme"]), "parties[2]"),
        ],
        ids=[
            "own-parent",
            "huge",
            "at-the-bound",
            "too-fine",
            "zero-too-fine",
            "exponent",
            "zero-exponent",
            "party-twice",
        ],
    )
    def test_rules_beyond_the_types_are_422(self, client, auth, event, path) -> None:
        """Rules beyond the types: a 422 naming the field.

        An organization its own parent; money no exact sum could hold, or written with an
        exponent (it would show so in every answer); a party named twice.
        """
        body = assert_problem(post_json(client, {"events": [event]}, auth), 422)
        assert [e["path"] for e in body["errors"]] == [f"$.events[0].data.{path}"]

    def test_the_largest_amount_is_taken(self, client, auth) -> None:
        """Just under the bound, with decimals (and the finest amount, in plain digits): taken."""
        event = site_acquired(price={"amount": "9" * 28 + ".25", "currency": "USD"})
        assert post_json(client, {"events": [event]}, auth).status_code == 201
        finest = site_acquired(price={"amount": "0." + "0" * 29 + "1", "currency": "USD"})
        assert post_json(client, {"events": [finest]}, auth).status_code == 201

    def test_an_exponent_is_refused_saying_the_plain_digits(self, client, auth) -> None:
        """`1.5E+8` is refused with what to write instead: `150000000`."""
        event = site_acquired(price={"amount": "1.5E+8", "currency": "USD"})
        body = assert_problem(post_json(client, {"events": [event]}, auth), 422)
        assert "150000000" in body["errors"][0]["message"]

    def test_a_replacement_keeps_the_rules_too(self, client, auth) -> None:
        """A correction cannot bring in what an append refuses: 422 under its replacement."""
        target = client.get("/v1/events", params={"type": "site_acquired"}).json()["events"][0]
        replacement = {**target["data"], "price": {"amount": "1E+40", "currency": "USD"}}
        correction = org_event(
            stream="corrections",
            type="event_corrected",
            occurred_on="2026",
            data={"corrects": target["event_id"], "replacement": replacement, "reason": "r"},
        )
        body = assert_problem(post_json(client, {"events": [correction]}, auth), 422)
        assert [e["path"] for e in body["errors"]] == ["$.events[0].data.replacement.price.amount"]

    def test_a_known_type_without_data_is_not_called_unknown(self, client, auth) -> None:
        """A missing `data` is named; the type, a known one, is not said to be unknown."""
        event = org_event()
        del event["data"]
        body = assert_problem(post_json(client, {"events": [event]}, auth), 422)
        assert [e["path"] for e in body["errors"]] == ["$.events[0].data"]

    @pytest.mark.parametrize(
        ("params", "path"),
        [
            ({"as_of": "2024-13-01"}, "query.as_of"),
            ({"as_of": "yesterday"}, "query.as_of"),
            ({"known_at": "2024-01-01T00:00:00"}, "query.known_at"),
            ({"known_at": "2024-01-01"}, "query.known_at"),
            ({"known_at": "soon"}, "query.known_at"),
            ({"known_at": "9999-12-31T23:59:59-00:01"}, "query.known_at"),
            ({"known_at": "0001-01-01T00:00:00+00:01"}, "query.known_at"),
            ({"known_at": "2024-02-30T00:00:00Z"}, "query.known_at"),
            ({"at_position": 10**9}, "query.at_position"),
            ({"at_position": -1}, "query.at_position"),
            ({"at_position": "ten"}, "query.at_position"),
        ],
    )
    @pytest.mark.parametrize("url", ["/v1/organizations", f"/v1/capacity/sites/{DAEJEON}"])
    def test_bad_view_coordinates_are_422(self, client, url, params, path) -> None:
        """A bad `as_of`, a naive `known_at`, `at_position` past the head: 422 naming it."""
        body = assert_problem(client.get(url, params=params), 422)
        assert path in [e["path"] for e in body["errors"]]

    @pytest.mark.parametrize("as_of", ["2023", "2023-12", "yesterday"])
    def test_a_bad_as_of_says_what_to_send(self, client, as_of) -> None:
        """The 422 of a bad `as_of` says the form it takes (not only "invalid RFC3339 date")."""
        body = assert_problem(client.get("/v1/timeline", params={"as_of": as_of}), 422)
        [error] = body["errors"]
        assert error == {"path": "query.as_of", "message": "expected a date, YYYY-MM-DD"}

    def test_at_position_one_past_the_head_is_422(self, client) -> None:
        """`at_position` of the head is a view; one past it is a 422 naming the head."""
        head = client.get("/v1/events", params={"limit": 1}).json()["head"]
        assert client.get("/v1/timeline", params={"at_position": head}).status_code == 200
        response = client.get("/v1/timeline", params={"at_position": head + 1})
        assert str(head) in assert_problem(response, 422)["detail"]

    @pytest.mark.parametrize("by", ["site", "", "COUNTRY"])
    def test_a_bad_summary_grouping_is_422(self, client, by) -> None:
        """`by` other than country or organization is a 422 naming `query.by`."""
        body = assert_problem(client.get("/v1/capacity/summary", params={"by": by}), 422)
        assert [e["path"] for e in body["errors"]] == ["query.by"]

    def test_a_limit_over_the_page_limit_is_422(self, client) -> None:
        """`limit` over the page limit is a 422 naming `query.limit`."""
        body = assert_problem(client.get("/v1/events", params={"limit": 1001}), 422)
        assert [e["path"] for e in body["errors"]] == ["query.limit"]


@pytest.fixture
def own(tmp_path: Path) -> Iterator[TestClient[Litestar]]:
    """A client on a ledger of its own, for tests that break it."""
    with serving(init_ledger(tmp_path / "ledger.db")) as client:
        yield client


def boom(*_args: object, **_kwargs: object) -> None:
    msg = "secret-internal-detail"
    raise RuntimeError(msg)


class Test500:
    @pytest.mark.parametrize(
        ("target", "url"),
        [
            ("projector.view", "/v1/organizations?as_of=2024-01-01"),
            ("projector.catch_up", "/v1/timeline"),
            ("log.verify", "/v1/audit/verify"),
            ("log.get", f"/v1/events/{uuid.uuid4()}"),
            ("log.read", "/v1/events"),
        ],
    )
    def test_a_crash_is_a_500_problem_without_the_traceback(
        self, own, monkeypatch, target, url
    ) -> None:
        """An exception in a handler answers a 500 problem with no traceback or message in it."""
        owner_name, attribute = target.split(".")
        owner = getattr(own.app.state.ledger, owner_name)
        monkeypatch.setattr(owner, attribute, boom)
        with structlog.testing.capture_logs() as logs:
            response = own.get(url)
        body = assert_problem(response, 500)
        assert "secret-internal-detail" not in response.text
        assert "Traceback" not in response.text
        assert "RuntimeError" not in response.text
        errors = [e for e in logs if e["log_level"] == "error"]
        assert len(errors) == 1
        assert isinstance(errors[0]["exc_info"], RuntimeError)
        assert body["title"]

    @pytest.mark.parametrize(
        ("target", "method", "url"),
        [
            ("service.hits._hit", "GET", "/v1/organizations"),  # the cached-answer layer
            ("service.fastpost._read", "POST", "/v1/events"),  # the append's fast lane
        ],
    )
    def test_a_crash_outside_litestar_is_a_500_problem_too(
        self, own, monkeypatch, target, method, url
    ) -> None:
        """A defect in a layer in front of the router: a 500 problem, logged, with its id.

        Litestar's handlers never see it; uvicorn answered its plain-text 500 before.
        """
        module, attribute = target.rsplit(".", 1)
        monkeypatch.setattr(importlib.import_module(module), attribute, boom)
        token = make_token(Path(own.app.state.ledger.settings.database), "w", "append")
        headers = {"X-Request-ID": "crash-outside", **bearer(token)}
        head = own.app.state.ledger.log.head()
        with structlog.testing.capture_logs(
            processors=[structlog.contextvars.merge_contextvars]
        ) as logs:
            response = own.request(method, url, json={"events": [org_event()]}, headers=headers)
        body = assert_problem(response, 500)
        assert body["type"].endswith("/internal")
        assert response.headers["x-request-id"] == "crash-outside"
        assert "secret-internal-detail" not in response.text
        assert "Traceback" not in response.text
        (error,) = [e for e in logs if e["log_level"] == "error"]
        assert error["event"] == "unhandled error"
        assert error["request_id"] == "crash-outside"
        assert isinstance(error["exc_info"], RuntimeError)
        (line,) = [e for e in logs if e["event"] == "request"]
        assert line["status"] == 500
        assert own.app.state.ledger.log.head() == head  # nothing stored


class Test503:
    def test_not_ready_is_a_503_problem(self, own) -> None:
        """Readiness while stopping is a 503 problem; liveness still answers 200."""
        own.app.state.ledger.ready = False
        try:
            body = assert_problem(own.get("/health/ready"), 503)
            assert "stopping" in body["detail"]
            assert own.get("/health/live").status_code == 200
        finally:
            own.app.state.ledger.ready = True
        assert own.get("/health/ready").status_code == 200

    def test_a_store_error_is_a_503_problem(self, own, monkeypatch) -> None:
        """A store that does not answer is a 503 problem on the route that needed it."""

        def unavailable(*_args: object, **_kwargs: object) -> None:
            msg = "database is locked"
            raise StoreError(msg)

        monkeypatch.setattr(own.app.state.ledger.log, "verify", unavailable)
        assert "locked" in assert_problem(own.get("/v1/audit/verify"), 503)["detail"]

    def test_readiness_behind_the_head_is_a_503_problem(self, own, monkeypatch) -> None:
        """Projections behind the head make readiness a 503 problem naming both positions."""
        ledger = own.app.state.ledger
        monkeypatch.setattr(ledger.log, "head", lambda: 99)
        monkeypatch.setattr(ledger.projector, "catch_up", lambda: None)
        body = assert_problem(own.get("/health/ready"), 503)
        assert (body["head"], body["projected"]) == (99, 10)

    def test_a_request_cut_short_by_the_server_stopping_is_a_503_problem(self) -> None:
        """Cancelled before it answered (uvicorn past its graceful timeout): a 503 problem.

        uvicorn answered its plain-text 500; the cancellation still goes on.
        """
        sent: list[dict[str, Any]] = []

        async def forever(scope: Any, receive: Any, send: Any) -> None:
            await asyncio.Event().wait()

        async def send(message: dict[str, Any]) -> None:
            sent.append(message)

        async def receive() -> dict[str, Any]:
            return {"type": "http.request", "body": b"", "more_body": False}

        async def main() -> None:
            app = request_log_middleware(forever)
            scope = {"type": "http", "method": "POST", "path": "/v1/events", "headers": []}
            task = asyncio.create_task(app(scope, receive, send))
            await asyncio.sleep(0.01)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task

        asyncio.run(main())
        start, body = sent
        assert start["status"] == 503
        headers = dict(start["headers"])
        assert headers[b"content-type"] == PROBLEM_JSON.encode()
        assert headers[b"connection"] == b"close"
        assert b"x-request-id" in headers
        problem = json.loads(body["body"])
        assert (problem["status"], problem["title"]) == (503, "Service unavailable")


class TestOutsideTheRoutes:
    @pytest.mark.parametrize("host", ["x:99999999", "x:abc", "x:-1", "[::1]:99999", "[::1"])
    @pytest.mark.parametrize("url", ["/v1/timeline?limit=0", "/v1/organizations", "/health/live"])
    def test_a_host_litestar_cannot_read_is_a_400_problem(self, client, host, url) -> None:
        """Its port out of range failed Litestar's own error report: a 500, with a traceback."""
        with structlog.testing.capture_logs() as logs:
            response = client.get(url, headers={"Host": host})
        body = assert_problem(response, 400)
        assert "Host" in body["detail"]
        assert not [e for e in logs if e["log_level"] == "error"]

    @pytest.mark.parametrize("host", ["127.0.0.1:8000", "ledger.example", "[::1]:8000", "x:65535"])
    def test_a_host_it_can_read_is_served(self, client, host) -> None:
        assert client.get("/v1/organizations", headers={"Host": host}).status_code == 200

    @pytest.mark.parametrize("path", ["/schema/nope", "/schema/redoc", "/schema/nope.json"])
    def test_a_schema_document_that_is_not_there_is_a_404_problem(self, client, path) -> None:
        """Litestar's OpenAPI plugin answered an HTML page for names not ending in .json."""
        body = assert_problem(client.get(path), 404)
        assert body["type"].endswith("/not-found")
        head = client.head(path)
        assert head.status_code == 404
        assert head.content == b""
        assert client.get("/schema/openapi.json").status_code == 200
        assert client.get("/schema/swagger").headers["content-type"].startswith("text/html")


class TestEveryProblem:
    def test_the_problem_type_names_the_kind(self, client) -> None:
        """Problems of one status share a `type` URI under the project's namespace."""
        first = client.get("/v1/organizations/nobody").json()
        second = client.get("/v1/streams/nothing").json()
        assert first["type"] == second["type"]
        assert first["type"].endswith("/not-found")

    def test_problem_json_is_what_the_client_gets(self, client) -> None:
        """The content type of a problem is exactly application/problem+json."""
        response = client.get("/v1/events/nothing")
        assert response.headers["content-type"] == PROBLEM_JSON
