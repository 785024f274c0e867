"""A full disk fails an append whole, with a `StoreError`, and the log recovers when space returns.

The disk is "full" through a file-size limit (RLIMIT_FSIZE) set in a child process, so the
test's own process keeps writing freely.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from events.sqlite import SQLiteEventLog

HELPER = Path(__file__).parent / "helpers" / "disk_full.py"


@pytest.fixture(scope="module", params=[0, 64 * 1024], ids=["no-room", "a-little-room"])
def report(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Any:
    """Run the child once per margin; its JSON report and the database it left."""
    path = tmp_path_factory.mktemp("disk-full") / "ledger.db"
    done = subprocess.run(
        [sys.executable, str(HELPER), str(path), str(request.param)],
        capture_output=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr.decode()
    return json.loads(done.stdout), path


def _refused(outcome: dict[str, Any]) -> None:
    assert outcome.get("store_error") is True, outcome
    assert outcome["error"] == "StoreError"
    assert outcome["message"].startswith("append failed, nothing stored: ")
    assert "disk" in outcome["message"] or "full" in outcome["message"]


@pytest.mark.slow
class TestDiskFull:
    def test_the_append_fails_with_a_store_error(self, report: Any) -> None:
        """An append that does not fit raises `StoreError` saying nothing was stored, and why."""
        values, _ = report
        _refused(values["full"])

    def test_nothing_of_the_batch_is_stored(self, report: Any) -> None:
        """After the failure the head is unchanged, no event of the batch is readable."""
        values, _ = report
        assert values["head_when_full"] == values["head_before"] == 20
        assert values["found_when_full"] == 0
        assert values["readable_when_full"] == 20

    def test_grouped_appends_fail_alike(self, report: Any) -> None:
        """Concurrent appends that do not fit all fail with `StoreError`; the head is unchanged."""
        values, _ = report
        assert len(values["full_concurrent"]) == 3
        for outcome in values["full_concurrent"]:
            _refused(outcome)
        assert values["head_when_full_concurrent"] == 20

    def test_the_log_recovers_when_space_returns(self, report: Any) -> None:
        """Once the limit is lifted the next append gets the next position; the chain verifies."""
        values, _ = report
        assert values["lifted"] == {"positions": [21]}
        assert values["again"] == {"positions": [22, 23, 24, 25, 26]}
        assert values["verify"] == {"ok": True, "head": 26}

    def test_the_file_is_sound_afterwards(self, report: Any) -> None:
        """Reopened, the database passes SQLite's integrity check and the chain verifies."""
        _, path = report
        with contextlib.closing(sqlite3.connect(path)) as conn:
            assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        log = SQLiteEventLog(path)
        try:
            result = log.verify()
            assert (result.ok, result.head, log.head()) == (True, 26, 26)
        finally:
            log.close()
