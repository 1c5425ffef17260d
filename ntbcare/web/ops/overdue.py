"""The overdue board (``/ops/overdue``): per agency, the tickets past their first-answer deadline, with a
one-click reminder (a POST) that e-mails the agency's contacts a reminder for each of them."""

from __future__ import annotations

import logging

from flask import Response, flash, make_response, redirect, render_template, request, url_for
from werkzeug.wrappers import Response as BaseResponse

from ntbcare.core.models import Agency, utcnow
from ntbcare.pipeline.overdue_board import board, owe_reminders
from ntbcare.web.context import current_runtime
from ntbcare.web.ops.auth import current_operator, operator_required
from ntbcare.web.ops.blueprint import bp

log = logging.getLogger(__name__)


@bp.get("/overdue")
@operator_required
def overdue() -> Response:
    now = utcnow()
    with current_runtime().db.session() as session:
        rows = board(session, now=now)
        html = render_template("ops/overdue.html", rows=rows, now=now)
    return make_response(html)


@bp.post("/overdue/remind")
@operator_required
def remind() -> BaseResponse:
    """Owe the reminders, then try to send them now (the sweeper retries whatever fails)."""
    code = (request.form.get("agency") or "").strip()[:40]
    runtime = current_runtime()
    with runtime.db.scope() as session:
        agency = session.get(Agency, code)
        name = agency.name if agency else None
        has_contacts = bool(agency and agency.emails)
        ids = owe_reminders(session, code, actor=current_operator().actor) if has_contacts else []
    if name is None:
        flash("Instansi tidak dikenal. Muat ulang papan terlambat.", "warn")
    elif not has_contacts:
        flash(f"{name} belum punya alamat e-mail kontak: pengingat tidak dapat dikirim.", "warn")
    elif not ids:
        flash(f"Pengingat untuk {name} sudah dikirim dalam satu jam terakhir.", "warn")
    else:
        try:
            runtime.pipeline.send_mails(ids)
        except Exception:
            log.exception("sending reminders %s failed; the sweeper retries", ids)
        flash(f"Pengingat untuk {len(ids)} tiket terlambat dikirim ke {name}.", "ok")
    return redirect(url_for("ops.overdue"), code=303)
