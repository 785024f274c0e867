"""The one settings source: `LEDGER_*` environment variables, each also a CLI flag (DESIGN §8)."""

from __future__ import annotations

import difflib
import os
from collections.abc import Mapping
from typing import Annotated, Literal

import msgspec
from msgspec import Meta

from events.codec import invalid_from

Port = Annotated[int, Meta(ge=1, le=65535)]
_NATS_URL = r"^(nats|tls)://([^\s/@]+@)?(\[[0-9A-Fa-f:.]+\]|[^\s/:@\[\]]+)(:[0-9]{1,5})?(?!\n)$"
"""A NATS server's URL: `nats://host:port` (or `tls://`), no path."""


class Settings(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Every setting of the service and the command line, validated once at start-up."""

    database: Annotated[str, Meta(min_length=1)] = "./ledger.db"
    synchronous: Literal["FULL", "NORMAL", "EXTRA"] = "FULL"
    host: Annotated[str, Meta(min_length=1)] = "127.0.0.1"
    port: Port = 8000
    nats_url: Annotated[str, Meta(pattern=_NATS_URL)] = "nats://127.0.0.1:4222"
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
        return msgspec.convert(values, Settings, strict=False)
    except msgspec.ValidationError as exc:
        error = invalid_from(exc)
        field = error.path.removeprefix("$.").split(".")[0]
        if field in FIELDS:
            wrong_kind = ", got `" in error.message or error.message.startswith("Invalid enum")
            said = _EXPECTED.get(field, "") if wrong_kind else ""
            if field == "nats_url" and "matching regex" in error.message:
                said = "must be a NATS server's URL, nats://host:port (or tls://)"
            msg = f"bad setting {env_name(field)} ({flag_name(field)}): {said or error.message}"
        else:
            msg = f"bad setting: {error.message}"
        raise SettingError(msg) from None


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
    """A `LEDGER_*` variable that is a near miss of a setting's name is a typo, not ignored.

    `LEDGER_DATABSE=…` would otherwise leave the default database in use, silently. Other
    `LEDGER_*` names (another program's, such as ledger-cli's `LEDGER_FILE`) pass.
    """
    known = [env_name(field) for field in FIELDS]
    for name in environ:
        if name.startswith(PREFIX) and name not in known:
            close = difflib.get_close_matches(name, known, n=1, cutoff=0.85)
            if close:
                msg = f"unknown setting {name}: did you mean {close[0]}?"
                raise SettingError(msg)
