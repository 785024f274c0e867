"""HTTP throughput of the service, against bare Litestar routes on the same server, same run.

    python bench/http.py                    # the full run, uvicorn and granian: a few minutes
    python bench/http.py --quick            # the same arms and keys, shorter: under a minute
    python bench/http.py --server granian   # one server only (uvicorn, granian or both)

Each server runs as a subprocess on 127.0.0.1 (a free port), twice at once: the service
(`service.asgi:application` on a freshly seeded ledger, `synchronous=FULL`) and the bare
app (`bench/bare_app.py`), with the same command-line settings, one worker, the service's
defaults otherwise (JSON request log on stdout, metrics, compression). The load is `wrk`
(`apt-get install wrk`), every run bounded in time; the arms:

- `get` / `bare_get`: `GET /v1/partnerships/lotte-biologics/merck-kgaa`, and a bare route
  answering a msgspec Struct of the same encoded size, 16 connections;
- `post16` / `bare_post16`: `POST /v1/events` of one event (about 400 bytes, a fresh UUID v4
  `event_id` per request made by the wrk script, a bearer token of scope `append`), durable,
  16 connections; and a bare route decoding the same body into `AppendBody`, storing nothing;
- `post1`: the same POST, one connection.

Bare and service arms alternate in several rounds (GETs first, so the GET view is not at a
moving head); a rate is the median over the rounds. An arm with any non-2xx response or
socket error fails the run: a benchmark of error answers is worthless. Servers get SIGTERM
by pid and the temporary directory is removed. Progress goes to stderr; the last line of
stdout is one JSON object: the figures of the server `ledger serve` runs at the top level,
each measured server's under `servers`.
"""

from __future__ import annotations

import sys
from pathlib import Path

# Run as a script, this file's folder comes first on sys.path, where this very file would
# shadow the standard library's `http` (which urllib imports): drop the folder.
if sys.path and Path(sys.path[0]).resolve() == Path(__file__).resolve().parent:
    del sys.path[0]

import argparse
import importlib.util
import json
import os
import platform
import shutil
import signal
import socket
import statistics
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
WRK = "/usr/bin/wrk"
HOST = "127.0.0.1"
GET_PATH = "/v1/partnerships/lotte-biologics/merck-kgaa"
CLIENTS = 16
READY_WITHIN = 30.0
STOP_WITHIN = 60.0
SERVERS = ("uvicorn", "granian")
# The server `ledger serve` runs (service/cli/serve.py); its figures are the top-level keys.
SERVE_SERVER = "uvicorn"


@dataclass(frozen=True)
class Config:
    """How long: every wrk run is bounded by its duration (and a timeout on top)."""

    rounds: int
    seconds: float
    warmup: float


FULL = Config(rounds=3, seconds=5.0, warmup=2.0)
QUICK = Config(rounds=1, seconds=2.0, warmup=1.0)


