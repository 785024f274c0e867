"""The `ledger` command through the real installed console script (issue 3's CLI)."""

from __future__ import annotations

import json
import os
import pwd
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import msgspec
import pytest

from events.ids import uuid7
from events.seed import seed_events
from events.sqlite import SQLiteEventLog

LEDGER = str(Path(sys.executable).with_name("ledger"))


def ledger(
    db: Path, *args: str, stdin: bytes | None = None, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[bytes]:
    """Run `ledger --database DB ARGS…` as a real process, stdin and stdout piped."""
    return subprocess.run(
        [LEDGER, "--database", str(db), *args],
        input=stdin if stdin is not None else b"",
        capture_output=True,
        timeout=60,
        check=False,
        env=env,
    )


ACCOUNT = pwd.getpwuid(os.geteuid()).pw_name


def good_line(**over: object) -> dict[str, object]:
    line: dict[str, object] = {
        "stream": "organization-acme",
        "type": "organization_registered",
        "occurred_on": "2024-05-31",
        "data": {"id": "acme", "name": "Acme Bio", "country": "US"},
        "source": {"url": "https://example.invalid/a", "quote": "Acme Bio was founded."},
    }
    line.update(over)
    return line


def ndjson(*lines: object) -> bytes:
    return b"".join(
        (line if isinstance(line, bytes) else json.dumps(line).encode()) + b"\n" for line in lines
    )


@pytest.fixture
def seeded(tmp_path: Path) -> Path:
    db = tmp_path / "ledger.db"
    assert ledger(db, "seed").returncode == 0
    return db


def head(db: Path) -> int:
    with sqlite3.connect(db) as conn:
        return int(conn.execute("SELECT count(*) FROM events").fetchone()[0])


class TestSeedAndRead:
    @pytest.mark.parametrize("option", ["--after", "--limit"])
    def test_a_number_past_any_position_names_its_option(self, seeded: Path, option: str):
        """`--after` or `--limit` past 2**63 - 1: one line naming the option, exit 2."""
        out = ledger(seeded, "events", option, str(2**63))
        assert out.returncode == 2
        assert option.encode() in out.stderr
        assert len(out.stderr.splitlines()) == 1

    def test_seed_is_idempotent(self, tmp_path: Path) -> None:
        """Seeding twice writes nothing the second time and says so on stderr only."""
        db = tmp_path / "l.db"
        first, second = ledger(db, "seed"), ledger(db, "seed")
        assert first.returncode == second.returncode == 0
        assert first.stdout == second.stdout == b""
        assert b"seeded 10 events" in first.stderr
        assert b"already present" in second.stderr
        assert head(db) == len(seed_events())
        recorders = {
            json.loads(line)["metadata"]["recorded_by"]
            for line in ledger(db, "events", "--json").stdout.splitlines()
        }
        assert recorders == {f"cli:{ACCOUNT}"}  # who seeded, as `ledger append` records

    def test_seed_replays_over_a_seed_recorded_by_nobody(self, tmp_path: Path) -> None:
        """A ledger seeded before seeds were recorded by anyone: seeding again is a replay."""
        db = tmp_path / "l.db"
        log = SQLiteEventLog(db)
        try:
            log.append(seed_events())  # metadata.recorded_by null
        finally:
            log.close()
        again = ledger(db, "seed")
        assert again.returncode == 0, again.stderr
        assert b"already present" in again.stderr
        assert head(db) == len(seed_events())

    def test_events_json_is_ndjson_of_envelopes(self, seeded: Path) -> None:
        """`events --json` prints one whole envelope per line, in position order, nothing else."""
        out = ledger(seeded, "events", "--json")
        assert out.returncode == 0
        rows = [json.loads(line) for line in out.stdout.splitlines()]
        assert [r["position"] for r in rows] == list(range(1, 11))
        assert rows[4]["type"] == "site_acquired"
        assert rows[4]["data"]["price"] == {"amount": "160000000", "currency": "USD"}
        assert out.stderr == b""

    @pytest.mark.parametrize(
        ("args", "positions"),
        [
            (["--after", "8"], [9, 10]),
            (["--limit", "3"], [1, 2, 3]),
            (["--stream", "site-daejeon"], [7, 9]),
            (["--type", "memorandum_signed", "--type", "partnership_agreed"], [6, 10]),
        ],
    )
    def test_events_filters(self, seeded: Path, args: list[str], positions: list[int]) -> None:
        """`--after`, `--limit`, `--stream` and `--type` select what the log holds."""
        out = ledger(seeded, "events", "--json", *args)
        assert [json.loads(x)["position"] for x in out.stdout.splitlines()] == positions

    def test_events_table_for_people(self, seeded: Path) -> None:
        """Without --json the log is a table with each event's type and stream."""
        out = ledger(seeded, "events")
        assert out.returncode == 0
        assert b"partnership_agreed" in out.stdout
        assert b"10 events" in out.stdout

    def test_the_table_shows_recorded_at_as_known_at_takes_it(self, seeded: Path) -> None:
        """`recorded at` is the whole RFC 3339 moment, to the microsecond, as stored.

        Found by a review: the table cut it to the second, and a `--known-at` copied from it
        left out the very event it was copied from.
        """
        stored = json.loads(ledger(seeded, "events", "--json", "--limit", "1").stdout)
        out = ledger(seeded, "events", "--limit", "1").stdout.decode()
        assert stored["recorded_at"].endswith("Z")
        assert stored["recorded_at"] in out
        shown = ledger(seeded, "show", "timeline", "--json", "--known-at", stored["recorded_at"])
        assert json.loads(shown.stdout)["view"]["position"] >= 1

    def test_an_unknown_type_is_one_line_naming_the_option(self, seeded: Path) -> None:
        """A misspelt `--type` is refused (exit 2, the known types listed), not an empty log."""
        out = ledger(seeded, "events", "--type", "investment_commited")
        assert out.returncode == 2
        assert out.stdout == b""
        [line] = out.stderr.decode().splitlines()
        assert "--type" in line
        assert "'investment_commited'" in line
        assert "investment_committed" in line

    def test_read_of_missing_database_is_one_line(self, tmp_path: Path) -> None:
        """Reading a ledger that does not exist says so in one line and creates nothing."""
        db = tmp_path / "nope.db"
        out = ledger(db, "events")
        assert out.returncode == 1
        assert len(out.stderr.splitlines()) == 1
        assert not db.exists()


class TestAppend:
    def test_append_batch_prints_positions(self, seeded: Path) -> None:
        """A good NDJSON batch lands after the seed; each committed event is printed as JSON."""
        other = good_line(stream="organization-beta", data={"id": "beta", "name": "Beta"})
        out = ledger(seeded, "append", "-", stdin=ndjson(good_line(), other))
        assert out.returncode == 0, out.stderr
        committed = [json.loads(x) for x in out.stdout.splitlines()]
        assert [c["position"] for c in committed] == [11, 12]
        assert head(seeded) == 12

    def test_append_from_file_with_expected_version(self, seeded: Path, tmp_path: Path) -> None:
        """`--expect STREAM=0` refuses a stream that exists: exit 2, nothing stored."""
        path = tmp_path / "batch.ndjson"
        path.write_bytes(ndjson(good_line(stream="site-daejeon")))
        out = ledger(seeded, "append", str(path), "--expect", "site-daejeon=0")
        assert out.returncode == 2
        assert b"site-daejeon" in out.stderr
        assert head(seeded) == 10
        assert ledger(seeded, "append", str(path), "--expect", "site-daejeon=2").returncode == 0

    @pytest.mark.parametrize(
        ("bad", "needle"),
        [
            (b"{not json", b"line 2"),
            (json.dumps(good_line(type="site_bought")).encode(), b"$.type"),
            (json.dumps(good_line(occurred_on="2024-02-30")).encode(), b"$.occurred_on"),
            (
                json.dumps({k: v for k, v in good_line().items() if k != "source"}).encode(),
                b"$.source",
            ),
            (json.dumps(good_line(data={"id": "acme"})).encode(), b"$.data.name"),
            (json.dumps(good_line(data={"id": "Acme", "name": "A"})).encode(), b"$.data.id"),
            (json.dumps(good_line(extra=1)).encode(), b"$.extra"),
        ],
    )
    def test_bad_line_stores_nothing(self, seeded: Path, bad: bytes, needle: bytes) -> None:
        """A bad second line: one stderr line naming line 2 and the field, exit 2, none stored."""
        out = ledger(seeded, "append", "-", stdin=ndjson(good_line(), bad))
        assert out.returncode == 2
        lines = out.stderr.splitlines()
        assert len(lines) == 1, out.stderr
        assert b"line 2" in lines[0]
        assert needle in lines[0]
        assert b"Traceback" not in out.stderr
        assert head(seeded) == 10

    def test_client_recorded_by_is_ignored(self, seeded: Path) -> None:
        """`metadata.recorded_by` is the ledger's to set: `cli:` and the account, not the line's."""
        line = good_line(metadata={"recorded_by": "mallory", "tags": ["x"]})
        assert ledger(seeded, "append", "-", stdin=ndjson(line)).returncode == 0
        event = json.loads(ledger(seeded, "events", "--json", "--after", "10").stdout)
        assert event["metadata"]["recorded_by"] == f"cli:{ACCOUNT}"  # the account
        assert event["metadata"]["tags"] == ["x"]

    def test_recorded_by_is_the_account_not_the_environment(self, seeded: Path) -> None:
        """`$USER` and `$LOGNAME` say nothing: anyone sets them (a long one broke appends)."""
        env = {**os.environ, "USER": "mallory", "LOGNAME": "m" * 600}
        assert ledger(seeded, "append", "-", stdin=ndjson(good_line()), env=env).returncode == 0
        event = json.loads(ledger(seeded, "events", "--json", "--after", "10").stdout)
        assert event["metadata"]["recorded_by"] == f"cli:{ACCOUNT}"

    def test_correction_of_unknown_event_exits_2(self, seeded: Path) -> None:
        """A retraction of an unknown event id is refused at append time with exit 2."""
        line = good_line(
            type="event_retracted",
            data={"retracts": "00000000-0000-7000-8000-000000000000", "reason": "wrong"},
        )
        out = ledger(seeded, "append", "-", stdin=ndjson(line))
        assert out.returncode == 2
        assert b"a retraction of 00000000-0000-7000-8000-000000000000: no such event" in out.stderr
        assert head(seeded) == 10

    def test_an_error_of_the_whole_batch_names_its_line(self, seeded: Path) -> None:
        """An error found once the batch is planned names its line, not its batch index.

        A bad replacement, a repeated id: blank lines are counted, as in every other error.
        """
        site = json.loads(ledger(seeded, "events", "--json", "--type", "site_acquired").stdout)
        correction = good_line(
            stream="corrections",
            type="event_corrected",
            data={"corrects": site["event_id"], "replacement": {"foo": 1}, "reason": "r"},
        )
        twice = good_line(event_id="01900000-0000-7000-8000-000000000001")
        for lines, expected in (
            ([b"", good_line(), b"", correction], b"line 4: $.data.replacement.foo"),
            ([twice, b"", twice], b"line 3: $.event_id"),
        ):
            out = ledger(seeded, "append", "-", stdin=ndjson(*lines))
            assert out.returncode == 2
            assert expected in out.stderr, out.stderr
            assert len(out.stderr.splitlines()) == 1
            assert head(seeded) == 10

    def test_a_byte_order_mark_is_dropped(self, seeded: Path) -> None:
        """A file saved with a UTF-8 byte order mark appends like one without."""
        out = ledger(seeded, "append", "-", stdin=b"\xef\xbb\xbf" + ndjson(good_line()))
        assert out.returncode == 0, out.stderr
        assert head(seeded) == 11


class TestVerify:
    def test_verify_ok(self, seeded: Path) -> None:
        """An untouched log verifies: exit 0."""
        out = ledger(seeded, "verify")
        assert out.returncode == 0
        assert b"ok: 10 events" in out.stdout

    @pytest.mark.parametrize("position", [1, 6, 10])
    def test_one_changed_byte_is_found(self, seeded: Path, position: int) -> None:
        """One changed byte of a stored row makes verify exit 1 naming that position."""
        with sqlite3.connect(seeded) as conn:
            conn.execute("DROP TRIGGER events_no_update")
            (data,) = conn.execute(
                "SELECT data FROM events WHERE position = ?", (position,)
            ).fetchone()
            index = data.index(":") + 2
            tampered = data[:index] + ("x" if data[index] != "x" else "y") + data[index + 1 :]
            conn.execute("UPDATE events SET data = ? WHERE position = ?", (tampered, position))
        out = ledger(seeded, "verify")
        assert out.returncode == 1
        assert f"broken at position {position}".encode() in out.stdout

    @pytest.mark.parametrize(
        "change", ["data = '{\"id\": 7}'", "schema_version = 0"], ids=["data", "no-upcaster"]
    )
    @pytest.mark.parametrize("args", [["events"], ["show", "timeline"], ["replay"], ["export"]])
    def test_a_row_changed_by_hand_is_a_store_failure(self, seeded: Path, args, change) -> None:
        """A stored row that no longer decodes: exit 1 naming its position, not "bad input"."""
        with sqlite3.connect(seeded) as conn:
            conn.execute("DROP TRIGGER events_no_update")  # as someone editing the file would
            conn.execute(f"UPDATE events SET {change} WHERE position = 2")  # noqa: S608
        out = ledger(seeded, *args)
        if args == ["export"]:  # an export copies rows as stored: verify catches them
            assert out.returncode == 0
            assert ledger(seeded, "verify").returncode == 1
            return
        assert out.returncode == 1, out.stderr
        assert b"position 2 does not decode" in out.stderr
        assert len(out.stderr.splitlines()) == 1


class TestExportImportBackup:
    def test_round_trip_keeps_every_hash(self, seeded: Path, tmp_path: Path) -> None:
        """Export | import into an empty ledger gives identical rows, hashes included."""
        exported = ledger(seeded, "export")
        assert exported.returncode == 0
        assert len(exported.stdout.splitlines()) == 10
        copy = tmp_path / "copy.db"
        assert ledger(copy, "import", "-", stdin=exported.stdout).returncode == 0
        query = "SELECT position, event_id, hash, data_hash, prev_hash, recorded_at FROM events"
        with sqlite3.connect(seeded) as a, sqlite3.connect(copy) as b:
            assert a.execute(query).fetchall() == b.execute(query).fetchall()
        assert ledger(copy, "verify").returncode == 0

    def test_tampered_export_is_refused_whole(self, seeded: Path, tmp_path: Path) -> None:
        """One changed amount in line 5 of an export: import stores nothing and exits non-zero."""
        lines = ledger(seeded, "export").stdout.splitlines()
        lines[4] = lines[4].replace(b"160000000", b"150000000")
        copy = tmp_path / "copy.db"
        out = ledger(copy, "import", "-", stdin=b"\n".join(lines) + b"\n")
        assert out.returncode == 2
        assert b"position 5" in out.stderr
        assert len(out.stderr.splitlines()) == 1
        assert head(copy) == 0

    @pytest.mark.parametrize("stdin", [b"", b"\n\n"], ids=["empty", "blank-lines"])
    def test_an_empty_import_is_refused(self, tmp_path: Path, stdin: bytes) -> None:
        """It said "imported 0 events; chain verified" of an empty (or cut) input."""
        out = ledger(tmp_path / "copy.db", "import", "-", stdin=stdin)
        assert out.returncode == 2
        assert b"no events in the input" in out.stderr
        assert head(tmp_path / "copy.db") == 0

    def test_a_conflict_names_its_input_line(self, tmp_path: Path) -> None:
        """As an invalid event does: `line 2: …`, exit 2, nothing of the batch stored."""
        organization = ndjson(good_line())
        retraction = json.dumps(
            {
                "stream": "x",
                "type": "event_retracted",
                "occurred_on": "2024",
                "data": {"retracts": "00000000-0000-4000-8000-000000000000", "reason": "r"},
                "source": {"url": "urn:x"},
            }
        ).encode()
        out = ledger(tmp_path / "new.db", "append", "-", stdin=organization + retraction + b"\n")
        assert out.returncode == 2
        assert out.stderr.startswith(b"ledger: line 2: a retraction of 00000000-")
        assert head(tmp_path / "new.db") == 0

    def test_import_needs_an_empty_ledger(self, seeded: Path) -> None:
        """Importing into a ledger that holds events is refused and changes nothing."""
        exported = ledger(seeded, "export").stdout
        out = ledger(seeded, "import", "-", stdin=exported)
        assert out.returncode == 1
        assert b"empty" in out.stderr
        assert head(seeded) == 10

    def test_backup_verifies(self, seeded: Path, tmp_path: Path) -> None:
        """`backup PATH` writes a copy that verifies and holds the same head."""
        target = tmp_path / "backup.db"
        out = ledger(seeded, "backup", str(target))
        assert out.returncode == 0, out.stderr
        assert head(target) == 10
        assert ledger(target, "verify").returncode == 0
        assert ledger(seeded, "backup", str(target)).returncode == 1  # never overwrites

    def test_a_backup_that_cannot_be_written_names_its_path(self, seeded: Path, tmp_path: Path):
        """A backup into a missing directory: one line naming the path, exit 1."""
        target = tmp_path / "no-such-dir" / "backup.db"
        out = ledger(seeded, "backup", str(target))
        assert out.returncode == 1
        assert str(target).encode() in out.stderr
        assert len(out.stderr.splitlines()) == 1
        assert not target.parent.exists()

    @pytest.mark.parametrize(
        ("edit", "needle"),
        [
            (lambda line: line[:-1] + b',"extra":1}', b"line 3: $.extra: Object contains"),
            (lambda line: line.replace(b'"metadata":{', b'"metadata":[1],"x":{'), b"line 3: "),
            (lambda line: line.replace(b"Lotte", b"Lo\xfftte"), b"line 3: "),
        ],
        ids=["unknown-field", "bad-metadata", "bad-utf8"],
    )
    def test_a_bad_export_line_is_named_once(self, seeded: Path, tmp_path: Path, edit, needle):
        """A line that does not decode: one line naming it (its path once), exit 2, no rows."""
        lines = ledger(seeded, "export").stdout.splitlines()
        lines[2] = edit(lines[2])
        copy = tmp_path / "copy.db"
        out = ledger(copy, "import", "-", stdin=b"\n".join(lines) + b"\n")
        assert out.returncode == 2, out.stderr
        assert needle in out.stderr
        assert out.stderr.count(b" - at ") <= 1
        assert len(out.stderr.splitlines()) == 1
        assert head(copy) == 0


class TestBadFiles:
    def test_not_a_database(self, tmp_path: Path) -> None:
        """A file that is not SQLite: one line, exit 1, the file unchanged."""
        path = tmp_path / "notes.txt"
        path.write_bytes(b"these are my notes, not a ledger\n" * 10)
        before = path.read_bytes()
        for args in (["events"], ["seed"], ["verify"]):
            out = ledger(path, *args)
            assert out.returncode == 1
            assert out.stderr.startswith(b"ledger: ")
            assert len(out.stderr.splitlines()) == 1
            assert b"not a ledger" in out.stderr
        assert path.read_bytes() == before

    def test_other_sqlite_database(self, tmp_path: Path) -> None:
        """A SQLite file of another application is refused, not one byte of it changed.

        Not even its journal mode: switching to WAL rewrites the header.
        """
        path = tmp_path / "other.db"
        with sqlite3.connect(path) as conn:
            conn.execute("CREATE TABLE customers (id INTEGER PRIMARY KEY)")
        before = path.read_bytes()
        for args in (["seed"], ["verify"], ["events"], ["token", "list"]):
            out = ledger(path, *args)
            assert out.returncode == 1
            assert b"not a ledger" in out.stderr
            assert path.read_bytes() == before
            assert sorted(p.name for p in tmp_path.iterdir()) == ["other.db"]

    @pytest.mark.parametrize("kind", ["0-byte file", "database with no table"])
    @pytest.mark.parametrize(
        "args", [["verify"], ["events"], ["export"], ["show", "timeline"], ["token", "list"]]
    )
    def test_an_empty_file_is_no_ledger_to_read(
        self, tmp_path: Path, args: list[str], kind: str
    ) -> None:
        """A command that only reads finds no ledger in an empty file and writes none into it."""
        path = tmp_path / "empty.db"
        path.write_bytes(b"")
        if kind == "database with no table":
            with sqlite3.connect(path) as conn:
                conn.execute("VACUUM")  # a valid SQLite file of one page, nothing in it
        before = path.read_bytes()
        out = ledger(path, *args)
        assert out.returncode == 1
        assert b"no ledger at" in out.stderr
        assert path.read_bytes() == before
        assert sorted(p.name for p in tmp_path.iterdir()) == ["empty.db"]

    def test_a_read_only_file_system_is_said_plainly(self, seeded: Path) -> None:
        """A ledger on a read-only mount: "cannot open … for writing", not "not a ledger"."""
        if shutil.which("unshare") is None or os.geteuid() != 0:
            why = "needs root and unshare to mount a read-only view"
            if os.environ.get("CI") == "true":  # as the durability test: CI must run it
                pytest.fail(why)
            pytest.skip(why)
        script = (
            'mount --bind "$1" "$1" && mount -o remount,bind,ro "$1" && '
            f'{LEDGER} --database "$1/ledger.db" verify'
        )
        out = subprocess.run(
            ["unshare", "-m", "--propagation", "private", "sh", "-c", script, "sh", seeded.parent],
            capture_output=True,
            timeout=60,
            check=False,
        )
        assert out.returncode == 1, out.stderr
        assert b"cannot open" in out.stderr
        assert b"for writing" in out.stderr
        assert b"not a ledger" not in out.stderr
        assert len(out.stderr.splitlines()) == 1

    def test_newer_schema(self, seeded: Path) -> None:
        """A ledger migrated by a newer version of the code is refused with a clear line."""
        with sqlite3.connect(seeded) as conn:
            conn.execute(
                "INSERT INTO _sqlite_migrations (migration_set, name, applied_at) "
                "VALUES ('partnership-ledger', 'm999_from_the_future', '2030-01-01')"
            )
        out = ledger(seeded, "events")
        assert out.returncode == 1
        assert b"newer schema" in out.stderr
        assert len(out.stderr.splitlines()) == 1

    @pytest.mark.parametrize("args", [["token", "list"], ["token", "revoke", "abc"]])
    def test_token_reads_make_no_ledger(self, tmp_path: Path, args: list[str]) -> None:
        """Listing or revoking tokens where there is no ledger says so and creates nothing."""
        path = tmp_path / "never.db"
        out = ledger(path, *args)
        assert out.returncode == 1
        assert b"no ledger at" in out.stderr
        assert list(tmp_path.iterdir()) == []

    def test_newer_token_schema(self, seeded: Path) -> None:
        """A token table migrated by newer code is refused too, and no token is written."""
        assert ledger(seeded, "token", "list").returncode == 0  # the token table exists
        with sqlite3.connect(seeded) as conn:
            conn.execute(
                "INSERT INTO _sqlite_migrations (migration_set, name, applied_at) "
                "VALUES ('partnership-ledger-tokens', 'm999_from_the_future', '2030-01-01')"
            )
        out = ledger(seeded, "token", "create", "--scope", "admin", "--subject", "x")
        assert out.returncode == 1
        assert b"newer schema" in out.stderr
        assert len(out.stderr.splitlines()) == 1
        with sqlite3.connect(seeded) as conn:
            assert conn.execute("SELECT count(*) FROM tokens").fetchone()[0] == 0

    @pytest.mark.parametrize(
        ("variable", "value"),
        [
            ("LEDGER_SYNCHRONOUS", "SOMETIMES"),
            ("LEDGER_PORT", "eighty"),
            ("LEDGER_PAGE_LIMIT", "99999999999999999999999"),
            ("LEDGER_BATCH_LIMIT", "100001"),
            ("LEDGER_BODY_LIMIT", str((1 << 30) + 1)),
        ],
    )
    def test_bad_setting_names_itself(self, tmp_path: Path, variable: str, value: str) -> None:
        """A bad setting stops with one line naming the variable and its flag."""
        import os  # noqa: PLC0415 - only this test needs the environment

        env = {**os.environ, variable: value}
        out = subprocess.run(
            [LEDGER, "--database", str(tmp_path / "x.db"), "serve"]
            if variable == "LEDGER_PORT"
            else [LEDGER, "--database", str(tmp_path / "x.db"), "seed"],
            capture_output=True,
            timeout=60,
            check=False,
            env=env,
        )
        assert out.returncode == 2
        assert variable.encode() in out.stderr
        assert len(out.stderr.splitlines()) == 1


class TestSettingsSaidPlainly:
    """A setting's value is read as people write it, and a wrong one says what is expected."""

    @staticmethod
    def run(tmp_path: Path, **variables: str) -> subprocess.CompletedProcess[bytes]:
        import os  # noqa: PLC0415 - only these tests need the environment

        env = {k: v for k, v in os.environ.items() if not k.startswith("LEDGER_")}
        return subprocess.run(
            [LEDGER, "seed"],
            capture_output=True,
            timeout=60,
            check=False,
            env={**env, "LEDGER_DATABASE": str(tmp_path / "x.db"), **variables},
            cwd=tmp_path,
        )

    @pytest.mark.parametrize(
        "variables",
        [
            {"LEDGER_SYNCHRONOUS": "normal"},
            {"LEDGER_LOG_LEVEL": "INFO"},
            {"LEDGER_FILE": "x", "LEDGER_SORT": "date", "LEDGER_FORMAT": "%d", "LEDGER_COST": "1"},
            {"LEDGER_NATS_URL": "nats://user:secret@[::1]:4222"},
            {"LEDGER_NATS_URL": "nats://n1:4222, NATS://n2:4222/,wss://n3.example:443"},
        ],
        ids=[
            "lower-case-level",
            "upper-case-log-level",
            "ledger-cli-variables",
            "nats",
            "nats-cluster",
        ],
    )
    def test_accepted(self, tmp_path: Path, variables: dict[str, str]) -> None:
        out = self.run(tmp_path, **variables)
        assert out.returncode == 0, out.stderr
        assert (tmp_path / "x.db").exists()

    @pytest.mark.parametrize(
        ("variable", "value", "said"),
        [
            ("LEDGER_READ_TOKEN_REQUIRED", "yes", b"must be true or false"),
            ("LEDGER_SYNCHRONOUS", "sometimes", b"must be one of EXTRA, FULL, NORMAL"),
            ("LEDGER_BODY_LIMIT", "2MiB", b"must be a whole number"),
            ("LEDGER_PORT", "0", b">= 1"),
            ("LEDGER_NATS_URL", "garbage", b"nats://host:port"),
            ("LEDGER_NATS_URL", "http://127.0.0.1:4222", b"nats://host:port"),
            ("LEDGER_NATS_URL", "nats://user:secret@h:99999", b"nats://host:port"),
        ],
    )
    def test_a_wrong_value_says_what_is_expected(
        self, tmp_path: Path, variable: str, value: str, said: bytes
    ) -> None:
        out = self.run(tmp_path, **{variable: value})
        assert out.returncode == 2
        assert variable.encode() in out.stderr
        assert said in out.stderr
        assert b"secret" not in out.stderr  # a URL's password is not repeated
        assert len(out.stderr.splitlines()) == 1

    @pytest.mark.parametrize(
        ("typed", "meant"),
        [
            ("LEDGER_DATABSE", "LEDGER_DATABASE"),  # a letter left out
            ("LEDGER_DATABASEE", "LEDGER_DATABASE"),  # one too many
            ("LEDGER_PROT", "LEDGER_PORT"),  # two swapped
        ],
    )
    def test_a_misspelt_variable_is_refused_not_ignored(
        self, tmp_path: Path, typed: str, meant: str
    ) -> None:
        """`LEDGER_DATABSE` seeded `./ledger.db` instead, exit 0 (found by a review)."""
        out = self.run(tmp_path, **{typed: str(tmp_path / "meant.db")})
        assert out.returncode == 2
        assert f"did you mean {meant}?".encode() in out.stderr
        assert sorted(p.name for p in tmp_path.iterdir()) == []


@pytest.fixture(scope="module")
def long_log(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Far more than a pipe's 64 KiB of output."""
    db = tmp_path_factory.mktemp("pipe") / "ledger.db"
    log = SQLiteEventLog(db)
    try:
        seed = seed_events()
        log.append(
            [
                msgspec.structs.replace(seed[i % 4], event_id=uuid7(), stream=f"pipe-{i}")
                for i in range(1500)
            ]
        )
    finally:
        log.close()
    return db


class TestAReaderThatGoesAway:
    """`ledger … | head`: the reader closes the pipe early; that is no error (exit 0)."""

    @pytest.mark.parametrize(
        "args", [["events", "--json"], ["export"], ["events"], ["show", "timeline"]]
    )
    def test_exit_0_and_nothing_on_stderr(self, long_log: Path, args: list[str]) -> None:
        process = subprocess.Popen(
            [LEDGER, "--database", str(long_log), *args],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        assert process.stdout is not None
        assert process.stderr is not None
        first = process.stdout.readline()
        process.stdout.close()  # as `head -1` does
        err = process.stderr.read()
        code = process.wait(timeout=60)
        assert first
        assert (code, err) == (0, b"")

    def test_a_failed_verify_still_exits_1(self, tmp_path: Path) -> None:
        """`ledger verify | true`: the verdict is the exit code, whoever reads the output.

        Found by a review: the broken pipe's exit 0 had turned a broken chain into success.
        """
        db = tmp_path / "ledger.db"
        assert ledger(db, "seed").returncode == 0
        with sqlite3.connect(db) as conn:
            conn.execute("DROP TRIGGER events_no_update")
            conn.execute("UPDATE events SET hash = ? WHERE position = 3", ("0" * 64,))
        conn.close()
        process = subprocess.Popen(
            [LEDGER, "--database", str(db), "verify"],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        assert process.stdout is not None
        assert process.stderr is not None
        process.stdout.close()  # gone before it writes
        err = process.stderr.read()
        assert process.wait(timeout=60) == 1, err
        assert b"Traceback" not in err
