"""Commands on the log itself: seed, append, events, verify, export, import, backup."""

from __future__ import annotations

import os
import pwd
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import IO

import click
import msgspec

from events.codec import CANONICAL, payload_class
from events.dates import format_timestamp
from events.envelope import NewEvent
from events.errors import IdempotencyConflict, InvalidEvent, StoreError, TargetConflict
from events.intake import at_line, numbered_ndjson
from events.log import MAX_POSITION
from events.seed import seed_events
from service.cli.common import (
    EXIT_FAILED,
    Context,
    PlainTable,
    fail,
    opened,
    pass_context,
    progress,
    stdout,
    verdict_output,
)
from service.tokens import CLI_PREFIX

BOM = b"\xef\xbb\xbf"
"""A UTF-8 byte order mark, which some editors put at the start of a file."""


def _recorder() -> str:
    """Who appends from the command line: `cli:` and the account running it.

    The account of the process's user id, not `$USER` or `$LOGNAME` (anyone sets those);
    a user id with no account (a container's bare uid) is named by its number.
    """
    uid = os.geteuid()
    try:
        name = pwd.getpwuid(uid).pw_name
    except KeyError:
        name = f"uid-{uid}"
    return f"{CLI_PREFIX}{name}"


def _lines(stream: IO[bytes]) -> Iterator[bytes]:
    """The lines of an NDJSON input, a UTF-8 byte order mark at its start dropped."""
    first = True
    for line in stream:
        yield line.removeprefix(BOM) if first else line
        first = False


@click.command()
@pass_context
def seed(ctx: Context) -> None:
    """Append the bundled seed (the Lotte Biologics / Merck KGaA article); idempotent.

    Recorded by `cli:` and the account running it, as `ledger append` records.
    """
    recorder = _recorder()
    events = [
        msgspec.structs.replace(
            event, metadata=msgspec.structs.replace(event.metadata, recorded_by=recorder)
        )
        for event in seed_events()
    ]
    with opened(ctx) as log, progress("seeding", len(events)) as advance:
        result = log.append(events)
        advance(len(events))
        head = log.head()
    if result.replayed:
        click.echo(f"seed already present: {len(events)} events, head {head}", err=True)
    else:
        click.echo(f"seeded {len(result.events)} events, head {result.head}", err=True)


@click.command()
@click.argument("file", type=click.File("rb"))
@click.option(
    "--expect",
    "expect",
    multiple=True,
    metavar="STREAM=VERSION",
    help="Expected version of a stream (0: must not exist yet); repeatable.",
)
@pass_context
def append(ctx: Context, file: IO[bytes], expect: tuple[str, ...]) -> None:
    """Append the NDJSON events of FILE (or - for stdin) as one atomic batch.

    Each event's `metadata.recorded_by` is `cli:` and the account running the command.
    """
    expected: dict[str, int] = {}
    for item in expect:
        stream, sep, version = item.rpartition("=")
        if not sep or not stream or not version.isdigit():
            msg = f"--expect {item!r} is not STREAM=VERSION"
            raise click.BadParameter(msg)
        expected[stream] = int(version)
    numbered = numbered_ndjson(_lines(file), recorded_by=_recorder())
    if not numbered:
        msg = "no events in the input"
        raise click.BadParameter(msg)
    with opened(ctx) as log:
        try:
            result = log.append([event for _, event in numbered], expected or None)
        except InvalidEvent as exc:  # about one event of the batch: say which line
            raise at_line(exc, [number for number, _ in numbered]) from None
        except (TargetConflict, IdempotencyConflict) as exc:  # the same, for one event's conflict
            line = _conflict_line(exc, numbered)
            if line is not None:
                exc.args = (f"line {line}: {exc}",)
            raise
    for committed in result.events:
        sys.stdout.buffer.write(CANONICAL.encode(committed) + b"\n")
    state = "already stored, nothing written" if result.replayed else "appended"
    click.echo(f"{len(result.events)} events {state}; head {result.head}", err=True)


def _conflict_line(
    error: TargetConflict | IdempotencyConflict, numbered: list[tuple[int, NewEvent]]
) -> int | None:
    """The input line of the event a conflict is about, if the conflict says which."""
    if isinstance(error, TargetConflict):
        index = error.index
        return numbered[index][0] if index is not None and index < len(numbered) else None
    return next((n for n, event in numbered if event.event_id == error.event_id), None)


