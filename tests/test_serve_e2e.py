"""`ledger serve` as a real process: ready, append and read back, JSON logs, SIGTERM, snapshot."""

from __future__ import annotations

import functools
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from http_fixtures import SEED_COUNT, bearer, init_ledger, org_event
from processes import children_of, ended

from events.sqlite import SQLiteEventLog
from projections import load_snapshot
from service.http_protocol import MAX_HEAD_BYTES

pytestmark = pytest.mark.slow

LEDGER = str(Path(sys.executable).with_name("ledger"))
READY_WITHIN = 20.0
STOP_WITHIN = 20.0


def free_port() -> int:
    """A port nothing listens on right now (the OS's pick for port 0)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def environment(db: Path, port: int) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LEDGER_")}
    env.update(
        LEDGER_DATABASE=str(db),
        LEDGER_HOST="127.0.0.1",
        LEDGER_PORT=str(port),
        LEDGER_LOG_FORMAT="json",
        PYTHONUNBUFFERED="1",
    )
    return env


def run(db: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """A `ledger` command to its end."""
    return subprocess.run(
        [LEDGER, *args],
        env=environment(db, 8000),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        stdin=subprocess.DEVNULL,
    )


class Server:
    """A running `ledger serve`, its base URL and what it wrote to stdout."""

    def __init__(self, process: subprocess.Popen[bytes], url: str, stdout: Path) -> None:
        self.process = process
        self.url = url
        self.stdout = stdout

    def lines(self) -> list[dict[str, Any]]:
        """The JSON log lines written so far (anything else on stdout fails the test)."""
        text = self.stdout.read_text(encoding="utf-8")
        return [json.loads(line) for line in text.splitlines() if line.strip()]

    def stop(self) -> int:
        """SIGTERM to this server's pid only; its exit code, within the bound."""
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout=STOP_WITHIN)


def logged(lines: list[dict[str, Any]], event: str) -> list[dict[str, Any]]:
    """The log lines of one event."""
    return [line for line in lines if line.get("event") == event]


@contextmanager
def serving(db: Path, log: Path, **env: str) -> Iterator[Server]:
    """Start `ledger serve` on a free port and wait (bounded) until it says it is ready.

    `env`: settings over the test's own (`LEDGER_HOST`, say); it is probed on 127.0.0.1.
    """
    port = free_port()
    with log.open("wb") as out, (log.with_suffix(".err")).open("wb") as err:
        process = subprocess.Popen(
            [LEDGER, "serve"],
            env=environment(db, port) | env,
            stdout=out,
            stderr=err,
            stdin=subprocess.DEVNULL,
        )
    server = Server(process, f"http://127.0.0.1:{port}", log)
    try:
        deadline = time.monotonic() + READY_WITHIN
        while True:
            assert process.poll() is None, log.with_suffix(".err").read_text()
            try:
                if httpx.get(f"{server.url}/health/ready", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "not ready within the bound"
            time.sleep(0.1)
        yield server
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=STOP_WITHIN)


