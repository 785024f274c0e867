"""`ledger backup`: SQLite's online backup of a ledger into a new file, whole or not at all."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

from events.errors import StoreError
from events.log import Progress
from events.tempfiles import own_path, remove_stale, sync_folder

PAGES_PER_STEP = 256
"""Pages copied per step: the progress bar moves between steps."""


def backup_into(source: sqlite3.Connection, path: Path, progress: Progress | None) -> None:
    """Copy the database of `source` (an autocommit connection) into a new file at `path`.

    The copy is of one state of the log: it runs inside one read transaction of `source`.
    Stepping outside one, SQLite restarts a backup after every commit of another
    connection, so under a steady flow of appends (a running service) it never ended. A
    backup that fails or is interrupted removes the file it made: a file at `path` is
    always a finished copy: the copy is made under a hidden name of this process beside it
    (`events.tempfiles`) and linked to `path` once whole, so a backup killed outright
    (SIGKILL, a power cut) leaves no file at `path` either.
    """
    if path.exists():
        msg = f"{path} exists already; a backup writes a new file"
        raise StoreError(msg)
    for suffix in (_PARTIAL, _PARTIAL + "-journal"):  # of backups to this path killed earlier
        remove_stale(path, suffix, hidden=True)
    partial = own_path(path, _PARTIAL, hidden=True)
    try:
        target = sqlite3.connect(partial)
        target.execute("PRAGMA user_version").fetchone()  # opens the file now, or fails
    except sqlite3.Error as exc:
        msg = f"cannot write a backup at {path}: {exc}"
        raise StoreError(msg) from None
    done = 0

    def report(_status: int, remaining: int, total: int) -> None:
        nonlocal done
        if progress is not None:
            progress(total - remaining - done)
        done = total - remaining

    try:
        source.execute("BEGIN")
        source.execute("SELECT 1 FROM events LIMIT 1").fetchone()  # the read starts here
        source.backup(target, pages=PAGES_PER_STEP, progress=report)
    except BaseException as exc:
        target.close()
        _remove(partial)  # the file this call made, never a finished copy
        if isinstance(exc, sqlite3.Error):
            msg = f"backup to {path} failed, nothing kept: {exc}"
            raise StoreError(msg) from None
        raise
    finally:
        if source.in_transaction:
            source.execute("COMMIT")
    target.close()
    try:
        _into_place(partial, path)
    finally:
        _remove(partial)
    sync_folder(path.parent)


def _into_place(partial: Path, path: Path) -> None:
    """Give the finished copy its name, never over a file made at `path` meanwhile.

    A hard link does it in one step; a file system without them (FAT, some network and
    container mounts) gets `path` reserved empty (`O_EXCL`) and the copy renamed over it.
    """
    exists = f"{path} exists already; a backup writes a new file"
    try:
        os.link(partial, path)
    except FileExistsError:
        raise StoreError(exists) from None
    except OSError:
        try:
            os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644))
            partial.replace(path)
        except FileExistsError:
            raise StoreError(exists) from None
        except OSError as exc:
            msg = f"cannot write a backup at {path}: {exc}"
            raise StoreError(msg) from None


_PARTIAL = ".partial"


def _remove(file: Path) -> None:
    for suffix in ("", "-journal"):
        Path(f"{file}{suffix}").unlink(missing_ok=True)
