"""Where a durable POST's CPU goes: per request, on the event loop and on the other threads.

    python bench/http_cpu.py            # 8 s of load per app (about a minute and a half in all)
    python bench/http_cpu.py --quick    # 4 s per app

The POST of `bench/http.py` (one event, 16 connections, wrk) against each app in turn,
under uvicorn with one worker: the service (`POST /v1/events`, its appends committed by its
writer process), `service_thread` (the same with `LEDGER_WRITER=thread`), the bare Litestar route,
`bench/floor_app.py` (the service's decoding and the ledger's store, nothing else),
`bench/raw_floor_app.py` (the bare route's decoding and a minimal group commit of plain
`sqlite3`) and `bench/nostore_app.py` (the service with each append answered at once,
storing nothing: what the request path costs by itself). For each, the CPU time of each
of the server's threads is read from `/proc/<pid>/task/<tid>/stat` before and after a
bounded wrk run: the event loop is the main thread; the rest (the writer, mostly) is
summed; the writer process's (and any other child's) CPU is `writer_process_*`. A loop
well under one core while requests wait means the rate is bound by the
commit cycle (latency), not by the loop; a loop at one core means it is bound by the
loop's own work. `machine_busy` is the share of
both CPUs in use meanwhile (wrk included). Progress on stderr; the last line of stdout is
one JSON object, an entry per app.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import uuid
from pathlib import Path
from typing import Any

# Run as a script, this folder comes first on sys.path, where `http.py` would shadow the
# standard library's `http`: drop it, and append it again after the standard library.
if sys.path and Path(sys.path[0]).resolve() == Path(__file__).resolve().parent:
    del sys.path[0]
sys.path.append(str(Path(__file__).resolve().parent))

from http_load import WRK, event_body, write_scripts, wrk
from http_servers import (
    BenchError,
    clean_env,
    free_port,
    ledger,
    log,
    probe,
    server_command,
    serving,
)

CLIENTS = 16
WARMUP_SECONDS = 2.0
TICKS = os.sysconf("SC_CLK_TCK")
APPS = {
    "service": ("service.asgi:application", "/v1/events"),
    "service_thread": ("service.asgi:application", "/v1/events"),
    "bare": ("bench.bare_app:application", "/bare/events"),
    "floor": ("bench.floor_app:application", "/floor/events"),
    "raw_floor": ("bench.raw_floor_app:application", "/floor/events"),
    "service_nostore": ("bench.nostore_app:application", "/v1/events"),
}


def thread_ticks(pid: int) -> dict[int, int]:
    """User + system clock ticks of each thread of a process, by thread id."""
    ticks: dict[int, int] = {}
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            fields = (task / "stat").read_text().rsplit(")", 1)[1].split()
        except (FileNotFoundError, ProcessLookupError):
            continue  # a thread that ended meanwhile
        ticks[int(task.name)] = int(fields[11]) + int(fields[12])  # utime, stime
    return ticks


def children_ticks(pid: int) -> int:
    """User + system clock ticks of the processes a process started (its writer process)."""
    total = 0
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            children = (task / "children").read_text().split()
        except (FileNotFoundError, ProcessLookupError):
            continue
        for child in children:
            try:
                total += sum(thread_ticks(int(child)).values())
            except (FileNotFoundError, ProcessLookupError):
                continue  # it ended meanwhile
    return total


def machine_ticks() -> tuple[int, int]:
    """All and idle (idle + iowait) clock ticks of the machine, from /proc/stat."""
    fields = [int(value) for value in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    return sum(fields), fields[3] + fields[4]


def measure(name: str, home: Path, token: str, seconds: float) -> dict[str, Any]:
    """One app under the POST load: its rate and its threads' CPU per request."""
    app, path = APPS[name]
    env = clean_env(
        LEDGER_DATABASE=str(home / "ledger.db"),
        LEDGER_LOG_FORMAT="json",
        FLOOR_DATABASE=str(home / f"{name}-floor.db"),
        RAW_FLOOR_DATABASE=str(home / f"{name}-raw.db"),
        LEDGER_WRITER="thread" if name == "service_thread" else "process",
    )
    command = server_command("uvicorn", app, free_port())
    _, post, _ = write_scripts(home, token)
    with serving(name, command, env, home / f"{name}.log") as server:
        url = server.url + path
        probe("POST", url, event_body(str(uuid.uuid4())), token)
        wrk(url, post, CLIENTS, WARMUP_SECONDS, f"{name} warm-up")
        pid = server.process.pid
        before, machine_before = thread_ticks(pid), machine_ticks()
        children_before = children_ticks(pid)
        run = wrk(url, post, CLIENTS, seconds, name)
        after, machine_after = thread_ticks(pid), machine_ticks()
        children = children_ticks(pid) - children_before
    spent = {tid: after[tid] - before.get(tid, 0) for tid in after}
    loop = spent.get(pid, 0) / TICKS
    others = sum(ticks for tid, ticks in spent.items() if tid != pid) / TICKS
    writer = children / TICKS
    total, idle = (a - b for a, b in zip(machine_after, machine_before, strict=True))
    requests = run.requests
    result = {
        "rate": round(run.rate),
        "loop_us_per_request": round(loop / requests * 1e6, 1),
        "other_threads_us_per_request": round(others / requests * 1e6, 1),
        "loop_cores": round(loop / seconds, 2),
        "other_threads_cores": round(others / seconds, 2),
        "writer_process_us_per_request": round(writer / requests * 1e6, 1),
        "writer_process_cores": round(writer / seconds, 2),
        "machine_busy": round(1 - idle / total, 2) if total else None,
    }
    log(f"  {name}: {json.dumps(result)}")
    return result


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="4 s of load per app")
    args = parser.parse_args(argv)
    if not Path(WRK).exists():
        print(f"{WRK} not found: install it with `apt-get install wrk`", file=sys.stderr)
        sys.exit(2)
    seconds = 4.0 if args.quick else 8.0
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="ledger-http-cpu-") as scratch:
        home = Path(scratch)
        database = home / "ledger.db"
        try:
            ledger(database, "seed")
            token = ledger(
                database, "token", "create", "--scope", "append", "--subject", "bench"
            ).strip()
            for name in APPS:
                results[name] = measure(name, home, token, seconds)
        except BenchError as exc:
            print(f"benchmark failed: {exc}", file=sys.stderr)
            sys.exit(1)
    results.update(clients=CLIENTS, seconds_per_app=seconds, cpus=os.cpu_count(), quick=args.quick)
    print(json.dumps(results))


if __name__ == "__main__":
    main()