def test_serve_append_read_stop_and_restart(tmp_path: Path) -> None:
    """Served, appended to and read back; SIGTERM exits 0 with a snapshot; a restart loads it."""
    db = tmp_path / "ledger.db"
    assert run(db, "seed").returncode == 0
    created = run(db, "token", "create", "--scope", "append", "--subject", "e2e")
    assert created.returncode == 0, created.stderr
    token = created.stdout.strip()

    with serving(db, tmp_path / "first.log") as server:
        event = org_event(event_id=str(uuid.uuid4()))
        response = httpx.post(
            f"{server.url}/v1/events",
            json={"events": [event]},
            headers={**bearer(token), "X-Request-ID": "e2e-append-1"},
            timeout=10,
        )
        assert response.status_code == 201, response.text
        assert response.headers["x-request-id"] == "e2e-append-1"
        position = response.json()["events"][0]["position"]
        assert position == SEED_COUNT + 1

        stored = httpx.get(f"{server.url}/v1/events/{event['event_id']}", timeout=10).json()
        assert stored["position"] == position
        assert stored["data"] == {**event["data"], "kind": None, "parent": None, "aliases": []}
        assert stored["metadata"]["recorded_by"] == "e2e"
        orgs = httpx.get(f"{server.url}/v1/organizations", timeout=10).json()
        assert event["data"]["id"] in {o["id"] for o in orgs["data"]}

        assert server.stop() == 0
        lines = server.lines()

    appends = [
        line for line in lines if line.get("event") == "request" and line.get("method") == "POST"
    ]
    assert len(appends) == 1
    assert appends[0]["path"] == "/v1/events"
    assert appends[0]["status"] == 201
    assert appends[0]["request_id"] == "e2e-append-1"
    assert appends[0]["level"] == "info"
    assert "timestamp" in appends[0]
    events = [line.get("event") for line in lines]
    assert "ledger open" in events
    (opened,) = [line for line in lines if line.get("event") == "ledger open"]
    assert opened["event_loop"] == "uvloop", "ledger serve runs on uvloop, a dependency"
    assert "ledger closed" in events

    snapshot = Path(f"{db}.snapshot")
    assert snapshot.exists()
    live = load_snapshot(snapshot.read_bytes())
    assert live is not None
    assert live.position == position

    with serving(db, tmp_path / "second.log") as server:
        ready = httpx.get(f"{server.url}/health/ready", timeout=10).json()
        assert ready["head"] == ready["projected"] == position
        orgs = httpx.get(f"{server.url}/v1/organizations", timeout=10).json()
        assert event["data"]["id"] in {o["id"] for o in orgs["data"]}
        assert server.stop() == 0
        second = server.lines()
    (loaded,) = logged(second, "snapshot loaded")
    (warmed,) = logged(second, "projections ready")
    assert loaded["position"] == warmed["position"] == position
    ready_200 = {"event": "request", "path": "/health/ready", "status": 200}
    assert second.index(warmed) < min(
        i for i, line in enumerate(second) if ready_200.items() <= line.items()
    ), "ready before the start had derived its answers"


def test_ctrl_c_stops_as_sigterm_does_and_localhost_is_ipv4(tmp_path: Path) -> None:
    """SIGINT: a graceful stop, exit 0, snapshot written; `localhost` served on 127.0.0.1.

    (uvicorn chooses IPv4 for a host without a colon, whatever `/etc/hosts` lists first;
    the socket bound before the server starts is chosen the same way.)
    """
    db = tmp_path / "ledger.db"
    assert run(db, "seed").returncode == 0
    with serving(db, tmp_path / "out.log", LEDGER_HOST="localhost") as server:
        server.process.send_signal(signal.SIGINT)
        code = server.process.wait(timeout=STOP_WITHIN)
        err = (tmp_path / "out.err").read_text()
    assert code == 0, err
    assert err == ""  # uvicorn's own lines too are JSON on stdout, not text on stderr
    lines = server.lines()
    assert logged(lines, "snapshot written")
    uvicorn_lines = [line for line in lines if line.get("logger") == "uvicorn.error"]
    assert uvicorn_lines
    assert all({"event", "level", "timestamp"} <= set(line) for line in uvicorn_lines)


