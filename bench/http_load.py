"""The load of `bench/http.py`: its wrk scripts, one bounded wrk run, the rounds of arms.

`write_scripts` writes the GET script (statistics only), the POST script (a fresh event
per request, `event_body`) and its variant on known streams (`known_stream_body`), all
ending in a `done` that prints wrk's figures as one JSON line; `wrk` runs one and parses
that line, failing on any error answer; `measure` warms the arms up and runs them in
rounds for `Config`'s durations. Imported by that script, which
puts its own folder at the end of `sys.path`, after the standard library.
"""

from __future__ import annotations

import json
import statistics
import subprocess
from dataclasses import dataclass
from pathlib import Path

from http_servers import BenchError, log, probe

WRK = "/usr/bin/wrk"


@dataclass(frozen=True)
class Config:
    """How long: every wrk run is bounded by its duration (and a timeout on top)."""

    rounds: int
    seconds: float
    warmup: float


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

KNOWN = r"""
function request()
  local body = template:gsub("__K__", tostring(math.random(0, STREAMS - 1)))
  return wrk.format(nil, nil, nil, body)
end
"""

KNOWN_STREAMS = 16
"""How many streams the known-streams variant spreads its events over."""


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


def known_stream_body(key: str) -> bytes:
    """`event_body` as most appends look: no `event_id` (the ledger assigns a UUID v7) and
    one of `KNOWN_STREAMS` streams that exist already (`key`: which), not a new one.

    The same fields and about the same size; a UUID v4 id chosen by the client and a new
    stream per event each insert into an index at a random place (a page of its own in the
    commit), where an assigned, time-ordered id and a known stream do not.
    """
    body = json.loads(event_body(key))
    event = body["events"][0]
    del event["event_id"]
    event["stream"] = f"organization-bench-{key}"
    event["data"]["id"] = f"bench-{key}"
    return json.dumps(body, separators=(",", ":")).encode()


def write_scripts(workdir: Path, token: str) -> tuple[Path, Path, Path]:
    """The GET script (statistics only), the POST script (a fresh event per request) and
    its variant on known streams with ids the ledger assigns (`known_stream_body`)."""
    get_script = workdir / "get.lua"
    get_script.write_text(DONE)
    body = event_body("__ID__").decode()
    post = POST.replace("__TOKEN__", token).replace("__BODY__", body)
    post_script = workdir / "post.lua"
    post_script.write_text(post + DONE)
    known = known_stream_body("__K__").decode()
    head = POST.replace("__TOKEN__", token).replace("__BODY__", known)
    head = head[: head.index("function request()")]
    known_script = workdir / "post-known.lua"
    known_script.write_text(head + KNOWN.replace("STREAMS", str(KNOWN_STREAMS)) + DONE)
    return get_script, post_script, known_script


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
