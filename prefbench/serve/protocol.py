"""A receive deadline for the server's connections: headers and body, not only the body.

uvicorn has no timeout for receiving a request: its keep-alive timer covers only the idle time
between requests and is cancelled by every byte that arrives, so a client that sends its headers
a byte a second holds a connection for ever, and a few hundred such clients use up
``--max-connections``. The ASGI app cannot help: it runs once the headers are complete.

:func:`deadline_protocol` subclasses uvicorn's HTTP protocol (httptools or h11, whichever
uvicorn would use) so that a request must arrive whole, headers and body, within ``deadline_s``
of its first byte (of the connection's opening, for its first request). Past it the client gets
``408`` with ``Connection: close`` when no answer to that request has started, and the connection
is closed either way. The deadline is disarmed once the request has arrived, so scoring time
(bounded by ``--timeout``) never counts against it, and armed again when the next request on a
kept-alive connection sends its first byte.
"""

from __future__ import annotations

import asyncio
import json
import logging

logger = logging.getLogger("uvicorn.error")


def _answer_408(deadline_s: float) -> bytes:
    body = json.dumps({"error": f"the request (headers and body) did not arrive within the server's "
                                f"{deadline_s:g} s"}).encode()
    return (b"HTTP/1.1 408 Request Timeout\r\ncontent-type: application/json\r\nconnection: close\r\n"
            b"content-length: " + str(len(body)).encode() + b"\r\n\r\n" + body)


class _ReceiveDeadline:
    """Mixin over a uvicorn HTTP protocol class (uses its ``transport``, ``cycle``, ``client``)."""

    receive_deadline_s: float = 60.0
    _rx_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport) -> None:
        super().connection_made(transport)
        self._arm()

    def data_received(self, data: bytes) -> None:
        if self._rx_timer is None and self._between_requests():
            self._arm()  # the first byte of the next request on a kept-alive connection
        super().data_received(data)
        if self._rx_timer is not None and self._request_arrived():
            self._rx_timer.cancel()
            self._rx_timer = None

    def connection_lost(self, exc) -> None:
        if self._rx_timer is not None:
            self._rx_timer.cancel()
            self._rx_timer = None
        super().connection_lost(exc)

    def _between_requests(self) -> bool:
        cycle = getattr(self, "cycle", None)
        return cycle is None or cycle.response_complete

    def _request_arrived(self) -> bool:
        cycle = getattr(self, "cycle", None)
        return cycle is not None and not cycle.response_complete and not cycle.more_body

    def _arm(self) -> None:
        loop = asyncio.get_running_loop()
        self._rx_timer = loop.call_later(self.receive_deadline_s, self._expired)

    def _expired(self) -> None:
        self._rx_timer = None
        transport = self.transport
        if transport.is_closing():
            return
        cycle = getattr(self, "cycle", None)
        answered = cycle is not None and not cycle.response_complete and cycle.response_started
        if not answered:
            transport.write(_answer_408(self.receive_deadline_s))
        if cycle is not None and not cycle.response_complete:
            cycle.disconnected = True  # the app's next receive() says so; its answer goes nowhere
            cycle.message_event.set()
        client = getattr(self, "client", None)
        where = f"{client[0]}:{client[1]} - " if client else ""
        logger.warning("%srequest not received whole within %g s; connection closed", where,
                       self.receive_deadline_s)
        transport.close()


def base_protocol(http: str = "auto") -> type:
    """uvicorn's HTTP protocol class for ``http`` (``auto``: httptools when installed, else h11)."""
    from uvicorn.config import HTTP_PROTOCOLS
    from uvicorn.importer import import_from_string

    return import_from_string(HTTP_PROTOCOLS[http])


def deadline_protocol(deadline_s: float, http: str = "auto") -> type:
    """A subclass of uvicorn's protocol for ``http`` whose requests must arrive whole within
    ``deadline_s`` seconds; pass it as ``uvicorn.Config(http=...)``."""
    base = base_protocol(http)
    return type(f"Deadline{base.__name__}", (_ReceiveDeadline, base), {"receive_deadline_s": float(deadline_s)})
