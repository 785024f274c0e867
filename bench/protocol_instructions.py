"""What `ledger serve`'s HTTP protocol adds to uvicorn's, in instructions per request.

    python bench/protocol_instructions.py            # 2,000 requests a side (about a minute)
    python bench/protocol_instructions.py --quick    # 500 (under a minute)

`service.http_protocol.ProblemHttpToolsProtocol` (problem answers, the 64 KiB head bound)
wraps uvicorn's `HttpToolsProtocol` on every request it parses. Each protocol is fed the
POST of `bench/http.py` (one event, about 400 bytes) on one connection, in-process on
uvloop, with a fake transport and an app that reads the body and answers 201: one
request at a time, the loop turned until it is answered. Each runs under valgrind's
callgrind twice, with few and many requests; the difference over the difference in
requests is the instructions a request, start-up left out. No server, no socket, no
noise. Needs valgrind (`apt-get install valgrind`). The last line of stdout is one JSON
object.
"""

from __future__ import annotations

import argparse
import asyncio
import concurrent.futures
import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if sys.path and Path(sys.path[0]).resolve() == ROOT / "bench":
    del sys.path[0]  # `http.py` there would shadow the standard library's `http`
sys.path[:0] = [str(ROOT)]

BASE = 100
"""Requests of the short run: its count is subtracted, with start-up and warm-up."""
PROTOCOLS = ("uvicorn", "service")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="500 requests a side")
    parser.add_argument("--child", choices=PROTOCOLS, help=argparse.SUPPRESS)
    parser.add_argument("--requests", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        run_child(args.child, args.requests)
        return
    if shutil.which("valgrind") is None:
        print("valgrind not found: install it with `apt-get install valgrind`", file=sys.stderr)
        sys.exit(2)
    requests = 500 if args.quick else 2000
    runs = [(protocol, count) for protocol in PROTOCOLS for count in (BASE, BASE + requests)]
    with concurrent.futures.ThreadPoolExecutor(max_workers=2) as pool:
        counted = dict(zip(runs, pool.map(lambda run: instructions(*run), runs), strict=True))
    per = {p: round((counted[p, BASE + requests] - counted[p, BASE]) / requests) for p in PROTOCOLS}
    result = {
        "uvicorn_protocol": per["uvicorn"],
        "service_protocol": per["service"],
        "service_protocol_extra": per["service"] - per["uvicorn"],
        "service_vs_uvicorn": round(per["service"] / per["uvicorn"], 3),
        "requests": requests,
        "quick": args.quick,
    }
    print(json.dumps(result))


def instructions(protocol: str, requests: int) -> int:
    """What callgrind counted for a child feeding `requests` requests to `protocol`."""
    command = [
        "valgrind",
        "--tool=callgrind",
        "--callgrind-out-file=/dev/null",
        sys.executable,
        str(Path(__file__).resolve()),
        "--child",
        protocol,
        "--requests",
        str(requests),
    ]
    done = subprocess.run(command, capture_output=True, text=True, timeout=600, check=False)
    for line in done.stderr.splitlines():
        if "Collected :" in line:
            print(f"{protocol}, {requests} requests: {line.split()[-1]}", file=sys.stderr)
            return int(line.split()[-1])
    print(f"benchmark failed: {protocol} counted nothing\n{done.stderr[-2000:]}", file=sys.stderr)
    sys.exit(1)


# -- the child ------------------------------------------------------------------------------


class FakeTransport(asyncio.Transport):
    """Enough of a transport for the protocol: it counts the writes."""

    def __init__(self) -> None:
        super().__init__()
        self.writes = 0

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return {"sockname": ("127.0.0.1", 8000), "peername": ("127.0.0.1", 40000)}.get(
            name, default
        )

    def write(self, data: Any) -> None:
        del data
        self.writes += 1

    def is_closing(self) -> bool:
        return False

    def close(self) -> None:
        pass

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass


async def created(scope: Any, receive: Any, send: Any) -> None:
    """The app: the body read, 201 answered."""
    del scope
    await receive()
    await send({"type": "http.response.start", "status": 201, "headers": []})
    await send({"type": "http.response.body", "body": b"{}"})


def run_child(protocol: str, requests: int) -> None:
    import uvloop  # noqa: PLC0415
    from uvicorn.config import Config  # noqa: PLC0415
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol  # noqa: PLC0415
    from uvicorn.server import ServerState  # noqa: PLC0415

    from service.http_protocol import ProblemHttpToolsProtocol  # noqa: PLC0415

    sys.path.append(str(ROOT / "bench"))
    from http_load import event_body  # noqa: PLC0415

    body = event_body("00000000-0000-4000-8000-000000000000")
    request = (
        b"POST /v1/events HTTP/1.1\r\nHost: 127.0.0.1:8000\r\nContent-Type: application/json\r\n"
        b"Authorization: Bearer " + b"t" * 43 + b"\r\nContent-Length: %d\r\n\r\n" % len(body)
    ) + body
    cls = ProblemHttpToolsProtocol if protocol == "service" else HttpToolsProtocol

    async def feed() -> None:
        config = Config(created, log_config=None, access_log=False)
        config.load()
        server = cls(config=config, server_state=ServerState(), app_state={})
        transport = FakeTransport()
        server.connection_made(transport)  # type: ignore[arg-type]
        for _ in range(requests):
            server.data_received(request)
            for _ in range(3):  # the app's task runs, reads, answers
                await asyncio.sleep(0)
        if transport.writes < requests:
            msg = f"{transport.writes} answers to {requests} requests"
            raise RuntimeError(msg)

    uvloop.run(feed())


if __name__ == "__main__":
    main()
