"""gunicorn's worker for the front: uvicorn's event loop (uvloop) and C parser (httptools), with the two bounds
httptools lacks on a request's head.

A connection must send a whole request head (request line and headers) within ``REQUEST_READ_TIMEOUT`` seconds
of connecting or of its previous response, and in at most ``MAX_HEAD_BYTES``; otherwise it is answered 408 or
431 and closed. The body's bounds are the front's (:mod:`ntbcare.server_front`).
"""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
from uvicorn_worker import UvicornWorker

from ntbcare.server_front import REQUEST_READ_TIMEOUT

#: A request head larger than this is refused (431); Facebook's are under 2 KB.
MAX_HEAD_BYTES = 64 * 1024


def _refusal(status: bytes) -> bytes:
    return b"HTTP/1.1 " + status + b"\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"


class BoundedHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol, with a deadline and a size limit on every request head."""

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        self._head_bytes = 0
        self._heads = 0  # request heads completed on this connection
        self._in_head = True
        self._head_timer: asyncio.TimerHandle | None = None
        super().connection_made(transport)
        self._arm()

    def data_received(self, data: bytes) -> None:
        if self._in_head and self._head_timer is None:
            self._arm()
        heads_before = self._heads
        super().data_received(data)
        # Counted only while one head stays unfinished across these bytes (they held no end of a head).
        if self._in_head and self._heads == heads_before and not self.transport.is_closing():
            self._head_bytes += len(data)
            if self._head_bytes > MAX_HEAD_BYTES:
                self._refuse(b"431 Request Header Fields Too Large")

    def on_headers_complete(self) -> None:
        self._in_head, self._head_bytes = False, 0
        self._heads += 1
        self._disarm()
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        super().on_message_complete()
        self._in_head = True  # what comes next on this connection is the next request's head

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if self._in_head:
            self._arm()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def _arm(self) -> None:
        self._disarm()
        self._head_timer = self.loop.call_later(REQUEST_READ_TIMEOUT, self._head_timed_out)

    def _disarm(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _head_timed_out(self) -> None:
        self._head_timer = None
        if self._in_head and not self.transport.is_closing():
            self._refuse(b"408 Request Timeout")

    def _refuse(self, status: bytes) -> None:
        self._disarm()
        if not self.transport.is_closing():
            self.transport.write(_refusal(status))
            self.transport.close()


class FrontWorker(UvicornWorker):
    """The gunicorn worker of ``ntbcare serve``: one event loop per process running :class:`Front`."""

    CONFIG_KWARGS: dict[str, Any] = {
        "loop": "uvloop",
        "http": BoundedHttpToolsProtocol,
        "lifespan": "on",
        "proxy_headers": False,  # the app decides whom to believe about the client (a proxy on loopback)
        "server_header": False,
        "ws": "none",
    }
