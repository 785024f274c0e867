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
- `post1`: the same POST, one connection;
- `post16_known` (for the record): the same POST as most appends are, with no `event_id`
  (the ledger assigns a time-ordered UUID v7) on one of 16 streams that exist already,
  16 connections: what a client's random ids and a new stream per event cost (each puts
  an index entry at a random place, a page of its own in the commit's WAL frames);
- `floor_post16` (for the record): the same POST to `bench/floor_app.py`, a plain ASGI app
  that only decodes the body as the service does and appends it durably through the
  ledger's own store (group commit, through a writer process as the service's appends),
  16 connections: the floor under `post16`, which does all that and more (routing, auth,
  request log, metrics, live projections);
- `raw_floor_post16` (for the record): the same POST to `bench/raw_floor_app.py`, decoded
  as the bare route does, then one row per event through a minimal group commit of plain
  `sqlite3` (one `INSERT` per group; no chain, checks, auth, log or metrics), 16
  connections: what a durable POST costs by itself on this machine and server;
- `post16_thread` (for the record): `post16` to the service with `LEDGER_WRITER=thread`
  (appends committed on a thread of the service, not in its writer process), on a ledger
  of its own, 16 connections: what the writer process buys.

Bare and service arms alternate in several rounds (GETs first, so the GET view is not at a
moving head); a rate is the median over the rounds. An arm with any non-2xx response or
socket error fails the run: a benchmark of error answers is worthless. Servers get SIGTERM
by pid and the temporary directory is removed. Progress goes to stderr; the last line of
stdout is one JSON object: the figures of the server `ledger serve` runs at the top level,
each measured server's under `servers`.
This script holds the command line, one server's arms and the summary; beside it,
`http_servers.py` starts, probes and stops the servers and runs `ledger`, and
`http_load.py` holds the wrk scripts, the wrk runs and the rounds.
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
import tempfile
import time
import uuid
from typing import Any

# The sibling modules: the folder again, but last, after the standard library's `http`.
sys.path.append(str(Path(__file__).resolve().parent))

from http_load import (
    KNOWN_STREAMS,
    WRK,
    Arm,
    Config,
    event_body,
    known_stream_body,
    log_head,
    measure,
    median_p99,
    median_rate,
    write_scripts,
)
from http_servers import (
    BIN,
    HOST,
    BenchError,
    clean_env,
    free_port,
    ledger,
    log,
    probe,
    server_command,
    serving,
)

GET_PATH = "/v1/partnerships/lotte-biologics/merck-kgaa"
CLIENTS = 16
SERVERS = ("uvicorn", "granian")
# The server `ledger serve` runs (service/cli/serve.py); its figures are the top-level keys.
SERVE_SERVER = "uvicorn"

FULL = Config(rounds=3, seconds=5.0, warmup=2.0)
QUICK = Config(rounds=1, seconds=2.0, warmup=1.0)


# -- one server ----------------------------------------------------------------------------


