"""The Facebook webhook: verify, store durably, acknowledge. Nothing slow happens here.

GET  /webhook  answers the subscription handshake.
POST /webhook  checks the size (413, chunked bodies too), X-Hub-Signature-256 over the raw bytes (401 missing,
               403 wrong) and that the body is a JSON object (400, also when nested too deeply to parse);
               commits the delivery and only then answers 200. If the database does not take it within
               WEBHOOK_COMMIT_TIMEOUT, 503 so that Facebook redelivers.

Everything before the signature check is work anyone can make us do, so it stays linear and runs at C speed.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import re
from dataclasses import dataclass
from json.encoder import encode_basestring_ascii
from typing import TYPE_CHECKING

from flask import Blueprint, Response, current_app, request
from werkzeug.exceptions import RequestEntityTooLarge

from ntbcare.core.inbox import StoreFailed
from ntbcare.core.metrics import delivery_received
from ntbcare.core.settings import Settings

if TYPE_CHECKING:  # the runtime is built by the app factory, above this module
    from ntbcare.pipeline.runtime import Runtime

log = logging.getLogger(__name__)

bp = Blueprint("webhooks", __name__)

SIGNATURE_HEADER = "X-Hub-Signature-256"
# Raw control characters other than whitespace are not JSON: Facebook never signs a body containing one.
_NOT_IN_JSON = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f]")
# ASCII characters the JSON encoder escapes but Facebook leaves as they are (besides quote and backslash).
_KEPT_AS_IS = (("\n", b"\\n"), ("\r", b"\\r"), ("\t", b"\\t"), ("\x7f", b"\\u007f"))
SIGNATURE_FORMAT = re.compile(r"sha256=[0-9a-f]{64}")


def signature_for(secret: str, body: bytes) -> str:
    """The header value Facebook sends for ``body``: ``sha256=`` and the lowercase hex HMAC."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def facebook_escaped(body: bytes) -> bytes | None:
    """The form Facebook signs a non-ASCII body in: each non-ASCII character as lowercase ``\\uXXXX`` (astral
    ones as a surrogate pair), ASCII left as it is; None for a body that cannot be such a JSON text.

    Built at C speed, because anyone can make us build it by sending a bogus signature: Python's JSON encoder
    escapes non-ASCII characters exactly so, and the few ASCII characters it escapes too are put back with
    whole-string replaces (bench/webhook_signature.py compares it with a character-by-character loop).
    """
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        return None
    if _NOT_IN_JSON.search(text):
        return None
    escaped = encode_basestring_ascii(text)[1:-1].encode("ascii")
    # Each backslash now starts an escape. Escaped backslashes wait on NUL (absent from the text, see above),
    # so no replace below can begin in the middle of one.
    escaped = escaped.replace(b"\\\\", b"\0").replace(b'\\"', b'"')
    for char, escape in _KEPT_AS_IS:
        if char in text:
            escaped = escaped.replace(escape, char.encode("ascii"))
    return escaped.replace(b"\0", b"\\")


def _matches_any(secrets: tuple[str, ...], body: bytes, expected: bytes) -> bool:
    matched = False
    for secret in secrets:
        matched |= hmac.compare_digest(signature_for(secret, body).encode(), expected)
    return matched


def signature_matches(secrets: tuple[str, ...], body: bytes, header: str) -> bool:
    """Constant-time check against every valid secret (two during a rotation), on the raw bytes first and on
    Facebook's escaped form only when those do not match. ``header`` is expected lowercase."""
    if not SIGNATURE_FORMAT.fullmatch(header):
        return False  # cannot match anything: spend nothing on it
    expected = header.encode("ascii")
    if _matches_any(secrets, body, expected):
        return True
    if body.isascii():
        return False
    escaped = facebook_escaped(body)
    return escaped is not None and _matches_any(secrets, escaped, expected)


