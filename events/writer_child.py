"""The writer process: commits the service's appends on its own connection, its own interpreter.

    python -m events.writer_child FD DATABASE SYNCHRONOUS

Started by `events.writer_process` with one end of a socket pair as file descriptor FD.
It opens the SQLite log, says so (`Told` 0), then, on one thread, over and over: takes every
`Ask` that has arrived, commits them as one group (`SQLiteEventLog.append_group`: each batch
prepared, planned, chained and checked as an append on the service's own thread would be;
one commit, one fsync), and answers them all in one write, once the commit is durable.
While it commits, the next asks gather in the socket: they are the next group.

It ends when the service closes its end (a clean shutdown, or the service gone), having
committed and answered everything that arrived before. SIGINT and SIGTERM are ignored: a
Ctrl-C or a stop sent to the whole process group reaches the service, which finishes its
appends in flight through this process and then closes it.
"""

from __future__ import annotations

import signal
import socket
import sys
from collections.abc import Mapping, Sequence

import msgspec

from events.envelope import NewEvent
from events.errors import InvalidEvent, LedgerError, StoreError
from events.sqlite import SQLiteEventLog
from events.writer_wire import READ_SIZE, READY, Frames, Told, fault_of, frame, read_ask

GROUP_BYTES = 8 << 20
"""A group stops growing once this much has been read for it: one transaction stays bounded."""
Batch = tuple[Sequence[NewEvent], Mapping[str, int] | None]


def _number_of(message: bytes) -> int | None:
    """The number of an `Ask` that did not decode, if that much of it did."""
    try:
        head = msgspec.msgpack.decode(message)
    except msgspec.DecodeError:
        return None
    number = head[0] if isinstance(head, list) and head else None
    return number if isinstance(number, int) else None


def _refusal(error: Exception) -> LedgerError:
    """The error of an ask that does not decode, as its caller should see it.

    A batch that does not validate (built in Python, its payload's rules never checked) is
    an `InvalidEvent`; anything else is a defect of the service's: a `StoreError`.
    """
    if isinstance(error, InvalidEvent):  # a payload that does not validate, named
        return error
    if isinstance(error, msgspec.ValidationError):
        return InvalidEvent(f"the batch does not validate: {error}")
    return StoreError(f"the writer process could not read the batch: {error}")


def _arrived(sock: socket.socket, frames: Frames) -> list[bytes] | None:
    """Every whole message that has arrived (waiting for one at least); None at the end."""
    messages: list[bytes] = []
    while not messages:
        data = sock.recv(READ_SIZE)
        if not data:
            return None
        messages = frames.feed(data)
    taken = 0
    while taken < GROUP_BYTES:  # and whatever else is there: the group grew while one synced
        try:
            data = sock.recv(READ_SIZE, socket.MSG_DONTWAIT)
        except BlockingIOError:
            break
        if not data:
            break  # the end: seen again by the next call
        taken += len(data)
        messages.extend(frames.feed(data))
    return messages


def _answer(log: SQLiteEventLog, messages: list[bytes]) -> bytes:
    """Commit the asks as one group; the answers, as one write."""
    numbers: list[int] = []
    batches: list[Batch] = []
    told: list[bytes] = []
    for message in messages:
        try:
            number, batch, expected_versions = read_ask(message)
        except Exception as exc:  # noqa: BLE001 - this ask's own answer, not the group's end
            broken = _number_of(message)
            if broken is not None:
                told.append(frame(Told(broken, error=fault_of(_refusal(exc)))))
            continue
        numbers.append(number)
        batches.append((batch, expected_versions))
    outcomes = log.append_group(batches) if batches else []
    for number, outcome in zip(numbers, outcomes, strict=True):
        if isinstance(outcome, LedgerError):
            told.append(frame(Told(number, error=fault_of(outcome))))
        else:
            told.append(frame(Told(number, result=outcome)))
    return b"".join(told)


def serve(sock: socket.socket, log: SQLiteEventLog) -> None:
    """Answer the service's asks, a group at a time, until it closes its end."""
    frames = Frames()
    try:
        while (messages := _arrived(sock, frames)) is not None:
            sock.sendall(_answer(log, messages))
    except OSError:
        pass  # the service is gone: what it asked is committed or not, as its retry finds
    finally:
        log.close()


def main(argv: list[str]) -> int:
    """Open the log, say so, serve; 0 once the service has closed its end."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    fd, database, synchronous = int(argv[0]), argv[1], argv[2]
    with socket.socket(fileno=fd) as sock:
        try:
            log = SQLiteEventLog(database, synchronous=synchronous)  # type: ignore[arg-type]
        except Exception as exc:  # noqa: BLE001 - told to the service, which raises it
            sock.sendall(frame(Told(READY, error=fault_of(exc))))
            return 1
        sock.sendall(frame(Told(READY)))
        serve(sock, log)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
