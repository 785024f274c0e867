"""`ledger serve`: the HTTP service on the configured host and port."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
from pathlib import Path
from types import FrameType

import click

from events.errors import StoreError
from service.cli.common import EXIT_FAILED, Context, fail, pass_context
from service.store import is_sqlite, open_log


def _stopped(_signum: int, _frame: FrameType | None) -> None:
    """After a graceful stop, uvicorn raises SIGTERM again: by then the stop is clean, exit 0."""
    raise SystemExit(0)


@click.command()
@click.option(
    "--host", envvar="LEDGER_HOST", help="Address to bind [env LEDGER_HOST; default 127.0.0.1]"
)
@click.option("--port", envvar="LEDGER_PORT", help="Port to bind [env LEDGER_PORT; default 8000]")
@click.option(
    "--log-level",
    envvar="LEDGER_LOG_LEVEL",
    help="debug, info, warning or error [env LEDGER_LOG_LEVEL]",
)
@click.option(
    "--log-format", envvar="LEDGER_LOG_FORMAT", help="auto, json or console [env LEDGER_LOG_FORMAT]"
)
@click.option(
    "--body-limit",
    envvar="LEDGER_BODY_LIMIT",
    help="Largest request body in bytes [env LEDGER_BODY_LIMIT; default 1 MiB]",
)
@click.option(
    "--batch-limit",
    envvar="LEDGER_BATCH_LIMIT",
    help="Most events in one append [env LEDGER_BATCH_LIMIT; default 1000]",
)
@click.option(
    "--page-limit",
    envvar="LEDGER_PAGE_LIMIT",
    help="Largest page of any list (events, streams, projections) [env LEDGER_PAGE_LIMIT;"
    " default 1000]",
)
@click.option(
    "--snapshot-every",
    envvar="LEDGER_SNAPSHOT_EVERY",
    help="Snapshot after N folded events (or a tenth of the log if more), 0 only on shutdown "
    "[env LEDGER_SNAPSHOT_EVERY; default 1000]",
)
@click.option(
    "--snapshot-path",
    envvar="LEDGER_SNAPSHOT_PATH",
    help="Snapshot file [env LEDGER_SNAPSHOT_PATH; default DATABASE.snapshot]",
)
@click.option(
    "--nats-url",
    envvar="LEDGER_NATS_URL",
    help="NATS server for the relay [env LEDGER_NATS_URL; default nats://127.0.0.1:4222;"
    " accepted, not used until the NATS relay lands]",
)
@click.option(
    "--read-token-required",
    envvar="LEDGER_READ_TOKEN_REQUIRED",
    help="true: reads need a token too [env LEDGER_READ_TOKEN_REQUIRED]",
)
@pass_context
def serve(ctx: Context, /, **flags: str | None) -> None:
    """Run the HTTP API; SIGTERM finishes in-flight appends, writes a snapshot, exits 0."""
    settings = ctx.with_flags(**flags)  # a bad setting stops here, before anything starts

    import uvicorn  # noqa: PLC0415 - only this command needs the server

    from service.app import create_app  # noqa: PLC0415 - keeps the other commands' start-up light
    from service.http_protocol import ProblemHttpToolsProtocol  # noqa: PLC0415 - as uvicorn

    listener = _listen(settings.host, settings.port)  # before the ledger opens: nothing to undo
    # before the database is opened (and made): found at start, not at SIGTERM's snapshot;
    # beside a database in a missing folder, the database's own error says it better
    snapshot_beside = settings.snapshot_path is None and not settings.is_postgres
    checked = not snapshot_beside or Path(settings.database).parent.is_dir()
    # beside the database (the default), its folder is the database's: named as such
    whose, named = (
        ("the database's", "LEDGER_DATABASE, --database")
        if snapshot_beside
        else ("the snapshot's", "LEDGER_SNAPSHOT_PATH, --snapshot-path")
    )
    problem = _unwritable(Path(settings.snapshot_file), whose) if checked else None
    if problem is None and not settings.is_postgres:
        problem = _overwrites(Path(settings.snapshot_file), Path(settings.database))
    if problem is not None:
        listener.close()
        fail(f"{problem} ({named})")
    try:  # a database it cannot open stops here in one line, not in the server's lifespan
        open_log(settings).close()
    except StoreError as exc:
        listener.close()
        fail(f"{' '.join(str(exc).split())} (LEDGER_DATABASE, --database)", EXIT_FAILED)
    app = create_app(settings)
    signal.signal(signal.SIGTERM, _stopped)
    config = uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        log_config=None,
        access_log=False,
        server_header=False,
        timeout_graceful_shutdown=30,
        http=ProblemHttpToolsProtocol,  # a request that is not HTTP: a 400 problem, not text
    )
    # Ctrl-C: uvicorn stops gracefully, then raises it again (as `uvicorn.run` swallows it)
    with contextlib.suppress(KeyboardInterrupt):
        uvicorn.Server(config).run(sockets=[listener])


_SQLITE_FILES = ("-wal", "-shm", "-journal")


def _unwritable(path: Path, whose: str) -> str | None:
    """Why snapshots cannot be written at `path` (a file replaced whole), or None."""
    folder = path.parent
    if path.is_dir():
        return f"the snapshot path {path} is a folder"
    if not folder.is_dir():
        return f"{whose} folder {folder} does not exist"
    if not os.access(folder, os.W_OK | os.X_OK):
        return f"{whose} folder {folder} is not writable"
    return None


def _overwrites(snapshot: Path, database: Path) -> str | None:
    """Why a snapshot at `snapshot` would replace the database or one of its files, or None.

    A snapshot is renamed over its path: at the database's own path it would replace the
    ledger with itself, every event lost.
    """
    files = [database, *(database.with_name(database.name + end) for end in _SQLITE_FILES)]
    for file in files:
        same = snapshot.resolve() == file.resolve() or (
            snapshot.exists() and file.exists() and snapshot.samefile(file)
        )
        if same:
            return f"the snapshot path {snapshot} is the database's own file {file}"
    if is_sqlite(snapshot):  # another ledger's database, say: never replaced, never written
        return f"the snapshot path {snapshot} is a SQLite database, not a snapshot"
    return None


def _listen(host: str, port: int) -> socket.socket:
    """A socket bound to the address, or one line saying why it cannot be (never a traceback).

    Bound here and handed to the server, so the address checked is the address served; the
    family chosen as uvicorn chooses it (IPv6 for a host with a colon, else IPv4, so that
    `localhost` is 127.0.0.1 whatever `/etc/hosts` lists first).
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
    except (OSError, UnicodeError) as exc:
        sock.close()
        reason = getattr(exc, "strerror", None) or str(exc)
        fail(f"cannot listen on {host} port {port} (LEDGER_HOST, LEDGER_PORT): {reason}")
    return sock
