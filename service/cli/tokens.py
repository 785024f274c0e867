"""`ledger token create|list|revoke`: API tokens, shown once, stored hashed."""

from __future__ import annotations

import click
import msgspec

from service.cli.common import (
    EXIT_BAD_INPUT,
    Context,
    PlainTable,
    fail,
    opened,
    pass_context,
    stdout,
)
from service.tokens import SCOPES, Scope, TokenStore


def _tokens(ctx: Context, *, must_exist: bool = True) -> TokenStore:
    """The token table, once the ledger is checked (created first if not `must_exist`)."""
    with opened(ctx, must_exist=must_exist):
        pass
    return TokenStore(ctx.settings.database)


@click.group()
def token() -> None:
    """Manage API tokens."""


@token.command()
@click.option(
    "--scope",
    "scopes",
    multiple=True,
    required=True,
    type=click.Choice(SCOPES),
    help="append (write events) or admin (everything); repeatable.",
)
@click.option(
    "--subject", required=True, help="Who holds the token; recorded as metadata.recorded_by."
)
@pass_context
def create(ctx: Context, scopes: tuple[Scope, ...], subject: str) -> None:
    """Create a token and print it once; only its hash is stored."""
    store = _tokens(ctx, must_exist=False)  # a token may come before the first event
    try:
        secret, info = store.create(subject, scopes)
    except ValueError as exc:
        fail(str(exc), EXIT_BAD_INPUT)
        return
    finally:
        store.close()
    click.echo(secret)
    click.echo(
        f"token {info.token_id} for {info.subject} ({', '.join(info.scopes)}); "
        "it is shown only this once",
        err=True,
    )


@token.command("list")
@click.option("--json", "as_json", is_flag=True, help="JSON for programs.")
@pass_context
def list_(ctx: Context, as_json: bool) -> None:
    """List tokens (ids, subjects, scopes; never the secrets)."""
    store = _tokens(ctx)  # listing makes no ledger where there is none
    try:
        infos = store.list()
    finally:
        store.close()
    if as_json:
        click.echo(msgspec.json.encode(infos).decode())
        return
    table = PlainTable(title=f"{len(infos)} tokens")
    for column in ("id", "subject", "scopes", "created", "revoked"):
        table.add_column(column)
    for info in infos:
        table.add_row(
            info.token_id,
            info.subject,
            " ".join(info.scopes),
            info.created_at,
            info.revoked_at or "",
        )
    stdout().print(table)


@token.command()
@click.argument("token_id")
@pass_context
def revoke(ctx: Context, token_id: str) -> None:
    """Revoke a token by its id."""
    store = _tokens(ctx)
    try:
        done = store.revoke(token_id)
    finally:
        store.close()
    if not done:
        fail(f"no live token {token_id}", EXIT_BAD_INPUT)
    click.echo(f"token {token_id} revoked", err=True)
