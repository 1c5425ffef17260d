"""The server's front as `ntbcare serve` runs it (uvicorn's loop, the bounded httptools protocol, the Front), in
this process on a loopback port: the webhook answered on the loop with the same statuses as through Flask, the
body's and head's bounds, and the Flask app reached with its query, form fields and headers intact."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests
import uvicorn
from sqlalchemy import func, select

from ntbcare.app import create_app
from ntbcare.core.db import Database
from ntbcare.core.migrate import upgrade
from ntbcare.core.models import Delivery
from ntbcare.pipeline.runtime import Runtime
from ntbcare.server_front import Front
from ntbcare.server_protocol import MAX_HEAD_BYTES, BoundedHttpToolsProtocol
from ntbcare.server_wsgi import wsgi_environ
from tests.conftest import RecordingDispatcher, fixture_bytes, make_settings, sign

LIMIT = 64 * 1024


@dataclass
class Served:
    base: str
    port: int
    runtime: Runtime

    def stored(self) -> int:
        with self.runtime.db.session() as session:
            return session.scalar(select(func.count()).select_from(Delivery)) or 0


def serve(runtime: Runtime) -> Iterator[Served]:
    front = Front(create_app(runtime=runtime), runtime, threads=4, max_body_bytes=LIMIT)
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    config = uvicorn.Config(front, loop="uvloop", http=BoundedHttpToolsProtocol, lifespan="on", log_level="warning",
                            proxy_headers=False, server_header=False)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.02)
    port = sock.getsockname()[1]
    try:
        yield Served(f"http://127.0.0.1:{port}", port, runtime)
    finally:
        server.should_exit = True
        thread.join(10)


@pytest.fixture
def served(database_url: str, db: Database) -> Iterator[Served]:
    settings = make_settings(DATABASE_URL=database_url, WEBHOOK_MAX_BODY_BYTES=str(LIMIT))
    yield from serve(Runtime(settings=settings, db=db, dispatcher=RecordingDispatcher()))


def signed(body: bytes, **headers: str) -> dict[str, str]:
    return {"X-Hub-Signature-256": sign(body), "Content-Type": "application/json", **headers}


def test_the_webhook_on_the_loop_answers_as_through_flask(served: Served) -> None:
    body = fixture_bytes("feed__comment__add")
    assert requests.post(served.base + "/webhook", data=body).status_code == 401
    assert requests.post(served.base + "/webhook", data=body, headers=signed(b"other")).status_code == 403
    assert requests.post(served.base + "/webhook", data=b"[1]", headers=signed(b"[1]")).status_code == 400
    assert served.stored() == 0
    answer = requests.post(served.base + "/webhook", data=body, headers=signed(body))
    assert answer.status_code == 200 and answer.text.startswith("EVENT_RECEIVED ")
    assert answer.headers["X-Content-Type-Options"] == "nosniff" and answer.headers["Cache-Control"] == "no-store"
    assert served.stored() == 1 and served.runtime.dispatcher.dispatched  # committed, then handed on
    chunked = requests.post(served.base + "/webhook", data=iter([body[:50], body[50:]]), headers=signed(body))
    assert chunked.text == answer.text  # the same body, chunked: stored once


def test_a_body_over_the_limit_is_413_whether_declared_or_chunked(served: Served) -> None:
    big = b'{"object": "page", "x": "' + b"a" * LIMIT + b'"}'
    assert requests.post(served.base + "/webhook", data=big, headers=signed(big)).status_code == 413
    pieces = iter([big[i:i + 4096] for i in range(0, len(big), 4096)])
    assert requests.post(served.base + "/webhook", data=pieces, headers=signed(big)).status_code == 413
    assert served.stored() == 0


def test_a_head_over_64_kb_is_431_and_closed(served: Served) -> None:
    with socket.create_connection(("127.0.0.1", served.port), timeout=5) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Filler: " + b"a" * (MAX_HEAD_BYTES + 10))
        assert sock.recv(100).startswith(b"HTTP/1.1 431")
        assert sock.recv(100) == b""  # closed


def test_the_flask_app_gets_its_query_form_and_headers(served: Served) -> None:
    assert requests.get(served.base + "/healthz").json() == {"status": "ok"}
    assert requests.get(served.base + "/transparansi", params={"bulan": "2026-13"}).status_code == 400
    login = requests.post(served.base + "/ops/login", data={"username": "ani", "password": "salah-sekali-1"})
    assert login.status_code == 400  # the form reached Flask: refused for its missing CSRF token
    missing = requests.get(served.base + "/ops/tickets/NTB-2026-999999", allow_redirects=False)
    assert missing.status_code == 303 and missing.headers["Location"].endswith("/ops/login")


def test_a_locked_database_is_503_with_retry_after_on_the_loop_too(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'locked.db'}"
    db = Database(url, busy_timeout_ms=30_000)
    upgrade(db.engine)
    settings = make_settings(DATABASE_URL=url, WEBHOOK_COMMIT_TIMEOUT="0.3")
    blocker = Database(url).engine.raw_connection()
    blocker.execute("BEGIN EXCLUSIVE")
    body = fixture_bytes("feed__comment__add")
    for served in serve(Runtime(settings=settings, db=db, dispatcher=RecordingDispatcher())):
        try:
            started = time.monotonic()
            answer = requests.post(served.base + "/webhook", data=body, headers=signed(body), timeout=10)
            assert answer.status_code == 503 and int(answer.headers["Retry-After"]) > 0
            assert time.monotonic() - started < 5
            assert requests.get(served.base + "/healthz", timeout=5).status_code == 200  # the loop is free
        finally:
            blocker.rollback()
            blocker.close()


def test_the_environ_follows_pep_3333() -> None:
    scope = {"type": "http", "method": "GET", "path": "/transparansi/Dinas Ñ", "query_string": b"a=1&b=%20",
             "headers": [(b"accept", b"text/html"), (b"accept", b"application/json"), (b"content-type", b"a/b"),
                         (b"content-length", b"999")],
             "client": ("10.1.2.3", 5555), "server": ("127.0.0.1", 8000), "scheme": "http", "http_version": "1.1"}
    environ = wsgi_environ(scope, b"xyz")
    assert environ["PATH_INFO"] == "/transparansi/Dinas Ñ".encode().decode("latin-1")
    assert environ["QUERY_STRING"] == "a=1&b=%20" and environ["HTTP_ACCEPT"] == "text/html,application/json"
    assert environ["CONTENT_TYPE"] == "a/b" and environ["CONTENT_LENGTH"] == "3"
    assert environ["REMOTE_ADDR"] == "10.1.2.3" and environ["wsgi.input"].read() == b"xyz"
