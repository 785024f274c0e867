"""The SQLite backend: the conformance suite, plus what only a file-based store has."""

from __future__ import annotations

import functools
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from conformance import EventLogConformance, Opener, event

from events import sqlite_backup
from events.errors import NotALedger, StoreError, VersionConflict
from events.log import EventLog
from events.sqlite import SQLiteEventLog


class TestSQLiteConformance(EventLogConformance):
    """The SQLite log passes every conformance test."""

    def make_log(self, tmp_path: Path) -> EventLog:
        return SQLiteEventLog(tmp_path / "conformance.db")

    def opener(self, log: EventLog) -> Opener:
        assert isinstance(log, SQLiteEventLog)
        return functools.partial(SQLiteEventLog, log.path)


class TestTwoHandles:
    def test_alternating_handles_on_one_file_keep_the_chain(self, db_path: Path) -> None:
        """Two logs open on one file, appending in turn, keep positions gap-free and the chain."""
        first, second = SQLiteEventLog(db_path), SQLiteEventLog(db_path)
        try:
            positions = []
            for n in range(10):
                handle = first if n % 2 == 0 else second
                positions.append(handle.append([event("turns")]).events[0].position)
            assert positions == list(range(1, 11))
            assert first.verify().ok
            assert [e.stream_version for e in second.stream("turns")[0]] == list(range(1, 11))
        finally:
            first.close()
            second.close()

    def test_a_handle_sees_what_the_other_appended_before_it_plans(self, db_path: Path) -> None:
        """Versions, replays and places come from the file, not from one handle's memory."""
        first, second = SQLiteEventLog(db_path), SQLiteEventLog(db_path)
        try:
            first.append([event("s")], expected_versions={"s": 0})
            shared = event("s")
            second.append([shared], expected_versions={"s": 1})
            assert first.append([event("s")], expected_versions={"s": 2}).head == 3
            with pytest.raises(VersionConflict):
                second.append([event("s")], expected_versions={"s": 2})
            again = first.append([shared])  # appended through the other handle
            assert again.replayed
            assert again.events[0].position == 2
            batch = second.append([event("s"), event("t")])
            assert [c.position for c in batch.events] == [4, 5]
            assert [c.stream_version for c in batch.events] == [4, 1]
            assert first.append([event("t")]).events[0].stream_version == 2
            assert first.head() == second.head() == 6
            assert first.verify().ok
        finally:
            first.close()
            second.close()


