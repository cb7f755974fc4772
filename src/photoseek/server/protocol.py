"""uvicorn's HTTP/1.1 protocol (h11) with a deadline for request headers and a cap on connections.

uvicorn has neither: its keep-alive timer is cancelled by any byte received, so a client that
sends one header byte now and then (slow-loris) holds its connection, and a file descriptor,
for ever; a thousand of them exhaust the process. Here every request's headers must arrive
within `header_timeout` seconds of the connection opening (or of the previous response), or
the connection is answered 408 and closed; and a connection beyond `max_connections` is
answered 503 and closed at once. A request whose headers arrived is not timed by this: a long
search or upload is the application's business (its own limits apply).
"""

from __future__ import annotations

import asyncio

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

from photoseek.server.config import DEFAULT_HEADER_TIMEOUT_S, DEFAULT_MAX_CONNECTIONS

_TIMEOUT_RESPONSE = b"HTTP/1.1 408 Request Timeout\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
_BUSY_RESPONSE = b"HTTP/1.1 503 Service Unavailable\r\nretry-after: 1\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"


class LimitedH11Protocol(H11Protocol):
    """One connection; `limited()` makes the class uvicorn instantiates per connection."""

    header_timeout: float = DEFAULT_HEADER_TIMEOUT_S
    max_connections: int = DEFAULT_MAX_CONNECTIONS
    _header_timer: asyncio.TimerHandle | None = None

    @classmethod
    def limited(cls, header_timeout: float, max_connections: int) -> type[LimitedH11Protocol]:
        """The protocol class to pass to `uvicorn.Config(http=...)` for these limits."""
        return type(cls.__name__, (cls,), {"header_timeout": header_timeout, "max_connections": max_connections})

    # uvicorn declares BaseTransport; a TCP server's loop always hands a Transport, which this writes to.
    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        if len(self.connections) > self.max_connections:
            transport.write(_BUSY_RESPONSE)
            transport.close()
            return
        self._wait_for_headers()

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        if self.conn.their_state is not h11.IDLE:  # a request's headers are in: no longer timed
            self._stop_waiting()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if not self.transport.is_closing():
            self._wait_for_headers()  # the next request on this keep-alive connection

    def connection_lost(self, exc: Exception | None) -> None:
        self._stop_waiting()
        super().connection_lost(exc)

    def _wait_for_headers(self) -> None:
        self._stop_waiting()
        self._header_timer = self.loop.call_later(self.header_timeout, self._headers_too_slow)

    def _stop_waiting(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _headers_too_slow(self) -> None:
        self._header_timer = None
        if self.conn.their_state is h11.IDLE and not self.transport.is_closing():
            self.transport.write(_TIMEOUT_RESPONSE)
            self.transport.close()
