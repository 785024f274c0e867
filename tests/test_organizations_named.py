"""An organization named only by a plan or an initiative at no site still has an entry.

Through the HTTP app, on the live state kept up to date append by append (the answers of
the previous view carried and advanced), checked against a from-zero replay.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from http_fixtures import assert_problem, bearer, init_ledger, make_token, serving
from litestar import Litestar
from litestar.testing import TestClient


def plan(org: str, *, site: str | None = None) -> dict[str, Any]:
    data: dict[str, Any] = {
        "org": org,
        "location": {"city": "Berlin", "country": "DE"},
        "purpose": "a new plant",
    }
    if site is not None:
        data["site"] = site
    return {
        "stream": f"plans-{org}",
        "type": "facility_plan_announced",
        "occurred_on": "2025-02",
        "data": data,
        "source": {"url": "https://example.invalid/plan", "quote": f"{org} plans a plant."},
    }


def initiative(org: str) -> dict[str, Any]:
    return {
        "stream": f"initiatives-{org}",
        "type": "initiative_launched",
        "occurred_on": "2025-03",
        "data": {"org": org, "initiative": f"{org}-lab", "name": "A lab"},
        "source": {"url": "https://example.invalid/lab", "quote": f"{org} opens a lab."},
    }


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[TestClient[Litestar], Path]]:
    db = init_ledger(tmp_path / "ledger.db")
    with serving(db) as client:
        yield client, db


def ids(client: TestClient[Litestar]) -> list[str]:
    return [entry["id"] for entry in client.get("/v1/organizations").json()["data"]]


def test_plans_and_initiatives_at_no_site_name_their_organization(served) -> None:
    client, db = served
    auth = bearer(make_token(db, "named", "append"))
    before = ids(client)  # an answer the next views advance from
    assert_problem(client.get("/v1/organizations/planner-co"), 404)

    for events in ([plan("planner-co")], [initiative("lab-co")]):
        response = client.post("/v1/events", json={"events": events}, headers=auth)
        assert response.status_code == 201, response.text

    after = ids(client)
    assert sorted({*before, "planner-co", "lab-co"}) == after
    entry = client.get("/v1/organizations/planner-co").json()["data"]
    assert (entry["registered"], entry["registration"], entry["sites"]) == (False, None, [])

    # a view known before the plan still lacks it
    head = client.get("/v1/events?limit=1").json()["head"]
    assert "planner-co" not in ids_at(client, head - 2)
    assert "planner-co" in ids_at(client, head - 1)

    admin = bearer(make_token(db, "named-auditor", "admin"))
    replay = client.post("/v1/audit/replay", headers=admin).json()
    assert replay["projections"]["organizations"]["match"] is True, replay


def ids_at(client: TestClient[Litestar], position: int) -> list[str]:
    answer = client.get(f"/v1/organizations?at_position={position}").json()
    return [entry["id"] for entry in answer["data"]]
