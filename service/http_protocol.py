"""The HTTP protocol `ledger serve` runs: uvicorn's httptools protocol, its 400 a problem.

A request that is not HTTP/1.1 (a malformed request line, a `Content-Length` that is not a
number, a header with a control character) never reaches the app: uvicorn answers it
itself, and answered `text/plain` "Invalid HTTP request received.". Every error the service
sends is an RFC 9457 problem, so this protocol sends that 400 as one, closing the
connection as uvicorn does (the rest of the stream cannot be framed).
"""

from __future__ import annotations

from typing import Final

from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol

from service.problems import PROBLEM_JSON, problem_json

NOT_HTTP: Final = problem_json(
    400,
    "bad-request",
    "Bad request",
    "the request is not valid HTTP/1.1; the connection is closed",
)


class ProblemHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol, with the 400 of a request it cannot parse a problem."""

    def send_400_response(self, msg: str) -> None:
        """The problem `NOT_HTTP`, uvicorn's own headers (`Date`), then the connection closed."""
        del msg  # uvicorn's text ("Invalid HTTP request received."), logged by uvicorn
        content = [STATUS_LINE[400]]
        for name, value in self.server_state.default_headers:
            content.extend([name, b": ", value, b"\r\n"])
        content.extend(
            [
                b"content-type: " + PROBLEM_JSON.encode() + b"\r\n",
                b"content-length: %d\r\n" % len(NOT_HTTP),
                b"connection: close\r\n",
                b"\r\n",
                NOT_HTTP,
            ]
        )
        self.transport.write(b"".join(content))
        self.transport.close()
