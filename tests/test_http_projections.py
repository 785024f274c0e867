"""Projection routes through the test client: shapes, seed facts, time travel, ETags, audit."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from http_fixtures import (
    HEX64,
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

from events.seed import DAEJEON, DEAL_2024, EAST_SYRACUSE, LOTTE, MERCK, MILLIPORE, MOU_2022

VIEW_KEYS = {"position", "as_of", "known_at", "at_position", "digest"}
LIST_URLS = {"/v1/organizations", "/v1/partnerships", "/v1/capacity/sites", "/v1/timeline"}
PROJECTION_URLS = [
    "/v1/organizations",
    f"/v1/organizations/{MILLIPORE}",
    "/v1/partnerships",
    f"/v1/partnerships/{LOTTE}/{MERCK}",
    f"/v1/partnerships/{MERCK}/{LOTTE}",
    "/v1/capacity/sites",
    f"/v1/capacity/sites/{DAEJEON}",
    "/v1/capacity/summary",
    "/v1/capacity/summary?by=country",
    "/v1/capacity/summary?by=organization",
    "/v1/timeline",
]
ONE_THING_URLS = [
    f"/v1/organizations/{MILLIPORE}",
    f"/v1/partnerships/{LOTTE}/{MERCK}",
    f"/v1/capacity/sites/{DAEJEON}",
]


@pytest.fixture(scope="module")
def ledger_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return init_ledger(tmp_path_factory.mktemp("projections") / "ledger.db")


@pytest.fixture(scope="module")
def client(ledger_db: Path) -> Iterator[TestClient[Litestar]]:
    """A client on the seeded ledger; nothing in this module appends to it."""
    with serving(ledger_db) as client:
        yield client


@pytest.fixture
def fresh(tmp_path: Path) -> Iterator[tuple[TestClient[Litestar], dict[str, str]]]:
    """A client on a ledger of its own (for tests that append) and an append token."""
    db = init_ledger(tmp_path / "ledger.db")
    with serving(db) as client:
        yield client, bearer(make_token(db, "writer", "append"))


def data(client: TestClient[Litestar], url: str, **params: object) -> object:
    response = client.get(url, params=params)
    assert response.status_code == 200, response.text
    return response.json()["data"]


class TestShape:
    @pytest.mark.parametrize("url", PROJECTION_URLS)
    def test_answers_view_and_data(self, client, url) -> None:
        """Every projection answers `{"view": {position, as_of, known_at, …, digest}, "data"}`.

        A list answers one page of it, with `next` (null: the seed's lists fit in one page).
        """
        response = client.get(url)
        assert response.status_code == 200
        assert response.headers["content-type"] == "application/json"
        body = response.json()
        if url in LIST_URLS:
            assert set(body) == {"view", "data", "next"}
            assert body["next"] is None
        else:
            assert set(body) == {"view", "data"}
        view = body["view"]
        assert set(view) == VIEW_KEYS
        assert view["position"] == SEED_COUNT
        assert view["as_of"] is view["known_at"] is view["at_position"] is None
        assert HEX64.match(view["digest"])

    @pytest.mark.parametrize("url", PROJECTION_URLS)
    def test_the_view_echoes_the_coordinates(self, client, url) -> None:
        """`as_of`, `known_at` (normalized to UTC) and `at_position` come back in `view`."""
        params = {"as_of": "2024-04-30", "known_at": "2099-01-01T09:00:00+09:00", "at_position": 9}
        view = client.get(url, params=params).json()["view"]
        assert view["as_of"] == "2024-04-30"
        assert datetime.fromisoformat(view["known_at"]) == datetime(2099, 1, 1, tzinfo=UTC)
        assert datetime.fromisoformat(view["known_at"]).utcoffset().total_seconds() == 0
        assert view["at_position"] == 9
        assert view["position"] == 9

    def test_lists_hold_the_seed(self, client) -> None:
        """The seed gives four organizations, one partnership pair and three sites."""
        orgs = data(client, "/v1/organizations")
        assert sorted(o["id"] for o in orgs) == sorted(
            [LOTTE, MERCK, MILLIPORE, "bristol-myers-squibb"]
        )
        pairs = data(client, "/v1/partnerships")
        assert [p["orgs"] for p in pairs] == [[LOTTE, MERCK]]
        sites = data(client, "/v1/capacity/sites")
        assert sorted(s["site"] for s in sites) == sorted(
            [EAST_SYRACUSE, DAEJEON, "songdo-bio-campus"]
        )

    def test_an_organization_shows_its_family(self, client) -> None:
        """MilliporeSigma's parent is Merck KGaA, which lists it among its subsidiaries."""
        millipore = data(client, f"/v1/organizations/{MILLIPORE}")
        merck = data(client, f"/v1/organizations/{MERCK}")
        assert millipore["parent"] == MERCK
        assert MILLIPORE in merck["subsidiaries"]
        assert LOTTE in merck["partners"]


class TestSeedFacts:
    @pytest.mark.parametrize(("org_a", "org_b"), [(LOTTE, MERCK), (MERCK, LOTTE)])
    def test_at_the_end_of_2023_only_the_memorandum(self, client, org_a, org_b) -> None:
        """As of 2023-12-31 the pair has only the 2022 MoU, signed through MilliporeSigma."""
        pair = data(client, f"/v1/partnerships/{org_a}/{org_b}", as_of="2023-12-31")
        assert pair["orgs"] == [LOTTE, MERCK]
        assert [a["agreement"] for a in pair["agreements"]] == [MOU_2022]
        assert pair["agreements"][0]["type"] == "memorandum"
        assert pair["through"][MERCK] == [MILLIPORE]
        assert pair["since"] == "2022"

    @pytest.mark.parametrize(("org_a", "org_b"), [(LOTTE, MERCK), (MILLIPORE, LOTTE)])
    def test_today_the_2024_deal_too(self, client, org_a, org_b) -> None:
        """Now the pair (asked through a subsidiary or not) has the MoU then the 2024 deal."""
        pair = data(client, f"/v1/partnerships/{org_a}/{org_b}")
        assert [a["agreement"] for a in pair["agreements"]] == [MOU_2022, DEAL_2024]
        assert sorted(pair["through"][MERCK]) == [MERCK, MILLIPORE]

    def test_daejeon_in_april_2024(self, client) -> None:
        """As of 2024-04-30, Daejeon has USD 326,000,000 committed and 300 jobs."""
        site = data(client, f"/v1/capacity/sites/{DAEJEON}", as_of="2024-04-30")
        assert site["committed"] == {"USD": "326000000"}
        assert site["jobs"] == 300
        assert site["location"]["country"] == "KR"
        assert [i["org"] for i in site["investments"]] == [MILLIPORE]

    def test_daejeon_before_the_investment(self, client) -> None:
        """As of 2023-12-31, Daejeon is only Merck KGaA's plan: nothing committed yet."""
        site = data(client, f"/v1/capacity/sites/{DAEJEON}", as_of="2023-12-31")
        assert site["committed"] == {}
        assert site["jobs"] == 0
        assert [p["org"] for p in site["plans"]] == [MERCK]

    def test_summary_by_organization_rolls_up_to_the_parent(self, client) -> None:
        """By organization, MilliporeSigma's money and jobs count for Merck KGaA."""
        rows = data(client, "/v1/capacity/summary", by="organization", as_of="2024-04-30")
        by_key = {row["key"]: row for row in rows}
        assert MILLIPORE not in by_key
        assert by_key[MERCK]["committed"] == {"USD": "326000000"}
        assert by_key[MERCK]["jobs"] == 300
        assert by_key[LOTTE]["acquisitions"] == {"USD": "160000000"}

    def test_summary_by_country(self, client) -> None:
        """By country, Korea holds the Daejeon commitment and the US the East Syracuse purchase."""
        rows = {row["key"]: row for row in data(client, "/v1/capacity/summary", by="country")}
        assert rows["KR"]["committed"] == {"USD": "326000000"}
        assert rows["KR"]["jobs"] == 300
        assert rows["US"]["acquisitions"] == {"USD": "160000000"}

    def test_summary_defaults_to_country(self, client) -> None:
        """`by` defaults to country."""
        assert data(client, "/v1/capacity/summary") == data(
            client, "/v1/capacity/summary", by="country"
        )

    def test_the_timeline_is_in_valid_time_order_with_provenance(self, client) -> None:
        """The timeline is in valid-time order (the purchase before the MoU), each entry sourced."""
        entries = data(client, "/v1/timeline")
        assert len(entries) == SEED_COUNT
        announcements = [e for e in entries if e["type"] != "organization_registered"]
        assert [e["type"] for e in announcements] == [
            "site_acquired",
            "memorandum_signed",
            "facility_plan_announced",
            "initiative_launched",
            "investment_committed",
            "partnership_agreed",
        ]
        assert all(e["source"]["quote"] for e in entries)
        assert all(e["summary"] for e in entries)


class TestTimeTravel:
    @pytest.mark.parametrize(("at_position", "orgs"), [(0, 0), (1, 1), (4, 4), (10, 4)])
    def test_at_position_cuts_the_log(self, client, at_position, orgs) -> None:
        """`at_position=N` sees only the first N events."""
        assert len(data(client, "/v1/organizations", at_position=at_position)) == orgs

    def test_at_position_before_any_agreement_has_no_partnership(self, client) -> None:
        """Before the MoU's position, the pair is unknown: 404."""
        response = client.get(f"/v1/partnerships/{LOTTE}/{MERCK}", params={"at_position": 5})
        assert_problem(response, 404)
        assert data(client, "/v1/partnerships", at_position=5) == []

    def test_known_at_before_the_seed_sees_nothing(self, client) -> None:
        """`known_at` before anything was recorded gives empty projections."""
        for url in ("/v1/organizations", "/v1/partnerships", "/v1/capacity/sites", "/v1/timeline"):
            assert data(client, url, known_at="2000-01-01T00:00:00Z") == []

    def test_known_at_cuts_digits_past_the_microsecond(self, fresh) -> None:
        """`known_at` a tenth of a microsecond before an event's recording leaves it out.

        Rounded to the microsecond, that moment would be the recording's own and take the
        event in: a view as known at a moment must not show what was recorded after it.
        """
        client, auth = fresh
        event = org_event()
        response = client.post("/v1/events", json={"events": [event]}, headers=auth)
        recorded = datetime.fromisoformat(response.json()["events"][0]["recorded_at"])
        just_before = (recorded - timedelta(microseconds=1)).strftime("%Y-%m-%dT%H:%M:%S.%f")
        ids = {e["id"] for e in data(client, "/v1/organizations")}
        assert event["data"]["id"] in ids
        known_then = data(client, "/v1/organizations", known_at=just_before + "9Z")
        assert event["data"]["id"] not in {e["id"] for e in known_then}
        known_at_it = data(client, "/v1/organizations", known_at=recorded.isoformat())
        assert event["data"]["id"] in {e["id"] for e in known_at_it}

    @pytest.mark.parametrize("url", PROJECTION_URLS)
    def test_known_at_now_is_the_live_view(self, client, url) -> None:
        """`known_at` after every recording gives the live digest."""
        live = client.get(url).json()["view"]["digest"]
        later = client.get(url, params={"known_at": "2999-01-01T00:00:00Z"}).json()
        assert later["view"]["digest"] == live

    @pytest.mark.parametrize(
        ("as_of", "types"),
        [
            ("2021-12-31", []),
            ("2022-06-30", []),
            ("2022-12-31", ["site_acquired", "memorandum_signed"]),
            ("2023-05-31", ["site_acquired", "memorandum_signed", "facility_plan_announced"]),
        ],
    )
    def test_as_of_counts_an_event_from_the_end_of_its_period(self, client, as_of, types) -> None:
        """An event dated `2022` counts from 2022-12-31, `2023-05` from 2023-05-31."""
        entries = data(client, "/v1/timeline", as_of=as_of)
        assert [e["type"] for e in entries if e["type"] != "organization_registered"] == types


class TestETag:
    @pytest.mark.parametrize("url", PROJECTION_URLS)
    def test_if_none_match_gives_304_without_a_body(self, client, url) -> None:
        """A projection has a weak ETag; sending it back answers 304 with no body."""
        first = client.get(url)
        etag = first.headers["etag"]
        assert etag.startswith('W/"')
        assert etag.endswith('"')
        again = client.get(url, headers={"If-None-Match": etag})
        assert again.status_code == 304
        assert again.content == b""
        assert again.headers["etag"] == etag

    @pytest.mark.parametrize(
        "header", ['"nope"', 'W/"weak", "other"', "*x", ""], ids=["other", "list", "junk", "empty"]
    )
    def test_another_etag_gives_the_body(self, client, header) -> None:
        """An `If-None-Match` that does not name the current ETag answers 200 with the body."""
        response = client.get("/v1/partnerships", headers={"If-None-Match": header})
        assert response.status_code == 200
        assert response.json()["data"]

    def test_a_list_of_etags_including_the_current_one_gives_304(self, client) -> None:
        """`If-None-Match` with several tags, one of them current, answers 304."""
        etag = client.get("/v1/timeline").headers["etag"]
        response = client.get("/v1/timeline", headers={"If-None-Match": f'"old", {etag}'})
        assert response.status_code == 304

    @pytest.mark.parametrize("form", ["weak", "star", "star-in-list"])
    def test_weak_comparison_and_star_give_304(self, client, form) -> None:
        """`If-None-Match` compares weakly (RFC 9110): `"x"` matches `W/"x"`; `*` matches."""
        etag = client.get("/v1/timeline").headers["etag"]
        strong = etag.removeprefix("W/")
        header = {"weak": strong, "star": "*", "star-in-list": '"old", *'}[form]
        response = client.get("/v1/timeline", headers={"If-None-Match": header})
        assert response.status_code == 304
        assert response.content == b""
        unknown = client.get("/v1/organizations/nobody", headers={"If-None-Match": header})
        assert_problem(unknown, 404)

    def test_compressed_or_not_one_weak_tag(self, client) -> None:
        """The gzip and identity answers share the tag, so it is weak (RFC 9110 8.8.3).

        Each revalidates the other.
        """
        plain = client.get("/v1/timeline", headers={"Accept-Encoding": "identity"})
        zipped = client.get("/v1/timeline", headers={"Accept-Encoding": "gzip"})
        assert zipped.headers.get("content-encoding") == "gzip"
        assert "content-encoding" not in plain.headers
        assert plain.headers["etag"] == zipped.headers["etag"]
        assert plain.headers["etag"].startswith("W/")
        again = client.get(
            "/v1/timeline",
            headers={"Accept-Encoding": "identity", "If-None-Match": zipped.headers["etag"]},
        )
        assert again.status_code == 304

    def test_a_header_that_is_not_utf8_is_not_a_crash(self, client) -> None:
        """`If-None-Match` bytes that are not UTF-8 match nothing: 200, not 500."""
        response = client.get("/v1/timeline", headers={"If-None-Match": b'"\xff\xfe"'})
        assert response.status_code == 200

    def test_coordinates_change_the_etag(self, client) -> None:
        """Two views with different states have different ETags."""
        now = client.get("/v1/partnerships").headers["etag"]
        then = client.get("/v1/partnerships", params={"as_of": "2023-12-31"}).headers["etag"]
        assert now != then

    @pytest.mark.parametrize(
        ("url", "known"),
        [
            ("/v1/organizations/nobody", "/v1/organizations"),
            ("/v1/capacity/sites/nowhere", "/v1/capacity/sites"),
            (f"/v1/partnerships/{LOTTE}/nobody", "/v1/partnerships"),
        ],
    )
    def test_an_unknown_id_is_404_even_with_a_current_etag(self, client, url, known) -> None:
        """An unknown id answers 404, not 304, whatever `If-None-Match` says."""
        etag = client.get(known).headers["etag"]
        assert_problem(client.get(url, headers={"If-None-Match": etag}), 404)

    def test_an_append_changes_the_etag(self, fresh) -> None:
        """After an append, the old ETag no longer matches: 200 with the new state."""
        client, auth = fresh
        before = client.get("/v1/organizations")
        etag = before.headers["etag"]
        assert client.get("/v1/organizations", headers={"If-None-Match": etag}).status_code == 304
        created = client.post("/v1/events", json={"events": [org_event("acme")]}, headers=auth)
        assert created.status_code == 201
        after = client.get("/v1/organizations", headers={"If-None-Match": etag})
        assert after.status_code == 200
        assert after.headers["etag"] != etag
        assert after.json()["view"]["position"] == SEED_COUNT + 1
        assert "acme" in {o["id"] for o in after.json()["data"]}


class TestAudit:
    def test_verify_reports_an_intact_chain(self, client) -> None:
        """`GET /v1/audit/verify` says ok, the head and how many events it checked."""
        body = client.get("/v1/audit/verify").json()
        assert body == {
            "ok": True,
            "head": SEED_COUNT,
            "checked": SEED_COUNT,
            "first_bad_position": None,
            "reason": None,
        }

    def test_replay_matches_live(self, ledger_db, client) -> None:
        """`POST /v1/audit/replay` with an admin token rebuilds from zero: every digest matches."""
        token = make_token(ledger_db, "auditor", "admin")
        response = client.post("/v1/audit/replay", headers=bearer(token))
        assert response.status_code == 200
        body = response.json()
        assert body["match"] is True
        assert body["position"] == SEED_COUNT
        assert set(body["projections"]) == {"organizations", "partnerships", "capacity", "timeline"}
        for pair in body["projections"].values():
            assert pair["match"] is True
            assert pair["live"] == pair["replayed"]
            assert HEX64.match(pair["live"])

    def test_replay_digests_are_the_views_digests(self, ledger_db, client) -> None:
        """The live digests the replay compares are the ones the projection routes report."""
        token = make_token(ledger_db, "auditor-2", "admin")
        replay = client.post("/v1/audit/replay", headers=bearer(token)).json()["projections"]
        assert (
            replay["partnerships"]["live"]
            == (client.get("/v1/partnerships").json()["view"]["digest"])
        )
        assert replay["timeline"]["live"] == client.get("/v1/timeline").json()["view"]["digest"]


def rename_behind_the_ledger(db: Path, position: int) -> None:
    """Change one byte of a row's `data` with sqlite3, as someone editing the file would."""
    with sqlite3.connect(db) as conn:
        conn.execute("DROP TRIGGER IF EXISTS events_no_update")
        (data,) = conn.execute("SELECT data FROM events WHERE position = ?", (position,)).fetchone()
        tampered = data.replace('"name":"', '"name":"X', 1)
        assert tampered != data
        conn.execute("UPDATE events SET data = ? WHERE position = ?", (tampered, position))
    conn.close()


class TestAuditOfABrokenLedger:
    def test_verify_names_the_first_bad_position(self, tmp_path: Path) -> None:
        """A row changed behind the ledger: `ok` false, its position, and the verified head."""
        db = init_ledger(tmp_path / "ledger.db")
        rename_behind_the_ledger(db, 3)
        with serving(db) as client:
            body = client.get("/v1/audit/verify").json()
        assert body["ok"] is False
        assert body["first_bad_position"] == 3
        assert body["head"] == 2  # the last position whose chain holds
        assert body["reason"]

    def test_replay_tells_live_and_log_apart(self, tmp_path: Path) -> None:
        """A row changed after it was folded: the replay's digest differs from the live one.

        The organizations (whose name changed) and the views that show names do not match;
        `match` is false for the whole answer.
        """
        db = init_ledger(tmp_path / "ledger.db")
        token = make_token(db, "auditor", "admin")
        with serving(db) as client:
            assert client.get("/v1/organizations").status_code == 200  # live state is folded
            rename_behind_the_ledger(db, 1)
            body = client.post("/v1/audit/replay", headers=bearer(token)).json()
        assert body["match"] is False
        organizations = body["projections"]["organizations"]
        assert organizations["match"] is False
        assert organizations["live"] != organizations["replayed"]
        assert all(
            pair["match"] is (pair["live"] == pair["replayed"])
            for pair in body["projections"].values()
        )


class TestHealth:
    def test_live(self, client) -> None:
        """`/health/live` answers 200 `{"status": "ok"}`."""
        response = client.get("/health/live")
        assert response.status_code == 200
        assert response.json()["status"] == "ok"

    def test_an_append_during_the_probe_is_not_a_lag(self, fresh) -> None:
        """An append committed while the probe catches up: still ready (was 503 under load)."""
        client, auth = fresh
        projector = client.app.state.ledger.projector
        catch_up = projector.catch_up

        def catch_up_then_append() -> object:
            caught = catch_up()
            response = client.post("/v1/events", json={"events": [org_event()]}, headers=auth)
            assert response.status_code == 201
            return caught

        projector.catch_up = catch_up_then_append
        try:
            response = client.get("/health/ready")
        finally:
            del projector.catch_up
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["head"] >= body["projected"]

    def test_ready_reports_head_and_projection(self, client) -> None:
        """`/health/ready` answers 200 with the head and the projected position, equal."""
        body = client.get("/health/ready").json()
        assert body["status"] == "ok"
        assert body["head"] == body["projected"] == SEED_COUNT
