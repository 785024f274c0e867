"""Bearer tokens: writes need scope append (admin implies it), reads when configured; the CLI."""

from __future__ import annotations

import hashlib
import json
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from http_fixtures import (
    SEED_COUNT,
    assert_problem,
    bearer,
    build_app,
    init_ledger,
    make_token,
    org_event,
    serving,
)
from litestar import Litestar
from litestar.testing import TestClient

from events.seed import MERCK

LEDGER = str(Path(sys.executable).with_name("ledger"))
READS = [
    "/v1/events",
    "/v1/events/0190d4b6-0000-7000-8000-000000000000",
    "/v1/streams/site-daejeon",
    "/v1/organizations",
    f"/v1/organizations/{MERCK}",
    "/v1/partnerships",
    "/v1/capacity/sites",
    "/v1/capacity/summary",
    "/v1/timeline",
    "/v1/audit/verify",
]
OPEN = ["/health/live", "/health/ready", "/metrics", "/schema/openapi.json"]


@pytest.fixture(scope="module")
def ledger_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return init_ledger(tmp_path_factory.mktemp("auth") / "ledger.db")


@pytest.fixture(scope="module")
def client(ledger_db: Path) -> Iterator[TestClient[Litestar]]:
    with serving(ledger_db) as client:
        yield client


@pytest.fixture(scope="module")
def closed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient[Litestar]]:
    """A client on a ledger whose reads need a token too."""
    db = init_ledger(tmp_path_factory.mktemp("closed") / "ledger.db")
    with serving(db, read_token_required=True) as client:
        client.headers["X-Token"] = make_token(db, "reader", "append")
        yield client


class TestWrites:
    @pytest.mark.parametrize("scopes", [("append",), ("admin",), ("append", "admin")])
    def test_append_or_admin_may_write(self, ledger_db, client, scopes) -> None:
        """A token of scope append, or admin (which implies it), may append."""
        token = make_token(ledger_db, f"writer-{'-'.join(scopes)}", *scopes)
        response = client.post("/v1/events", json={"events": [org_event()]}, headers=bearer(token))
        assert response.status_code == 201

    def test_without_a_token_nothing_is_written(self, client) -> None:
        """A write without a token is refused before anything is stored."""
        before = client.get("/v1/events", params={"limit": 1}).json()["head"]
        assert_problem(client.post("/v1/events", json={"events": [org_event()]}), 401)
        assert client.get("/v1/events", params={"limit": 1}).json()["head"] == before

    @pytest.mark.parametrize(
        ("body", "content_type"),
        [
            (b'{"events": [', "application/json"),
            (b'{"events": []}', "text/plain"),
            (b'{"events": [{"stream": "x"}]}', "application/json"),
        ],
        ids=["bad-json", "bad-content-type", "invalid-event"],
    )
    def test_the_token_is_checked_before_the_body(
        self, ledger_db, client, body, content_type
    ) -> None:
        """401 without a token and 403 without the scope, whatever is wrong with the body."""
        headers = {"Content-Type": content_type}
        assert_problem(client.post("/v1/events", content=body, headers=headers), 401)
        assert_problem(client.post("/v1/audit/replay", content=body, headers=headers), 401)
        appender = {**headers, **bearer(make_token(ledger_db, "appender", "append"))}
        assert_problem(client.post("/v1/audit/replay", content=body, headers=appender), 403)
        assert client.post("/v1/events", content=body, headers=appender).status_code in {
            400,
            415,
            422,
        }

    @pytest.mark.parametrize("claimed", [None, "mallory", "alice"])
    def test_recorded_by_is_the_token_subject(self, ledger_db, client, claimed) -> None:
        """`metadata.recorded_by` is the token's subject, whatever the client sent."""
        token = make_token(ledger_db, "alice", "append")
        event = org_event(metadata={"correlation_id": "req-7", "tags": ["news"]})
        if claimed is not None:
            event["metadata"]["recorded_by"] = claimed
        response = client.post("/v1/events", json={"events": [event]}, headers=bearer(token))
        event_id = response.json()["events"][0]["event_id"]
        stored = client.get(f"/v1/events/{event_id}").json()["metadata"]
        assert stored["recorded_by"] == "alice"
        assert stored["correlation_id"] == "req-7"
        assert stored["tags"] == ["news"]

    def test_replay_needs_admin(self, ledger_db, client) -> None:
        """`POST /v1/audit/replay` is 403 for append, 200 for admin, 401 without a token."""
        append = bearer(make_token(ledger_db, "appender", "append"))
        admin = bearer(make_token(ledger_db, "root", "admin"))
        missing = client.post("/v1/audit/replay")
        assert_problem(missing, 401)
        assert missing.headers["www-authenticate"] == 'Bearer realm="ledger"'  # RFC 6750 3.1
        forbidden = client.post("/v1/audit/replay", headers=append)
        assert_problem(forbidden, 403)
        assert forbidden.headers["www-authenticate"] == (
            'Bearer realm="ledger", error="insufficient_scope", scope="admin"'
        )
        unknown = client.post("/v1/audit/replay", headers=bearer("pl_unknown"))
        assert 'error="invalid_token"' in unknown.headers["www-authenticate"]
        assert client.post("/v1/audit/replay", headers=admin).status_code == 200

    def test_the_scheme_is_case_insensitive(self, ledger_db, client) -> None:
        """`bearer` and `BEARER` work like `Bearer`."""
        token = make_token(ledger_db, "shouty", "append")
        for scheme in ("bearer", "BEARER"):
            headers = {"Authorization": f"{scheme} {token}"}
            response = client.post("/v1/events", json={"events": [org_event()]}, headers=headers)
            assert response.status_code == 201


