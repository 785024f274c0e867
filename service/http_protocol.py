"""The HTTP protocol `ledger serve` runs: uvicorn's httptools protocol, its own errors problems.

Two requests never reach the app, and uvicorn answered them itself:

- one that is not HTTP/1.1 (a malformed request line, a `Content-Length` that is not a
  number, a header with a control character): a `text/plain` 400, "Invalid HTTP request
  received.";
- one whose request line and headers never end: none at all. httptools buffers them
  without a bound, so a client could make the server hold megabytes (64 MiB of one header
  was read, then answered).

Every error the service sends is an RFC 9457 problem, so this protocol sends the first as a
400 problem and cuts the second with a 431 problem: once its lines, measured when it ends,
pass `MAX_HEAD_BYTES`, or once that much has arrived for a head not yet ended (counted from the
read after the previous request's end: what one read holds beyond the bound may be
buffered, no more; a head that stops arriving is held without an answer, as uvicorn does).
Either ends the connection (the rest of the stream cannot be framed), in stages as RFC
9112 9.6 advises: the answer, the end of the server's side, and what the client still sends
read and dropped until it closes its side or `LINGER_SECONDS` pass. Closed at once, with the
client's bytes unread, the connection was reset, and a client still sending lost the answer.
"""

from __future__ import annotations

import asyncio
from typing import Final

from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol

from service.problems import PROBLEM_JSON, problem_json

MAX_HEAD_BYTES: Final = 64 * 1024
"""The most a request line and its headers may take (nginx takes 32 KiB; uvicorn's h11, 16)."""

REQUEST_LINE_EXTRA: Final = len(b"OPTIONS  HTTP/1.1\r\n\r\n")
"""A head's bytes besides its target and header lines (`: ` and a line end each): the longest
method, the version, the line ends."""
LINGER_SECONDS: Final = 2.0
"""How long what a client still sends after such an answer is read and dropped."""

NOT_HTTP: Final = problem_json(
    400, "bad-request", "Bad request", "the request is not valid HTTP/1.1; the connection is closed"
)
HEAD_TOO_LARGE: Final = problem_json(
    431,
    "request-header-fields-too-large",
    "Request header fields too large",
    f"the request line and headers are over {MAX_HEAD_BYTES:,} bytes; the connection is closed",
)
_STATUS_431: Final = b"HTTP/1.1 431 Request Header Fields Too Large\r\n"


class _HeadTooLarge(Exception):
    """Raised from a parser callback: the head is past `MAX_HEAD_BYTES`."""


class ProblemHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol, its 400 a problem and a request's head bounded (431)."""

    _received = 0
    """Bytes received since the current request began, while its head is not complete."""
    _in_head = True
    """Whether the head of a request is awaited (or being read)."""
    _too_large = False
    """Set when a head ended past the bound: the parser was stopped for the 431."""
    _ended = False
    """Set once an answer here ended the connection: what arrives is dropped."""
    _closing: asyncio.TimerHandle | None = None
    """The close due once the client had time to read that answer."""

    # These run for every request: uvicorn's methods are called by name, not through
    # `super()`, and the head is measured once, when whole, not in a callback per header.
    # `bench/protocol_instructions.py`: 11,300 instructions a POST over uvicorn's protocol
    # (22,800 with `super()` and the callbacks).

    def data_received(self, data: bytes) -> None:
        """Parse as uvicorn does; a head past the bound, ended or not, is a 431."""
        if self._ended:
            return
        if self._in_head:
            self._received += len(data)
        HttpToolsProtocol.data_received(self, data)
        if self._in_head and self._received > MAX_HEAD_BYTES and not self._ended:
            self._answer(_STATUS_431, HEAD_TOO_LARGE)  # httptools holds it all meanwhile

    def on_headers_complete(self) -> None:
        """The head is whole: measured (a head that ended in one read, say); its body not."""
        self._in_head = False
        lines = sum(len(name) + len(value) for name, value in self.headers)
        if REQUEST_LINE_EXTRA + len(self.url) + lines + 4 * len(self.headers) > MAX_HEAD_BYTES:
            self._too_large = True
            raise _HeadTooLarge  # the parser stops; `send_400_response` answers the 431
        HttpToolsProtocol.on_headers_complete(self)

    def on_message_complete(self) -> None:
        """The next request's head is counted from here."""
        HttpToolsProtocol.on_message_complete(self)
        self._in_head, self._received = True, 0

    def send_400_response(self, msg: str) -> None:
        """The problem `NOT_HTTP` instead of uvicorn's text (`msg`, which uvicorn logs).

        Or the 431, when the parser stopped because the head went past the bound.
        """
        del msg
        if self._too_large:
            self._answer(_STATUS_431, HEAD_TOO_LARGE)
        else:
            self._answer(STATUS_LINE[400], NOT_HTTP)

    def _answer(self, status_line: bytes, problem: bytes) -> None:
        """A problem with uvicorn's own headers (`Date`), then the connection closed.

        A request whose body broke the parser is answered so, its app told the client has
        gone (its own answer is dropped). Not while an earlier request on the connection
        (pipelined) is still being answered, or this one's answer has begun: the problem
        would arrive as, or inside, that answer, and its own writes would then fail. The
        connection is closed at once instead, as a client of a broken pipeline expects.
        """
        self._ended = True
        cycle = self.cycle
        if self.pipeline or (cycle is not None and not cycle.response_complete):
            if self.pipeline or cycle is None or not cycle.more_body or cycle.response_started:
                self.transport.close()
                return
            cycle.disconnected = True  # the request being read: its app hears it gone
            cycle.waiting_for_100_continue = False
            cycle.message_event.set()
        content = [status_line]
        for name, value in self.server_state.default_headers:
            content.extend([name, b": ", value, b"\r\n"])
        content.extend(
            [
                b"content-type: " + PROBLEM_JSON.encode() + b"\r\n",
                b"content-length: %d\r\n" % len(problem),
                b"connection: close\r\n",
                b"\r\n",
                problem,
            ]
        )
        self.transport.write(b"".join(content))
        if not self.transport.can_write_eof():
            self.transport.close()
            return
        self.transport.write_eof()  # the client reads the answer, then the end
        self._closing = self.loop.call_later(LINGER_SECONDS, self.transport.close)

    def connection_lost(self, exc: Exception | None) -> None:
        """As uvicorn, and no close left due."""
        if self._closing is not None:
            self._closing.cancel()
        super().connection_lost(exc)
