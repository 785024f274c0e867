"""What a POST costs the event loop in instructions, counted by valgrind: no noise, no load.

    python bench/request_instructions.py            # 600 requests per app (about 2 minutes)
    python bench/request_instructions.py --quick    # 100 per app (under a minute)

The wall-clock figures of `bench/http.py` and `bench/http_cpu.py` move 30% from run to run
on this machine; instructions do not. Each app below is built in one process run under
valgrind's callgrind, and sent the POST of `bench/http.py` (one event) one request at a
time through its ASGI entry, in-process on uvloop (as uvicorn runs it): no server, no
socket, no load generator. After a
warm-up, the counters are zeroed (`callgrind_control -z`), the requests run, and the count
is dumped (`callgrind_control -d`): instructions per request of everything the process
ran meanwhile (the app, the event loop, the process's other threads), the garbage collector
held off (a collection falls in one app's requests and not another's). Two such processes
run side by side, each with half of the apps.

- `bare_post`: the bare Litestar route of `bench/bare_app.py` (decode into `AppendBody`).
- `floor_post`: `bench/floor_app.py`'s request path (decode and validate as the service
  does, answer), its store answering at once.
- `service_post`: the service's `POST /v1/events`, its append answered at once (what a
  store costs the loop is not in it): token check, body deadline, decode and validate,
  request log line, metrics, request id, the layers in front of the router.
- `service_post_without_<layer>`: the same with one layer's work skipped (the request log
  line, the request metrics, the token check, the body deadline); the difference to
  `service_post` is what the layer costs (`layer_costs`).
- `service_appending`: the service with its real append (the writer process, not counted:
  valgrind follows only this process), one request at a time, so every append is a group of
  its own: the most the hand-off to the writer can cost a request.

Needs valgrind (`apt-get install valgrind`). The last line of stdout is one JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import concurrent.futures
import gc
import json
import os
import shutil
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import uvloop

ROOT = Path(__file__).resolve().parent.parent
if sys.path and Path(sys.path[0]).resolve() == ROOT / "bench":
    del sys.path[0]  # `http.py` there would shadow the standard library's `http`
sys.path[:0] = [str(ROOT)]
sys.path.append(str(ROOT / "bench"))

LAYERS = ("request_log", "metrics", "token_check", "body_deadline")
APPS = (
    "bare_post",
    "floor_post",
    "service_post",
    *(f"service_post_without_{layer}" for layer in LAYERS),
    "service_appending",
)
WARM = 30


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="100 requests per app")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--requests", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--apps", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        token = prepared_ledger()
        channel, sys.stdout = sys.stdout, (Path(os.environ["LEDGER_SCRATCH"]) / "app.log").open("w")
        # the event loop uvicorn runs (uvloop); the apps' log lines go to the file
        uvloop.run(child(tuple(args.apps.split(",")), args.requests, token, channel))
        return
    if shutil.which("valgrind") is None or shutil.which("callgrind_control") is None:
        print("valgrind not found: install it with `apt-get install valgrind`", file=sys.stderr)
        sys.exit(2)
    requests = 100 if args.quick else 600
    counts = measure(requests)
    per = {app: round(count / requests) for app, count in counts.items()}
    result: dict[str, Any] = {
        **per,
        "service_vs_bare": round(per["service_post"] / per["bare_post"], 3),
        "floor_vs_bare": round(per["floor_post"] / per["bare_post"], 3),
        "appending_vs_bare": round(per["service_appending"] / per["bare_post"], 3),
        "layer_costs": {
            layer: per["service_post"] - per[f"service_post_without_{layer}"] for layer in LAYERS
        },
        "requests_per_app": requests,
        "quick": args.quick,
    }
    print(json.dumps(result))


def measure(requests: int) -> dict[str, int]:
    """The instructions of each app's requests: two children under callgrind, side by side."""
    counts: dict[str, int] = {}
    halves = (APPS[::2], APPS[1::2])  # one per CPU: valgrind's start-up is most of the time
    with concurrent.futures.ThreadPoolExecutor(max_workers=len(halves)) as pool:
        for part in pool.map(lambda apps: measure_some(apps, requests), halves):
            counts.update(part)
    return {app: counts[app] for app in APPS}