def bench_server(server: str, workdir: Path, config: Config) -> dict[str, Any]:
    """Every arm on one server: the service and the bare app running side by side."""
    log(f"{server}:")
    home = workdir / server
    home.mkdir()
    database = home / "ledger.db"
    ledger(database, "seed")
    token = ledger(database, "token", "create", "--scope", "append", "--subject", "bench").strip()
    get_script, post_script, known_script = write_scripts(home, token)
    service_env = clean_env(
        LEDGER_DATABASE=str(database),
        LEDGER_HOST=HOST,
        LEDGER_LOG_FORMAT="json",
    )
    service_cmd = server_command(server, "service.asgi:application", free_port())
    # the service with its appends committed on a thread of its own (`LEDGER_WRITER=thread`),
    # on a ledger of its own: the writer process's gain, measured in the same run
    threaded = home / "thread"
    threaded.mkdir()
    ledger(threaded / "ledger.db", "seed")
    thread_token = ledger(
        threaded / "ledger.db", "token", "create", "--scope", "append", "--subject", "bench"
    ).strip()
    _, thread_script, _ = write_scripts(threaded, thread_token)
    thread_env = clean_env(
        LEDGER_DATABASE=str(threaded / "ledger.db"),
        LEDGER_HOST=HOST,
        LEDGER_LOG_FORMAT="json",
        LEDGER_WRITER="thread",
    )
    thread_cmd = server_command(server, "service.asgi:application", free_port())
    with serving(f"{server} service", service_cmd, service_env, home / "service.log") as service:
        answer = probe("GET", service.url + GET_PATH, None, None)
        (home / "answer.json").write_bytes(answer)
        bare_env = clean_env(BARE_ANSWER=str(home / "answer.json"))
        bare_cmd = server_command(server, "bench.bare_app:application", free_port())
        floor_env = clean_env(FLOOR_DATABASE=str(home / "floor.db"))
        floor_cmd = server_command(server, "bench.floor_app:application", free_port())
        raw_env = clean_env(RAW_FLOOR_DATABASE=str(home / "raw-floor.db"))
        raw_cmd = server_command(server, "bench.raw_floor_app:application", free_port())
        with (
            serving(f"{server} bare", bare_cmd, bare_env, home / "bare.log") as bare,
            serving(f"{server} floor", floor_cmd, floor_env, home / "floor.log") as floor,
            serving(f"{server} raw floor", raw_cmd, raw_env, home / "raw-floor.log") as raw,
            serving(f"{server} thread", thread_cmd, thread_env, threaded / "s.log") as thread,
        ):
            bare_answer = probe("GET", bare.url + "/bare/answer", None, None)
            if abs(len(bare_answer) - len(answer)) > 8:
                msg = f"bare answer is {len(bare_answer)} bytes, the service's {len(answer)}"
                raise BenchError(msg)
            probe("POST", service.url + "/v1/events", event_body(str(uuid.uuid4())), token)
            probe("POST", bare.url + "/bare/events", event_body(str(uuid.uuid4())), token)
            probe("POST", floor.url + "/floor/events", event_body(str(uuid.uuid4())), token)
            probe("POST", raw.url + "/floor/events", event_body(str(uuid.uuid4())), token)
            probe("POST", thread.url + "/v1/events", event_body(str(uuid.uuid4())), thread_token)
            for key in range(KNOWN_STREAMS):  # the known streams exist before their arm runs
                probe("POST", service.url + "/v1/events", known_stream_body(str(key)), token)
            gets, _ = measure(
                [
                    Arm("bare_get", bare.url + "/bare/answer", get_script, CLIENTS),
                    Arm("get", service.url + GET_PATH, get_script, CLIENTS),
                ],
                config,
            )
            head, thread_head = log_head(service.url), log_head(thread.url)
            posts, answered = measure(
                [
                    Arm("bare_post16", bare.url + "/bare/events", post_script, CLIENTS),
                    Arm("post16", service.url + "/v1/events", post_script, CLIENTS),
                    Arm("post1", service.url + "/v1/events", post_script, 1),
                    Arm("post16_known", service.url + "/v1/events", known_script, CLIENTS),
                    Arm("floor_post16", floor.url + "/floor/events", post_script, CLIENTS),
                    Arm("raw_floor_post16", raw.url + "/floor/events", post_script, CLIENTS),
                    Arm("post16_thread", thread.url + "/v1/events", thread_script, CLIENTS),
                ],
                config,
            )
            appended = log_head(service.url) - head
            thread_appended = log_head(thread.url) - thread_head
    # Every 2xx append is a new event (a repeated event_id would be a 200 replay, storing
    # nothing); a few more may land, from requests still in flight when a wrk run ended.
    total = answered["post16"] + answered["post1"] + answered["post16_known"]
    if appended < total or thread_appended < answered["post16_thread"]:
        msg = (
            f"{total} appends answered, {appended} stored (the thread writer's:"
            f" {answered['post16_thread']} answered, {thread_appended} stored)"
        )
        raise BenchError(msg + ": event ids repeated (replays), not a benchmark of appends")
    runs = gets | posts
    rps = {name: round(median_rate(arm_runs)) for name, arm_runs in runs.items()}
    result = {
        "get_vs_bare": round(rps["get"] / rps["bare_get"], 3),
        "post16_vs_bare_post": round(rps["post16"] / rps["bare_post16"], 3),
        "post16_vs_post1": round(rps["post16"] / rps["post1"], 2),
        "post16_known_vs_bare_post": round(rps["post16_known"] / rps["bare_post16"], 3),
        "floor_post16_vs_bare_post": round(rps["floor_post16"] / rps["bare_post16"], 3),
        "post16_vs_floor_post16": round(rps["post16"] / rps["floor_post16"], 3),
        "raw_floor_post16_vs_bare_post": round(rps["raw_floor_post16"] / rps["bare_post16"], 3),
        "post16_thread_vs_bare_post": round(rps["post16_thread"] / rps["bare_post16"], 3),
        "post16_vs_post16_thread": round(rps["post16"] / rps["post16_thread"], 3),
        "get_p99_ms": round(median_p99(runs["get"]), 2),
        "post_p99_ms": round(median_p99(runs["post16"]), 2),
        "rps": rps,
        "p99_ms": {name: round(median_p99(arm_runs), 2) for name, arm_runs in runs.items()},
        "answer_bytes": len(answer),
        "body_bytes": len(event_body(str(uuid.uuid4()))),
        "appends_answered": total,
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
