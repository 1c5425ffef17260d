"""Slow clients cannot stall `ntbcare serve`: 80 connections that send headers and one byte of body, and more that
never finish their headers, while /healthz and a genuine signed delivery are still answered at once."""

from __future__ import annotations

import os
import socket
import time

import pytest
import requests

from tests.conftest import BASE_ENV, fixture_bytes, sign
from tests.test_e2e_processes import Server, ntbcare, stop, wait_ready

pytestmark = pytest.mark.slow

STALLED_BODIES = 80
STALLED_HEADERS = 20


def _stall(port: int, head: bytes) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=5)
    sock.sendall(head)
    return sock


def _signed_post(base: str, body: bytes, *, chunked: bool = False) -> requests.Response:
    data = iter([body[:100], body[100:]]) if chunked else body  # requests sends a generator chunked
    return requests.post(base + "/webhook", data=data, timeout=10,
                         headers={"X-Hub-Signature-256": sign(body), "Content-Type": "application/json"})


def test_stalled_bodies_and_headers_leave_health_and_webhook_answering(tmp_path):
    env = {"PATH": os.environ["PATH"], "HOME": str(tmp_path), **BASE_ENV,
           "DATABASE_URL": f"sqlite:///{tmp_path / 'ntbcare.db'}"}
    assert ntbcare(env, tmp_path, "init").returncode == 0
    server = Server(["serve"], env, tmp_path)  # the defaults: one process x 64 threads on SQLite
    stalled: list[socket.socket] = []
    try:
        base = server.base_url()
        wait_ready(base, server.proc)
        assert server.port is not None
        body = fixture_bytes("feed__comment__add")
        for _ in range(STALLED_BODIES):  # headers and one byte of a signed-looking body, then nothing
            stalled.append(_stall(server.port, (
                f"POST /webhook HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                f"X-Hub-Signature-256: {sign(body)}\r\nContent-Length: {len(body)}\r\n\r\n").encode() + body[:1]))
        for _ in range(STALLED_HEADERS):  # a request line and half a header block
            stalled.append(_stall(server.port, b"POST /webhook HTTP/1.1\r\nHost: x\r\nContent-Len"))
        stalled.append(_stall(server.port, b"POST /webhook HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
                                           b"\r\n400\r\n{\"object\""))  # a chunk cut short
        time.sleep(0.5)  # every stalled request has reached the server

        started = time.monotonic()
        health = requests.get(base + "/healthz", timeout=10)
        assert health.status_code == 200
        assert time.monotonic() - started < 2.0

        started = time.monotonic()
        answer = _signed_post(base, body)
        assert answer.status_code == 200, answer.text
        assert time.monotonic() - started < 3.0
        assert answer.text.startswith("EVENT_RECEIVED ")

        chunked = _signed_post(base, body, chunked=True)
        assert chunked.status_code == 200  # the same body: stored once, answered with the same delivery
        assert chunked.text == answer.text

        too_large = _stall(server.port, (f"POST /webhook HTTP/1.1\r\nHost: x\r\nX-Hub-Signature-256: {sign(b'x')}"
                                         f"\r\nContent-Length: {64 * 1024 * 1024}\r\n\r\nxxxx").encode())
        too_large.settimeout(5)
        assert too_large.recv(200).startswith(b"HTTP/1.1 413")  # refused on the header, its body never awaited
        stalled.append(too_large)

        # Two requests sent back to back on one kept-alive connection are both answered, in order.
        pipelined = _stall(server.port, b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"
                                        b"GET /nowhere HTTP/1.1\r\nHost: x\r\n\r\n")
        stalled.append(pipelined)
        answers = b""
        while answers.count(b"HTTP/1.1 ") < 2:
            chunk = pipelined.recv(65536)
            assert chunk, answers
            answers += chunk
        assert answers.startswith(b"HTTP/1.1 200") and b"HTTP/1.1 404" in answers

        # A client that never finishes its request is answered 408 and closed, freeing its descriptor.
        stalled[0].settimeout(30)
        reply = stalled[0].recv(200)
        assert reply.startswith(b"HTTP/1.1 408")
        assert server.proc.poll() is None
    finally:
        for sock in stalled:
            sock.close()
        stop(server.proc)
