"""Files written under a name of their own, then moved to their place whole.

A snapshot or a backup is written beside its target under a name carrying the writer's
process id (two processes never write one file), then renamed or linked into place. One
killed outright (SIGKILL, a power cut) leaves its file behind: the next writer of the
same target removes those whose process is gone.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path


def own_path(target: Path, suffix: str, *, hidden: bool = False) -> Path:
    """`target`'s file for this process: `<name>.<pid><suffix>` (dot-led if `hidden`)."""
    lead = "." if hidden else ""
    return target.with_name(f"{lead}{target.name}.{os.getpid()}{suffix}")


def remove_stale(target: Path, suffix: str, *, hidden: bool = False) -> None:
    """Remove `target`'s files of processes that no longer run (never another's in use)."""
    lead = "." if hidden else ""
    prefix = f"{lead}{target.name}."
    with contextlib.suppress(OSError):
        for file in target.parent.iterdir():
            name = file.name
            if not (name.startswith(prefix) and name.endswith(suffix)):
                continue
            pid = name[len(prefix) : len(name) - len(suffix)]
            if pid.isdigit() and not _running(int(pid)):
                file.unlink(missing_ok=True)


def sync_folder(folder: Path) -> None:
    """Fsync a folder, so a rename or link in it survives a power cut (where supported)."""
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _running(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # another user's process: running
    return True
