"""An acknowledged append is on disk: each acknowledgement follows an fsync of the WAL.

The syscalls are watched with strace: a child does single appends and writes a marker to a
file of its own after each acknowledgement; the trace shows, between two markers, whether
the WAL was synced.
"""

from __future__ import annotations

import os
import re
import shutil
import sqlite3
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

import pytest

from events.envelope import NewEvent
from events.sqlite import SQLiteEventLog, Synchronous

HELPER = Path(__file__).parent / "helpers" / "marked_appends.py"
STRACE = shutil.which("strace") or "/usr/bin/strace"
APPENDS = 200

_SYNC = re.compile(r"^(?P<call>fdatasync|fsync)\(\d+<(?P<path>[^>]*)>\)?(?P<rest>.*)$")
_RESUMED = re.compile(r"^<\.\.\. (?P<call>fdatasync|fsync) resumed>.*= 0$")


class Trace(NamedTuple):
    """What a trace says: acknowledgements, WAL syncs, and the acks no sync preceded."""

    acks: int
    wal_syncs: int
    unsynced_acks: list[int]


def parse(text: str, marker: Path) -> Trace:
    """Count the WAL syncs of a `strace -f -y` output and check each ack against them."""
    pending: dict[str, str] = {}  # thread id -> a WAL sync not returned yet
    synced_since_ack = False
    acks = syncs = 0
    unsynced: list[int] = []
    for line in text.splitlines():
        tid, _, call = line.partition(" ")
        call = call.strip()
        sync = _SYNC.match(call)
        if sync and sync["path"].endswith("-wal"):
            if "<unfinished ...>" in call:
                pending[tid] = sync["call"]
            elif call.endswith("= 0"):
                syncs += 1
                synced_since_ack = True
            continue
        resumed = _RESUMED.match(call)
        if resumed and pending.get(tid) == resumed["call"]:
            del pending[tid]
            syncs += 1
            synced_since_ack = True
            continue
        if call.startswith("write(") and f"<{marker}>" in call:
            acks += 1
            if not synced_since_ack:
                unsynced.append(acks)
            synced_since_ack = False
    return Trace(acks, syncs, unsynced)