def read_body(limit: int) -> bytes:
    """The raw body, refused with 413 past ``limit`` bytes, also when it comes chunked.

    Werkzeug refuses a too-large Content-Length, but silently cuts a chunked body (no Content-Length) at the
    limit, which then fails the signature: Facebook would be told "forged" instead of "too large". A chunked
    body is read here up to one byte past the limit, never further.
    """
    environ = request.environ
    if request.content_length is not None or not environ.get("wsgi.input_terminated"):
        return request.get_data(cache=False)  # raises 413 past MAX_CONTENT_LENGTH
    stream, chunks, size = environ["wsgi.input"], [], 0
    while size <= limit:
        chunk = stream.read(min(64 * 1024, limit + 1 - size))
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
    if size > limit:
        raise RequestEntityTooLarge(f"body larger than {limit} bytes")
    return b"".join(chunks)


def _runtime() -> Runtime:
    runtime: Runtime = current_app.extensions["ntbcare"]
    return runtime


@bp.get("/webhook")
def verify_subscription() -> Response:
    settings = _runtime().settings
    mode = request.args.get("hub.mode", "")
    token = request.args.get("hub.verify_token", "")
    challenge = request.args.get("hub.challenge", "")
    if mode == "subscribe" and challenge and hmac.compare_digest(token.encode(), settings.fb_verify_token.encode()):
        return Response(challenge, status=200, mimetype="text/plain")
    log.warning("webhook verification refused (mode=%r)", mode)
    return Response("verification failed", status=403, mimetype="text/plain")


@dataclass(frozen=True)
class Answer:
    """What the webhook answers Facebook: a status, a line of text and any extra header."""

    status: int
    text: str
    headers: tuple[tuple[str, str], ...] = ()


MISSING_SIGNATURE = Answer(401, "missing signature")


def refusal(settings: Settings, header: str, body: bytes) -> Answer | None:
    """Why this body may not be stored (bad signature 403, not a JSON object 400), or None: store it.

    Shared by both ways in (:func:`receive_delivery` under Flask, :func:`receive_stored` on the server's event
    loop), so they answer alike.
    """
    if not signature_matches(settings.app_secrets, body, header.strip().lower()):
        log.warning("webhook POST with a bad signature (%d bytes)", len(body))
        return Answer(403, "bad signature")
    try:
        payload = json.loads(body)
    except (ValueError, UnicodeDecodeError, RecursionError):  # RecursionError: nested too deeply to parse
        return Answer(400, "body is not JSON")
    if not isinstance(payload, dict):
        return Answer(400, "body is not a JSON object")
    return None


def _stored(delivery_id: int) -> Answer:
    delivery_received()
    return Answer(200, f"EVENT_RECEIVED {delivery_id}")


def _not_stored(exc: StoreFailed) -> Answer:
    log.error("webhook delivery not stored, answering 503 so Facebook retries: %s", exc)
    return Answer(503, "temporarily unavailable", (("Retry-After", "5"),))


async def receive_stored(runtime: Runtime, header: str, body: bytes) -> Answer:
    """``POST /webhook`` on the event loop: checked there, committed by the writer thread, answered once the
    commit is done; no request thread is involved."""
    if not header:
        log.warning("webhook POST without %s", SIGNATURE_HEADER)
        return MISSING_SIGNATURE
    refused = refusal(runtime.settings, header, body)
    if refused is not None:
        return refused
    try:
        return _stored(await runtime.writer.store_async(body, timeout=runtime.settings.webhook_commit_timeout))
    except StoreFailed as exc:
        return _not_stored(exc)


@bp.post("/webhook")
def receive_delivery() -> Response:
    """``POST /webhook`` through Flask: what a WSGI server (and the test client) reaches."""
    runtime = _runtime()
    settings = runtime.settings
    header = request.headers.get(SIGNATURE_HEADER, "")
    if not header:
        log.warning("webhook POST without %s", SIGNATURE_HEADER)
        return _response(MISSING_SIGNATURE)
    body = read_body(settings.webhook_max_body_bytes)
    answer = refusal(settings, header, body)
    if answer is None:
        try:
            answer = _stored(runtime.writer.store(body, timeout=settings.webhook_commit_timeout))
        except StoreFailed as exc:
            answer = _not_stored(exc)
    return _response(answer)


def _response(answer: Answer) -> Response:
    return Response(answer.text, status=answer.status, mimetype="text/plain", headers=dict(answer.headers))
