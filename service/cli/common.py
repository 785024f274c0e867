"""What every command shares: settings from the context, the log, output, progress, errors."""

from __future__ import annotations

import os
import sys
import unicodedata
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import click
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

from events.errors import ChainBroken, ConflictError, InvalidEvent, LedgerError
from events.log import EventLog
from service.settings import SettingError, Settings, load_settings
from service.store import open_log

EXIT_FAILED = 1
"""A check that failed (verify, replay) or a store that could not do its work."""
EXIT_BAD_INPUT = 2
"""Bad input: a usage error, an invalid event, a conflict, a bad setting."""


@dataclass
class Context:
    """The group's options, turned into settings once a command needs them."""

    flags: dict[str, Any] = field(default_factory=dict)
    _settings: Settings | None = None

    @property
    def settings(self) -> Settings:
        """The validated settings (flags over environment over defaults)."""
        if self._settings is None:
            self._settings = load_settings(self.flags)
        return self._settings

    def with_flags(self, **flags: Any) -> Settings:  # noqa: ANN401 - click hands over plain values
        """The settings with a command's own flags added."""
        self.flags.update({k: v for k, v in flags.items() if v is not None})
        self._settings = None
        return self.settings


pass_context = click.make_pass_decorator(Context, ensure=True)


@contextmanager
def opened(ctx: Context, *, must_exist: bool = False) -> Iterator[EventLog]:
    """The configured log, closed (and its appends finished) on the way out."""
    log = open_log(ctx.settings, must_exist=must_exist)
    try:
        yield log
    finally:
        log.close()


_UNSHOWN = frozenset({"Cc", "Cf"})
"""Unicode categories shown as escapes: controls, and format characters (zero widths, bidi
controls, the Arabic letter mark, tag characters, the soft hyphen)."""


def shown(text: str) -> str:
    """Stored text as a terminal may show it: each control or format character as its escape.

    An escape sequence in a name (anyone with the `append` scope can send one) would
    otherwise reach the operator's terminal as a command: a live link, hidden text, the
    cursor moved up to overwrite the row above; a bidi control would reorder what is read.
    """
    if text.isprintable():  # the common case: no control or format character at all
        return text
    return "".join(
        c.encode("unicode_escape").decode("ascii")
        if c != "\n" and unicodedata.category(c) in _UNSHOWN
        else c  # a line break stays one: it cannot leave its cell
        for c in text
    )


class PlainTable(Table):
    """A rich table whose text cells show as given: stored text is data, never markup.

    A name such as `[/bold]` would otherwise stop the table with a markup error, and
    `[link=…]` would put a live link in an operator's terminal; control characters are
    shown as escapes (`shown`). A value too wide for its column is folded, never cut.
    """

    def add_column(self, *args: Any, **options: Any) -> None:  # noqa: ANN401 - rich's own types
        """`Table.add_column`, folding a value too wide for its cell rather than cutting it."""
        options.setdefault("overflow", "fold")
        super().add_column(*args, **options)

    def add_row(self, *cells: Any, **options: Any) -> None:  # noqa: ANN401 - rich's own types
        """`Table.add_row`, each `str` cell as plain `Text`."""
        super().add_row(*(Text(shown(c)) if isinstance(c, str) else c for c in cells), **options)


@contextmanager
def verdict_output() -> Iterator[None]:
    """Output of a command whose exit code is its verdict (`verify`, `replay`).

    A reader that goes away (`| head`, `| true`) must not turn a failure into success:
    the output is dropped, and the command exits by its verdict.
    """
    try:
        yield
    except BrokenPipeError:
        devnull = os.open(os.devnull, os.O_WRONLY)  # nothing more reaches the closed pipe
        os.dup2(devnull, sys.stdout.fileno())


def stderr() -> Console:
    """The console for people: stderr, so stdout carries only data."""
    return Console(stderr=True)


class _Console(Console):
    """rich's console, but a reader that goes away is the command's to judge, not an exit 1."""

    def on_broken_pipe(self) -> None:
        """Drop the rest of the output and raise `BrokenPipeError` (rich exits 1 instead).

        `ledger show … | head` then exits 0 (`service.cli.main`), and `verify` or `replay`
        still exit by their verdict (`verdict_output`).
        """
        self.quiet = True
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        raise BrokenPipeError


def stdout() -> Console:
    """The console for tables on stdout: the terminal's width, or wide enough in a pipe."""
    console = _Console()
    if not console.is_terminal:
        console = _Console(width=200)
    return console


@contextmanager
def progress(description: str, total: int | None) -> Iterator[Any]:
    """A progress bar on a terminal's stderr; in a pipe, nothing at all."""
    console = stderr()
    if not console.is_terminal:
        yield lambda _n: None
        return
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=console, transient=True) as bar:
        task = bar.add_task(description, total=total)
        yield lambda n: bar.advance(task, n)


def exit_code(error: BaseException) -> int:
    """The exit code of an error: 2 for bad input, 1 for a store that failed."""
    if isinstance(error, InvalidEvent | ConflictError | ChainBroken | SettingError):
        return EXIT_BAD_INPUT
    return EXIT_FAILED


def one_line(error: BaseException) -> str:
    """An error as the single line a person reads on stderr."""
    text = " ".join(str(error).split())
    if isinstance(error, LedgerError | SettingError):
        return f"ledger: {text}"
    return f"ledger: error: {text or type(error).__name__}"


def fail(message: str, code: int = EXIT_BAD_INPUT) -> None:
    """Stop a command with one line on stderr."""
    click.echo(f"ledger: {message}", err=True)
    sys.exit(code)
