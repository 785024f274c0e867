"""A process killed while appending loses nothing it acknowledged and leaves a sound file."""

from __future__ import annotations

import contextlib
import os
import random
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import IO

import pytest

from events.sqlite import SQLiteEventLog

HELPER = Path(__file__).parent / "helpers" / "append_loop.py"
ROUNDS = 10
AT_LEAST = 3  # acknowledged lines before the kill may come


def _drain(stream: IO[bytes], into: list[bytes]) -> None:
    into.extend(stream)


def run_and_kill(db_path: Path, rng: random.Random) -> tuple[dict[str, int], bytes]:
    """Start the appending child, SIGKILL it at a random moment; its acknowledged events."""
    child = subprocess.Popen(
        [sys.executable, str(HELPER), str(db_path)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    lines: list[bytes] = []
    reader = threading.Thread(target=_drain, args=(child.stdout, lines))
    reader.start()
    try:
        deadline = time.monotonic() + 30
        while len(lines) < AT_LEAST and child.poll() is None and time.monotonic() < deadline:
            time.sleep(0.005)
        assert len(lines) >= AT_LEAST, "the child acknowledged too few appends"
        time.sleep(rng.uniform(0.0, 0.8))
    finally:
        os.kill(child.pid, signal.SIGKILL)
        child.wait(timeout=30)
        reader.join(timeout=30)
    assert child.stderr is not None
    stderr = child.stderr.read()
    child.stderr.close()
    assert child.stdout is not None
    child.stdout.close()
    acked = {}
    for line in lines:
        if line.endswith(b"\n"):
            position, event_id = line.decode().split()
            acked[event_id] = int(position)
    return acked, stderr


@pytest.mark.slow
class TestKilledWriter:
    def test_every_acknowledged_event_survives_repeated_kills(self, db_path: Path) -> None:
        """Ten SIGKILLs in a row: every acknowledged event is kept, gap-free; chain, file sound."""
        seed = random.randrange(2**32)
        rng = random.Random(seed)
        acked: dict[str, int] = {}
        for round_number in range(ROUNDS):
            new, stderr = run_and_kill(db_path, rng)
            assert b"Traceback" not in stderr, stderr.decode()
            assert len(new) >= AT_LEAST
            assert not set(new) & set(acked)
            acked.update(new)

            log = SQLiteEventLog(db_path)
            try:
                head = log.head()
                stored = {e.event_id: e.position for e in log.iter_events()}
                result = log.verify()
            finally:
                log.close()
            where = f"round {round_number}, seed {seed}"
            missing = {i: p for i, p in acked.items() if stored.get(i) != p}
            assert not missing, f"{where}: acknowledged events lost or moved: {missing}"
            assert sorted(stored.values()) == list(range(1, head + 1)), where
            assert (result.ok, result.head) == (True, head), f"{where}: {result}"
            with contextlib.closing(sqlite3.connect(db_path)) as conn:
                assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)], where
        assert len(acked) >= ROUNDS * AT_LEAST
