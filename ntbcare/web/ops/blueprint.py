"""The console's blueprint, in a module of its own so every view module of the package can register on it
(``from ntbcare.web.ops.blueprint import bp``) without importing the package that imports them.

Every ``/ops`` request passes the session check first; every page may load the console's script
(``static/ops.js``), so its CSP adds ``script-src 'self'`` to the app-wide one, still with no inline script.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, g

from ntbcare.core.display import format_short_wita
from ntbcare.pipeline.console_banners import banners
from ntbcare.web.context import current_runtime
from ntbcare.web.errors import Wording
from ntbcare.web.ops.auth import load_operator

bp = Blueprint("ops", __name__, url_prefix="/ops")
ERRORS = Wording(
    csrf="Formulir kedaluwarsa atau tidak sah. Muat ulang halamannya, lalu kirim ulang. Tidak ada yang diubah.",
    by_status={
        403: "Halaman ini hanya untuk supervisor.",
        404: "Halaman konsol tidak ditemukan. Periksa kembali alamatnya.",
        409: "Tiket ini baru saja diubah orang lain. Muat ulang halamannya, lalu ulangi.",
    },
    home=("/ops/", "Kembali ke beranda konsol"),
)
CONSOLE_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; form-action 'self'; "
    "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'"
)

bp.before_request(load_operator)
bp.add_app_template_filter(format_short_wita, "ops_time")


@bp.after_request
def _console_headers(response: Response) -> Response:
    response.headers["Content-Security-Policy"] = CONSOLE_CSP
    response.headers["Cache-Control"] = "no-store"
    return response


def _load_banners() -> None:
    """The service-wide problems every console page shows, read before the view opens its own session (on
    SQLite a second session inside the view's would wait for the first)."""
    if g.get("operator") is None:
        g.ops_banners = []
        return
    runtime = current_runtime()
    with runtime.db.session() as session:
        g.ops_banners = banners(session, runtime.settings)


bp.before_request(_load_banners)


@bp.context_processor
def _banners() -> dict[str, Any]:
    return {"banners": g.get("ops_banners", [])}
