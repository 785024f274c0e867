"""The docs are the spec: every route and every command is in README.md, with help and summaries."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import click
import pytest
from click.testing import CliRunner
from http_fixtures import PROBLEM_JSON

from service.app import create_app
from service.cli import cli
from service.settings import Settings

README = (Path(__file__).parent.parent / "README.md").read_text(encoding="utf-8")
APP = create_app(Settings(), configure_logs=False)
OPENAPI: dict[str, Any] = APP.openapi_schema.to_schema()
HIDDEN_METHODS = {"OPTIONS", "HEAD"}
SCHEMA_PREFIX = "/schema"


def readme_routes() -> set[tuple[str, str]]:
    """The `METHOD /path` cells of the first column of README's HTTP table."""
    section = README.split("## HTTP API", 1)[1].split("\n## ", 1)[0]
    rows = re.findall(r"^\| `([A-Z]+) (/[^`]*)` \|", section, flags=re.MULTILINE)
    return {(method, path) for method, path in rows}


def app_routes() -> set[tuple[str, str]]:
    """Every (method, path template) the app serves, path parameters without their types."""
    return {
        (method, re.sub(r"\{(\w+):\w+\}", r"{\1}", route.path))
        for route in APP.routes
        for method in getattr(route, "methods", ())
        if method not in HIDDEN_METHODS
    }


def documented(method: str, path: str) -> bool:
    if path.startswith(SCHEMA_PREFIX + "/"):  # the OpenAPI renderers live under one row
        return (method, SCHEMA_PREFIX) in readme_routes()
    return (method, path) in readme_routes()


def commands(group: click.Group, prefix: str = "ledger") -> list[tuple[str, click.Command]]:
    """Every command and subcommand of `ledger`, by its full name."""
    found: list[tuple[str, click.Command]] = []
    for name, command in sorted(group.commands.items()):
        full = f"{prefix} {name}"
        found.append((full, command))
        if isinstance(command, click.Group):
            found.extend(commands(command, full))
    return found


COMMANDS = commands(cli)
OPERATIONS = {
    f"{method.upper()} {path}": operation
    for path, item in OPENAPI["paths"].items()
    for method, operation in item.items()
}


def named_in_readme(name: str) -> bool:
    """Whether README names the command, group options (`--database X`) allowed in between."""
    words = name.split()
    options = r"(?:\s+--[\w-]+(?:[ =](?!-)\S+)?)*"
    pattern = re.escape(words[0]) + options + "".join(r"\s+" + re.escape(w) for w in words[1:])
    return re.search(pattern + r"(?![\w-])", README) is not None


class TestRoutes:
    def test_the_readme_table_is_found(self) -> None:
        """README's HTTP table has rows (the parser below would otherwise prove nothing)."""
        assert ("POST", "/v1/events") in readme_routes()
        assert len(readme_routes()) >= 15

    @pytest.mark.parametrize(("method", "path"), sorted(app_routes()))
    def test_every_route_is_in_the_readme(self, method, path) -> None:
        """Every route the app serves has a row in README's HTTP table."""
        assert documented(method, path), f"{method} {path} is not in README's HTTP table"

    @pytest.mark.parametrize(("method", "path"), sorted(readme_routes()))
    def test_every_readme_row_is_a_route(self, method, path) -> None:
        """Every row of README's HTTP table is a route the app serves."""
        assert (method, path) in app_routes()

    @pytest.mark.parametrize(
        ("method", "path"),
        sorted(r for r in app_routes() if not r[1].startswith((SCHEMA_PREFIX, "/metrics"))),
    )
    def test_every_api_route_is_in_the_openapi_document(self, method, path) -> None:
        """Every route but the document itself and /metrics is in the OpenAPI document."""
        assert method.lower() in OPENAPI["paths"][path]


