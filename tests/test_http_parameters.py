"""A query parameter a route does not take is a 422 naming it, never silently ignored."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from http_fixtures import assert_problem, bearer, init_ledger, make_token, org_event, serving
from litestar import Litestar
from litestar.testing import TestClient

from events.seed import LOTTE, MERCK


@pytest.fixture(scope="module")
def ledger_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return init_ledger(tmp_path_factory.mktemp("parameters") / "ledger.db")


@pytest.fixture(scope="module")
def client(ledger_db: Path) -> Iterator[TestClient[Litestar]]:
    with serving(ledger_db) as client:
        yield client


def errors_of(client: TestClient[Litestar], url: str) -> dict[str, str]:
    problem = assert_problem(client.get(url), 422)
    return {error["path"]: error["message"] for error in problem["errors"]}


def test_a_misspelt_time_travel_parameter_is_refused_not_answered_as_today(
    client: TestClient[Litestar],
) -> None:
    # the same URL with `as_of` answers the past view: the typo must not answer today's
    past = client.get(f"/v1/partnerships/{LOTTE}/{MERCK}?as_of=2023-12-31")
    today = client.get(f"/v1/partnerships/{LOTTE}/{MERCK}")
    assert past.status_code == today.status_code == 200
    assert past.json()["data"] != today.json()["data"]

    errors = errors_of(client, f"/v1/partnerships/{LOTTE}/{MERCK}?asof=2023-12-31")
    assert errors == {"query.asof": "is not a parameter of this route (did you mean as_of?)"}


def test_every_unknown_name_is_listed_with_what_the_route_takes(
    client: TestClient[Litestar],
) -> None:
    errors = errors_of(client, "/v1/timeline?limit=2&Known-At=2024-01-01T00:00:00Z&zzz=1")
    assert errors == {
        "query.Known-At": "is not a parameter of this route (did you mean known_at?)",
        "query.zzz": (
            "is not a parameter of this route (it takes after, as_of, at_position, known_at, limit)"
        ),
    }


@pytest.mark.parametrize(
    ("url", "takes"),
    [
        ("/v1/events?x=1", "after, limit, stream, type"),
        ("/v1/streams/site-east-syracuse?x=1", "after, limit"),
        ("/v1/capacity/summary?x=1", "as_of, at_position, by, known_at"),
        ("/v1/organizations?x=1", "after, as_of, at_position, known_at, limit"),
        ("/v1/audit/verify?x=1", None),
    ],
)
def test_each_route_knows_its_own_parameters(
    client: TestClient[Litestar], url: str, takes: str | None
) -> None:
    message = errors_of(client, url)["query.x"]
    if takes is None:
        assert message == "is not a parameter of this route (it takes none)"
    else:
        assert message == f"is not a parameter of this route (it takes {takes})"


def test_known_parameters_still_answer(client: TestClient[Litestar]) -> None:
    for url in (
        "/v1/events?after=0&limit=2&type=memorandum_signed",
        "/v1/capacity/summary?by=country&as_of=2024-04-30",
        "/v1/timeline?limit=1&at_position=3",
        "/v1/audit/verify",
    ):
        assert client.get(url).status_code == 200, url


def test_operations_routes_take_any_parameter(client: TestClient[Litestar]) -> None:
    # probes and scrapers add their own: only `/v1` is checked
    assert client.get("/health/live?probe=k8s").status_code == 200
    assert client.get("/metrics?format=text").status_code == 200


def test_an_append_with_a_parameter_stores_nothing(
    client: TestClient[Litestar], ledger_db: Path
) -> None:
    auth = bearer(make_token(ledger_db, "parameters", "append"))
    head = client.get("/v1/events?limit=1").json()["head"]
    response = client.post("/v1/events?dry_run=true", json={"events": [org_event()]}, headers=auth)
    problem = assert_problem(response, 422)
    assert problem["errors"] == [
        {"path": "query.dry_run", "message": "is not a parameter of this route (it takes none)"}
    ]
    assert client.get("/v1/events?limit=1").json()["head"] == head


def test_a_preflight_keeps_the_query_of_its_url(client: TestClient[Litestar]) -> None:
    # a CORS preflight is sent to the whole URL, query included; that URL's GET answer is
    # cached, and is not the preflight's answer
    url = f"/v1/partnerships/{LOTTE}/{MERCK}?as_of=2023-12-31"
    assert client.get(url).status_code == 200
    response = client.options(url)
    assert response.status_code == 204
    assert response.content == b""
    assert response.headers["allow"] == "GET, HEAD, OPTIONS"


def test_a_write_without_its_token_is_refused_for_that_first(
    client: TestClient[Litestar], ledger_db: Path
) -> None:
    for path in ("/v1/events?dry_run=true", "/v1/audit/replay?x=1"):
        assert_problem(client.post(path, json={"events": [org_event()]}), 401)
    appender = bearer(make_token(ledger_db, "parameters-appender", "append"))
    assert_problem(client.post("/v1/audit/replay?x=1", headers=appender), 403)  # needs admin
    admin = bearer(make_token(ledger_db, "parameters-admin", "admin"))
    problem = assert_problem(client.post("/v1/audit/replay?x=1", headers=admin), 422)
    assert [error["path"] for error in problem["errors"]] == ["query.x"]


@pytest.mark.parametrize(
    ("url", "paths"),
    [
        # Litestar's type errors and the rules checked later, in one answer
        (
            "/v1/timeline?as_of=bad&known_at=bad&at_position=-1",
            ["query.as_of", "query.at_position", "query.known_at"],
        ),
        # two rules checked by two dependencies
        ("/v1/timeline?known_at=bad&limit=5000", ["query.known_at", "query.limit"]),
        (
            "/v1/events?limit=5000&type=nope&after=-1",
            ["query.after", "query.limit", "query.type"],
        ),
        (
            "/v1/capacity/summary?by=foo&as_of=2020-13-01&known_at=x&at_position=99999",
            ["query.as_of", "query.at_position", "query.by", "query.known_at"],
        ),
        # a name the route does not take, with a rule broken
        ("/v1/timeline?knownat=1&limit=5000", ["query.knownat", "query.limit"]),
        # a digit to `str.isdigit`, not to `int`: Litestar's type error, not a 500
        ("/v1/timeline?at_position=%C2%B9&known_at=x", ["query.at_position", "query.known_at"]),
        # a type error in one dependency, a rule broken in the other (either order)
        ("/v1/organizations?as_of=x&limit=99999", ["query.as_of", "query.limit"]),
        ("/v1/organizations?known_at=bad&limit=abc", ["query.known_at", "query.limit"]),
        ("/v1/organizations?at_position=99999&limit=abc", ["query.at_position", "query.limit"]),
        # every bad type, beside a type error
        ("/v1/events?type=foo&type=bar&after=x", ["query.after", "query.type", "query.type"]),
        # a parameter given twice is an error of its own, beside the others
        ("/v1/organizations?limit=99999&limit=5&as_of=x", ["query.as_of", "query.limit"]),
        # more digits than any position: past the head all the same
        (
            "/v1/timeline?at_position=9999999999999999999&as_of=x",
            ["query.as_of", "query.at_position"],
        ),
        # a cursor that does not parse, with a rule broken
        ("/v1/timeline?limit=2&after=zz&known_at=bad", ["query.after", "query.known_at"]),
        ("/v1/streams/site-daejeon?limit=5000&after=x", ["query.after", "query.limit"]),
    ],
)
def test_one_answer_names_every_bad_parameter(
    client: TestClient[Litestar], url: str, paths: list[str]
) -> None:
    problem = assert_problem(client.get(url), 422)
    assert sorted(error["path"] for error in problem["errors"]) == paths


@pytest.mark.parametrize(
    ("url", "name"),
    [
        ("/v1/partnerships?at_position=1e3", "at_position"),
        ("/v1/timeline?at_position=0.9999999999999999999", "at_position"),
        ("/v1/organizations?limit=2.0", "limit"),
        ("/v1/events?limit=1e2", "limit"),
        ("/v1/events?after=1e3", "after"),
        ("/v1/streams/site-daejeon?after=1.0", "after"),
        ("/v1/capacity/sites?at_position=%EF%BC%91", "at_position"),  # a full-width 1
        ("/v1/events?limit=", "limit"),
    ],
)
def test_an_integer_is_plain_digits(client: TestClient[Litestar], url: str, name: str) -> None:
    """`1e3` or `2.0` would be read as a number by Litestar: a pinned view is never rounded."""
    errors = errors_of(client, url)
    assert list(errors) == [f"query.{name}"]
    assert errors[f"query.{name}"].startswith("is not an integer in plain digits")


def test_a_negative_integer_is_told_its_bound(client: TestClient[Litestar]) -> None:
    assert errors_of(client, "/v1/events?limit=-1") == {"query.limit": "Expected `int` >= 1"}


def test_rules_are_said_in_the_domains_words(client: TestClient[Litestar]) -> None:
    errors = errors_of(client, "/v1/capacity/summary?by=region")
    assert errors == {"query.by": "is country or organization, not 'region'"}
    errors = errors_of(client, "/v1/timeline?known_at=x&at_position=99999")
    assert errors["query.at_position"].startswith("is past the head (")
    assert "RFC 3339" in errors["query.known_at"]


def test_a_long_bad_value_is_not_repeated_whole(client: TestClient[Litestar]) -> None:
    for url in ("/v1/timeline?known_at=" + "x" * 20_000, "/v1/capacity/summary?by=" + "y" * 20_000):
        response = client.get(url)
        assert response.status_code == 422
        assert len(response.content) < 1_000


def test_a_flood_of_unknown_names_gets_a_short_answer(client: TestClient[Litestar]) -> None:
    """3,000 unknown names (or one very long one): 20 listed, the rest counted, not echoed."""
    query = "&".join(f"p{n:04}=1" for n in range(3000))
    problem = assert_problem(client.get(f"/v1/timeline?{query}&{'q' * 5000}=1"), 422)
    paths = [error["path"] for error in problem["errors"]]
    assert paths == [f"query.p{n:04}" for n in range(20)] + ["query"]
    assert problem["errors"][-1]["message"] == "and 2981 more this route does not take"
    assert len(json.dumps(problem)) < 10_000


@pytest.mark.parametrize(
    "url",
    ["/v1/events/{}", "/v1/streams/{}", "/v1/organizations/{}", "/v1/capacity/sites/{}"],
)
def test_a_404_does_not_repeat_a_long_id_whole(client: TestClient[Litestar], url: str) -> None:
    problem = assert_problem(client.get(url.format("x" * 10_000)), 404)
    assert problem["detail"].endswith("…") or problem["detail"].endswith("… in this view")
    assert len(problem["detail"]) < 200


SEED_PROBE = """
import json, sys, tempfile
sys.path.insert(0, "tests")
from pathlib import Path
from http_fixtures import init_ledger, serving
db = init_ledger(Path(tempfile.mkdtemp()) / "l.db")
answers = []
with serving(db) as client:
    for url in sys.argv[2:]:
        errors = client.get(url).json()["errors"]
        answers.append(sorted(error["path"] for error in errors))
