"""gunicorn's threaded worker with an event-loop front: a request reaches a thread only once it is complete.

Stock gthread hands a connection to a thread as soon as its first byte arrives; the thread then blocks reading
headers and body. Eighty clients sending headers and one byte of body held every thread, so `/healthz` went
unanswered for as long as they stalled. Here the worker's own selector loop (the thread that already accepts
connections and watches kept-alive ones) reads each request without blocking into a buffer, headers and body
(Content-Length or chunked, up to the body limit), and submits it to the thread pool only when it is all there.
A stalled client costs a file descriptor and its buffered bytes, never a thread; one that has not finished its
request within ``REQUEST_READ_TIMEOUT`` seconds is answered 408 and closed.

A body larger than the limit is handed over as soon as the limit is passed, so the app answers 413 from what is
buffered; that connection is then closed instead of drained. Plain HTTP/1.x only: with TLS or HTTP/2 configured
the stock behaviour applies (`ntbcare serve` binds loopback behind a TLS-terminating proxy).
"""

from __future__ import annotations

import contextlib
import errno
import selectors
import time
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from gunicorn.workers.gthread import TConn, ThreadWorker

#: Whole request (headers and body) must arrive within this many seconds of its first byte being awaited.
REQUEST_READ_TIMEOUT = 15.0
#: Header block larger than this is handed to gunicorn's parser, which refuses it (431/400) from the buffer.
MAX_HEAD_BYTES = 64 * 1024
_RECV = 256 * 1024
_TIMEOUT_RESPONSE = (b"HTTP/1.1 408 Request Timeout\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
_CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"
_BAD = -1  # framing gunicorn's parser must judge (it answers 400): hand the request over as it is


@dataclass
class _Buffering:
    """A connection whose next request is still arriving."""

    conn: TConn
    deadline: float
    data: bytearray = field(default_factory=bytearray)
    continued: bool = False
    registered: bool = False


def _header_block(head: bytes) -> dict[bytes, list[bytes]]:
    fields: dict[bytes, list[bytes]] = {}
    for line in head.split(b"\r\n")[1:]:
        name, sep, value = line.partition(b":")
        if sep:
            fields.setdefault(name.strip().lower(), []).append(value.strip())
    return fields


def _chunked_end(data: bytearray, pos: int, limit: int) -> int | None:
    """Index just past a chunked body starting at ``pos``; None while incomplete; ``_BAD`` when malformed or past
    ``limit`` body bytes (the parser and the app answer those)."""
    size_total = 0
    while True:
        line_end = data.find(b"\r\n", pos)
        if line_end < 0:
            return None if len(data) - pos < 1024 else _BAD
        size_text = bytes(data[pos:line_end]).split(b";", 1)[0].strip()
        try:
            size = int(size_text, 16)
        except ValueError:
            return _BAD
        if size < 0:
            return _BAD
        if size == 0:
            if data[line_end + 2 : line_end + 4] == b"\r\n":
                return line_end + 4
            trailers_end = data.find(b"\r\n\r\n", line_end)
            return None if trailers_end < 0 else trailers_end + 4
        size_total += size
        if size_total > limit:
            return _BAD
        pos = line_end + 2 + size + 2
        if pos > len(data):
            return None


def request_end(data: bytearray, max_body: int) -> tuple[int | None, bool]:
    """Where the first request in ``data`` ends (None: incomplete; ``_BAD``: hand it over as it is) and whether
    its client waits for ``100 Continue`` before sending the body."""
    head_end = data.find(b"\r\n\r\n")
    if head_end < 0:
        return (None if len(data) <= MAX_HEAD_BYTES else _BAD), False
    fields = _header_block(bytes(data[:head_end]))
    body_start = head_end + 4
    expects = any(v.lower() == b"100-continue" for v in fields.get(b"expect", []))
    if b"transfer-encoding" in fields:
        if fields[b"transfer-encoding"][-1].lower().split(b",")[-1].strip() != b"chunked":
            return _BAD, False
        return _chunked_end(data, body_start, max_body), expects
    lengths = fields.get(b"content-length", [b"0"])
    if len(set(lengths)) != 1 or not lengths[0].isdigit():
        return _BAD, False
    length = int(lengths[0])
    if length > max_body:
        return _BAD, False  # the app answers 413 on the header alone
    end = body_start + length
    return (end if len(data) >= end else None), expects


class BufferingWorker(ThreadWorker):
    """gthread worker whose selector loop buffers each whole request before a thread sees it."""

    #: The app's body limit; set by :func:`ntbcare.server.serve_forever` before the workers fork.
    max_body_bytes = 4 * 1024 * 1024

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._buffering: dict[int, _Buffering] = {}

    def enqueue_req(self, conn: TConn) -> None:
        if getattr(conn, "ntb_ready", False) or not self._front_applies(conn):
            conn.ntb_ready = False
            super().enqueue_req(conn)
            return
        state = _Buffering(conn, time.monotonic() + REQUEST_READ_TIMEOUT)
        if conn.parser is not None:  # read-ahead of a pipelined request, left by the previous one
            state.data += conn.parser.unreader.take_buffered()
        conn.sock.setblocking(False)
        self._buffering[id(conn)] = state
        if state.data and self._progress(state):
            return
        # A kept-alive connection comes here because it turned readable: its request is usually all there.
        received = self._receive(state)
        if received is None or (received and self._progress(state)):
            return
        self.poller.register(conn.sock, selectors.EVENT_READ, partial(self._on_readable, state))
        state.registered = True

    def _front_applies(self, conn: TConn) -> bool:
        return not (self.cfg.is_ssl or conn.is_http2
                    or getattr(self.cfg, "http2_cleartext", None) in ("prior-knowledge", "both"))

    def _on_readable(self, state: _Buffering, _sock: Any) -> None:
        if self._receive(state):
            self._progress(state)

    def _receive(self, state: _Buffering) -> bool | None:
        """Read what has arrived: True if something did, False if nothing yet, None if the client went away
        (then the connection is dropped)."""
        try:
            chunk = state.conn.sock.recv(_RECV)
        except OSError as exc:
            if exc.errno in (errno.EAGAIN, errno.EWOULDBLOCK):
                return False
            chunk = b""
        if not chunk:
            self._drop(state)
            return None
        state.data += chunk
        return True

    def _progress(self, state: _Buffering) -> bool:
        """Hand the request to a thread if it is complete (True), else wait for more (False)."""
        end, expects = request_end(state.data, self.max_body_bytes)
        if end is None:
            if expects and not state.continued:
                state.continued = True
                self._send_quietly(state.conn, _CONTINUE)
            return False
        del self._buffering[id(state.conn)]
        conn = state.conn
        if state.registered:
            self.poller.unregister(conn.sock)
        conn.ntb_incomplete = end == _BAD  # parser or app refuses it; the rest of it is never drained
        conn.ntb_buffered = bytes(state.data)
        conn.ntb_ready = True
        self.enqueue_req(conn)
        return True

    def handle(self, conn: TConn) -> Any:
        buffered = getattr(conn, "ntb_buffered", b"")
        if buffered:
            conn.ntb_buffered = b""
            conn.sock.setblocking(True)
            conn.init()
            conn.parser.unreader.unread(buffered)
        return super().handle(conn)

    def _keepalive_after(self, conn: TConn, keepalive: bool) -> bool:
        if getattr(conn, "ntb_incomplete", False):
            return False  # close rather than drain what an over-limit or malformed request still sends
        result: bool = super()._keepalive_after(conn, keepalive)
        return result

    def murder_pending(self) -> None:
        super().murder_pending()
        now = time.monotonic()
        for state in [s for s in self._buffering.values() if s.deadline <= now]:
            self._send_quietly(state.conn, _TIMEOUT_RESPONSE)
            self._drop(state)

    def _drop(self, state: _Buffering) -> None:
        self._buffering.pop(id(state.conn), None)
        if state.registered:
            with contextlib.suppress(KeyError, ValueError, OSError):
                self.poller.unregister(state.conn.sock)
        self.nr_conns -= 1
        state.conn.close()

    @staticmethod
    def _send_quietly(conn: TConn, data: bytes) -> None:
        with contextlib.suppress(OSError):
            conn.sock.send(data)