def log(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


class BenchError(RuntimeError):
    """The run cannot give a meaningful figure: say why and stop."""


# -- wrk scripts ---------------------------------------------------------------------------

DONE = r"""
function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'WRK {"requests":%d,"duration_us":%d,"status":%d,"connect":%d,"read":%d,"write":%d,' ..
    '"timeout":%d,"p50_us":%.0f,"p99_us":%.0f,"mean_us":%.1f}\n',
    summary.requests, summary.duration, e.status, e.connect, e.read, e.write, e.timeout,
    latency:percentile(50), latency:percentile(99), latency.mean))
end
"""

POST = r"""
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer __TOKEN__"
local template = [==[__BODY__]==]

function init(args)
  -- each wrk thread has its own Lua state: seed each from the kernel, not the clock
  local f = assert(io.open("/dev/urandom", "rb"))
  local bytes = f:read(6)
  f:close()
  local seed = 0
  for i = 1, 6 do seed = seed * 256 + bytes:byte(i) end
  math.randomseed(seed)
  for i = 1, 10 do math.random() end
end

local function uuid4()
  local r = math.random
  return string.format("%04x%04x-%04x-4%03x-%04x-%04x%04x%04x",
    r(0, 0xffff), r(0, 0xffff), r(0, 0xffff), r(0, 0x0fff),
    0x8000 + r(0, 0x3fff), r(0, 0xffff), r(0, 0xffff), r(0, 0xffff))
end

function request()
  local id = uuid4()
  return wrk.format(nil, nil, nil, (template:gsub("__ID__", id)))
end
"""


def event_body(event_id: str) -> bytes:
    """One `POST /v1/events` body of about 400 bytes: a new organization, ids from `event_id`."""
    body = {
        "events": [
            {
                "event_id": event_id,
                "stream": f"organization-bench-{event_id}",
                "type": "organization_registered",
                "occurred_on": "2024-06-01",
                "data": {
                    "id": f"bench-{event_id}",
                    "name": "Bench Biologics",
                    "country": "KR",
                    "kind": "CDMO",
                },
                "source": {
                    "url": "https://example.invalid/news/bench",
                    "quote": "Bench Biologics opened its first plant.",
                },
            }
        ]
    }
    return json.dumps(body, separators=(",", ":")).encode()


def write_scripts(workdir: Path, token: str) -> tuple[Path, Path]:
    """The GET script (statistics only) and the POST script (a fresh event per request)."""
    get_script = workdir / "get.lua"
    get_script.write_text(DONE)
    body = event_body("__ID__").decode()
    post = POST.replace("__TOKEN__", token).replace("__BODY__", body)
    post_script = workdir / "post.lua"
    post_script.write_text(post + DONE)
    return get_script, post_script


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


# -- load ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Run:
    """One wrk run's figures."""

    rate: float
    p50_ms: float
    p99_ms: float
    requests: int


def wrk(url: str, script: Path, connections: int, seconds: float, arm: str) -> Run:
    """One bounded wrk run; any non-2xx answer or socket error fails the benchmark."""
    threads = min(2, connections)
    command = [
        WRK,
        f"-c{connections}",
        f"-t{threads}",
        f"-d{seconds:g}s",
        "--timeout",
        "10s",
        "-s",
        str(script),
        url,
    ]
    try:
        result = subprocess.run(
            command, capture_output=True, text=True, timeout=seconds + 60, check=False
        )
    except subprocess.TimeoutExpired:
        msg = f"{arm}: wrk did not finish within {seconds + 60:.0f} s"
        raise BenchError(msg) from None
    lines = [line for line in result.stdout.splitlines() if line.startswith("WRK ")]
    if result.returncode != 0 or not lines:
        msg = f"{arm}: wrk failed ({result.returncode}): {result.stderr.strip()[:300]}"
        raise BenchError(msg)
    stats = json.loads(lines[-1].removeprefix("WRK "))
    errors = {k: stats[k] for k in ("status", "connect", "read", "write", "timeout") if stats[k]}
    if errors or stats["requests"] == 0:
        named = {"status": "non-2xx/3xx answers"}
        detail = ", ".join(f"{n} {named.get(k, k + ' errors')}" for k, n in errors.items())
        msg = f"{arm}: {detail or 'no requests'} of {stats['requests']}: refusing to report"
        raise BenchError(msg)
    return Run(
        rate=stats["requests"] / (stats["duration_us"] / 1e6),
        p50_ms=stats["p50_us"] / 1000,
        p99_ms=stats["p99_us"] / 1000,
        requests=stats["requests"],
    )


@dataclass(frozen=True)
class Arm:
    name: str
    url: str
    script: Path
    connections: int


def measure(arms: list[Arm], config: Config) -> tuple[dict[str, list[Run]], dict[str, int]]:
    """Warm each arm up, then run them in rounds, the order turning each round.

    The runs of each arm, and how many requests each arm had answered (warm-ups included).
    """
    answered = {arm.name: 0 for arm in arms}
    for arm in arms:
        run = wrk(arm.url, arm.script, arm.connections, config.warmup, f"{arm.name} (warm-up)")
        answered[arm.name] += run.requests
    runs: dict[str, list[Run]] = {arm.name: [] for arm in arms}
    for index in range(config.rounds):
        shift = index % len(arms)
        for arm in arms[shift:] + arms[:shift]:
            run = wrk(arm.url, arm.script, arm.connections, config.seconds, arm.name)
            runs[arm.name].append(run)
            answered[arm.name] += run.requests
            log(f"    {arm.name:12} {run.rate:9.0f} req/s  p99 {run.p99_ms:7.2f} ms")
    return runs, answered


def log_head(url: str) -> int:
    """The head of the service's log (read from a page of the log: no fold, no snapshot)."""
    head: int = json.loads(probe("GET", f"{url}/v1/events?limit=1", None, None))["head"]
    return head


def median_rate(runs: list[Run]) -> float:
    return statistics.median(run.rate for run in runs)


def median_p99(runs: list[Run]) -> float:
    return statistics.median(run.p99_ms for run in runs)


# -- one server ----------------------------------------------------------------------------


def bench_server(server: str, workdir: Path, config: Config) -> dict[str, Any]:
    """Every arm on one server: the service and the bare app running side by side."""
    log(f"{server}:")
    home = workdir / server
    home.mkdir()
    database = home / "ledger.db"
    ledger(database, "seed")
    token = ledger(database, "token", "create", "--scope", "append", "--subject", "bench").strip()
    get_script, post_script = write_scripts(home, token)
    service_env = clean_env(
        LEDGER_DATABASE=str(database),
        LEDGER_HOST=HOST,
        LEDGER_LOG_FORMAT="json",
    )
    service_cmd = server_command(server, "service.asgi:application", free_port())
    with serving(f"{server} service", service_cmd, service_env, home / "service.log") as service:
        answer = probe("GET", service.url + GET_PATH, None, None)
        (home / "answer.json").write_bytes(answer)
        bare_env = clean_env(BARE_ANSWER=str(home / "answer.json"))
        bare_cmd = server_command(server, "bench.bare_app:application", free_port())
        with serving(f"{server} bare", bare_cmd, bare_env, home / "bare.log") as bare:
            bare_answer = probe("GET", bare.url + "/bare/answer", None, None)
            if abs(len(bare_answer) - len(answer)) > 8:
                msg = f"bare answer is {len(bare_answer)} bytes, the service's {len(answer)}"
                raise BenchError(msg)
            probe("POST", service.url + "/v1/events", event_body(str(uuid.uuid4())), token)
            probe("POST", bare.url + "/bare/events", event_body(str(uuid.uuid4())), token)
            gets, _ = measure(
                [
                    Arm("bare_get", bare.url + "/bare/answer", get_script, CLIENTS),
                    Arm("get", service.url + GET_PATH, get_script, CLIENTS),
                ],
                config,
            )
            head = log_head(service.url)
            posts, answered = measure(
                [
                    Arm("bare_post16", bare.url + "/bare/events", post_script, CLIENTS),
                    Arm("post16", service.url + "/v1/events", post_script, CLIENTS),
                    Arm("post1", service.url + "/v1/events", post_script, 1),
                ],
                config,
            )
            appended = log_head(service.url) - head
    # Every 2xx append is a new event (a repeated event_id would be a 200 replay, storing
    # nothing); a few more may land, from requests still in flight when a wrk run ended.
    if appended < answered["post16"] + answered["post1"]:
        msg = f"{answered['post16'] + answered['post1']} appends answered, {appended} stored"
        raise BenchError(msg + ": event ids repeated (replays), not a benchmark of appends")
    runs = gets | posts
    rps = {name: round(median_rate(arm_runs)) for name, arm_runs in runs.items()}
    result = {
        "get_vs_bare": round(rps["get"] / rps["bare_get"], 3),
        "post16_vs_bare_post": round(rps["post16"] / rps["bare_post16"], 3),
        "post16_vs_post1": round(rps["post16"] / rps["post1"], 2),
        "get_p99_ms": round(median_p99(runs["get"]), 2),
        "post_p99_ms": round(median_p99(runs["post16"]), 2),
        "rps": rps,
        "p99_ms": {name: round(median_p99(arm_runs), 2) for name, arm_runs in runs.items()},
        "answer_bytes": len(answer),
        "body_bytes": len(event_body(str(uuid.uuid4()))),
        "appends_answered": answered["post16"] + answered["post1"],
        "events_appended": appended,
    }
    log(f"  {server}: " + json.dumps({k: v for k, v in result.items() if k != "p99_ms"}))
    return result


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="shorter runs: under a minute")
    parser.add_argument("--server", choices=[*SERVERS, "both"], default="both")
    args = parser.parse_args(argv)
    if not Path(WRK).exists():
        print(f"{WRK} not found: install it with `apt-get install wrk`", file=sys.stderr)
        sys.exit(2)
    config = QUICK if args.quick else FULL
    servers = SERVERS if args.server == "both" else (args.server,)
    for program in ("ledger", *servers):
        if not (BIN / program).exists():
            print(
                f"{BIN / program} not found: run this with the project's virtualenv python, "
                'with the bench extra installed (pip install -e ".[bench]")',
                file=sys.stderr,
            )
            sys.exit(2)
    started = time.monotonic()
    workdir = Path(tempfile.mkdtemp(prefix="ledger-http-bench-"))
    try:
        figures = {server: bench_server(server, workdir, config) for server in servers}
    except BenchError as exc:
        print(f"bench/http.py: {exc}", file=sys.stderr)
        sys.exit(1)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    top = SERVE_SERVER if SERVE_SERVER in figures else servers[0]
    result = {
        "server": top,
        **{k: v for k, v in figures[top].items() if k != "p99_ms"},
        "servers": figures,
        "clients": CLIENTS,
        "quick": args.quick,
        "rounds": config.rounds,
        "seconds_per_run": config.seconds,
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        # uvicorn picks uvloop and httptools when they are installed, asyncio and h11 if not:
        # the bare routes run about three times slower on the latter, so say which ran.
        "uvloop": importlib.util.find_spec("uvloop") is not None,
        "httptools": importlib.util.find_spec("httptools") is not None,
        "elapsed_s": round(time.monotonic() - started, 1),
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