Path(sys.argv[1]).write_text(json.dumps(answers))
"""


def test_the_answer_does_not_depend_on_the_hash_seed(tmp_path: Path) -> None:
    """Litestar resolves dependencies in an order that varies with `PYTHONHASHSEED`.

    Each probe writes its answers to a file of its own: on stdout, a log line of another
    thread (the live state's follower) could land inside one of them.
    """
    urls = [
        "/v1/organizations?as_of=x&limit=99999",
        "/v1/timeline?at_position=abc&limit=5000",
        "/v1/organizations?known_at=bad&limit=abc",
        "/v1/organizations?at_position=99999&limit=abc",
    ]
    outputs = set()
    for seed in ("0", "1", "2"):
        out = tmp_path / f"seed-{seed}.json"
        subprocess.run(
            [sys.executable, "-c", SEED_PROBE, str(out), *urls],
            capture_output=True,
            text=True,
            timeout=120,
            check=True,
            env={**os.environ, "PYTHONHASHSEED": seed},
        )
        outputs.add(out.read_text())
    (answers,) = outputs
    assert [len(paths) for paths in json.loads(answers)] == [2] * len(urls), answers


@pytest.mark.parametrize(
    ("url", "name"),
    [
        (f"/v1/partnerships/{LOTTE}/{MERCK}?as_of=2023-12-31&as_of=2022-06-30", "as_of"),
        ("/v1/partnerships?at_position=5&at_position=9", "at_position"),
        ("/v1/timeline?known_at=2030-01-01T00:00:00Z&known_at=2020-01-01T00:00:00Z", "known_at"),
        ("/v1/events?limit=1&limit=2", "limit"),
        ("/v1/events?stream=a&stream=b", "stream"),
        ("/v1/capacity/summary?by=country&by=organization", "by"),
    ],
)
def test_a_parameter_given_twice_is_refused(
    client: TestClient[Litestar], url: str, name: str
) -> None:
    """The last one quietly won: a report could be computed at the wrong date (a review)."""
    assert errors_of(client, url) == {f"query.{name}": "is given 2 times; give it once"}


def test_types_may_be_given_many_times(client: TestClient[Litestar]) -> None:
    answer = client.get("/v1/events?type=site_acquired&type=memorandum_signed&limit=50")
    assert answer.status_code == 200
    assert {e["type"] for e in answer.json()["events"]} == {"site_acquired", "memorandum_signed"}
