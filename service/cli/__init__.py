"""The `ledger` command: one group, one module per family of commands."""

from __future__ import annotations

import sys

import click

from events.errors import LedgerError
from service.cli.common import EXIT_BAD_INPUT, EXIT_FAILED, Context, exit_code, one_line
from service.cli.log_commands import register as register_log_commands
from service.cli.replay import replay
from service.cli.serve import serve
from service.cli.show import show
from service.cli.tokens import token
from service.logging import configure_cli_logging
from service.settings import SettingError


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--database",
    envvar="LEDGER_DATABASE",
    help="SQLite path or postgresql:// URL [env LEDGER_DATABASE; default ./ledger.db]",
)
@click.option(
    "--synchronous",
    envvar="LEDGER_SYNCHRONOUS",
    help="SQLite durability: FULL (default), NORMAL or EXTRA [env LEDGER_SYNCHRONOUS]",
)
@click.version_option(package_name="partnership-ledger")
@click.pass_context
def cli(ctx: click.Context, database: str | None, synchronous: str | None) -> None:
    """An event-sourced ledger of biopharma partnership and capacity announcements."""
    ctx.obj = Context(flags={"database": database, "synchronous": synchronous})


register_log_commands(cli)
cli.add_command(serve)
cli.add_command(show)
cli.add_command(replay)
cli.add_command(token)


def main(argv: list[str] | None = None) -> None:
    """Run `ledger`; every failure is one line on stderr and a non-zero exit, never a traceback."""
    configure_cli_logging()
    try:
        cli.main(args=argv, prog_name="ledger", standalone_mode=False)
    except SystemExit as exc:
        # click itself answers a broken pipe with exit 1, having wrapped the streams so
        # that nothing more is written to them: the reader went away (`| head`), no error
        if exc.code == 1 and type(sys.stdout).__name__.endswith("PacifyFlushWrapper"):
            sys.exit(0)
        raise
    except BrokenPipeError:
        sys.stderr.close()  # the same, seen by the command before click
        sys.exit(0)
    except KeyboardInterrupt:
        sys.exit(130)
    except Exception as exc:  # noqa: BLE001 - the last line of defence against a traceback
        message, code = _failure(exc)
        if message:
            click.echo(message, err=True)
        sys.exit(code)


def _failure(exc: Exception) -> tuple[str, int]:
    """The line to print and the exit code of a command that raised `exc`."""
    if isinstance(exc, click.exceptions.Exit):
        return "", exc.exit_code
    if isinstance(exc, click.exceptions.Abort):
        return "ledger: aborted", 130
    if isinstance(exc, click.exceptions.NoArgsIsHelpError):  # `ledger` alone: the help
        return exc.format_message(), exc.exit_code
    if isinstance(exc, click.ClickException):
        return f"ledger: {' '.join(exc.format_message().split())}", exc.exit_code or EXIT_BAD_INPUT
    if isinstance(exc, LedgerError | SettingError):
        return one_line(exc), exit_code(exc)
    return one_line(exc), EXIT_FAILED
