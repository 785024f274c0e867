"""API tokens: created once, shown once, stored only as their SHA-256, compared in constant time."""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import sqlite3
import unicodedata
from pathlib import Path
from typing import Literal

import msgspec
from sqlite_utils import Database, Migrations

from events.dates import format_timestamp, utc_now
from events.errors import StoreError
from events.sqlite_schema import apply_locked, refuse_newer

Scope = Literal["append", "admin"]
SCOPES: tuple[Scope, ...] = ("append", "admin")
_PREFIX = "pl_"

migrations = Migrations("partnership-ledger-tokens")


@migrations()
def m001_tokens(db: Database) -> None:
    """API tokens, only their hashes."""
    db["tokens"].create(  # type: ignore[union-attr]
        {
            "token_id": str,
            "token_hash": str,
            "subject": str,
            "scopes": str,
            "created_at": str,
            "revoked_at": str,
        },
        pk="token_id",
        not_null={"token_hash", "subject", "scopes", "created_at"},
        strict=True,
    )
    db["tokens"].create_index(["token_hash"], unique=True, index_name="tokens_hash")  # type: ignore[union-attr]


_CHANGES = ("INSERT", "UPDATE", "DELETE")
REVISION_TRIGGERS = tuple(f"tokens_{change.lower()}_revises" for change in _CHANGES)
"""The triggers that bump `token_revision`; checked at every open (see `TokenStore`)."""


@migrations()
def m002_token_revision(db: Database) -> None:
    """A counter that every change to `tokens` bumps, whoever makes it (triggers).

    A server keeps what it looked up while the counter stays where it was: one read of a
    one-row table per request instead of a lookup by hash, and a token created, revoked or
    deleted by any connection (`ledger token revoke` in another process, plain SQL) is
    looked up again at the next request.
    """
    db.execute("CREATE TABLE token_revision (n INTEGER NOT NULL) STRICT")
    db.execute("INSERT INTO token_revision (n) VALUES (0)")
    for change, trigger in zip(_CHANGES, REVISION_TRIGGERS, strict=True):
        db.execute(
            f"CREATE TRIGGER {trigger} AFTER {change} ON tokens "  # noqa: S608 - our own names
            "BEGIN UPDATE token_revision SET n = n + 1; END"
        )


class TokenInfo(msgspec.Struct, frozen=True, kw_only=True):
    """What the ledger knows of a token (never the token itself)."""

    token_id: str
    subject: str
    scopes: tuple[str, ...]
    created_at: str
    revoked_at: str | None = None


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


CACHED_TOKENS = 1024
"""Look-ups kept (unknown tokens included); all are dropped when there would be more."""


MAX_SUBJECT = 200
"""The longest subject: within `metadata.recorded_by`'s 500, with room to spare."""
CLI_PREFIX = "cli:"
"""`metadata.recorded_by` of an event appended from the command line starts so (no token's)."""
_SUBJECT = re.compile(rf"[^\x00-\x1f\x7f-\x9f\u2028\u2029]{{1,{MAX_SUBJECT}}}")


KNOWN = frozenset(m.name for m in migrations._migrations)  # noqa: SLF001 - the set's own list


