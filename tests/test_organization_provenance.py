"""An organization's entry says where its name, country and parent come from.

Through the HTTP app: each entry carries its registration (valid time, event id, source,
and the correction its data comes from); a correction shows now and not before it.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from http_fixtures import bearer, init_ledger, make_token, serving
from litestar import Litestar
from litestar.testing import TestClient

from events.ids import seed_id
from events.seed import MERCK, MILLIPORE, SEED_URL

FIX = {"url": "https://example.invalid/errata", "quote": "MilliporeSigma is US-based."}


@pytest.fixture
def client(tmp_path: Path) -> Iterator[tuple[TestClient[Litestar], dict[str, str]]]:
    db = init_ledger(tmp_path / "ledger.db")
    with serving(db) as client:
        yield client, bearer(make_token(db, "provenance", "append"))


def organization(client: TestClient[Litestar], org_id: str, query: str = "") -> dict[str, Any]:
    response = client.get(f"/v1/organizations/{org_id}{query}")
    assert response.status_code == 200, response.text
    data: dict[str, Any] = response.json()["data"]
    return data


def test_each_entry_names_its_registration_and_source(client) -> None:
    http, _ = client
    merck = organization(http, MERCK)
    registration = merck["registration"]
    assert registration["event_id"] == str(seed_id("org-merck-kgaa"))
    assert registration["registered_on"] == "2022"
    assert registration["source"]["url"] == SEED_URL
    assert "Germany-based pharma giant" in registration["source"]["quote"]
    assert registration["corrected_by"] is None
    # the same event read from the log is the one named
    event = http.get(f"/v1/events/{registration['event_id']}").json()
    assert event["data"]["name"] == merck["name"]
    assert event["source"] == registration["source"]


def test_an_organization_never_registered_has_no_registration(client) -> None:
    http, auth = client
    memorandum = {
        "stream": "agreement-test-mou",
        "type": "memorandum_signed",
        "occurred_on": "2024-07-01",
        "data": {"agreement": "test-mou", "parties": [MERCK, "unregistered-co"], "scope": []},
        "source": {"url": "https://example.invalid/mou", "quote": "They signed."},
    }
    response = http.post("/v1/events", json={"events": [memorandum]}, headers=auth)
    assert response.status_code == 201, response.text
    stranger = organization(http, "unregistered-co")
    assert stranger["registered"] is False
    assert stranger["registration"] is None


def test_a_corrected_registration_names_its_correction_now_and_not_before(client) -> None:
    http, auth = client
    before = organization(http, MILLIPORE)
    head = http.get("/v1/events?limit=1").json()["head"]
    original = before["registration"]["event_id"]
    correction = {
        "stream": f"organization-{MILLIPORE}",
        "type": "event_corrected",
        "occurred_on": "2026-01-15",
        "data": {
            "corrects": original,
            "replacement": {"id": MILLIPORE, "name": "MilliporeSigma", "country": "US"},
            "reason": "country missing",
        },
        "source": FIX,
    }
    response = http.post("/v1/events", json={"events": [correction]}, headers=auth)
    assert response.status_code == 201, response.text
    correction_id = response.json()["events"][0]["event_id"]

    now = organization(http, MILLIPORE)
    assert now["country"] == "US"
    assert now["parent"] is None  # the replacement names no parent
    assert now["registration"]["event_id"] == original  # the announcement keeps its place
    assert now["registration"]["corrected_by"] == correction_id
    assert now["registration"]["source"] == before["registration"]["source"]

    then = organization(http, MILLIPORE, f"?at_position={head}")
    assert then == before
    assert then["registration"]["corrected_by"] is None
