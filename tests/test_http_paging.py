"""Pages of the projection lists: `limit` and `after`, `next` and `Link`, through the app."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from http_fixtures import assert_problem, bearer, init_ledger, make_token, org_event, serving
from litestar import Litestar
from litestar.testing import TestClient

from events.seed import LOTTE, MERCK

LISTS = ["/v1/timeline", "/v1/partnerships", "/v1/organizations", "/v1/capacity/sites"]
EXTRA_ORGS = 7
PAGE_LIMIT = 50


def partnership_event(org_a: str, org_b: str, occurred_on: str) -> dict[str, Any]:
    """A memorandum between two organizations: one more pair, one more timeline entry."""
    return {
        "stream": f"partnership-{org_a}-{org_b}",
        "type": "memorandum_signed",
        "occurred_on": occurred_on,
        "data": {
            "agreement": f"mou-{org_a}-{org_b}",
            "parties": [org_a, org_b],
            "scope": ["antibody-drug conjugates"],
        },
        "source": {"url": "https://example.invalid/mou", "quote": f"{org_a} and {org_b} signed."},
    }


@pytest.fixture
def ledger(tmp_path: Path) -> Iterator[tuple[TestClient[Litestar], dict[str, str]]]:
    """The seed plus organizations and memoranda, so every list spans several pages."""
    db = init_ledger(tmp_path / "ledger.db")
    with serving(db, page_limit=PAGE_LIMIT) as client:
        yield client, populate(client, db)


def populate(client: TestClient[Litestar], db: Path) -> dict[str, str]:
    """Append organizations and memoranda to the seed; the writer token's header."""
    auth = bearer(make_token(db, "writer", "append"))
    orgs = [org_event(f"paging-org-{i}") for i in range(EXTRA_ORGS)]
    memoranda = [
        partnership_event(LOTTE, f"paging-org-{i}", f"2023-0{i + 1}-15") for i in range(EXTRA_ORGS)
    ]
    response = client.post("/v1/events", json={"events": orgs + memoranda}, headers=auth)
    assert response.status_code == 201, response.text
    return auth


def walk(client: TestClient[Litestar], url: str, **params: Any) -> list[dict[str, Any]]:
    """Every page from `url`, following `next`; checks each page's `next` against its `Link`."""
    pages = []
    response = client.get(url, params=params)
    for _ in range(1000):  # bounded: a list of the fixture has well under 1000 pages
        assert response.status_code == 200, response.text
        body = response.json()
        assert set(body) == {"view", "data", "next"}
        pages.append(body)
        if body["next"] is None:
            assert "link" not in response.headers
            return pages
        assert response.headers["link"] == f'<{body["next"]}>; rel="next"'
        response = client.get(body["next"])
    pytest.fail("paging did not end")


