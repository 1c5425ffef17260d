"""How the app answers an HTTP error: one error page, in Bahasa Indonesia, on every human-facing surface, and
JSON on the machine endpoints (the webhook, the health checks), whose callers read status codes, not pages.

Errors raised before a view is found (an unknown address, a GET on a form's address) belong to no blueprint,
so surfaces are recognised by their URL prefix: a person who mistypes a link still gets a page, not JSON.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from flask import Flask, Response, jsonify, make_response, render_template, request
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import HTTPException

GENERIC_MESSAGE = "Permintaan tidak dapat diproses."
CSRF_MESSAGE = "Formulir kedaluwarsa atau tidak sah. Buka kembali halamannya, lalu kirim ulang."
MESSAGES = {
    404: "Halaman tidak ditemukan. Periksa kembali alamatnya.",
    405: "Alamat ini tidak dapat dibuka dengan cara tersebut.",
    413: "Isian terlalu besar.",
    500: "Terjadi kesalahan pada sistem. Silakan coba beberapa saat lagi.",
}


@dataclass(frozen=True)
class Wording:
    """What one surface says about an error; whatever it leaves out gets the shared wording."""

    csrf: str = CSRF_MESSAGE
    by_status: Mapping[int, str] = field(default_factory=dict)
    # A way back into the surface (path, words), so a refused page is not a dead end.
    home: tuple[str, str] | None = None

    def message(self, exc: HTTPException) -> str:
        if isinstance(exc, CSRFError):
            return self.csrf
        code = exc.code or 500
        return self.by_status.get(code) or MESSAGES.get(code, GENERIC_MESSAGE)


def error_page(code: int, message: str = GENERIC_MESSAGE, home: tuple[str, str] | None = None) -> Response:
    """The shared error page with ``code`` as its status (and a link back when ``home`` is given)."""
    return make_response(render_template("web/error.html", code=code, message=message, home=home), code)


def install_error_pages(app: Flask, surfaces: Mapping[str, Wording]) -> None:
    """Answer every HTTP error of ``app``: a page under a surface's prefix (the keys of ``surfaces``), JSON
    elsewhere. Headers the error carries (``Allow`` on a 405, ``Retry-After``) are kept either way."""

    @app.errorhandler(HTTPException)
    def _http_error(exc: HTTPException) -> Response:
        code = exc.code or 500
        wording = next((w for prefix, w in surfaces.items() if request.path.startswith(prefix)), None)
        if wording is None:
            response = jsonify(error=exc.name, description=exc.description)
            response.status_code = code
        else:
            response = error_page(code, wording.message(exc), wording.home)
        for name, value in exc.get_headers():
            if name.lower() != "content-type":
                response.headers[name] = value
        return response
