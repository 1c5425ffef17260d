"""One error page for every human-facing surface, in Bahasa Indonesia."""

from __future__ import annotations

from flask import Response, make_response, render_template

GENERIC_MESSAGE = "Permintaan tidak dapat diproses."
CSRF_MESSAGE = "Formulir kedaluwarsa atau tidak sah. Buka kembali halamannya, lalu kirim ulang."


def error_page(code: int, message: str = GENERIC_MESSAGE) -> Response:
    return make_response(render_template("web/error.html", code=code, message=message), code)