def _strace_problem() -> str | None:
    """Why strace cannot trace a child here, or None if it can."""
    if not Path(STRACE).exists():
        return f"{STRACE} is not installed"
    try:
        probe = subprocess.run(
            [STRACE, "-f", "-e", "trace=fsync", "true"],
            capture_output=True,
            timeout=30,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"{STRACE} does not run: {exc}"
    if probe.returncode != 0:
        return f"{STRACE} cannot attach (ptrace refused?): {probe.stderr.decode().strip()}"
    return None


@pytest.fixture(scope="module")
def strace() -> str:
    """The strace binary; the test fails under CI=true and is skipped elsewhere if unusable."""
    problem = _strace_problem()
    if problem is not None:
        if os.environ.get("CI") == "true":
            pytest.fail(f"durability cannot be checked: {problem}")
        pytest.skip(f"durability cannot be checked: {problem}")
    return STRACE


def traced_appends(strace: str, tmp_path: Path, synchronous: str, *mode: str) -> Trace:
    """Run the marked appends under strace and parse the trace."""
    marker, output = tmp_path / "acks.marker", tmp_path / "strace.txt"
    command = [
        strace,
        "-f",
        "-y",
        "-e",
        "trace=fdatasync,fsync,write",
        "-o",
        str(output),
        sys.executable,
        str(HELPER),
        str(tmp_path / "durable.db"),
        synchronous,
        str(APPENDS),
        str(marker),
        *mode,
    ]
    done = subprocess.run(command, capture_output=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr.decode()
    assert marker.read_bytes() == b"ack\n" * APPENDS
    return parse(output.read_text(), marker)


@pytest.mark.slow
class TestFsyncBeforeAck:
    @pytest.mark.parametrize("synchronous", ["DEFAULT", "FULL", "EXTRA"])
    def test_every_ack_follows_a_wal_sync(
        self, strace: str, tmp_path: Path, synchronous: str
    ) -> None:
        """With FULL (the default) or EXTRA, each acknowledged append was preceded by a WAL sync."""
        trace = traced_appends(strace, tmp_path, synchronous)
        assert trace.acks == APPENDS
        assert trace.unsynced_acks == []
        assert trace.wal_syncs >= APPENDS

    def test_every_awaited_ack_follows_a_wal_sync(self, strace: str, tmp_path: Path) -> None:
        """The HTTP path: an append awaited on an event loop is told only after its WAL sync."""
        trace = traced_appends(strace, tmp_path, "DEFAULT", "awaited")
        assert trace.acks == APPENDS
        assert trace.unsynced_acks == []
        assert trace.wal_syncs >= APPENDS

    def test_normal_is_told_apart(self, strace: str, tmp_path: Path) -> None:
        """With NORMAL the WAL is synced far less often than appends are acknowledged."""
        trace = traced_appends(strace, tmp_path, "NORMAL")
        assert trace.acks == APPENDS
        assert trace.wal_syncs < APPENDS // 4
        assert len(trace.unsynced_acks) > APPENDS * 3 // 4


class TestTraceParser:
    MARKER = Path("/run/m")

    @pytest.mark.parametrize(
        ("lines", "expected"),
        [
            (["1 fdatasync(4</d/x.db-wal>) = 0", "1 write(6</run/m>, ...) = 4"], (1, 1, [])),
            (["1 write(6</run/m>, ...) = 4"], (1, 0, [1])),
            (["1 fdatasync(3</d/x.db>) = 0", "1 write(6</run/m>, ...) = 4"], (1, 0, [1])),
            (
                [
                    "2 fdatasync(4</d/x.db-wal> <unfinished ...>",
                    "1 write(1<pipe:[3]>, ...) = 4",
                    "2 <... fdatasync resumed>) = 0",
                    "1 write(6</run/m>, ...) = 4",
                    "1 write(6</run/m>, ...) = 4",
                ],
                (2, 1, [2]),
            ),
            (["1 fsync(4</d/x.db-wal>) = -1 EIO (I/O error)", "1 write(6</run/m>)"], (1, 0, [1])),
        ],
        ids=["synced", "unsynced", "db-not-wal", "unfinished-resumed", "failed-sync"],
    )
    def test_parse(self, lines: list[str], expected: tuple[int, int, list[int]]) -> None:
        """The parser counts only successful WAL syncs and checks each ack against them."""
        assert tuple(parse("\n".join(lines), self.MARKER)) == expected


class TestSynchronousSetting:
    @pytest.mark.parametrize(("synchronous", "level"), [("NORMAL", 1), ("FULL", 2), ("EXTRA", 3)])
    def test_every_connection_has_the_configured_level(
        self,
        db_path: Path,
        synchronous: Synchronous,
        level: int,
        monkeypatch: pytest.MonkeyPatch,
        make_event: Callable[..., NewEvent],
    ) -> None:
        """The writer, each thread's reader and each scan's connection use the configured level."""
        levels: list[int] = []
        connect = SQLiteEventLog._connect

        def spy(self: SQLiteEventLog, *, create: bool = False) -> sqlite3.Connection:
            conn = connect(self, create=create)
            levels.append(conn.execute("PRAGMA synchronous").fetchone()[0])
            return conn

        monkeypatch.setattr(SQLiteEventLog, "_connect", spy)
        log = SQLiteEventLog(db_path, synchronous=synchronous)
        try:
            log.append([make_event()])
            reader = threading.Thread(target=log.head)
            reader.start()
            reader.join()
            log.head()
            list(log.iter_events())
            log.verify()
            list(log.export_lines())
        finally:
            log.close()
        assert len(levels) >= 6
        assert set(levels) == {level}