@click.command()
@click.option(
    "--after",
    type=click.IntRange(min=0, max=MAX_POSITION),
    default=0,
    help="Start after this position.",
)
@click.option(
    "--limit",
    type=click.IntRange(min=1, max=MAX_POSITION),
    default=None,
    help="At most this many events.",
)
@click.option("--stream", default=None, help="Only this stream.")
@click.option("--type", "types", multiple=True, help="Only this type; repeatable.")
@click.option("--json", "as_json", is_flag=True, help="NDJSON of whole envelopes, for programs.")
@pass_context
def events(  # noqa: PLR0913 - one parameter per option
    ctx: Context,
    after: int,
    limit: int | None,
    stream: str | None,
    types: tuple[str, ...],
    as_json: bool,
) -> None:
    """List the log in order: a table for people, --json for programs."""
    for name in types:
        try:  # a misspelt type would read as a log without such events
            payload_class(name)
        except InvalidEvent as exc:
            fail(f"--type: {exc.message}")
    with opened(ctx, must_exist=True) as log:
        page = log.read(
            after=after, limit=limit or 1_000_000_000, stream=stream, types=list(types) or None
        )
    if as_json:
        out = sys.stdout.buffer
        for event in page:
            out.write(msgspec.json.encode(event) + b"\n")
        return
    table = PlainTable(title=f"{len(page)} events")
    for column in ("pos", "occurred", "type", "stream", "v", "recorded at", "event id"):
        # folded, never cut with "…": a narrow terminal still shows every value whole
        table.add_column(column, overflow="fold", no_wrap=column in {"pos", "v"})
    for event in page:
        table.add_row(
            str(event.position),
            event.occurred_on,
            event.type,
            event.stream,
            str(event.stream_version),
            format_timestamp(event.recorded_at),  # as `--known-at` takes it, to the microsecond
            event.event_id,
        )
    stdout().print(table)


@click.command()
@pass_context
def verify(ctx: Context) -> None:
    """Check every hash and link of the chain; exit 1 naming the first bad position."""
    with opened(ctx, must_exist=True) as log:
        total = log.head()
        with progress("verifying", total) as advance:
            result = log.verify(progress=advance)
    with verdict_output():
        if result.ok:
            click.echo(f"ok: {result.checked} events, head {result.head}, chain verified")
        else:
            click.echo(f"broken at position {result.first_bad_position}: {result.reason}")
    if not result.ok:
        sys.exit(EXIT_FAILED)


@click.command("export")
@click.argument("file", type=click.File("wb"), default="-")
@pass_context
def export(ctx: Context, file: IO[bytes]) -> None:
    """Write the whole log as NDJSON of stored envelopes (hashes as stored) to FILE or stdout."""
    with opened(ctx, must_exist=True) as log, progress("exporting", log.head()) as advance:
        for line in log.export_lines(progress=advance):
            file.write(line)
    file.flush()


@click.command("import")
@click.argument("file", type=click.File("rb"))
@pass_context
def import_(ctx: Context, file: IO[bytes]) -> None:
    """Load an export into an empty ledger, checking every hash and the chain; all or nothing."""
    with opened(ctx) as log, progress("importing", None) as advance:
        count = log.import_lines(_lines(file), progress=advance)
        if count == 0:  # as `append` says of an empty input; a cut export is not "verified"
            msg = "no events in the input; nothing imported"
            raise click.BadParameter(msg)
    click.echo(f"imported {count} events; chain verified", err=True)


@click.command()
@click.argument("path", type=click.Path(dir_okay=False, path_type=Path))
@pass_context
def backup(ctx: Context, path: Path) -> None:
    """Copy the ledger to PATH with SQLite's online backup, then verify the copy."""
    from events.sqlite import SQLiteEventLog  # noqa: PLC0415 - only this command needs the class

    with opened(ctx, must_exist=True) as log:
        if not isinstance(log, SQLiteEventLog):
            msg = "backup copies a SQLite ledger; back up PostgreSQL with pg_dump"
            raise StoreError(msg)
        with progress("backing up", log.backup_pages()) as advance:
            log.backup(path, progress=advance)
    copy = SQLiteEventLog(path)
    try:
        result = copy.verify()
    finally:
        copy.close()
    if not result.ok:
        click.echo(f"backup at {path} does not verify: {result.reason}", err=True)
        sys.exit(EXIT_FAILED)
    click.echo(f"backed up {result.checked} events to {path}; the copy verifies", err=True)


def register(group: click.Group) -> None:
    """Add these commands to the `ledger` group."""
    for command in (seed, append, events, verify, export, import_, backup):
        group.add_command(command)
