"""``GET /media/<token>``: a kept photo or file of a complaint, for the operator or agency whose page linked it.

The signed, expiring token is the credential (:mod:`ntbcare.pipeline.media_view` checks it against the
database); a tampered, expired, revoked or foreign link, and a file not kept (or no longer), get one same 404
page. The file goes out as stored: its own Content-Type with ``nosniff``, inline for images and as a download
otherwise, never cached, and under a sandboxing CSP, so a file that claims to be a photo can never act as a
page of this site. Nothing here is public: /transparansi and Open311 never link these files.
"""

from __future__ import annotations

from flask import Blueprint, Response, abort, send_file

from ntbcare.core.models import utcnow
from ntbcare.pipeline.media_view import servable
from ntbcare.web.context import current_runtime
from ntbcare.web.errors import Wording

bp = Blueprint("media", __name__, url_prefix="/media")
ERRORS = Wording(by_status={404: "Lampiran tidak ditemukan atau tautannya sudah tidak berlaku. Muat ulang halaman "
                                 "laporan untuk mendapat tautan baru."})
HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Cache-Control": "private, no-store",
    "Content-Security-Policy": "default-src 'none'; sandbox",
    "Cross-Origin-Resource-Policy": "same-origin",
}


@bp.get("/<token>")
def download(token: str) -> Response:
    runtime = current_runtime()
    with runtime.db.session() as session:
        found = servable(session, runtime.settings, token, utcnow())
    if found is None:
        abort(404)
    response = send_file(found.path, mimetype=found.content_type, as_attachment=not found.inline,
                         download_name=found.filename, conditional=False, etag=False, max_age=None)
    response.headers.update(HEADERS)
    return response
