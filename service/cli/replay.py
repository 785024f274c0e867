"""`ledger replay`: every projection rebuilt from zero, compared with the snapshot and live fold."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterable, Iterator
from functools import partial
from pathlib import Path

import click
import msgspec

from events.envelope import Event
from events.log import EventLog, hash_at
from projections import PROJECTION_NAMES, Live, Projections, build, last_rejection, load_snapshot
from service.cli.common import (
    EXIT_FAILED,
    Context,
    PlainTable,
    opened,
    pass_context,
    progress,
    stdout,
    verdict_output,
)


def _live(log: EventLog, advance: Callable[[int], None]) -> Projections:
    """Fold event by event as a running service does, rebuilding when one lands in the past."""
    live = Live()
    for event in log.iter_events():
        if not live.apply(event):
            live.rebuild(log.iter_events(upto=event.position))
        advance(1)
    return live.projections()


def _snapshot(log: EventLog, path: Path) -> tuple[Projections | None, str]:
    """The snapshot's state with the tail folded, and what became of it (`used`, why not)."""
    if not path.exists():
        return None, "none"
    live = load_snapshot(path.read_bytes(), anchor_at=partial(hash_at, log))
    if live is None:
        return None, f"rejected: {last_rejection() or 'unusable'}"
    for event in log.iter_events(after=live.position):
        if not live.apply(event):
            live.rebuild(log.iter_events())
            break
    return live.projections(), f"used (at position {live.position})"


def _counted(events: Iterable[Event], advance: Callable[[int], None]) -> Iterator[Event]:
    """The events, each counted on the progress bar as it is folded."""
    for event in events:
        yield event
        advance(1)


class ReplayRow(msgspec.Struct, frozen=True):
    """One projection's digests in `ledger replay --json` (`snapshot` None without one)."""

    replayed: str
    live: str
    snapshot: str | None
    match: bool


class ReplayReport(msgspec.Struct, frozen=True):
    """`ledger replay --json`: what was compared, and the verdict (`ok`)."""

    head: int
    snapshot: str
    projections: dict[str, ReplayRow]
    ok: bool


@click.command()
@click.option("--json", "as_json", is_flag=True, help="One JSON object, full digests.")
@pass_context
def replay(ctx: Context, *, as_json: bool) -> None:
    """Rebuild every projection from zero; compare with snapshot and live; exit 1 if any differ."""
    with opened(ctx, must_exist=True) as log:
        head = log.head()
        with progress("replaying", head) as advance:
            replayed = build(_counted(log.iter_events(upto=head), advance))
        with progress("live fold", head) as advance:
            live = _live(log, advance)
        snapshot, status = _snapshot(log, Path(ctx.settings.snapshot_file))
    rows: dict[str, ReplayRow] = {}
    for name in PROJECTION_NAMES:
        ours, theirs = replayed.digests()[name], live.digests()[name]
        snap = snapshot.digests()[name] if snapshot is not None else None
        rows[name] = ReplayRow(ours, theirs, snap, ours == theirs and snap in {None, ours})
    ok = replayed.position == live.position == head and all(row.match for row in rows.values())
    with verdict_output():
        if as_json:
            report = ReplayReport(head, status, rows, ok)
            click.echo(msgspec.json.encode(report).decode())
        else:
            snapshot_file_seen = status != "none"
            table = PlainTable(title=f"Replay of {head} events; snapshot: {status}")
            for column in ("projection", "replayed from zero", "snapshot + tail", "live fold"):
                table.add_column(column, overflow="fold")  # whole digests, never cut
            table.add_column("match")
            for name, row in rows.items():
                snap_cell = row.snapshot or ("(rejected)" if snapshot_file_seen else "(none)")
                table.add_row(name, row.replayed, snap_cell, row.live, "yes" if row.match else "NO")
            stdout().print(table)
    if not ok:
        click.echo("replay differs from the live state", err=True)
        sys.exit(EXIT_FAILED)
