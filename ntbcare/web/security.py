"""One set of security headers for every response the app sends (pages, JSON, the webhook)."""

from __future__ import annotations

from flask import Flask, Response

SECURITY_HEADERS = {
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Cache-Control": "no-store",
    "X-Content-Type-Options": "nosniff",
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; "
        "frame-ancestors 'none'; base-uri 'none'"
    ),
}
HSTS = "max-age=31536000; includeSubDomains"


def install_security_headers(app: Flask, *, https: bool) -> None:
    """Add the headers to every response; HSTS too when the public address is https."""
    headers = dict(SECURITY_HEADERS)
    if https:
        headers["Strict-Transport-Security"] = HSTS

    @app.after_request
    def _security_headers(response: Response) -> Response:
        for name, value in headers.items():
            response.headers.setdefault(name, value)
        return response