class TokenStore:
    """Tokens in the ledger's SQLite file, beside the log."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        try:
            self._conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
            self._conn.execute("PRAGMA busy_timeout = 10000")
            self._conn.execute("PRAGMA synchronous = FULL")
            refuse_newer(Database(self._conn), migrations, KNOWN, self.path)
            apply_locked(self._conn, migrations)
            triggers = {
                row[0]
                for row in self._conn.execute(
                    "SELECT name FROM sqlite_master WHERE type = 'trigger' AND tbl_name = 'tokens'"
                )
            }
        except sqlite3.Error as exc:
            msg = f"cannot open the token table in {self.path}: {exc}"
            raise StoreError(msg) from None
        missing = [name for name in REVISION_TRIGGERS if name not in triggers]
        if missing:  # a rebuilt table (sqlite-utils' transform drops triggers), or a hand edit
            self._conn.close()
            msg = (
                f"{self.path}: the token table has lost its trigger {missing[0]}, so a token "
                "revoked elsewhere would stay valid in a running server; refusing to open it"
            )
            raise StoreError(msg)
        self._known: dict[str, TokenInfo | None] = {}  # by hash, valid at `_revision`
        self._revision = -1

    def create(self, subject: str, scopes: tuple[Scope, ...]) -> tuple[str, TokenInfo]:
        """A new token: the secret (to show once) and what is stored of it."""
        if not subject.strip():
            msg = "a token needs a subject"
            raise ValueError(msg)
        if not _SUBJECT.fullmatch(subject):
            msg = (
                f"a token's subject is one line of at most {MAX_SUBJECT} characters, no control"
                " characters (it is stored as each event's metadata.recorded_by)"
            )
            raise ValueError(msg)
        if subject != subject.strip() or any(unicodedata.category(c) == "Cf" for c in subject):
            msg = (
                "a token's subject has no spaces around it and no invisible characters"
                " (zero-width, direction marks): it must read as what it is"
            )
            raise ValueError(msg)
        if unicodedata.normalize("NFKC", subject).casefold().startswith(CLI_PREFIX):
            msg = f"a token's subject may not start with {CLI_PREFIX!r}: that marks `ledger append`"
            raise ValueError(msg)
        unknown = set(scopes) - set(SCOPES)
        if unknown or not scopes:
            msg = f"scopes must be among {', '.join(SCOPES)}"
            raise ValueError(msg)
        token_id = secrets.token_hex(6)
        secret = f"{_PREFIX}{token_id}_{secrets.token_urlsafe(32)}"
        info = TokenInfo(
            token_id=token_id,
            subject=subject,
            scopes=tuple(sorted(set(scopes))),
            created_at=format_timestamp(utc_now()),
        )
        self._conn.execute(
            "INSERT INTO tokens (token_id, token_hash, subject, scopes, created_at) "
            "VALUES (?, ?, ?, ?, ?)",
            (token_id, _hash(secret), subject, " ".join(info.scopes), info.created_at),
        )
        return secret, info

    def list(self) -> list[TokenInfo]:
        """Every token, revoked ones included."""
        rows = self._conn.execute(
            "SELECT token_id, subject, scopes, created_at, revoked_at FROM tokens "
            "ORDER BY created_at"
        )
        return [
            TokenInfo(
                token_id=r[0],
                subject=r[1],
                scopes=tuple(r[2].split()),
                created_at=r[3],
                revoked_at=r[4],
            )
            for r in rows
        ]

    def revoke(self, token_id: str) -> bool:
        """Revoke a token by id; False if there is no such live token."""
        cursor = self._conn.execute(
            "UPDATE tokens SET revoked_at = ? WHERE token_id = ? AND revoked_at IS NULL",
            (format_timestamp(utc_now()), token_id),
        )
        return cursor.rowcount == 1

    def check(self, token: str) -> TokenInfo | None:
        """The live token this secret is, or None, as of this call.

        Looked up once while no token changes: every change to the table, by any connection,
        bumps `token_revision` (see `m002_token_revision`), which is read on every call.
        """
        digest = _hash(token)  # secrets are not kept, not even as keys
        (revision,) = self._conn.execute("SELECT n FROM token_revision").fetchone()
        if revision != self._revision or len(self._known) >= CACHED_TOKENS:
            self._known, self._revision = {}, revision
        try:
            return self._known[digest]
        except KeyError:
            info = self._look_up(digest)
        self._known[digest] = info
        return info

    def _look_up(self, digest: str) -> TokenInfo | None:
        """The live token of this hash, or None; the hash comparison is constant-time."""
        row = self._conn.execute(
            "SELECT token_id, subject, scopes, created_at, revoked_at, token_hash FROM tokens "
            "WHERE token_hash = ?",
            (digest,),
        ).fetchone()
        if row is None or not hmac.compare_digest(row[5], digest) or row[4] is not None:
            return None
        return TokenInfo(
            token_id=row[0], subject=row[1], scopes=tuple(row[2].split()), created_at=row[3]
        )

    def close(self) -> None:
        """Close the connection."""
        self._conn.close()
