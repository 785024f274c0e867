"""Starting and ending a writer process (`events.writer_child`), for `events.writer_process`."""

from __future__ import annotations

import contextlib
import select
import socket
import subprocess
import sys
from collections.abc import Callable
from typing import Final

from events.errors import StoreError
from events.writer_wire import READ_SIZE, READY, TOLD_DECODER, Frames, error_of

START_SECONDS: Final = 60.0
"""The longest wait for a new writer process to open the log."""
STOP_SECONDS: Final = 60.0
"""The longest wait for the writer process to commit what it holds and end, on `close`."""
RETRY_FIRST: Final = 0.25
"""Seconds before trying again to start a writer process that did not start (then doubled)."""
RETRY_LAST: Final = 30.0
"""The longest pause between two tries."""


class Child:
    """A running writer process and the service's end of its socket."""

    __slots__ = ("frames", "process", "sock", "unsent", "writing")

    def __init__(self, process: subprocess.Popen[bytes], sock: socket.socket) -> None:
        self.process = process
        self.sock = sock
        self.frames = Frames()
        self.unsent = bytearray()
        self.writing = False


def start_child(database: str, synchronous: str, timeout: float = START_SECONDS) -> Child:
    """A new writer process with the log open; its error (`StoreError`, say) if it cannot."""
    ours, theirs = socket.socketpair()
    command = [sys.executable, "-m", "events.writer_child", str(theirs.fileno()), database]
    try:
        process = subprocess.Popen(  # noqa: S603 - this interpreter, this package
            [*command, synchronous],
            pass_fds=(theirs.fileno(),),
            stdin=subprocess.DEVNULL,
            process_group=0,  # a Ctrl-C or SIGHUP to the terminal's group reaches the service only
        )
    except OSError as exc:
        ours.close()
        msg = f"cannot start the writer process: {exc}"
        raise StoreError(msg) from None
    finally:
        theirs.close()
    try:
        _opened(ours, process, timeout)
    except BaseException:
        ours.close()
        if process.poll() is None:
            process.kill()
        process.wait()
        raise
    ours.setblocking(False)  # noqa: FBT003 - the socket's own API
    return Child(process, ours)


def _opened(sock: socket.socket, process: subprocess.Popen[bytes], timeout: float) -> None:
    """Wait for the child's first answer: the log is open, or its error (raised here)."""
    sock.settimeout(timeout)
    frames = Frames()
    messages: list[bytes] = []
    try:
        while not messages:
            data = sock.recv(READ_SIZE)
            if not data:
                code = process.wait()
                msg = f"the writer process ended before opening the log (exit code {code})"
                raise StoreError(msg)
            messages = frames.feed(data)
    except TimeoutError:
        msg = f"the writer process did not open the log within {timeout:g} s"
        raise StoreError(msg) from None
    told = TOLD_DECODER.decode(messages[0])
    if told.error is not None:
        raise error_of(told.error)
    if told.number != READY:
        msg = f"the writer process started with answer {told.number}, not {READY}"
        raise StoreError(msg)


def finish_here(child: Child, heard: Callable[[bytes], None]) -> None:
    """Send what is unsent and end the child's input, here, blocking; pass on its answers.

    For a `close` with no loop to do it (or on the loop's own thread). The answers are
    read as they come (`heard`), so the child never waits to write one.
    """
    sock = child.sock
    with contextlib.suppress(OSError, ValueError):  # ValueError: `heard` closed the socket
        sock.settimeout(STOP_SECONDS)
        while child.unsent:
            readable, writable, _ = select.select([sock], [sock], [], STOP_SECONDS)
            if not (readable or writable):
                return  # stuck: `stop` waits for the child, then kills it
            if readable:
                data = sock.recv(READ_SIZE)
                if not data:
                    return  # the child ended
                heard(data)
            if writable:
                del child.unsent[: sock.send(child.unsent)]
        sock.shutdown(socket.SHUT_WR)
        while data := sock.recv(READ_SIZE):
            heard(data)


def stop(child: Child, *, shut: bool = True) -> None:
    """End a child: its input closed, then wait for it (killed past `STOP_SECONDS`)."""
    if shut:
        with contextlib.suppress(OSError):
            child.sock.shutdown(socket.SHUT_WR)
    try:
        child.process.wait(STOP_SECONDS)
    except subprocess.TimeoutExpired:
        child.process.kill()
        child.process.wait()
    if shut:
        child.sock.close()


def reap(process: subprocess.Popen[bytes]) -> None:
    """Wait for a child that lost its socket (killed past `STOP_SECONDS`): no zombie."""
    try:
        process.wait(STOP_SECONDS)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
