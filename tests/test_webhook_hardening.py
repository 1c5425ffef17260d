"""Attacks on the webhook before and around the signature check: CPU spent on a bogus signature, JSON nested
too deeply to parse, and chunked bodies past the size limit (against a real server on loopback)."""

from __future__ import annotations

import http.client
import json
import sys
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import select
from werkzeug.serving import make_server

import webhooks
from ntbcare.app import create_app
from ntbcare.core.models import Delivery
from ntbcare.pipeline.runtime import Runtime
from tests.conftest import APP_SECRET, RecordingDispatcher, make_settings, sign
from tests.test_webhook import stored

BOGUS = "sha256=" + "ab" * 32  # well formed, so every comparison is really made
SMALL_LIMIT = 2048


def reference_escaping(text: str) -> str:
    """Facebook's documented escaping, written out one character at a time (the definition, not the speed)."""
    out = []
    for char in text:
        code = ord(char)
        if code < 0x80:
            out.append(char)
        elif code < 0x10000:
            out.append(f"\\u{code:04x}")
        else:
            code -= 0x10000
            out.append(f"\\u{0xD800 + (code >> 10):04x}\\u{0xDC00 + (code & 0x3FF):04x}")
    return "".join(out)


def non_ascii_delivery(text_chars: int) -> tuple[bytes, bytes]:
    """A Messenger delivery with Indonesian text, accents, CJK and emoji: as Facebook sends it (unescaped) and
    as Facebook signs it (escaped, which is what ``json.dumps`` writes by default)."""
    unit = "Jalan rusak di Praya 🙏 ndéq bagus 中 \"kutip\" \\ garis\n"
    text = (unit * (text_chars // len(unit) + 1))[:text_chars]
    payload = {"object": "page", "entry": [{"id": "104000000000001", "time": 1767240000123, "messaging": [
        {"sender": {"id": "65"}, "recipient": {"id": "104000000000001"}, "timestamp": 1767240000001,
         "message": {"mid": "m_big", "text": text}}]}]}
    return json.dumps(payload, ensure_ascii=False).encode(), json.dumps(payload).encode()


# -- the escaped form: the same bytes as the definition, at C speed ---------------------------------------------


JSON_TEXT = st.text(alphabet=st.characters(blacklist_categories=("Cs",),
                                           blacklist_characters=[chr(c) for c in range(0x20) if c not in (9, 10, 13)]))


@settings(max_examples=400, deadline=None)
@given(st.lists(st.one_of(JSON_TEXT, st.sampled_from(['"', "\\", "\\u00e4", "\\\\u", "\x7f", "\n", "🙏"]))))
def test_escaped_form_is_exactly_facebooks_documented_escaping(parts: list[str]) -> None:
    text = "".join(parts)
    assert webhooks.facebook_escaped(text.encode()) == reference_escaping(text).encode()


def python_lines_run(call: Callable[[], Any]) -> int:
    """How many lines of Python ran during ``call`` (C code such as codecs and hashing runs none)."""
    lines = 0

    def tracer(frame: Any, event: str, arg: Any) -> Any:
        nonlocal lines
        lines += event == "line"
        return tracer

    sys.settrace(tracer)
    try:
        call()
    finally:
        sys.settrace(None)
    return lines


def test_a_bogus_signature_costs_no_python_work_per_character() -> None:
    """Attack: large non-ASCII bodies with a wrong signature. The escaped form used to be built by a Python loop
    over every character (~0.6 s of CPU per 4 MB); now the Python work is the same for 1 KB as for 64 KB."""
    (small, _), (large, _) = non_ascii_delivery(1_000), non_ascii_delivery(64_000)

    results: list[bool] = []

    def verify(body: bytes) -> Callable[[], None]:
        return lambda: results.append(webhooks.signature_matches((APP_SECRET, "previous"), body, BOGUS))

    assert python_lines_run(verify(large)) == python_lines_run(verify(small))
    assert results == [False, False]


def test_a_4_mb_non_ascii_body_with_a_bogus_signature_is_refused_and_not_stored(post, runtime) -> None:  # type: ignore[no-untyped-def]
    body, escaped = non_ascii_delivery(3_500_000)
    assert 4_000_000 < len(body) <= runtime.settings.webhook_max_body_bytes
    assert post.client.post("/webhook", data=body, headers={"X-Hub-Signature-256": BOGUS}).status_code == 403
    assert stored(runtime) == 0
    # The same body, signed as Facebook signs it (over the escaped form), still gets in.
    assert post.client.post("/webhook", data=body, headers={"X-Hub-Signature-256": sign(escaped)}).status_code == 200
    assert stored(runtime) == 1


def test_the_escaped_form_is_built_only_when_the_raw_bytes_do_not_match(post, runtime, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    built: list[int] = []
    real = webhooks.facebook_escaped
    monkeypatch.setattr(webhooks, "facebook_escaped", lambda body: built.append(len(body)) or real(body))
    body, escaped = non_ascii_delivery(500)

    def headers(signature: str) -> dict[str, str]:
        return {"X-Hub-Signature-256": signature}

    assert post.client.post("/webhook", data=body, headers=headers(sign(body))).status_code == 200
    assert built == []  # signed over the raw bytes: matched at once
    for malformed in ("sha256=" + "zz" * 32, "sha256=abc", "sha1=" + "ab" * 20, "sha256=" + "ab" * 33):
        assert post.client.post("/webhook", data=body, headers=headers(malformed)).status_code == 403
    assert built == []  # a header that cannot match anything costs nothing
    assert post.client.post("/webhook", data=body, headers=headers(sign(escaped))).status_code == 200
    assert built == [len(body)]
    assert stored(runtime) == 1  # both accepted; the identical body is stored once (replays are deduplicated)


# -- JSON nested too deeply to parse ----------------------------------------------------------------------------


@pytest.mark.parametrize("body", [
    b'{"object":"page","entry":' + b"[" * 200_000 + b"]" * 200_000 + b"}",
    b'{"object":"page","entry":[' + b'{"a":' * 100_000 + b"1" + b"}" * 100_000 + b"]}",
    b"[" * 500_000,
], ids=["arrays", "objects", "unclosed"])
def test_deeply_nested_json_is_400_and_not_stored(post, runtime, body) -> None:  # type: ignore[no-untyped-def]
    r = post.client.post("/webhook", data=body, headers={"X-Hub-Signature-256": sign(body)})
    assert r.status_code == 400 and r.data == b"body is not JSON"
    assert stored(runtime) == 0 and runtime.dispatcher.dispatched == []


# -- chunked bodies past the limit, on a real server ------------------------------------------------------------


class LoopbackServer:
    """The app under werkzeug's threaded server on a kernel-chosen loopback port; records each request's
    framing headers, so a test can show its body really came chunked and without a Content-Length."""

    def __init__(self, app: Callable[..., Any]) -> None:
        self.app = app
        self.framing: list[tuple[str | None, str | None]] = []  # (Transfer-Encoding, Content-Length)
        self.server = make_server("127.0.0.1", 0, self, threaded=True)
        self.port = self.server.server_port
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        self.framing.append((environ.get("HTTP_TRANSFER_ENCODING"), environ.get("CONTENT_LENGTH") or None))
        return self.app(environ, start_response)

    def post_chunked(self, body: bytes, headers: dict[str, str], piece: int = 1000) -> tuple[int, bytes]:
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        try:
            pieces = (body[i:i + piece] for i in range(0, len(body), piece))  # no length known: chunked
            connection.request("POST", "/webhook", body=pieces, headers=headers)
            response = connection.getresponse()
            return response.status, response.read()
        finally:
            connection.close()


@pytest.fixture
def server(database_url, db) -> Iterator[tuple[LoopbackServer, Runtime]]:  # type: ignore[no-untyped-def]
    settings_ = make_settings(DATABASE_URL=database_url, WEBHOOK_MAX_BODY_BYTES=str(SMALL_LIMIT))
    runtime = Runtime(settings=settings_, db=db, dispatcher=RecordingDispatcher())
    loopback = LoopbackServer(create_app(runtime=runtime))
    loopback.thread.start()
    try:
        yield loopback, runtime
    finally:
        loopback.server.shutdown()
        loopback.server.server_close()
        loopback.thread.join(timeout=5)


def padded_body(size: int) -> bytes:
    """A signed-looking delivery of exactly ``size`` bytes."""
    head = b'{"object":"page","entry":[],"pad":"'
    return head + b"x" * (size - len(head) - 2) + b'"}'


@pytest.mark.parametrize("size", [SMALL_LIMIT + 1, 4 * SMALL_LIMIT, 64 * SMALL_LIMIT])
def test_a_chunked_body_over_the_limit_is_413_and_not_stored(server, size) -> None:  # type: ignore[no-untyped-def]
    loopback, runtime = server
    body = padded_body(size)
    status, _ = loopback.post_chunked(body, {"X-Hub-Signature-256": sign(body), "Content-Type": "application/json"})
    assert loopback.framing == [("chunked", None)]  # the attack as described: chunked, no Content-Length
    assert status == 413
    assert stored(runtime) == 0 and runtime.dispatcher.dispatched == []


def test_a_chunked_body_up_to_the_limit_is_stored_whole(server) -> None:  # type: ignore[no-untyped-def]
    loopback, runtime = server
    for size in (SMALL_LIMIT, 300):
        body = padded_body(size)
        status, _ = loopback.post_chunked(body, {"X-Hub-Signature-256": sign(body)}, piece=333)
        assert status == 200
    assert loopback.framing == [("chunked", None)] * 2
    with runtime.db.session() as session:
        assert [len(b) for b in session.scalars(select(Delivery.body).order_by(Delivery.id))] == [SMALL_LIMIT, 300]
