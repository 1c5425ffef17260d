"""The Facebook webhook: verify, store durably, acknowledge. Nothing slow happens here.

GET  /webhook  answers the subscription handshake.
POST /webhook  checks X-Hub-Signature-256 over the raw bytes (401 missing, 403 wrong), the size (413) and
               that the body is a JSON object (400); commits the delivery and only then answers 200. If the
               database does not take it within WEBHOOK_COMMIT_TIMEOUT, 503 so that Facebook redelivers.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
from typing import TYPE_CHECKING

from flask import Blueprint, Response, current_app, request

from ntbcare.core.inbox import StoreFailed

if TYPE_CHECKING:  # the runtime is built by the app factory, above this module
    from ntbcare.pipeline.runtime import Runtime

log = logging.getLogger(__name__)

bp = Blueprint("webhooks", __name__)

SIGNATURE_HEADER = "X-Hub-Signature-256"


def signature_for(secret: str, body: bytes) -> str:
    """The header value Facebook sends for ``body``: ``sha256=`` and the lowercase hex HMAC."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def _escape_non_ascii(body: bytes) -> bytes | None:
    """Facebook's documented escaping (\\uXXXX, lowercase, surrogate pairs) for bodies sent unescaped."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        return None
    out = []
    for ch in text:
        code = ord(ch)
        if code < 0x80:
            out.append(ch)
        elif code < 0x10000:
            out.append(f"\\u{code:04x}")
        else:
            code -= 0x10000
            out.append(f"\\u{0xD800 + (code >> 10):04x}\\u{0xDC00 + (code & 0x3FF):04x}")
    return "".join(out).encode("ascii")


def signature_matches(secrets: tuple[str, ...], body: bytes, header: str) -> bool:
    """Constant-time check against every valid secret (two during a rotation)."""
    expected = header.encode("utf-8", "replace")
    candidates = [body]
    if not body.isascii():
        escaped = _escape_non_ascii(body)
        if escaped is not None:
            candidates.append(escaped)
    matched = False
    for secret in secrets:
        for candidate in candidates:
            matched |= hmac.compare_digest(signature_for(secret, candidate).encode(), expected)
    return matched


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


@bp.post("/webhook")
def receive_delivery() -> Response:
    runtime = _runtime()
    settings = runtime.settings
    header = request.headers.get(SIGNATURE_HEADER, "")
    if not header:
        log.warning("webhook POST without %s", SIGNATURE_HEADER)
        return Response("missing signature", status=401, mimetype="text/plain")
    body = request.get_data(cache=False)  # raises 413 past MAX_CONTENT_LENGTH
    if not signature_matches(settings.app_secrets, body, header.strip().lower()):
        log.warning("webhook POST with a bad signature (%d bytes)", len(body))
        return Response("bad signature", status=403, mimetype="text/plain")
    try:
        payload = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return Response("body is not JSON", status=400, mimetype="text/plain")
    if not isinstance(payload, dict):
        return Response("body is not a JSON object", status=400, mimetype="text/plain")
    try:
        delivery_id = runtime.writer.store(body, timeout=settings.webhook_commit_timeout)
    except StoreFailed as exc:
        log.error("webhook delivery not stored, answering 503 so Facebook retries: %s", exc)
        return Response("temporarily unavailable", status=503, mimetype="text/plain",
                        headers={"Retry-After": "5"})
    return Response(f"EVENT_RECEIVED {delivery_id}", status=200, mimetype="text/plain")
