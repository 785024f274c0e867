"""structlog, configured once: JSON lines on stdout, the console renderer on a terminal."""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable
from typing import Literal

import msgspec
import structlog

_JSON = msgspec.json.Encoder(enc_hook=repr)


def _json(event: object, **_options: object) -> str:
    """The JSON renderer's serializer: msgspec, several times faster than json.dumps; else repr."""
    return _JSON.encode(event).decode()


def _shared(logger: structlog.WriteLogger) -> Callable[..., structlog.WriteLogger]:
    """A logger factory handing out one logger, built once (not one per call)."""
    return lambda *_args: logger


_LEVELS = {
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warning": logging.WARNING,
    "error": logging.ERROR,
}


def configure_logging(
    level: str = "info", fmt: Literal["auto", "json", "console"] = "auto"
) -> None:
    """Configure structlog for the process that serves the app (`create_app`).

    Loggers are cached on first use, as structlog advises for production: a request's log
    line then skips re-assembling its logger (about 4 µs of 25 on a cached GET). Tests
    build the app with `configure_logs=False`, so `capture_logs` still sees every line.
    """
    console = fmt == "console" or (fmt == "auto" and sys.stdout.isatty())
    renderer: structlog.typing.Processor = (
        structlog.dev.ConsoleRenderer()
        if console
        else structlog.processors.JSONRenderer(serializer=_json)
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(_LEVELS.get(level, logging.INFO)),
        # One write per line (`print` makes two: the line, then its end, when unbuffered).
        logger_factory=_shared(structlog.WriteLogger(sys.stdout)),
        cache_logger_on_first_use=True,
    )
    _route_stdlib(renderer, _LEVELS.get(level, logging.INFO))


def _route_stdlib(renderer: structlog.typing.Processor, level: int) -> None:
    """Lines of the standard library's loggers (uvicorn's, say) through the same renderer.

    One format on stdout, whoever logs: a JSON line with `level`, `timestamp` and `logger`
    where uvicorn printed `INFO - 2026-… - uvicorn.error - …` on stderr.
    """
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, renderer],
            foreign_pre_chain=[
                structlog.stdlib.add_log_level,
                structlog.stdlib.add_logger_name,
                structlog.processors.TimeStamper(fmt="iso", utc=True),
                structlog.processors.format_exc_info,
            ],
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)


def configure_cli_logging() -> None:
    """Log lines of the other `ledger` commands go to stderr: stdout carries only their data.

    (`ledger replay --json | jq`, say, must not meet a warning about a stale snapshot.) Warnings
    and errors only, in the console renderer; `ledger serve` configures its own on start.
    """
    structlog.configure(
        processors=[
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.dev.ConsoleRenderer(colors=False),
        ],
        wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING),
        logger_factory=_shared(structlog.WriteLogger(sys.stderr)),
        cache_logger_on_first_use=False,
    )