class TestPages:
    @pytest.mark.parametrize("url", LISTS)
    @pytest.mark.parametrize("limit", [1, 2, 5])
    def test_pages_add_up_to_the_whole_list(self, ledger, url, limit) -> None:
        """Following `next` from the first page gives every entry once, in the list's order."""
        client, _ = ledger
        whole = client.get(url).json()
        assert whole["next"] is None  # no `limit`: a page of the page limit, the whole list here
        assert len(whole["data"]) <= PAGE_LIMIT
        pages = walk(client, url, limit=limit)
        assert [entry for page in pages for entry in page["data"]] == whole["data"]
        assert all(len(page["data"]) == limit for page in pages[:-1])
        assert 1 <= len(pages[-1]["data"]) <= limit
        assert len(pages) == -(-len(whole["data"]) // limit)
        assert all(page["view"] == whole["view"] for page in pages)

    def test_after_alone_takes_the_default_page(self, ledger) -> None:
        """`after` without `limit` pages by the page limit (50 here): the rest at once."""
        client, _ = ledger
        whole = client.get("/v1/timeline").json()["data"]
        first = client.get("/v1/timeline", params={"limit": 3}).json()
        rest = client.get(first["next"].replace("limit=3&", "")).json()
        assert first["data"] + rest["data"] == whole
        assert rest["next"] is None

    def test_after_alone_never_exceeds_the_page_limit(self, tmp_path) -> None:
        """With a page limit under 100, `after` alone pages by the page limit (found by review)."""
        db = init_ledger(tmp_path / "ledger.db")
        with serving(db, page_limit=3) as client:
            whole = [entry for page in walk(client, "/v1/timeline") for entry in page["data"]]
            assert len(whole) > 3
            page = client.get("/v1/timeline", params={"after": "1900-01-01,0,a"}).json()
            assert page["data"] == whole[:3]
            assert page["next"] is not None

    @pytest.mark.parametrize("url", LISTS)
    def test_no_answer_is_larger_than_the_page_limit(self, tmp_path, url) -> None:
        """Without `limit`, a list answers one page of the page limit, and `next`.

        Found by a review: `--page-limit 5` still answered all 184 organizations at once.
        """
        db = init_ledger(tmp_path / "ledger.db")
        with serving(db, page_limit=2) as client:
            populate(client, db)
            first = client.get(url).json()
            pages = walk(client, url)
            with serving(db) as unlimited:
                whole = unlimited.get(url).json()
        assert len(first["data"]) == 2
        assert first["next"] is not None
        assert all(len(page["data"]) <= 2 for page in pages)
        assert [entry for page in pages for entry in page["data"]] == whole["data"]

    def test_next_keeps_the_time_travel_parameters(self, ledger) -> None:
        """The next page is of the same view: `as_of`, `known_at`, `at_position` carry over."""
        client, _ = ledger
        view = {"as_of": "2023-12-31", "known_at": "2099-01-01T09:00:00+09:00", "at_position": 12}
        first = client.get("/v1/organizations", params={**view, "limit": 1}).json()
        query = parse_qs(urlsplit(first["next"]).query)
        assert query["as_of"] == ["2023-12-31"]
        assert query["known_at"] == ["2099-01-01T09:00:00+09:00"]
        assert query["at_position"] == ["12"]
        pages = walk(client, "/v1/organizations", **view, limit=1)
        assert all(page["view"] == first["view"] for page in pages)
        whole = client.get("/v1/organizations", params=view)
        assert [e for page in pages for e in page["data"]] == whole.json()["data"]

    def test_a_cached_page_keeps_its_link_and_etag(self, ledger) -> None:
        """A page asked again is served from the answer cache with the same `Link`; 304 too."""
        client, _ = ledger
        first = client.get("/v1/partnerships", params={"limit": 2})
        again = client.get("/v1/partnerships", params={"limit": 2})
        assert again.content == first.content
        assert again.headers["link"] == first.headers["link"]
        etag = first.headers["etag"]
        unchanged = client.get(
            "/v1/partnerships", params={"limit": 2}, headers={"If-None-Match": etag}
        )
        assert unchanged.status_code == 304
        assert unchanged.content == b""


class TestCursorsOverChanges:
    def test_a_retracted_cursor_entry_still_marks_its_place(self, ledger) -> None:
        """The entry a cursor names is retracted before the next page: nothing is skipped."""
        client, auth = ledger
        first = client.get("/v1/timeline", params={"limit": 4}).json()
        last = first["data"][-1]
        retraction = {
            "stream": last["stream"],
            "type": "event_retracted",
            "occurred_on": "2026-01-01",
            "data": {"retracts": last["event_id"], "reason": "a test of cursors"},
            "source": {"url": "https://example.invalid/erratum", "quote": "It was retracted."},
        }
        response = client.post("/v1/events", json={"events": [retraction]}, headers=auth)
        assert response.status_code == 201, response.text
        now = client.get("/v1/timeline").json()["data"]
        assert last["event_id"] not in {entry["event_id"] for entry in now}
        second = client.get(first["next"]).json()
        kept = [entry["event_id"] for entry in first["data"][:-1]]
        assert now[len(kept) : len(kept) + 4] == second["data"]
        assert second["view"]["position"] == first["view"]["position"] + 1

    def test_an_entry_backdated_before_the_cursor_is_not_repeated(self, ledger) -> None:
        """A new entry sorted before the cursor does not shift the next page back."""
        client, auth = ledger
        first = client.get("/v1/partnerships", params={"limit": 2}).json()
        early = partnership_event("aaa-paging-first", MERCK, "2001-01-01")
        org = org_event("aaa-paging-first")
        response = client.post("/v1/events", json={"events": [org, early]}, headers=auth)
        assert response.status_code == 201, response.text
        now = client.get("/v1/partnerships").json()["data"]
        assert now[0]["orgs"] == ["aaa-paging-first", MERCK]
        second = client.get(first["next"]).json()
        assert second["data"] == now[3:5]


class TestBadPages:
    @pytest.mark.parametrize("url", LISTS)
    @pytest.mark.parametrize("limit", [0, -3, PAGE_LIMIT + 1, "ten"])
    def test_a_bad_limit_is_422(self, ledger, url, limit) -> None:
        """`limit` under 1, over the page limit or not a number: 422 naming `query.limit`."""
        client, _ = ledger
        body = assert_problem(client.get(url, params={"limit": limit}), 422)
        assert [e["path"] for e in body["errors"]] == ["query.limit"]

    @pytest.mark.parametrize(
        ("url", "after"),
        [
            ("/v1/timeline", "lotte-biologics"),
            ("/v1/timeline", "2024-05-31,x,abc"),
            ("/v1/timeline", "2024-05-31,0,ABC"),
            ("/v1/partnerships", "lotte-biologics"),
            ("/v1/partnerships", "a,b,c"),
            ("/v1/organizations", "Lotte Biologics"),
            ("/v1/capacity/sites", "a,b"),
            ("/v1/capacity/sites", ""),
            ("/v1/organizations", "x" * 513),
        ],
    )
    def test_a_cursor_of_another_shape_is_422(self, ledger, url, after) -> None:
        """A cursor that is not of the list's key form: 422 naming `query.after`."""
        client, _ = ledger
        body = assert_problem(client.get(url, params={"after": after}), 422)
        assert [e["path"] for e in body["errors"]] == ["query.after"]

    def test_a_cursor_past_the_end_is_an_empty_last_page(self, ledger) -> None:
        """A well-formed cursor after every entry: no entries, no `next`."""
        client, _ = ledger
        body = client.get("/v1/organizations", params={"after": "zzzz", "limit": 5}).json()
        assert body["data"] == []
        assert body["next"] is None
