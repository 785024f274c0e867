"""The one settings source: `LEDGER_*` environment variables, each also a CLI flag (DESIGN §8)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Annotated, Literal
from urllib.parse import urlsplit

import msgspec
from msgspec import Meta

from events.codec import invalid_from

Port = Annotated[int, Meta(ge=1, le=65535)]


class Settings(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Every setting of the service and the command line, validated once at start-up."""

    database: Annotated[str, Meta(min_length=1)] = "./ledger.db"
    synchronous: Literal["FULL", "NORMAL", "EXTRA"] = "FULL"
    writer: Literal["process", "thread"] = "process"
    host: Annotated[str, Meta(min_length=1)] = "127.0.0.1"
    port: Port = 8000
    nats_url: Annotated[str, Meta(min_length=1)] = "nats://127.0.0.1:4222"
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    log_format: Literal["auto", "json", "console"] = "auto"
    # bounded above too: a limit past what SQLite's integers or memory hold would be a 500
    body_limit: Annotated[int, Meta(ge=1, le=1 << 30)] = 1024 * 1024
    batch_limit: Annotated[int, Meta(ge=1, le=100_000)] = 1000
    page_limit: Annotated[int, Meta(ge=1, le=100_000)] = 1000
    snapshot_every: Annotated[int, Meta(ge=0)] = 1000
    snapshot_path: str | None = None
    read_token_required: bool = False

    @property
    def is_postgres(self) -> bool:
        """Whether the database setting names a PostgreSQL server."""
        return self.database.startswith(("postgresql://", "postgres://"))

    @property
    def snapshot_file(self) -> str:
        """Where the projections' snapshot lives (next to a SQLite file by default)."""
        if self.snapshot_path:
            return self.snapshot_path
        if self.is_postgres:
            return "./ledger.snapshot"
        return f"{self.database}.snapshot"


FIELDS = tuple(Settings.__struct_fields__)
PREFIX = "LEDGER_"


def env_name(field: str) -> str:
    """The environment variable of a setting."""
    return PREFIX + field.upper()


def flag_name(field: str) -> str:
    """The CLI flag of a setting."""
    return "--" + field.replace("_", "-")


class SettingError(ValueError):
    """A bad setting; its message is one line naming the variable and the flag."""


def load_settings(
    flags: Mapping[str, object] | None = None, environ: Mapping[str, str] | None = None
) -> Settings:
    """Settings from CLI flags (given, not None) over `LEDGER_*` variables over defaults."""
    environ = os.environ if environ is None else environ
    _refuse_misspelt(environ)
    values: dict[str, object] = {}
    for field in FIELDS:
        if env_name(field) in environ:
            values[field] = environ[env_name(field)]
    values.update({field: value for field, value in (flags or {}).items() if value is not None})
    for field, value in values.items():
        if field in _CHOICES and isinstance(value, str):  # `normal`, `INFO`: case is no error
            values[field] = _CHOICES[field].get(value.lower(), value)
    try:
        settings = msgspec.convert(values, Settings, strict=False)
    except msgspec.ValidationError as exc:
        error = invalid_from(exc)
        field = error.path.removeprefix("$.").split(".")[0]
        if field in FIELDS:
            wrong_kind = ", got `" in error.message or error.message.startswith("Invalid enum")
            said = _EXPECTED.get(field, "") if wrong_kind else ""
            msg = f"bad setting {env_name(field)} ({flag_name(field)}): {said or error.message}"
        else:
            msg = f"bad setting: {error.message}"
        raise SettingError(msg) from None
    problem = _nats_url_error(settings.nats_url)
    if problem is not None:
        msg = f"bad setting {env_name('nats_url')} ({flag_name('nats_url')}): {problem}"
        raise SettingError(msg)
    return settings


_NATS_SCHEMES = frozenset({"nats", "tls", "ws", "wss"})


def _nats_url_error(value: str) -> str | None:
    """Why `value` is not a NATS server URL (or a comma-separated list of them), or None.

    The value is not repeated in the message: it may hold a password.
    """
    said = "must be a NATS server's URL, nats://host:port (tls://, ws://, wss:// too; a list"
    said += " separated by commas for a cluster)"
    for entry in value.split(","):
        try:
            url = urlsplit(entry.strip())
            port = url.port  # a ValueError for a port that is no number in 0..65535
        except ValueError:
            return said
        host = url.hostname or ""
        if url.scheme.lower() not in _NATS_SCHEMES or not host or port == 0:
            return said
        if any(c.isspace() for c in host) or url.path not in {"", "/"} or url.query:
            return said
    return None


def _fields_of(kind: type) -> dict[str, msgspec.inspect.Type]:
    info = msgspec.inspect.type_info(Settings)
    assert isinstance(info, msgspec.inspect.StructType)  # noqa: S101 - Settings is a Struct
    return {f.name: f.type for f in info.fields if isinstance(f.type, kind)}


_CHOICES: dict[str, dict[str, str]] = {
    name: {str(v).lower(): str(v) for v in kind.values}  # type: ignore[attr-defined]
    for name, kind in _fields_of(msgspec.inspect.LiteralType).items()
}
"""The settings that take one of a few words, each word by its lower case."""

_EXPECTED: dict[str, str] = {
    **{name: f"must be one of {', '.join(c.values())}" for name, c in _CHOICES.items()},
    **dict.fromkeys(_fields_of(msgspec.inspect.BoolType), "must be true or false"),
    **dict.fromkeys(_fields_of(msgspec.inspect.IntType), "must be a whole number"),
}
"""What to say of a value of the wrong kind (msgspec says "Expected `bool`, got `str`")."""


def _refuse_misspelt(environ: Mapping[str, str]) -> None:
    """A `LEDGER_*` variable one slip away from a setting's name is a typo, not ignored.

    `LEDGER_DATABSE=…` would otherwise leave the default database in use, silently. A slip
    is a letter left out, one too many, or two letters swapped; a letter replaced by
    another is not (ledger-cli reads `LEDGER_SORT` and `LEDGER_COST`, one letter from
    `LEDGER_PORT` and `LEDGER_HOST`), and other programs' names pass untouched.
    """
    known = [env_name(field) for field in FIELDS]
    for name in environ:
        if name.startswith(PREFIX) and name not in known:
            meant = next((k for k in known if _one_slip(name, k)), None)
            if meant is not None:
                msg = f"unknown setting {name}: did you mean {meant}?"
                raise SettingError(msg)


def _one_slip(typed: str, meant: str) -> bool:
    """Whether `typed` is `meant` with one letter left out, one added, or two adjacent swapped."""
    if len(meant) - len(PREFIX) < 4:
        return False
    if len(typed) == len(meant) - 1:  # left out
        return any(meant[:i] + meant[i + 1 :] == typed for i in range(len(meant)))
    if len(typed) == len(meant) + 1:  # added
        return any(typed[:i] + typed[i + 1 :] == meant for i in range(len(typed)))
    if len(typed) == len(meant):  # swapped
        diff = [i for i in range(len(meant)) if typed[i] != meant[i]]
        return (
            len(diff) == 2
            and diff[1] == diff[0] + 1
            and typed[diff[0]] == meant[diff[1]]
            and typed[diff[1]] == meant[diff[0]]
        )
    return False
