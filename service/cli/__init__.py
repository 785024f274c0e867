"""The `ledger` command: one group, one module per family of commands."""

from __future__ import annotations

import sys

import click

from events.errors import LedgerError
from service.cli.common import EXIT_BAD_INPUT, EXIT_FAILED, Context, exit_code, one_line
from service.cli.log_commands import register as register_log_commands
from service.cli.serve import serve
from service.cli.show import replay, show
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
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except click.exceptions.Abort:
        click.echo("ledger: aborted", err=True)
        sys.exit(130)
    except click.exceptions.NoArgsIsHelpError as exc:  # `ledger` alone: the help, as printed
        click.echo(exc.format_message(), err=True)
        sys.exit(exc.exit_code)
    except click.ClickException as exc:
        click.echo(f"ledger: {' '.join(exc.format_message().split())}", err=True)
        sys.exit(exc.exit_code or EXIT_BAD_INPUT)
    except (LedgerError, SettingError) as exc:
        click.echo(one_line(exc), err=True)
        sys.exit(exit_code(exc))
    except BrokenPipeError:
        sys.stderr.close()  # the reader went away (`| head`); that is not an error
        sys.exit(0)
    except KeyboardInterrupt:
        sys.exit(130)
    except OSError as exc:
        click.echo(one_line(exc), err=True)
        sys.exit(EXIT_FAILED)
    except Exception as exc:  # noqa: BLE001 - the last line of defence against a traceback
        click.echo(one_line(exc), err=True)
        sys.exit(EXIT_FAILED)