class TestReads:
    @pytest.mark.parametrize("url", READS)
    def test_reads_are_open_by_default(self, client, url) -> None:
        """Without `read_token_required`, reads need no token."""
        assert client.get(url).status_code in {200, 404}

    @pytest.mark.parametrize("url", READS)
    def test_reads_need_a_token_when_configured(self, closed, url) -> None:
        """With `read_token_required`, a read without a token is a 401; with one it answers."""
        assert_problem(closed.get(url), 401)
        assert_problem(closed.get(url, headers=bearer("pl_unknown_token")), 401)
        answered = closed.get(url, headers=bearer(closed.headers["X-Token"]))
        assert answered.status_code in {200, 404}
        assert answered.status_code == 200 or "no event" in answered.text

    @pytest.mark.parametrize("url", ["/api/v1/events", "/v1/audit/verify", "/api/v1/timeline"])
    def test_reads_need_a_token_behind_a_path_prefix_too(self, tmp_path: Path, url: str) -> None:
        """Served under a `root_path` (a proxy's prefix), the guard still knows a `/v1` read."""
        db = init_ledger(tmp_path / "ledger.db")
        token = make_token(db, "reader", "append")
        with TestClient(build_app(db, read_token_required=True), root_path="/api") as client:
            assert_problem(client.get(url), 401)
            assert client.get(url, headers=bearer(token)).status_code == 200
            assert client.get("/api/health/live").status_code == 200

    def test_a_header_longer_than_any_token_is_not_looked_at(self, closed) -> None:
        """A 1 MB `Authorization` is a 401 saying it is no token, not hashed whatever its size."""
        response = closed.get("/v1/events", headers=bearer("x" * 1_000_000))
        assert "not a bearer token" in assert_problem(response, 401)["detail"]
        assert 'error="invalid_token"' in response.headers["www-authenticate"]

    @pytest.mark.parametrize("url", OPEN)
    def test_probes_metrics_and_schema_stay_open(self, closed, url) -> None:
        """With `read_token_required`, probes, /metrics and the OpenAPI document need no token."""
        assert closed.get(url).status_code == 200