class TestLifecycle:
    def test_append_after_close_is_a_store_error(self, db_path: Path) -> None:
        """A closed log refuses appends with a `StoreError`."""
        log = SQLiteEventLog(db_path)
        log.close()
        with pytest.raises(StoreError, match="closed"):
            log.append([event("late")])

    def test_close_twice_is_harmless(self, db_path: Path) -> None:
        """Closing a log a second time does nothing."""
        log = SQLiteEventLog(db_path)
        log.append([event("once")])
        log.close()
        log.close()
        reopened = SQLiteEventLog(db_path)
        try:
            assert reopened.head() == 1
        finally:
            reopened.close()

    def test_readers_on_many_threads_are_closed(self, db_path: Path) -> None:
        """Reads from several threads work, and close releases their connections."""
        log = SQLiteEventLog(db_path)
        log.append([event("threads")])
        heads: list[int] = []
        threads = [threading.Thread(target=lambda: heads.append(log.head())) for _ in range(3)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        log.close()
        assert heads == [1, 1, 1]
        assert log._readers == []

    @pytest.mark.parametrize("content", [b"not a database at all" * 100, b""])
    def test_a_file_that_is_not_a_ledger_is_refused(self, db_path: Path, content: bytes) -> None:
        """Opening a file that is not a ledger raises `NotALedger` (an empty file becomes one)."""
        db_path.write_bytes(content)
        if not content:
            SQLiteEventLog(db_path).close()
            return
        with pytest.raises(NotALedger):
            SQLiteEventLog(db_path)

    def test_another_sqlite_database_is_refused(self, db_path: Path) -> None:
        """A SQLite file with other tables is not taken for a ledger."""
        conn = sqlite3.connect(db_path)
        conn.execute("CREATE TABLE notes (body TEXT)")
        conn.commit()
        conn.close()
        with pytest.raises(NotALedger):
            SQLiteEventLog(db_path)

    def test_a_directory_is_refused(self, tmp_path: Path) -> None:
        """A directory path raises `NotALedger`."""
        with pytest.raises(NotALedger):
            SQLiteEventLog(tmp_path)

    def test_an_unknown_synchronous_level_is_refused(self, db_path: Path) -> None:
        """Only FULL, NORMAL and EXTRA are accepted."""
        with pytest.raises(ValueError, match="synchronous"):
            SQLiteEventLog(db_path, synchronous="OFF")  # type: ignore[arg-type]
        assert not db_path.exists()


class TestBackup:
    def test_a_backup_is_a_verifying_copy(self, fresh_log: SQLiteEventLog, tmp_path: Path) -> None:
        """`backup` writes a new file holding the same chain."""
        fresh_log.append([event("saved") for _ in range(20)])
        done: list[int] = []
        target = tmp_path / "copy.db"
        fresh_log.backup(target, progress=done.append)
        copy = SQLiteEventLog(target)
        try:
            assert copy.head() == 20
            assert list(copy.export_lines()) == list(fresh_log.export_lines())
            assert copy.verify().ok
        finally:
            copy.close()
        assert sum(done) == fresh_log.backup_pages()

    def test_a_backup_ends_while_another_handle_appends(
        self, fresh_log: SQLiteEventLog, db_path: Path, tmp_path: Path
    ) -> None:
        """Appends through another connection all along: the backup ends, a copy of one state.

        Found by a review: outside one read transaction SQLite restarted the copy at every
        commit of another connection, and a backup beside a running service never ended.
        """
        fresh_log.append([event(f"bulk-{i % 10}") for i in range(10_000)])  # several steps
        assert fresh_log.backup_pages() > 3 * sqlite_backup.PAGES_PER_STEP
        stop = threading.Event()
        other = SQLiteEventLog(db_path)  # another handle: its own connections

        deadline = time.monotonic() + 30

        def append_all_along() -> None:
            for _ in range(1_000_000):  # bounded in count and time, ended by `stop`
                if stop.is_set() or time.monotonic() > deadline:
                    return
                other.append([event("during")])

        writer = threading.Thread(target=append_all_along)
        target = tmp_path / "copy.db"
        steps: list[int] = []
        writer.start()
        try:
            backup = threading.Thread(target=fresh_log.backup, args=(target, steps.append))
            backup.start()
            backup.join(timeout=60)
            assert not backup.is_alive(), "the backup did not end"
            assert writer.is_alive(), "the backup ended only once the appends stopped"
        finally:
            stop.set()
            writer.join()
            other.close()
        assert len(steps) > 3
        copy = SQLiteEventLog(target)
        try:
            assert copy.verify().ok
            assert copy.head() >= 10_000
        finally:
            copy.close()

    def test_a_failed_backup_leaves_no_file(
        self, fresh_log: SQLiteEventLog, tmp_path: Path
    ) -> None:
        """Interrupted half way (here by its own progress callback), it removes its file."""
        fresh_log.append([event(f"bulk-{i % 10}") for i in range(4000)])
        target = tmp_path / "copy.db"

        def interrupt(_pages: int) -> None:
            raise KeyboardInterrupt

        with pytest.raises(KeyboardInterrupt):
            fresh_log.backup(target, progress=interrupt)
        assert not target.exists()
        fresh_log.backup(target)  # and the path is free for the next try
        assert target.exists()

    def test_a_backup_killed_outright_leaves_no_file(
        self, fresh_log: SQLiteEventLog, tmp_path: Path
    ) -> None:
        """SIGKILL half way (no cleanup runs): still nothing at the path, which stays free."""
        fresh_log.append([event(f"bulk-{i % 10}") for i in range(4000)])
        target = tmp_path / "copy.db"
        script = (
            "import os, signal, sys\n"
            "from pathlib import Path\n"
            "from events.sqlite import SQLiteEventLog\n"
            "log = SQLiteEventLog(sys.argv[1])\n"
            "log.backup(Path(sys.argv[2]), progress=lambda _: os.kill(os.getpid(), 9))\n"
        )
        child = subprocess.run(
            [sys.executable, "-c", script, str(fresh_log.path), str(target)],
            capture_output=True,
            timeout=60,
            check=False,
        )
        assert child.returncode == -signal.SIGKILL, child.stderr
        assert not target.exists()
        fresh_log.backup(target)
        assert target.exists()
        assert [p.name for p in tmp_path.iterdir() if "copy" in p.name] == ["copy.db"]

    def test_a_file_system_without_hard_links_still_gets_its_backup(
        self, fresh_log: SQLiteEventLog, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """`os.link` refused (FAT, some network mounts): the path is reserved, then replaced."""
        fresh_log.append([event(f"bulk-{i % 10}") for i in range(50)])

        def no_links(*_args: object, **_kwargs: object) -> None:
            raise PermissionError(1, "Operation not permitted")

        monkeypatch.setattr(os, "link", no_links)
        target = tmp_path / "copy.db"
        fresh_log.backup(target)
        copy = SQLiteEventLog(target)
        try:
            assert copy.head() == 50
            assert copy.verify().ok
        finally:
            copy.close()
        assert sorted(p.name for p in tmp_path.iterdir() if "copy" in p.name) == ["copy.db"]

    def test_a_backup_never_overwrites(self, fresh_log: SQLiteEventLog, tmp_path: Path) -> None:
        """A backup to an existing path is refused and the file is untouched."""
        target = tmp_path / "exists.db"
        target.write_bytes(b"keep me")
        with pytest.raises(StoreError):
            fresh_log.backup(target)
        assert target.read_bytes() == b"keep me"
