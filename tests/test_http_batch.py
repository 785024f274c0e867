"""`POST /v1/events` decodes its body once, from the bytes (`service.batch`)."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
from http_fixtures import assert_problem, bearer, init_ledger, make_token, org_event, serving
from litestar import Litestar
from litestar.testing import TestClient

from events.codec import canonical
from events.intake import parse_event
from events.rows import encode_new
from events.seed import LOTTE


@pytest.fixture(scope="module")
def ledger_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return init_ledger(tmp_path_factory.mktemp("batch") / "ledger.db")


@pytest.fixture(scope="module")
def client(ledger_db: Path) -> Iterator[TestClient[Litestar]]:
    with serving(ledger_db, batch_limit=3) as client:
        yield client


@pytest.fixture(scope="module")
def auth(ledger_db: Path, client: TestClient[Litestar]) -> dict[str, str]:
    return bearer(make_token(ledger_db, "writer", "append"))


def site_bought(amount: str) -> bytes:
    """An event whose price is written as the JSON literal `amount` (a number, not a string)."""
    site = f"site-{uuid.uuid4().hex[:8]}"
    event = {
        "event_id": str(uuid.uuid4()),
        "stream": f"site-{site}",
        "type": "site_acquired",
        "occurred_on": "2024-06-01",
        "data": {
            "site": site,
            "name": "A site",
            "location": {"country": "US"},
            "acquirer": LOTTE,
            "price": {"amount": "AMOUNT", "currency": "USD"},
        },
        "source": {"url": "https://example.invalid/news"},
    }
    return json.dumps(event).replace('"AMOUNT"', amount).encode()


class TestOneDecode:
    @pytest.mark.parametrize(
        "amount", ["1.10", "15e-4", "326000000", "0.000001", "123456789012345678901234567.123"]
    )
    def test_an_amount_sent_as_a_number_is_stored_as_the_command_line_stores_it(
        self, client, auth, amount
    ) -> None:
        """Each event is decoded from its own bytes, like `ledger append`: no float on the way."""
        raw = site_bought(amount)
        body = b'{"events":[' + raw + b"]}"
        headers = {**auth, "Content-Type": "application/json"}
        response = client.post("/v1/events", content=body, headers=headers)
        assert response.status_code == 201, response.text
        event_id = json.loads(raw)["event_id"]
        stored = client.get(f"/v1/events/{event_id}").json()
        expected = encode_new(parse_event(raw, "writer"))
        assert canonical(stored["data"]) == expected.data
        assert stored["data_hash"] == expected.data_hash
        amount_as_stored = json.loads(expected.data)["price"]["amount"]
        assert stored["data"]["price"]["amount"] == amount_as_stored
        assert Decimal(amount_as_stored) == Decimal(amount)  # every digit, none through a float

    @staticmethod
    def correct_a_site(client, auth, old: str, new: str) -> tuple[str, httpx.Response]:
        """Buy a site, then correct it: its `data` as JSON text with `old` written as `new`."""
        target = json.loads(site_bought('"1"'))
        assert client.post("/v1/events", json={"events": [target]}, headers=auth).status_code == 201
        replacement = json.dumps(target["data"]).replace(old, new, 1)
        correction = json.dumps(
            org_event(
                stream="corrections",
                type="event_corrected",
                occurred_on="2024-06-01",
                data={"corrects": target["event_id"], "replacement": "R", "reason": "typo"},
            )
        ).replace('"R"', replacement)
        body = b'{"events":[' + correction.encode() + b"]}"
        headers = {**auth, "Content-Type": "application/json"}
        return target["data"]["site"], client.post("/v1/events", content=body, headers=headers)

    @pytest.mark.parametrize("amount", ["1.10", "1234567890123456.78", "15e-4"])
    def test_a_replacement_amount_sent_as_a_number_keeps_every_digit(
        self, client, auth, amount
    ) -> None:
        """A correction's replacement is untyped JSON: its numbers are read as Decimals too."""
        site, response = self.correct_a_site(client, auth, '"1"', amount)
        assert response.status_code == 201, response.text
        answer = client.get(f"/v1/capacity/sites/{site}").json()["data"]
        price = answer["price"]["amount"]
        assert answer["acquisitions"][0]["corrected_by"] == response.json()["events"][0]["event_id"]
        assert Decimal(price) == Decimal(amount)
        assert price == str(Decimal(amount))  # as written: `1.10`, not `1.1`

    def test_a_number_in_a_replacement_text_field_is_refused(self, client, auth) -> None:
        """A replacement is checked as its `data` would be: `2.50` is no name (422)."""
        _, response = self.correct_a_site(client, auth, '"A site"', "2.50")
        problem = assert_problem(response, 422)
        assert [e["path"] for e in problem["errors"]] == ["$.events[0].data.replacement.name"]

    def test_an_id_with_a_newline_is_not_another_id(self, client, auth) -> None:
        """A stored id plus a newline is refused (422), not stored as a new event beside it."""
        event = json.loads(site_bought('"5"'))
        assert client.post("/v1/events", json={"events": [event]}, headers=auth).status_code == 201
        head = client.get("/v1/events", params={"limit": 1}).json()["head"]
        other = {**event, "event_id": event["event_id"] + "\n", "sequence": 3}
        problem = assert_problem(
            client.post("/v1/events", json={"events": [other]}, headers=auth), 422
        )
        assert [e["path"] for e in problem["errors"]] == ["$.events[0].event_id"]
        assert client.get("/v1/events", params={"limit": 1}).json()["head"] == head

    def test_the_bad_fields_of_every_event_are_named(self, client, auth) -> None:
        """A bad field in one event's envelope does not hide another event's bad payload."""
        bad_price = json.loads(site_bought('"lots"'))
        bad_stream = org_event(stream="Not A Stream")
        body = {"events": [bad_price, bad_stream]}
        problem = assert_problem(client.post("/v1/events", json=body, headers=auth), 422)
        assert [e["path"] for e in problem["errors"]] == [
            "$.events[0].data.price.amount",
            "$.events[1].stream",
        ]

    @pytest.mark.parametrize(
        ("event", "path"),
        [
            (org_event(metadata={"tags": "one"}), "$.events[0].metadata.tags"),
            (org_event(source={"quote": "no url"}), "$.events[0].source.url"),
            (org_event(position=3), "$.events[0].position"),
        ],
        ids=["metadata-tags", "source-url", "ledger-field"],
    )
    def test_nested_paths_are_named_in_full(self, client, auth, event, path) -> None:
        """Paths are the ones `ledger append` reports for the same event, under `$.events[i]`."""
        problem = assert_problem(
            client.post("/v1/events", json={"events": [event]}, headers=auth), 422
        )
        assert [e["path"] for e in problem["errors"]] == [path]

    @pytest.mark.parametrize(
        ("versions", "path"),
        [
            ({"Not A Stream": 1}, ['$.expected_versions["Not A Stream"]']),
            ({"a": -1}, ['$.expected_versions["a"]']),
            ({"ok": 1, "b": "x", "C": 2}, ['$.expected_versions["b"]', '$.expected_versions["C"]']),
        ],
        ids=["key", "value", "each"],
    )
    def test_bad_expected_versions_are_named(self, client, auth, versions, path) -> None:
        """Each bad entry of `expected_versions`, a stream name or a version, by its key."""
        body = {"events": [org_event()], "expected_versions": versions}
        problem = assert_problem(client.post("/v1/events", json=body, headers=auth), 422)
        assert [e["path"] for e in problem["errors"]] == path
        assert "`key`" not in problem["errors"][0]["message"]

    def test_a_duplicate_event_id_names_the_second(self, client, auth) -> None:
        """An id twice in one batch: 422 at the second one's `event_id`; nothing stored."""
        first = org_event(event_id=str(uuid.uuid4()))
        again = org_event(event_id=first["event_id"])
        body = {"events": [org_event(), first, again]}
        problem = assert_problem(client.post("/v1/events", json=body, headers=auth), 422)
        assert [e["path"] for e in problem["errors"]] == ["$.events[2].event_id"]
        assert client.get(f"/v1/events/{first['event_id']}").status_code == 404

    def test_a_bad_replacement_is_named_under_events(self, client, auth) -> None:
        """A replacement that does not fit its target: 422 at the path in the body sent."""
        target = client.get("/v1/events", params={"type": "site_acquired"}).json()["events"][0]
        correction = org_event(
            stream="corrections",
            type="event_corrected",
            occurred_on="2026",
            data={"corrects": target["event_id"], "replacement": {"foo": 1}, "reason": "r"},
        )
        body = {"events": [org_event(), correction]}
        problem = assert_problem(client.post("/v1/events", json=body, headers=auth), 422)
        assert [e["path"] for e in problem["errors"]] == ["$.events[1].data.replacement.foo"]

    def test_codes_iso_never_assigned_are_named_and_nothing_is_stored(self, client, auth) -> None:
        """A country "UK" would be a second United Kingdom in every summary: 422, none kept."""
        head = client.get("/v1/events", params={"after": 0, "limit": 1}).json()["head"]
        uk = json.loads(site_bought('"1"'))
        uk["data"]["location"]["country"] = "UK"
        target = client.get("/v1/events", params={"type": "site_acquired"}).json()["events"][0]
        replacement = {**target["data"], "price": {"amount": "1", "currency": "XYZ"}}
        correction = org_event(
            stream="corrections",
            type="event_corrected",
            occurred_on="2026",
            data={"corrects": target["event_id"], "replacement": replacement, "reason": "r"},
        )
        for event, path, says in [
            (uk, "$.events[1].data.location.country", "use GB"),
            (correction, "$.events[1].data.replacement.price.currency", "ISO 4217"),
        ]:
            body = {"events": [org_event(), event]}
            problem = assert_problem(client.post("/v1/events", json=body, headers=auth), 422)
            assert [e["path"] for e in problem["errors"]] == [path]
            assert says in problem["errors"][0]["message"]
        assert client.get("/v1/events", params={"after": 0, "limit": 1}).json()["head"] == head

    def test_a_batch_over_the_limit_is_413_whatever_its_events(self, client, auth) -> None:
        """The batch limit is checked before any event is decoded."""
        body = {"events": [org_event(stream="Not A Stream") for _ in range(4)]}
        assert (
            "at most 3"
            in assert_problem(client.post("/v1/events", json=body, headers=auth), 413)["detail"]
        )

    def test_the_openapi_document_describes_the_wire_shape(self, client) -> None:
        """The request body is documented as `AppendBody`, events with their fields."""
        doc = client.get("/schema/openapi.json").json()
        body = doc["paths"]["/v1/events"]["post"]["requestBody"]
        assert body["required"] is True
        assert body["content"]["application/json"]["schema"] == {
            "$ref": "#/components/schemas/AppendBody"
        }
        schema = doc["components"]["schemas"]["AppendBody"]
        assert schema["required"] == ["events"]

    def test_the_document_states_the_bounds_the_server_applies(self, client, auth) -> None:
        """Each bound the document gives is the one a request meets (a review found 0 dropped)."""
        doc = client.get("/schema/openapi.json").json()
        schemas = doc["components"]["schemas"]
        event = schemas["EventBody"]["properties"]
        assert (event["sequence"]["minimum"], event["sequence"]["maximum"]) == (0, 1_000_000)
        assert (event["schema_version"]["minimum"], event["schema_version"]["maximum"]) == (1, 1000)
        (versions,) = [
            s
            for s in schemas["AppendBody"]["properties"]["expected_versions"]["oneOf"]
            if s["type"] == "object"
        ]
        assert versions["additionalProperties"]["minimum"] == 0
        limits = [
            parameter["schema"]["maximum"]
            for path in doc["paths"].values()
            if "get" in path
            for parameter in path["get"].get("parameters", [])
            if parameter["name"] == "limit"
        ]
        assert limits
        assert set(limits) == {1000}  # the page limit this app runs with
        assert "408" in doc["paths"]["/v1/events"]["post"]["responses"]
        # and each bound is the server's: just past it is a 422, at it is not
        past = [
            ({"events": [org_event(sequence=-1)]}, "$.events[0].sequence"),
            ({"events": [org_event()], "expected_versions": {"s": -1}}, '$.expected_versions["s"]'),
        ]
        for body, path in past:
            problem = assert_problem(client.post("/v1/events", json=body, headers=auth), 422)
            assert [e["path"] for e in problem["errors"]] == [path]
        assert client.get("/v1/events", params={"limit": 1000}).status_code == 200
        assert client.get("/v1/events", params={"limit": 1001}).status_code == 422

    def test_the_document_types_each_event_payload(self, client, auth) -> None:
        """`data` is one of the payload types, as sent and as answered (it was any object).

        Every stored seed event's `data` validates against its type's component, and a
        body built to the `…In` component (an amount as a JSON number) is appended.
        """
        import jsonschema_rs  # noqa: PLC0415 - only this test validates against the document

        from events.payloads import PAYLOAD_TYPES  # noqa: PLC0415 - only this test needs it

        doc = client.get("/schema/openapi.json").json()
        schemas = doc["components"]["schemas"]

        def validator(name: str) -> Any:
            schema = {"$ref": f"#/components/schemas/{name}", "components": doc["components"]}
            return jsonschema_rs.Draft202012Validator(schema)

        for component, suffix in (("EventBody", "In"), ("EventOut", "")):
            refs = [s["$ref"] for s in schemas[component]["properties"]["data"]["anyOf"]]
            assert refs == [
                f"#/components/schemas/{c.__name__}{suffix}" for c in PAYLOAD_TYPES.values()
            ]
        events = client.get("/v1/events", params={"limit": 100}).json()["events"]
        assert {e["type"] for e in events} >= {"site_acquired", "investment_committed"}
        for event in events:
            validator(PAYLOAD_TYPES[event["type"]].__name__).validate(event["data"])
        site = json.loads(site_bought("160000000.50"))  # an amount as a JSON number
        validator("SiteAcquiredIn").validate(site["data"])
        with pytest.raises(jsonschema_rs.ValidationError):
            validator("SiteAcquired").validate(site["data"])  # answers give strings
        assert client.post("/v1/events", json={"events": [site]}, headers=auth).status_code == 201