def measure_some(apps: tuple[str, ...], requests: int) -> dict[str, int]:
    """Run one child under callgrind for `apps`; the instructions of each one's requests."""
    counts: dict[str, int] = {}
    with tempfile.TemporaryDirectory(prefix="ledger-instructions-") as scratch:
        out = Path(scratch) / "callgrind.out"
        command = [
            "valgrind",
            "--tool=callgrind",
            f"--callgrind-out-file={out}",
            sys.executable,
            str(Path(__file__).resolve()),
            "--child",
            "--requests",
            str(requests),
            "--apps",
            ",".join(apps),
        ]
        env = {**os.environ, "LEDGER_SCRATCH": scratch, "PYTHONHASHSEED": "0"}
        child = subprocess.Popen(
            command,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            env=env,
            text=True,
        )
        try:
            for dumped, app in enumerate(apps, start=1):
                expect(child, f"ready {app}")
                control(child.pid, "-z")
                tell(child)
                expect(child, f"done {app}")
                control(child.pid, "-d", app)
                counts[app] = summary(Path(f"{out}.{dumped}"))
                each = counts[app] / requests
                print(f"{app}: {each:,.0f} instructions a request", file=sys.stderr)
                tell(child)
            child.wait(timeout=300)
        finally:
            if child.poll() is None:
                child.kill()
                child.wait()
    return counts


def expect(child: subprocess.Popen[str], line: str) -> None:
    said = child.stdout.readline().strip() if child.stdout is not None else ""
    if said != line:
        print(f"benchmark failed: the child said {said!r}, not {line!r}", file=sys.stderr)
        sys.exit(1)


def tell(child: subprocess.Popen[str]) -> None:
    if child.stdin is not None:
        child.stdin.write("go\n")
        child.stdin.flush()


def control(pid: int, *args: str) -> None:
    subprocess.run(
        ["callgrind_control", *args, str(pid)], check=True, capture_output=True, timeout=120
    )


def summary(dump: Path) -> int:
    """The instructions a callgrind dump counted."""
    for line in dump.read_text().splitlines():
        if line.startswith("summary:"):
            return int(line.split()[1])
    msg = f"no summary in {dump}"
    raise RuntimeError(msg)


# -- the child: each app in turn, in this one process ----------------------------------------


