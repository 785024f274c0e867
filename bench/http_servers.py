"""The processes `bench/http.py` starts and asks: the servers, the `ledger` command, probes.

`server_command` gives one server's command line (uvicorn or granian, the same settings for
the service and the bare app); `Server` and `serving` start one on a free port, wait until
`/health/ready` answers and stop it by its pid; `ledger` runs the CLI (seed, token) on a
database; `probe` makes one request that must answer 2xx. `log` and `BenchError` are the
progress and the failure of the whole run. Imported by that script, which puts its own
folder at the end of `sys.path`, after the standard library.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
HOST = "127.0.0.1"
READY_WITHIN = 30.0
STOP_WITHIN = 60.0


def log(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


class BenchError(RuntimeError):
    """The run cannot give a meaningful figure: say why and stop."""


# -- servers -------------------------------------------------------------------------------


def free_port() -> int:
    """A port nothing listens on right now (the OS's pick for port 0)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
        return port


def server_command(server: str, app: str, port: int) -> list[str]:
    """The same settings for both apps: one worker, no access log, no server header."""
    if server == "uvicorn":
        return [
            str(BIN / "uvicorn"),
            "--factory",
            app,
            "--host",
            HOST,
            "--port",
            str(port),
            "--workers",
            "1",
            "--no-access-log",
            "--no-server-header",
            "--timeout-graceful-shutdown",
            "30",
            "--log-level",
            "warning",
        ]
    return [
        str(BIN / "granian"),
        "--interface",
        "asgi",
        "--factory",
        "--host",
        HOST,
        "--port",
        str(port),
        "--workers",
        "1",
        "--no-ws",
        "--log-level",
        "warning",
        app,
    ]


def clean_env(**extra: str) -> dict[str, str]:
    """No inherited LEDGER_* settings; this tree's packages first, whatever is installed."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LEDGER_", "BARE_"))}
    env.update(PYTHONUNBUFFERED="1", PYTHONPATH=str(ROOT), **extra)
    return env


class Server:
    """A server process, its base URL and where its output goes."""

    def __init__(self, name: str, command: list[str], env: dict[str, str], out: Path) -> None:
        self.name = name
        self.port = int(command[command.index("--port") + 1])
        self.url = f"http://{HOST}:{self.port}"
        self.out = out
        with out.open("wb") as stdout, out.with_suffix(".err").open("wb") as stderr:
            self.process = subprocess.Popen(
                command,
                cwd=ROOT,
                env=env,
                stdout=stdout,
                stderr=stderr,
                stdin=subprocess.DEVNULL,
            )

    def tail(self) -> str:
        err = self.out.with_suffix(".err").read_text(errors="replace")
        return "\n".join(err.splitlines()[-15:])

    def wait_ready(self) -> None:
        deadline = time.monotonic() + READY_WITHIN
        while True:
            if self.process.poll() is not None:
                msg = f"{self.name} exited with {self.process.returncode}:\n{self.tail()}"
                raise BenchError(msg)
            with (
                suppress(OSError),
                urllib.request.urlopen(f"{self.url}/health/ready", timeout=2) as response,  # noqa: S310 - our own server
            ):
                if response.status == 200:
                    return
            if time.monotonic() > deadline:
                msg = f"{self.name} not ready within {READY_WITHIN:.0f} s:\n{self.tail()}"
                raise BenchError(msg)
            time.sleep(0.1)

    def stop(self) -> int | None:
        """SIGTERM to this server's pid only, then wait (bounded); SIGKILL past the bound."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                return self.process.wait(timeout=STOP_WITHIN)
            except subprocess.TimeoutExpired:
                log(f"  {self.name} did not stop within {STOP_WITHIN:.0f} s: killed")
                self.process.kill()
                self.process.wait(timeout=STOP_WITHIN)
                return None
        return self.process.returncode


@contextmanager
def serving(name: str, command: list[str], env: dict[str, str], out: Path) -> Iterator[Server]:
    server = Server(name, command, env, out)
    try:
        server.wait_ready()
        yield server
    finally:
        code = server.stop()
        # uvicorn's command line re-raises SIGTERM once it has stopped cleanly: -15 is fine
        if code not in (0, -signal.SIGTERM, None):
            log(f"  {name} exited with {code}:\n{server.tail()}")


def ledger(database: Path, *args: str) -> str:
    """A `ledger` command to its end; its stdout."""
    result = subprocess.run(
        [str(BIN / "ledger"), "--database", str(database), *args],
        env=clean_env(),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        stdin=subprocess.DEVNULL,
    )
    if result.returncode != 0:
        msg = f"ledger {' '.join(args)} failed: {result.stderr.strip()}"
        raise BenchError(msg)
    return result.stdout


def probe(method: str, url: str, body: bytes | None, token: str | None) -> bytes:
    """One request before an arm: it must answer 2xx, else the arm would measure errors."""
    headers = {"Content-Type": "application/json"} if body is not None else {}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    request = urllib.request.Request(url, data=body, method=method, headers=headers)  # noqa: S310 - our own server on 127.0.0.1
    try:
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
            data: bytes = response.read()
            return data
    except urllib.error.HTTPError as exc:
        detail = exc.read().decode(errors="replace")[:300]
        msg = f"{method} {url} answered {exc.code}: {detail}"
        raise BenchError(msg) from None
