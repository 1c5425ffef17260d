"""Test servers on loopback that bind port 0 themselves and report the port the kernel chose, so no test ever
binds a port it only guessed was free (another process may have taken it in between).

``serve_wsgi`` runs a WSGI app (the Graph API stand-in, the NTB Care app) in a thread; ``wsgi_server`` binds
first and mounts the app later, for an app whose settings need its own URL. ``smtp_server`` runs aiosmtpd with a
``RecordingHandler``; ``reserved_port`` holds a port where connections are refused until a server is started on
that very socket. ``eventually`` waits for an outcome with a bound instead of sleeping.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from aiosmtpd.controller import Controller
from werkzeug.serving import make_server
from werkzeug.wrappers import Response

WSGIApp = Callable[..., Any]
LOOPBACK = "127.0.0.1"


class WsgiServer:
    """A threaded werkzeug server on a kernel-chosen loopback port; the app can be mounted after binding."""

    def __init__(self, app: WSGIApp | None = None) -> None:
        self._app = app
        self.server = make_server(LOOPBACK, 0, self, threaded=True)
        self.port: int = self.server.server_port
        self.url = f"http://{LOOPBACK}:{self.port}"
        self._thread = threading.Thread(target=self.server.serve_forever, name="wsgi-test-server", daemon=True)

    def mount(self, app: WSGIApp) -> None:
        self._app = app

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        if self._app is None:
            return Response("not mounted yet", status=503)(environ, start_response)
        return self._app(environ, start_response)

    def start(self) -> WsgiServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self._thread.join(timeout=5)


@contextmanager
def wsgi_server(app: WSGIApp | None = None) -> Iterator[WsgiServer]:
    """A running server; ``mount`` the app once it can be built (e.g. with ``PUBLIC_BASE_URL=server.url``)."""
    server = WsgiServer(app).start()
    try:
        yield server
    finally:
        server.stop()


@contextmanager
def serve_wsgi(app: WSGIApp) -> Iterator[str]:
    """Serve ``app`` on loopback and yield its base URL; stopped on exit."""
    with wsgi_server(app) as server:
        yield server.url


class RecordingHandler:
    """An aiosmtpd handler that keeps what it accepted; ``rcpt_reply``/``data_reply`` script refusals."""

    def __init__(self, data_reply: str = "250 OK", rcpt_reply: str | None = None) -> None:
        self.data_reply, self.rcpt_reply = data_reply, rcpt_reply
        self.received: list[tuple[list[str], bytes]] = []
        self.senders: list[str] = []  # each accepted message's envelope sender (MAIL FROM), in order

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):  # type: ignore[no-untyped-def]
        if self.rcpt_reply:
            return self.rcpt_reply
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):  # type: ignore[no-untyped-def]
        if self.data_reply.startswith("250"):
            self.received.append((list(envelope.rcpt_tos), envelope.content))
            self.senders.append(envelope.mail_from)
        return self.data_reply


class _LoopbackController(Controller):
    """aiosmtpd's Controller on port 0 (or on a socket handed to it), reporting the port it really got."""

    def __init__(self, handler: Any, *, port: int = 0, sock: socket.socket | None = None, **kwargs: Any) -> None:
        super().__init__(handler, hostname=LOOPBACK, port=sock.getsockname()[1] if sock else port, **kwargs)
        self._sock = sock

    def _create_server(self) -> Any:
        if self._sock is None:
            return super()._create_server()
        return self.loop.create_server(self._factory_invoker, sock=self._sock, ssl=self.ssl_context)

    def _trigger_server(self) -> None:
        # Runs once the server is bound: read the port before aiosmtpd connects to it.
        assert self.server is not None
        self.port = self.server.sockets[0].getsockname()[1]
        super()._trigger_server()


@contextmanager
def smtp_server(handler: RecordingHandler, port: int | None = None, *, sock: socket.socket | None = None,
                **kwargs: Any) -> Iterator[int]:
    """An SMTP server on loopback; yields its port. It binds port 0, listens on ``sock`` when given (see
    ``reserved_port``), or binds ``port`` for callers that still pass one."""
    controller = _LoopbackController(handler, port=port or 0, sock=sock, server_hostname="smtp.test", **kwargs)
    controller.start()
    try:
        yield controller.port
    finally:
        controller.stop()


@contextmanager
def reserved_port() -> Iterator[socket.socket]:
    """A loopback socket bound to a kernel-chosen port but not listening: connecting is refused (a server that
    is down) until ``smtp_server(handler, sock=...)`` starts listening on that very socket."""
    sock = socket.socket()
    try:
        sock.bind((LOOPBACK, 0))
        yield sock
    finally:
        sock.close()


def free_port() -> int:
    """A port that was free a moment ago. Racy by nature (anyone may bind it next): kept for callers that must
    hand a port number to another process; servers in this file bind port 0 themselves instead."""
    with socket.socket() as probe:
        probe.bind((LOOPBACK, 0))
        return int(probe.getsockname()[1])


def eventually(check: Callable[[], Any], *, timeout: float = 30.0, interval: float = 0.05,
               what: str = "the expected outcome") -> Any:
    """Poll ``check`` until it returns something truthy, and return that; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(interval)
