"""Token look-ups are kept while no token changes, whoever changes one (`token_revision`)."""

from __future__ import annotations

import hashlib
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest
from http_fixtures import assert_problem, bearer, init_ledger, make_token, org_event, serving
from litestar import Litestar
from litestar.testing import TestClient

from service.tokens import TokenStore


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[TestClient[Litestar], Path]]:
    db = init_ledger(tmp_path / "ledger.db")
    make_token(db, "first", "append")  # the token table exists before the plain SQL below
    with serving(db) as client:
        yield client, db


def append(client: TestClient[Litestar], token: str) -> int:
    response = client.post("/v1/events", json={"events": [org_event()]}, headers=bearer(token))
    return response.status_code


def sql(db: Path, statement: str, *args: str) -> None:
    """A change made outside the ledger's code: another connection, plain SQL."""
    conn = sqlite3.connect(db, isolation_level=None)
    try:
        conn.execute(statement, args)
    finally:
        conn.close()


class TestThroughTheApp:
    @pytest.mark.parametrize(
        "change",
        [
            "UPDATE tokens SET revoked_at = '2026-01-01T00:00:00Z' WHERE subject = ?",
            "DELETE FROM tokens WHERE subject = ?",
        ],
        ids=["revoked", "deleted"],
    )
    def test_a_token_changed_by_plain_sql_is_refused_at_the_next_request(
        self, served, change
    ) -> None:
        """Not only `ledger token revoke`: any connection's change holds from the next request."""
        client, db = served
        token = make_token(db, "writer", "append")
        assert append(client, token) == 201
        assert append(client, token) == 201  # answered from what was looked up
        sql(db, change, "writer")
        assert_problem(
            client.post("/v1/events", json={"events": [org_event()]}, headers=bearer(token)), 401
        )

    def test_a_token_refused_once_is_taken_once_it_exists(self, served) -> None:
        """An unknown token's refusal is kept only until the table changes."""
        client, db = served
        secret = "pl_later_0123456789abcdef0123456789abcdef"  # noqa: S105 - made up, on purpose
        assert append(client, secret) == 401
        sql(
            db,
            "INSERT INTO tokens (token_id, token_hash, subject, scopes, created_at) "
            "VALUES ('later', ?, 'later', 'append', '2026-01-01T00:00:00Z')",
            hashlib.sha256(secret.encode()).hexdigest(),
        )
        assert append(client, secret) == 201


class TestStore:
    def test_a_known_token_is_looked_up_once_while_nothing_changes(self, tmp_path) -> None:
        """Each check reads the revision; the token itself is read again only after a change."""
        db = init_ledger(tmp_path / "ledger.db")
        token = make_token(db, "writer", "append")
        store = TokenStore(db)
        statements: list[str] = []
        store._conn.set_trace_callback(statements.append)
        try:
            for _ in range(3):
                info = store.check(token)
                assert info is not None
                assert info.subject == "writer"
            lookups = [s for s in statements if "FROM tokens" in s]
            revisions = [s for s in statements if "FROM token_revision" in s]
            assert (len(lookups), len(revisions)) == (1, 3)
            other = TokenStore(db)
            try:
                other.create("someone-else", ("append",))
            finally:
                other.close()
            assert store.check(token) is not None
            assert len([s for s in statements if "FROM tokens" in s]) == 2
        finally:
            store.close()

    def test_the_secret_is_not_kept(self, tmp_path) -> None:
        """What is kept is keyed by the token's hash, as it is stored."""
        db = init_ledger(tmp_path / "ledger.db")
        token = make_token(db, "writer", "append")
        store = TokenStore(db)
        try:
            assert store.check(token) is not None
            assert token not in store._known
            assert hashlib.sha256(token.encode()).hexdigest() in store._known
        finally:
            store.close()