class TestOpenAPI:
    @pytest.mark.parametrize("operation", OPERATIONS.values(), ids=OPERATIONS.keys())
    def test_every_operation_is_described(self, operation) -> None:
        """Each operation has an operationId, a summary and a description."""
        assert re.fullmatch(r"[A-Z][A-Za-z]+", operation.get("operationId", ""))
        assert operation.get("summary", "").strip()
        assert operation.get("description", "").strip()

    def test_operation_ids_are_unique(self) -> None:
        """No two operations share an operationId."""
        ids = [operation["operationId"] for operation in OPERATIONS.values()]
        assert len(ids) == len(set(ids))

    @pytest.mark.parametrize("operation", OPERATIONS.values(), ids=OPERATIONS.keys())
    def test_errors_are_declared_as_problem_details(self, operation) -> None:
        """Every error an operation declares (500 at least) is application/problem+json."""
        responses = operation["responses"]
        assert "500" in responses
        errors = {code: r for code, r in responses.items() if int(code) >= 400}
        for code, response in errors.items():
            assert list(response["content"]) == [PROBLEM_JSON], (code, response)
            schema = response["content"][PROBLEM_JSON]["schema"]
            assert schema["$ref"].endswith("/ProblemBody"), code

    def test_the_problem_schema_has_the_rfc_9457_members(self) -> None:
        """The declared problem body has `type`, `title`, `status`, `detail` and `errors`."""
        schema = OPENAPI["components"]["schemas"]["ProblemBody"]
        assert set(schema["required"]) == {"type", "title", "status", "detail"}
        assert "errors" in schema["properties"]

    def test_the_append_declares_both_successes(self) -> None:
        """`POST /v1/events` declares 201 (appended) and 200 (idempotent replay), same shape."""
        responses = OPENAPI["paths"]["/v1/events"]["post"]["responses"]
        assert responses["201"]["content"] == responses["200"]["content"]


class TestCommands:
    def test_there_are_commands(self) -> None:
        """The walk over the click group finds the commands (and the subcommands of `token`)."""
        names = [name for name, _ in COMMANDS]
        assert "ledger serve" in names
        assert "ledger token create" in names

    @pytest.mark.parametrize("name", [n for n, _ in COMMANDS])
    def test_every_command_is_in_the_readme(self, name) -> None:
        """Every `ledger` command and subcommand is named in README.md."""
        assert named_in_readme(name), f"`{name}` is not in README.md"

    @pytest.mark.parametrize(
        ("name", "named"),
        [
            ("ledger import", True),
            ("ledger token create", True),
            ("ledger token", True),
            ("ledger token destroy", False),
            ("ledger seeds", False),
        ],
    )
    def test_the_readme_matcher(self, name, named) -> None:
        """The matcher allows group options between words but not other words or suffixes."""
        assert named_in_readme(name) is named

    @pytest.mark.parametrize(("name", "command"), COMMANDS, ids=[n for n, _ in COMMANDS])
    def test_every_command_has_help(self, name, command) -> None:
        """Every command has help text, and every one of its options too."""
        assert (command.help or "").strip(), name
        for param in command.params:
            if isinstance(param, click.Option) and not param.hidden:
                assert (param.help or "").strip(), f"{name} {param.opts[0]}"

    @pytest.mark.parametrize(("name", "command"), COMMANDS, ids=[n for n, _ in COMMANDS])
    def test_help_runs(self, name, command) -> None:
        """`ledger … --help` exits 0 and prints the command's help."""
        result = CliRunner().invoke(cli, [*name.split()[1:], "--help"])
        assert result.exit_code == 0, result.output
        first_line = (command.help or "").strip().splitlines()[0]
        assert " ".join(first_line.split()[:4]) in " ".join(result.output.split())


def test_the_python_example_runs_twice(tmp_path: Path) -> None:
    """README's Python example, as printed, on a new ledger and again (an idempotent rerun)."""
    section = README.split("## In Python", 1)[1].split("\n## ", 1)[0]
    (code,) = re.findall(r"```python\n(.*?)```", section, flags=re.DOTALL)
    runs = [
        subprocess.run(
            [sys.executable, "-c", code],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        for _ in range(2)
    ]
    for run in runs:
        assert run.returncode == 0, run.stderr
    first, again = (run.stdout.splitlines() for run in runs)
    assert first == again
    assert first[0] == "11 11"  # the ten seed events, then the memorandum
    since, digest = first[1].split()
    assert since == "2022"  # at the end of 2023: the 2022 memorandum only
    assert re.fullmatch(r"[0-9a-f]{64}", digest)
