"""uvicorn's HTTP/1.1 protocol (h11) with deadlines for request headers and bodies and a cap on connections.

uvicorn has none of them: its keep-alive timer is cancelled by any byte received, so a client that
sends one header byte now and then (slow-loris), or fast headers and then one body byte now and
then (slow POST), holds its connection, a file descriptor and the request's handler for ever; a
thousand of them exhaust the process. Here every request's headers must arrive within
`header_timeout` seconds of the connection opening (or of the previous response), and its body
(an upload, a JSON query) in full within `body_timeout` seconds of its headers (not counting the time
the server stopped reading it: a handler waiting for an upload slot is our delay), or the connection
is answered 408 (just closed, if the response has begun) and the handler sees the client gone;
a connection beyond `max_connections` is answered 503 and closed at once. The time a request
takes once its body is in (a long search) is the application's business (its own limits apply).
"""

from __future__ import annotations

import asyncio

import h11
from uvicorn.protocols.http.flow_control import FlowControl
from uvicorn.protocols.http.h11_impl import H11Protocol

from photoseek.server.config import DEFAULT_BODY_TIMEOUT_S, DEFAULT_HEADER_TIMEOUT_S, DEFAULT_MAX_CONNECTIONS

_TIMEOUT_RESPONSE = b"HTTP/1.1 408 Request Timeout\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
_BUSY_RESPONSE = b"HTTP/1.1 503 Service Unavailable\r\nretry-after: 1\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
LINGER_S = 2.0
"""After a 408 the connection reads and drops what the client still sends for this long (or until it
closes) before closing: closing with unread input makes the kernel reset the connection, which can
destroy the 408 before the client reads it."""


class _TellingFlow(FlowControl):
    """uvicorn's flow control, telling the protocol when it stops and resumes reading the client."""

    def __init__(self, transport: asyncio.Transport, protocol: LimitedH11Protocol) -> None:
        super().__init__(transport)
        self._protocol = protocol

    def pause_reading(self) -> None:
        if not self.read_paused:
            super().pause_reading()
            self._protocol.reading_paused()

    def resume_reading(self) -> None:
        if self.read_paused:
            super().resume_reading()
            self._protocol.reading_resumed()


class LimitedH11Protocol(H11Protocol):
    """One connection; `limited()` makes the class uvicorn instantiates per connection."""

    header_timeout: float = DEFAULT_HEADER_TIMEOUT_S
    body_timeout: float = DEFAULT_BODY_TIMEOUT_S
    max_connections: int = DEFAULT_MAX_CONNECTIONS
    _header_timer: asyncio.TimerHandle | None = None
    _body_timer: asyncio.TimerHandle | None = None
    _body_deadline: float | None = None
    _paused_at: float | None = None
    _linger_timer: asyncio.TimerHandle | None = None

    @classmethod
    def limited(
        cls, header_timeout: float, max_connections: int, body_timeout: float = DEFAULT_BODY_TIMEOUT_S
    ) -> type[LimitedH11Protocol]:
        """The protocol class to pass to `uvicorn.Config(http=...)` for these limits."""
        limits = {"header_timeout": header_timeout, "body_timeout": body_timeout, "max_connections": max_connections}
        return type(cls.__name__, (cls,), limits)

    # uvicorn declares BaseTransport; a TCP server's loop always hands a Transport, which this writes to.
    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self.flow = _TellingFlow(transport, self)
        if len(self.connections) > self.max_connections:
            transport.write(_BUSY_RESPONSE)
            transport.close()
            return
        self._wait_for_headers()

    def data_received(self, data: bytes) -> None:
        if self._linger_timer is not None:
            return  # answered 408: the rest of the request is dropped
        super().data_received(data)
        if self.conn.their_state is not h11.IDLE:  # a request's headers are in: no longer timed
            self._stop_waiting()
        self._time_body()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if not self.transport.is_closing():
            self._wait_for_headers()  # the next request on this keep-alive connection
            self._time_body()  # a pipelined one may already be sending its body

    def connection_lost(self, exc: Exception | None) -> None:
        self._stop_waiting()
        self._stop_body_timer()
        if self._linger_timer is not None:
            self._linger_timer.cancel()
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
            self._time_out()

    def _time_body(self) -> None:
        """Start the body's deadline when a request's headers are in and its body is not (yet); stop
        it once the body is complete. Still timed after a response that did not wait for the body
        (a 413): uvicorn keeps reading the rest of it before the next request."""
        if self.conn.their_state is not h11.SEND_BODY:
            self._stop_body_timer()
        elif self._body_deadline is None:
            self._body_deadline = self.loop.time() + self.body_timeout
            if not self.flow.read_paused:
                self._body_timer = self.loop.call_at(self._body_deadline, self._body_too_slow)

    def reading_paused(self) -> None:
        """The server stopped reading (a buffer is full and the handler has not asked for it): the
        body's clock stops too."""
        self._paused_at = self.loop.time()
        if self._body_timer is not None:
            self._body_timer.cancel()
            self._body_timer = None

    def reading_resumed(self) -> None:
        """Reading again: the body's deadline moves on by the time it was paused."""
        if self._paused_at is not None and self._body_deadline is not None:
            self._body_deadline += self.loop.time() - self._paused_at
            self._body_timer = self.loop.call_at(self._body_deadline, self._body_too_slow)
        self._paused_at = None

    def _stop_body_timer(self) -> None:
        self._body_deadline = None
        if self._body_timer is not None:
            self._body_timer.cancel()
            self._body_timer = None

    def _body_too_slow(self) -> None:
        self._body_timer = None
        self._body_deadline = None
        if self.conn.their_state is not h11.SEND_BODY or self.transport.is_closing():
            return
        cycle = self.cycle
        if cycle is not None and not cycle.response_complete:
            cycle.disconnected = True  # the handler's next `receive` says the client is gone; its answer is dropped
            cycle.message_event.set()
        if cycle is not None and cycle.response_started:
            self.transport.close()  # too late for a 408
        else:
            self._time_out()

    def _time_out(self) -> None:
        """Answer 408, end our side of the connection and close it once the client has had time to read it."""
        self.transport.write(_TIMEOUT_RESPONSE)
        if not self.transport.can_write_eof():  # TLS: no half-close
            self.transport.close()
            return
        self.transport.write_eof()
        self._linger_timer = self.loop.call_later(LINGER_S, self.transport.close)