def ledger(db: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """Run the installed `ledger --database DB ARGS…` as a real process."""
    return subprocess.run(
        [LEDGER, "--database", str(db), *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        stdin=subprocess.DEVNULL,
    )


class TestTokenCommand:
    def test_create_list_use_revoke(self, tmp_path) -> None:
        """`ledger token create` prints the token once, `list` hides it, `revoke` ends it."""
        db = init_ledger(tmp_path / "ledger.db")
        created = ledger(db, "token", "create", "--scope", "append", "--subject", "analyst-1")
        assert created.returncode == 0, created.stderr
        lines = created.stdout.splitlines()
        assert len(lines) == 1
        secret = lines[0]
        assert secret.startswith("pl_")
        assert len(secret) > 40
        assert secret not in created.stderr
        assert "only this once" in created.stderr

        listed = ledger(db, "token", "list", "--json")
        assert listed.returncode == 0, listed.stderr
        (info,) = json.loads(listed.stdout)
        assert (info["subject"], info["scopes"], info["revoked_at"]) == (
            "analyst-1",
            ["append"],
            None,
        )
        assert secret not in listed.stdout
        assert secret not in ledger(db, "token", "list").stdout

        stored = b"".join(p.read_bytes() for p in tmp_path.iterdir() if p.is_file())
        assert secret.encode() not in stored
        assert hashlib.sha256(secret.encode()).hexdigest().encode() in stored

        with serving(db) as client:
            event = {"events": [org_event()]}
            assert client.post("/v1/events", json=event, headers=bearer(secret)).status_code == 201
            revoked = ledger(db, "token", "revoke", info["token_id"])
            assert revoked.returncode == 0, revoked.stderr
            response = client.post("/v1/events", json=event, headers=bearer(secret))
            assert_problem(response, 401)
        (info,) = json.loads(ledger(db, "token", "list", "--json").stdout)
        assert info["revoked_at"] is not None

    @pytest.mark.parametrize(
        "args",
        [
            ("create", "--scope", "read", "--subject", "x"),
            ("create", "--scope", "append"),
            ("create", "--subject", "x"),
            ("create", "--scope", "append", "--subject", " "),
            ("create", "--scope", "append", "--subject", "x" * 201),
            ("create", "--scope", "append", "--subject", "two\nlines"),
            ("create", "--scope", "append", "--subject", "alice\n"),
            ("create", "--scope", "append", "--subject", "c1\x85control"),
            ("create", "--scope", "append", "--subject", "cli:root"),
            ("create", "--scope", "append", "--subject", "CLI:root"),
            ("create", "--scope", "append", "--subject", "cli\uff1aroot"),
            ("create", "--scope", "append", "--subject", "\u200bcli:root"),
            ("create", "--scope", "append", "--subject", "\u202ealice"),
            ("create", "--scope", "append", "--subject", " alice"),
            ("revoke", "no-such-token"),
        ],
        ids=[
            "scope",
            "no-subject",
            "no-scope",
            "blank",
            "too-long",
            "control",
            "trailing-newline",
            "c1-control",
            "looks-like-the-command-line",
            "upper-case-cli",
            "full-width-colon-cli",
            "zero-width-then-cli",
            "bidi-override",
            "leading-space",
            "unknown-id",
        ],
    )
    def test_bad_token_commands_exit_2(self, tmp_path, args) -> None:
        """A bad scope, subject or id, a missing option: exit 2, one line, no token stored."""
        db = init_ledger(tmp_path / "ledger.db")
        result = ledger(db, "token", *args)
        assert result.returncode == 2
        assert result.stdout == ""
        assert result.stderr.startswith("ledger: ") or "Usage" in result.stderr
        assert len(result.stderr.strip().splitlines()) == 1 or "Usage" in result.stderr
        assert json.loads(ledger(db, "token", "list", "--json").stdout) == []

    def test_a_stored_subject_that_does_not_fit_is_refused_not_stored(self, tmp_path) -> None:
        """A stored subject too long for `recorded_by`: 422, never a row no one can read.

        (A token stored before subjects were checked at creation, say.)
        """
        db = init_ledger(tmp_path / "ledger.db")
        token = make_token(db, "short", "append")
        with sqlite3.connect(db) as conn:
            conn.execute("UPDATE tokens SET subject = ?", ("y" * 600,))
        with serving(db) as client:
            response = client.post(
                "/v1/events", json={"events": [org_event()]}, headers=bearer(token)
            )
            problem = assert_problem(response, 422)
            assert [e["path"] for e in problem["errors"]] == ["$.events[0].metadata.recorded_by"]
            assert client.get("/v1/events", params={"after": SEED_COUNT}).json()["events"] == []
