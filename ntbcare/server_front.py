"""The server's front: an ASGI app on uvicorn's event loop that reads every request whole before anything else.

A request costs no thread while it arrives: its body is read on the loop, up to ``WEBHOOK_MAX_BODY_BYTES`` (a
larger Content-Length is answered 413 at once, a chunked body as soon as it passes the limit) and within
``REQUEST_READ_TIMEOUT`` seconds (408), so slow or stalled clients cost a descriptor, never a worker.

Then ``POST /webhook``, the hot path, is answered on the loop itself (:func:`webhooks.receive_stored`: verify,
hand the body to the group-committing writer, await its commit). Every other request goes to the Flask app in a
thread pool with its body in hand (:mod:`ntbcare.server_wsgi`).
"""

from __future__ import annotations

import asyncio
import logging
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

from ntbcare.server_wsgi import Response, WSGIApp, call_wsgi, wsgi_environ
from ntbcare.web.security import SECURITY_HEADERS
from webhooks import SIGNATURE_HEADER, receive_stored

if TYPE_CHECKING:
    from ntbcare.pipeline.runtime import Runtime

log = logging.getLogger(__name__)

#: Seconds a request may take to arrive whole (headers and body) before it is answered 408 and closed.
REQUEST_READ_TIMEOUT = 15.0
_SIGNATURE = SIGNATURE_HEADER.lower().encode("latin-1")
_PLAIN = [(b"content-type", b"text/plain; charset=utf-8"),
          *((name.lower().encode(), value.encode()) for name, value in SECURITY_HEADERS.items())]

Scope = dict[str, Any]
Receive = Any
Send = Any


class TooLarge(Exception):
    """The body passed the limit."""


class Disconnected(Exception):
    """The client went away before its request was whole."""


def plain(status: int, text: str, extra: tuple[tuple[str, str], ...] = ()) -> Response:
    """A short text answer with the app's security headers."""
    headers = [*_PLAIN, *((name.lower().encode(), value.encode()) for name, value in extra)]
    return status, headers, text.encode()


class Front:
    """The ASGI app ``ntbcare serve`` runs: the webhook on the loop, the rest of the app in ``threads`` threads."""

    def __init__(self, app: WSGIApp, runtime: Runtime, *, threads: int, max_body_bytes: int,
                 read_timeout: float = REQUEST_READ_TIMEOUT) -> None:
        self.app, self.runtime = app, runtime
        self.max_body_bytes, self.read_timeout = max_body_bytes, read_timeout
        self.pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="ntbcare-web")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        if scope["type"] != "http":
            return  # no websockets here
        declared = _content_length(scope)
        if declared is not None and declared > self.max_body_bytes:
            await _send(send, plain(413, f"body larger than {self.max_body_bytes} bytes"), close=True)
            return
        try:
            body = await asyncio.wait_for(self._read_body(receive), self.read_timeout)
        except TimeoutError:
            await _send(send, plain(408, "request not received in time"), close=True)
            return
        except TooLarge:
            await _send(send, plain(413, f"body larger than {self.max_body_bytes} bytes"), close=True)
            return
        except Disconnected:
            return
        await _send(send, await self._answer(scope, body))

    async def _answer(self, scope: Scope, body: bytes) -> Response:
        if scope["method"] == "POST" and scope["path"] == "/webhook":
            answer = await receive_stored(self.runtime, _header(scope, _SIGNATURE), body)
            return plain(answer.status, answer.text, answer.headers)
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(self.pool, call_wsgi, self.app, wsgi_environ(scope, body))
        except Exception:  # Flask answers its own errors; this is the app failing outside them
            log.exception("the app failed on %s %s", scope["method"], scope["path"])
            return plain(500, "internal error")

    async def _read_body(self, receive: Receive) -> bytes:
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                raise Disconnected
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body_bytes:
                raise TooLarge
            chunks.append(chunk)
            if not message.get("more_body", False):
                return b"".join(chunks)

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                # The server has waited for the requests in flight; the threads finish what they hold.
                await asyncio.get_running_loop().run_in_executor(None, self.pool.shutdown)
                await send({"type": "lifespan.shutdown.complete"})
                return


def _header(scope: Scope, name: bytes) -> str:
    for key, value in scope.get("headers", []):
        if key == name:
            return str(value.decode("latin-1"))
    return ""


def _content_length(scope: Scope) -> int | None:
    value = _header(scope, b"content-length")
    return int(value) if value.isdigit() else None


async def _send(send: Send, response: Response, *, close: bool = False) -> None:
    status, headers, body = response
    if not any(name == b"content-length" for name, _ in headers):
        headers = [*headers, (b"content-length", str(len(body)).encode())]
    if close:  # the rest of what the client sends is not read: the connection cannot be reused
        headers = [*headers, (b"connection", b"close")]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
