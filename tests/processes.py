"""What the tests of the writer process share: a process's children, and whether one ended."""

from __future__ import annotations

import time
from pathlib import Path


def state(pid: int) -> str:
    """A process's state letter (`R`, `S`, `T` stopped, `Z` ended but not reaped)."""
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]


def children_of(pid: int) -> set[int]:
    """The processes `pid` started, from any of its threads, still running or not reaped."""
    found: set[int] = set()
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            found.update(int(p) for p in (task / "children").read_text().split())
        except FileNotFoundError:
            continue  # a thread that ended meanwhile
    return found


def ended(pid: int, seconds: float) -> bool:
    """Whether a process ends within `seconds` (gone, or a zombie its parent has not reaped)."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            if state(pid) == "Z":
                return True
        except FileNotFoundError:
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.02)


def reaped(pid: int, seconds: float) -> bool:
    """Whether a process is gone within `seconds`, reaped by its parent (no zombie left)."""
    deadline = time.monotonic() + seconds
    while Path(f"/proc/{pid}").exists():
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.02)
    return True
