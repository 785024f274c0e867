"""Closing a log while others use it: no crash, no hang, nothing acknowledged lost.

Each race runs in a child process (`tests/helpers/closing.py`): what these guard against is
the interpreter crashing (CPython's `sqlite3` closing a connection another thread reads
on) or a lock never given back, either of which would take the test run down with it.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

HELPER = Path(__file__).parent / "helpers" / "closing.py"


def run(scenario: str, tmp_path: Path) -> str:
    child = subprocess.run(
        [sys.executable, str(HELPER), scenario, str(tmp_path / "ledger.db")],
        capture_output=True,
        text=True,
        timeout=90,
        check=False,
    )
    assert child.returncode == 0, f"exit {child.returncode}: {child.stderr[-2000:]}"
    return child.stdout.strip()


def test_two_closes_at_once_wait_for_the_queued_appends(tmp_path: Path) -> None:
    """A second `close` waits for the first: no connection is closed under the writer."""
    assert run("two_closes", tmp_path) == "failed=0 heads_ok=True"


def test_a_read_racing_close_hears_that_the_log_is_closed(tmp_path: Path) -> None:
    assert run("read", tmp_path) == "reader=closed"


@pytest.mark.skipif(sys.implementation.name != "cpython", reason="RLock._is_owned")
def test_an_interrupt_just_after_taking_the_connection_gives_it_back(tmp_path: Path) -> None:
    """Ctrl-C between the inline append's acquire and its `try`: later appends still run."""
    assert run("interrupt", tmp_path) == "fired=True next_append_done=True closed=True head=1"
