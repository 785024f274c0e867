"""The Dockerfile's install steps, replayed into a fresh virtual environment, give a `ledger`.

No Docker here: the build stage's ENV, WORKDIR, COPY and RUN instructions are read from the
Dockerfile and replayed in a temporary directory (the image's `/opt/ledger` becomes a
temporary venv), so a broken install step fails this test as it would fail the image.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

ROOT = Path(__file__).parent.parent
DOCKERFILE = ROOT / "Dockerfile"
VENV_IN_IMAGE = "/opt/ledger"
SHIPPED = {"pyproject.toml", "README.md", "events", "projections", "service"}
"""What the image may copy from the project: the package's sources and metadata only."""


@dataclass
class Stage:
    """One stage of the Dockerfile: its base image and instructions, in order."""

    base: str
    name: str | None
    instructions: list[tuple[str, str]] = field(default_factory=list)


def parse(text: str) -> list[Stage]:
    """The stages of a Dockerfile: continuation lines joined, comments dropped."""
    joined = re.sub(r"\\\n", " ", text)
    stages: list[Stage] = []
    for raw in joined.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        keyword, _, rest = line.partition(" ")
        keyword = keyword.upper()
        if keyword == "FROM":
            words = rest.split()
            name = words[2] if len(words) == 3 and words[1].upper() == "AS" else None
            stages.append(Stage(base=words[0], name=name))
        elif stages:
            stages[-1].instructions.append((keyword, " ".join(rest.split())))
    return stages


def env_pairs(rest: str) -> dict[str, str]:
    return dict(word.split("=", 1) for word in shlex.split(rest))


def build_stage() -> Stage:
    stages = parse(DOCKERFILE.read_text(encoding="utf-8"))
    (build,) = [stage for stage in stages if stage.name == "build"]
    return build


def replay(stage: Stage, workdir: Path, venv: Path) -> list[str]:
    """Run the stage's steps with `/opt/ledger` as `venv`; the RUN commands it ran."""
    env = dict(os.environ)  # the machine's way to the registry, then the Dockerfile's ENV
    ran: list[str] = []
    cwd = workdir
    for keyword, rest in stage.instructions:
        if keyword == "ENV":
            env.update(env_pairs(rest))
        elif keyword == "WORKDIR":
            cwd.mkdir(parents=True, exist_ok=True)
        elif keyword == "COPY":
            *sources, target = rest.split()
            assert not any(s.startswith("--") for s in sources), "COPY --from in the build stage"
            for source in sources:
                assert source in SHIPPED, f"the image copies {source}"
                copy(ROOT / source, cwd / target, several=len(sources) > 1)
        elif keyword == "RUN":
            command = rest.replace(VENV_IN_IMAGE, str(venv))
            command = re.sub(
                r"(^|&&\s*)python(?= )", rf"\g<1>{shlex.quote(sys.executable)}", command
            )
            result = subprocess.run(
                ["/bin/sh", "-c", command],
                cwd=cwd,
                env=env,
                capture_output=True,
                text=True,
                timeout=900,
                check=False,
            )
            assert result.returncode == 0, (
                f"{command}\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
            )
            ran.append(rest)
    return ran


def copy(source: Path, target: Path, *, several: bool) -> None:
    if source.is_dir():
        destination = target if not several else target / source.name
        ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
        shutil.copytree(source, destination, ignore=ignore, dirs_exist_ok=True)
    else:
        destination = target / source.name if several or target.name in {".", ""} else target
        destination.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source, destination)


class TestParser:
    def test_the_build_stage_is_found(self) -> None:
        """The Dockerfile has a `build` stage on python:3.11-slim-bookworm that installs."""
        stage = build_stage()
        assert stage.base == "python:3.11-slim-bookworm"
        runs = [rest for keyword, rest in stage.instructions if keyword == "RUN"]
        assert any("-m venv" in run for run in runs)
        assert any("pip install --no-deps ." in run for run in runs)

    def test_dependencies_install_before_the_code_is_copied(self) -> None:
        """The dependency layer comes before the COPY of the packages (cache reuse)."""
        keywords = [(k, rest) for k, rest in build_stage().instructions if k in {"RUN", "COPY"}]
        first_code = next(i for i, (k, rest) in enumerate(keywords) if rest.startswith("events"))
        assert any("pip install ." in rest for _, rest in keywords[:first_code])


def test_the_install_steps_give_a_working_ledger(tmp_path: Path) -> None:
    """A test runs the same install steps the Dockerfile runs into a fresh virtual environment."""
    venv = tmp_path / "venv"
    workdir = tmp_path / "src"
    workdir.mkdir()
    ran = replay(build_stage(), workdir, venv)
    assert len(ran) >= 3

    ledger = venv / "bin" / "ledger"
    help_text = subprocess.run(
        [ledger, "--help"], capture_output=True, text=True, timeout=60, check=False
    )
    assert help_text.returncode == 0, help_text.stderr
    for command in ("serve", "seed", "token", "verify"):
        assert command in help_text.stdout

    db = tmp_path / "data" / "ledger.db"
    db.parent.mkdir()
    seeded = subprocess.run(
        [ledger, "--database", str(db), "seed"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        cwd=db.parent,
    )
    assert seeded.returncode == 0, seeded.stderr
    assert "seeded 10 events" in seeded.stderr
    verified = subprocess.run(
        [ledger, "--database", str(db), "verify"], capture_output=True, timeout=60, check=False
    )
    assert verified.returncode == 0

    where = subprocess.run(
        [venv / "bin" / "python", "-c", "import service, uvicorn; print(service.__file__)"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        cwd=tmp_path,
    )
    assert where.returncode == 0, where.stderr
    assert Path(where.stdout.strip()).is_relative_to(venv)