def serve_refused(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    """`ledger serve ARGS…` expected to refuse to start: run to its (bounded) end."""
    return subprocess.run(
        [LEDGER, "serve", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        stdin=subprocess.DEVNULL,
    )


def test_a_bad_setting_stops_start_up_with_one_line(tmp_path: Path) -> None:
    """`ledger serve` with a bad port exits non-zero at once, one line naming the setting."""
    result = serve_refused(environment(tmp_path / "ledger.db", 8000) | {"LEDGER_PORT": "http"})
    assert result.returncode != 0
    assert len(result.stderr.strip().splitlines()) == 1
    assert "LEDGER_PORT" in result.stderr
    assert not (tmp_path / "ledger.db").exists()


@pytest.mark.parametrize("where", ["busy-port", "bad-host"])
def test_an_address_it_cannot_listen_on_is_one_line(tmp_path: Path, where: str) -> None:
    """A taken port, or an address not this machine's: one line, exit 2, nothing created.

    (192.0.2.1 is TEST-NET-1: numeric, so no name is looked up, and never assigned here.)
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        env = environment(tmp_path / "ledger.db", taken.getsockname()[1])
        if where == "bad-host":
            env["LEDGER_HOST"] = "192.0.2.1"
        result = serve_refused(env)
    assert result.returncode == 2, result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert "LEDGER_HOST" in result.stderr
    assert result.stdout == ""
    assert not (tmp_path / "ledger.db").exists()


@pytest.mark.parametrize("kind", ["no-such-folder", "a-folder", "postgresql-url"])
def test_a_database_it_cannot_open_is_one_line(tmp_path: Path, kind: str) -> None:
    """A `LEDGER_DATABASE` it cannot open stops start-up with one line naming the setting.

    Before the server starts: not a traceback in the lifespan's log line and a server that
    exits without saying why on stderr.
    """
    database = {
        "no-such-folder": str(tmp_path / "missing" / "ledger.db"),
        "a-folder": str(tmp_path),
        "postgresql-url": "postgresql://127.0.0.1:1/none",
    }[kind]
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = environment(tmp_path / "unused.db", port) | {"LEDGER_DATABASE": database}
    result = serve_refused(env)
    assert result.returncode == 1, result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert "LEDGER_DATABASE" in result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    assert result.stdout == ""
    assert not (tmp_path / "missing").exists()


@pytest.mark.parametrize("kind", ["no-such-folder", "a-folder"])
def test_a_snapshot_path_it_cannot_write_is_one_line(tmp_path: Path, kind: str) -> None:
    """Found at start (exit 2, one line naming the setting), not at SIGTERM's snapshot."""
    path = tmp_path / "missing" / "x.snapshot" if kind == "no-such-folder" else tmp_path
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = environment(tmp_path / "ledger.db", port) | {"LEDGER_SNAPSHOT_PATH": str(path)}
    result = serve_refused(env)
    assert result.returncode == 2, result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert "LEDGER_SNAPSHOT_PATH" in result.stderr
    assert not (tmp_path / "ledger.db").exists()


@pytest.mark.parametrize("name", ["ledger.db", "ledger.db-wal", "./sub/../ledger.db"])
def test_a_snapshot_path_onto_the_database_is_refused(tmp_path: Path, name: str) -> None:
    """A snapshot renamed over the database would replace the ledger: refused at start."""
    db = init_ledger(tmp_path / "ledger.db")
    (tmp_path / "sub").mkdir()
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = environment(db, port) | {"LEDGER_SNAPSHOT_PATH": str(tmp_path / name)}
    result = serve_refused(env)
    assert result.returncode == 2, result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert "is the database's own file" in result.stderr
    assert "LEDGER_SNAPSHOT_PATH" in result.stderr
    verified = subprocess.run(
        [LEDGER, "--database", str(db), "verify"], capture_output=True, text=True, check=False
    )
    assert verified.returncode == 0, verified.stdout + verified.stderr


def test_a_snapshot_path_onto_another_database_is_refused(tmp_path: Path) -> None:
    """Another ledger's database as the snapshot path: refused at start, left as it was.

    (Found by a review: the server started, and only logged at shutdown that it had not
    replaced it, never writing a snapshot at all.)
    """
    db, other = init_ledger(tmp_path / "ledger.db"), init_ledger(tmp_path / "other.db")
    before = other.read_bytes()
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    result = serve_refused(environment(db, port) | {"LEDGER_SNAPSHOT_PATH": str(other)})
    assert result.returncode == 2, result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert "is a SQLite database, not a snapshot" in result.stderr
    assert "LEDGER_SNAPSHOT_PATH" in result.stderr
    assert other.read_bytes() == before


def test_a_client_gone_mid_body_is_no_server_error(tmp_path: Path) -> None:
    """A POST whose client closes half way through its body: 499 in the log and metrics."""
    db = tmp_path / "ledger.db"
    assert run(db, "seed").returncode == 0
    token = run(db, "token", "create", "--scope", "append", "--subject", "t").stdout.split()[-1]
    with serving(db, tmp_path / "serve.log") as server:
        port = int(server.url.rsplit(":", 1)[1])
        with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
            sock.sendall(
                b"POST /v1/events HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                b"Authorization: Bearer " + token.encode() + b"\r\n"
                b'Content-Length: 100\r\nX-Request-ID: gone-mid-body\r\n\r\n{"ev'
            )
        deadline = time.monotonic() + 10
        while not [x for x in server.lines() if x.get("request_id") == "gone-mid-body"]:
            assert time.monotonic() < deadline, "no log line for the request"
            time.sleep(0.05)
        metrics = httpx.get(f"{server.url}/metrics", timeout=5).text
        assert server.stop() == 0
    (line,) = [x for x in server.lines() if x.get("request_id") == "gone-mid-body"]
    assert line["status"] == 499
    assert not [x for x in server.lines() if x.get("log_level") == "error"]
    assert 'path="/v1/events",status_code="500"' not in metrics
    assert 'status_code="499"' in metrics


def raw_exchange(port: int, request: bytes) -> bytes:
    """Send `request` as it is; everything the server answers until it closes (bounded)."""
    answer = b""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(request)
        while chunk := sock.recv(65536):
            answer += chunk
    return answer


@pytest.mark.parametrize(
    "request_bytes",
    [
        b"GET /v1/events HTTP/1.1\r\nHost: x\r\nContent-Length: zz\r\n\r\n",
        b"BL\x01AH / HTTP/1.1\r\n\r\n",
        b"POST /v1/events HTTP/1.1\r\nHost: x\r\nX-Bad\x7f: 1\r\nContent-Length: 2\r\n\r\n{}",
        # the head is whole (its app has started) when the body breaks the parser
        (
            b"POST /v1/events HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Transfer-Encoding: chunked\r\n\r\nzz\r\n"
        ),
        (
            b"POST /v1/events HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Expect: 100-continue\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n"
        ),
    ],
    ids=[
        "length-not-a-number",
        "method-with-a-control-character",
        "header-name-with-del",
        "broken-chunk",
        "broken-chunk-after-expect",
    ],
)
def test_a_request_that_is_not_http_is_a_400_problem(tmp_path: Path, request_bytes: bytes) -> None:
    """Refused by uvicorn's parser, before the app: the answer is still problem details."""
    db = tmp_path / "ledger.db"
    assert run(db, "seed").returncode == 0
    with serving(db, tmp_path / "serve.log") as server:
        port = int(server.url.rsplit(":", 1)[1])
        answer = raw_exchange(port, request_bytes)
        after = httpx.get(f"{server.url}/v1/events", timeout=5)  # and it serves on
        assert server.stop() == 0
    head, _, body = answer.partition(b"\r\n\r\n")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    headers = dict(line.lower().split(": ", 1) for line in header_lines)
    assert status_line == "HTTP/1.1 400 Bad Request"
    assert headers["content-type"] == "application/problem+json"
    assert headers["connection"] == "close"
    assert int(headers["content-length"]) == len(body)
    problem = json.loads(body)
    assert problem["status"] == 400
    assert problem["type"].endswith("/bad-request")
    assert "not valid HTTP" in problem["detail"]
    assert after.status_code == 200
    assert len(after.json()["events"]) == SEED_COUNT
    assert not [x for x in server.lines() if x.get("level") == "error"]
    assert "Exception in ASGI application" not in server.stdout.read_text()


def test_a_request_head_over_the_bound_is_a_431_problem(tmp_path: Path) -> None:
    """A request line and headers that do not end within 64 KiB: a 431 problem, not memory.

    httptools buffered them without a bound (64 MiB of one header was read, then served).
    A head within the bound, and a body of any size behind a small head, are not refused.
    """
    db = tmp_path / "ledger.db"
    assert run(db, "seed").returncode == 0
    token = run(db, "token", "create", "--scope", "append", "--subject", "t").stdout.split()[-1]
    head = b"GET /health/live HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
    with serving(db, tmp_path / "serve.log") as server:
        port = int(server.url.rsplit(":", 1)[1])
        answers = {}
        for name, size in (("over", MAX_HEAD_BYTES + 1), ("within", MAX_HEAD_BYTES - 1024)):
            huge = head + b"X-Filler: " + b"a" * size + b"\r\n\r\n"
            answers[name] = raw_exchange(port, huge)
        many = b"a:\r\n" * (MAX_HEAD_BYTES // 4)  # small headers: each line counts whole
        answers["many"] = raw_exchange(port, head + many + b"\r\n")
        body = b'{"events": []}' + b" " * 500_000  # one read holds head and body
        answers["body"] = raw_exchange(
            port,
            b"POST /v1/events HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Authorization: Bearer " + token.encode() + b"\r\n"
            b"Connection: close\r\nContent-Length: %d\r\n\r\n" % len(body) + body,
        )
        assert server.stop() == 0
    status, _, rest = answers["over"].partition(b"\r\n")
    assert status == b"HTTP/1.1 431 Request Header Fields Too Large"
    assert b"content-type: application/problem+json" in rest
    problem = json.loads(rest.partition(b"\r\n\r\n")[2])
    assert problem["status"] == 431
    assert answers["within"].startswith(b"HTTP/1.1 200 OK")
    assert answers["many"].startswith(b"HTTP/1.1 431 ")
    assert answers["body"].startswith(b"HTTP/1.1 422 ")  # read whole: a batch of no events


def test_a_bad_request_behind_one_being_answered_closes_without_a_server_error(
    tmp_path: Path,
) -> None:
    """Pipelined behind a request still answering, a request that is not HTTP: no 400 first.

    The problem went out as the earlier request's answer, whose own writes then failed:
    "Exception in ASGI application", a 500 in the log and the metrics. Now the connection
    is closed, and the earlier request sees its client gone.
    """
    db = tmp_path / "ledger.db"
    assert run(db, "seed").returncode == 0
    token = run(db, "token", "create", "--scope", "append", "--subject", "t").stdout.split()[-1]
    body = json.dumps({"events": [org_event()]}).encode()
    firsts = [
        b"GET /health/live HTTP/1.1\r\nHost: x\r\n\r\n",
        b"POST /v1/events HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b"Authorization: Bearer " + token.encode() + b"\r\nExpect: 100-continue\r\n"
        b"Content-Length: %d\r\n\r\n" % len(body) + body,
    ]
    # the second: not HTTP, or a head over the bound (whole: one that has not ended, the
    # parser holds without a word until the next byte, and the server does not time it out)
    huge = b"GET / HTTP/1.1\r\nX: " + b"a" * 70_000 + b"\r\n\r\n"
    seconds = [b"BL\x01AH / HTTP/1.1\r\n\r\n", huge]
    with serving(db, tmp_path / "serve.log") as server:
        port = int(server.url.rsplit(":", 1)[1])
        answers = [raw_exchange(port, first + second) for first in firsts for second in seconds]
        metrics = httpx.get(f"{server.url}/metrics", timeout=5).text
        assert server.stop() == 0
    for answer in answers:
        assert not answer.startswith((b"HTTP/1.1 400", b"HTTP/1.1 431")), answer[:80]
    assert 'status_code="500"' not in metrics
    assert not [x for x in server.lines() if x.get("level") == "error"]
    assert "Exception in ASGI application" not in server.stdout.read_text()


def test_every_setting_is_also_a_flag_of_serve(tmp_path: Path) -> None:
    """`--nats-url` (LEDGER_NATS_URL) is taken like every other setting of `ledger serve`."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = str(taken.getsockname()[1])
        env = environment(tmp_path / "ledger.db", 8000)
        result = serve_refused(env, "--nats-url", "nats://127.0.0.1:4222", "--port", port)
    assert "No such option" not in result.stderr
    assert "cannot listen" in result.stderr  # got as far as binding: every flag was taken


def append_until_stopped(
    token: str, acknowledged: dict[str, int], stop: threading.Event, url: str
) -> None:
    """Append one event at a time until `stop`, an error or the bound; note each 201's place."""
    deadline = time.monotonic() + 30
    with httpx.Client(base_url=url, headers=bearer(token), timeout=10) as http:
        for _ in range(2000):  # bounded in count and in time
            if stop.is_set() or time.monotonic() > deadline:
                return
            event = org_event(event_id=str(uuid.uuid4()))
            try:
                response = http.post("/v1/events", json={"events": [event]})
            except httpx.TransportError:
                return  # the server is going: no answer, no claim
            if response.status_code != 201:
                return
            acknowledged[event["event_id"]] = response.json()["events"][0]["position"]


@pytest.mark.parametrize(
    ("writer", "how"), [("process", "SIGTERM"), ("thread", "SIGTERM"), ("process", "SIGKILL")]
)
def test_a_stop_under_concurrent_appends_keeps_every_acknowledged_one(
    tmp_path: Path, writer: str, how: str
) -> None:
    """16 clients appending when the server stops: every 201 is stored where it said.

    Appends are awaited on the event loop and committed by the writer process (or thread):
    SIGTERM must wait for those in flight (their answers come after their group's commit),
    not drop them, and exit 0 with a snapshot. Killed outright, the server answered nothing
    it had not committed, and its writer process ends with it.
    """
    db = tmp_path / "ledger.db"
    assert run(db, "seed").returncode == 0
    token = run(db, "token", "create", "--scope", "append", "--subject", "e2e").stdout.strip()
    acknowledged: dict[str, int] = {}
    stop = threading.Event()
    client = functools.partial(append_until_stopped, token, acknowledged, stop)
    with serving(db, tmp_path / "serve.log", LEDGER_WRITER=writer) as server:
        helpers = children_of(server.process.pid)
        assert len(helpers) == (1 if writer == "process" else 0)
        threads = [threading.Thread(target=client, args=(server.url,)) for _ in range(16)]
        for thread in threads:
            thread.start()
        deadline = time.monotonic() + 20
        while len(acknowledged) < 100 and time.monotonic() < deadline:
            time.sleep(0.01)
        if how == "SIGKILL":
            server.process.kill()
            code = server.process.wait(timeout=STOP_WITHIN)
        else:
            code = server.stop()
        stop.set()
        for thread in threads:
            thread.join(timeout=STOP_WITHIN)
    assert all(ended(pid, STOP_WITHIN) for pid in helpers), "the writer process outlived the server"
    assert code == (0 if how == "SIGTERM" else -signal.SIGKILL)
    assert len(acknowledged) >= 100
    log = SQLiteEventLog(db)
    try:
        for event_id, position in acknowledged.items():
            stored = log.get(event_id)
            assert stored is not None, f"acknowledged {event_id} is not stored"
            assert stored.position == position
        head = log.head()
        assert log.verify().ok
    finally:
        log.close()
    if how == "SIGTERM":
        live = load_snapshot(Path(f"{db}.snapshot").read_bytes())
        assert live is not None
        assert live.position == head


def healthcheck_command() -> list[str]:
    """The Dockerfile's `HEALTHCHECK … CMD [...]`, its `python` this interpreter."""
    text = (Path(__file__).parent.parent / "Dockerfile").read_text(encoding="utf-8")
    joined = text.replace("\\\n", " ")
    [line] = [line for line in joined.splitlines() if line.startswith("HEALTHCHECK")]
    command: list[str] = json.loads(line[line.index("CMD") + len("CMD") :].strip())
    assert command[0] == "python"
    return [sys.executable, *command[1:]]


def test_the_image_healthcheck_asks_the_port_served(tmp_path: Path) -> None:
    """The HEALTHCHECK probes `/health/ready` on `LEDGER_PORT`: ok there, not on another.

    It had 8000 written in, so `docker run -e LEDGER_PORT=…` looked unhealthy.
    """
    db = tmp_path / "ledger.db"
    assert run(db, "seed").returncode == 0
    command = healthcheck_command()
    with serving(db, tmp_path / "serve.log") as server:
        port = server.url.rsplit(":", 1)[1]
        env = {k: v for k, v in os.environ.items() if not k.startswith("LEDGER_")}
        served = subprocess.run(
            command, env=env | {"LEDGER_PORT": port}, capture_output=True, timeout=30, check=False
        )
        other = subprocess.run(
            command,
            env=env | {"LEDGER_PORT": str(free_port())},
            capture_output=True,
            timeout=30,
            check=False,
        )
        assert server.stop() == 0
    assert served.returncode == 0, served.stderr
    assert other.returncode != 0