def prepared_ledger() -> str:
    """A seeded ledger in the scratch folder, the apps' settings pointing at it; a token."""
    scratch = Path(os.environ["LEDGER_SCRATCH"])
    database = scratch / "ledger.db"
    ledger_command = str(Path(sys.executable).with_name("ledger"))
    env = {**os.environ, "LEDGER_DATABASE": str(database)}
    subprocess.run([ledger_command, "seed"], env=env, check=True, capture_output=True)
    token = subprocess.run(
        [ledger_command, "token", "create", "--scope", "append", "--subject", "bench"],
        env=env,
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    os.environ.update(LEDGER_DATABASE=str(database), LEDGER_LOG_FORMAT="json")
    os.environ["FLOOR_DATABASE"] = str(scratch / "floor.db")
    return token


async def child(apps: tuple[str, ...], requests: int, token: str, channel: Any) -> None:
    """Each app in turn: built, warmed up, its requests between the parent's zero and dump."""
    for app in apps:
        with built(app) as (asgi, path):
            await run_app(app, asgi, path, token, requests, channel)


@contextmanager
def built(app: str) -> Iterator[tuple[Any, str]]:
    """The ASGI app of a name and its append path, its layer skipped if the name says so."""
    if app == "bare_post":
        from bench.bare_app import application  # noqa: PLC0415

        yield application(), "/bare/events"
        return
    if app == "floor_post":
        yield floor_at_once(), "/floor/events"
        return
    from service.app import create_app  # noqa: PLC0415
    from service.settings import load_settings  # noqa: PLC0415

    if app == "service_appending":
        yield create_app(load_settings()), "/v1/events"
        return
    undo = skip_layer(app.removeprefix("service_post_without_")) if "without" in app else []
    undo.append(answer_at_once())
    try:
        yield create_app(load_settings()), "/v1/events"
    finally:
        for restore in undo:
            restore()


def floor_at_once() -> Any:
    """`bench/floor_app.py`'s request path, its store answering at once."""
    import bench.floor_app as floor  # noqa: PLC0415

    async def answered(store: Any, body: bytes) -> tuple[int, bytes]:
        del store
        batch = floor.decode_batch(body)
        events = floor.events_of(batch, floor.SUBJECT)
        return 201, floor._ENCODE(at_once(events))  # noqa: SLF001 - the floor's own encoder

    return floor.plain_app(lambda: None, lambda _: None, answered)


def at_once(events: Any) -> Any:
    """The answer an append of `events` would get, stored nowhere."""
    from events.dates import utc_now  # noqa: PLC0415
    from events.envelope import Committed  # noqa: PLC0415
    from service.schemas import AppendAnswer  # noqa: PLC0415

    moment = utc_now()
    placed = [Committed(e.event_id, 1_000_000, e.stream, 1, moment) for e in events]
    return AppendAnswer(head=1_000_000, events=placed, replayed=False)


def answer_at_once() -> Callable[[], None]:
    """Each append of the service answered at once (as `bench/nostore_app.py`, unprepared).

    Returns the call that puts the real append back.
    """
    from events.envelope import AppendResult  # noqa: PLC0415
    from service.ledger import Ledger  # noqa: PLC0415

    async def answered(self: Ledger, batch: Any, expected: Any) -> AppendResult:
        del self, expected
        answer = at_once(batch)
        return AppendResult(head=answer.head, events=tuple(answer.events))

    real = Ledger.append_awaited
    Ledger.append_awaited = answered  # type: ignore[method-assign]
    return lambda: setattr(Ledger, "append_awaited", real)


def skip_layer(layer: str) -> list[Callable[[], None]]:
    """Make one layer do nothing; the calls that put it back."""
    import service.app as app_module  # noqa: PLC0415
    from service import middleware, tokens  # noqa: PLC0415
    from service.metrics import RequestMetrics  # noqa: PLC0415

    if layer == "request_log":

        class Silent:
            def bind(self, **_: Any) -> Silent:
                return self

            def info(self, *_: Any, **__: Any) -> None:
                return None

        real = middleware.structlog.get_logger
        middleware.structlog.get_logger = lambda *_: Silent()  # type: ignore[assignment]
        return [lambda: setattr(middleware.structlog, "get_logger", real)]
    if layer == "metrics":
        observe = RequestMetrics.observe
        RequestMetrics.observe = lambda *_, **__: None  # type: ignore[method-assign]
        return [lambda: setattr(RequestMetrics, "observe", observe)]
    if layer == "token_check":
        check = tokens.TokenStore.check
        known: dict[str, Any] = {}

        def once(self: Any, token: str) -> Any:
            if token not in known:
                known[token] = check(self, token)
            return known[token]

        tokens.TokenStore.check = once  # type: ignore[method-assign]
        return [lambda: setattr(tokens.TokenStore, "check", check)]
    deadline = app_module.body_deadline
    app_module.body_deadline = lambda app: app  # type: ignore[assignment]
    return [lambda: setattr(app_module, "body_deadline", deadline)]


async def run_app(
    name: str,
    app: Any,
    path: str,
    token: str,
    requests: int,
    channel: Any,
) -> None:
    """Start the app, warm it up, then `requests` POSTs between the parent's zero and dump."""
    from http_load import event_body  # noqa: PLC0415

    startup: asyncio.Queue[dict[str, str]] = asyncio.Queue()
    said: list[dict[str, Any]] = []
    await startup.put({"type": "lifespan.startup"})

    async def said_to(message: dict[str, Any]) -> None:
        said.append(message)

    scope = {"type": "lifespan", "asgi": {"version": "3.0"}, "state": {}}
    life = asyncio.create_task(app(scope, startup.get, said_to))
    while not said:  # noqa: ASYNC110 - the lifespan's answer, polled
        await asyncio.sleep(0.01)
    ledger = getattr(getattr(app, "state", None), "ledger", None)
    while ledger is not None and not ledger.projector.position:  # noqa: ASYNC110 - polled
        await asyncio.sleep(0.05)
    statuses: dict[int, int] = {}
    for _ in range(WARM):
        await post(app, path, token, event_body(str(uuid.uuid4())), statuses)
    bodies = [event_body(str(uuid.uuid4())) for _ in range(requests)]
    gc.collect()
    gc.disable()  # a collection in one app's requests and not another's: 10,000s of instructions
    handshake(channel, f"ready {name}")
    for body in bodies:
        await post(app, path, token, body, statuses)
    gc.enable()
    if set(statuses) != {201}:
        handshake(channel, f"not every POST was a 201: {statuses}")
    handshake(channel, f"done {name}")
    await startup.put({"type": "lifespan.shutdown"})
    await life


def handshake(out: Any, line: str) -> None:
    print(line, file=out, flush=True)
    sys.stdin.readline()


async def post(app: Any, path: str, token: str, body: bytes, statuses: dict[int, int]) -> None:
    """One POST through the app's ASGI entry; its status counted."""
    messages = [{"type": "http.request", "body": body, "more_body": False}]

    async def receive() -> dict[str, Any]:
        if messages:
            return messages.pop()
        await asyncio.Event().wait()  # never: the body was whole
        return {}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            statuses[message["status"]] = statuses.get(message["status"], 0) + 1

    headers = [
        (b"host", b"127.0.0.1:8000"),
        (b"content-type", b"application/json"),
        (b"authorization", b"Bearer " + token.encode()),
        (b"content-length", b"%d" % len(body)),
    ]
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": headers,
        "client": ("127.0.0.1", 40000),
        "server": ("127.0.0.1", 8000),
        "state": {},
    }
    await app(scope, receive, send)


if __name__ == "__main__":
    main()
