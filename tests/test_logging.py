"""The serving process's log configuration (`service.logging`): one JSON line, one write."""

from __future__ import annotations

import io
import json
import logging
import sys
from collections.abc import Iterator

import pytest
import structlog

from service.logging import configure_logging


class CountingStdout(io.StringIO):
    """A stdout that remembers each write."""

    def __init__(self) -> None:
        super().__init__()
        self.writes: list[str] = []

    def write(self, text: str) -> int:
        self.writes.append(text)
        return super().write(text)


@pytest.fixture
def stdout(monkeypatch: pytest.MonkeyPatch) -> Iterator[CountingStdout]:
    out = CountingStdout()
    monkeypatch.setattr(sys, "stdout", out)
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    configure_logging("info", "json")
    try:
        yield out
    finally:
        structlog.contextvars.clear_contextvars()
        structlog.reset_defaults()
        root.handlers[:], root.level = handlers, level  # configure_logging routes the stdlib's


def test_a_line_is_one_write_of_one_json_object(stdout: CountingStdout) -> None:
    """Unbuffered (as in a container), a line still reaches the file in one write."""
    structlog.contextvars.bind_contextvars(request_id="r-1")
    structlog.get_logger("request").info("request", method="GET", status=200)
    (written,) = stdout.writes
    assert written.endswith("\n")
    assert written.count("\n") == 1
    line = json.loads(written)
    assert line["event"] == "request"
    assert line["request_id"] == "r-1"
    assert (line["method"], line["status"], line["level"]) == ("GET", 200, "info")
    assert line["timestamp"].endswith("Z")


def test_an_error_line_carries_its_traceback(stdout: CountingStdout) -> None:
    """`exc_info` is rendered into the line, as problem details' 500s log it."""
    try:
        _fail()
    except RuntimeError as exc:
        structlog.get_logger().error("unhandled error", exc_info=exc)
    (written,) = stdout.writes
    line = json.loads(written)
    assert "Traceback" in line["exception"]
    assert "RuntimeError: boom" in line["exception"]


def _fail() -> None:
    msg = "boom"
    raise RuntimeError(msg)
