"""The monthly recaps in the console (``/ops/reports``): which months' recaps the sweeper owed, whether each was
sent, is waiting or failed, and the recap of a month to download as HTML, CSV or PDF.

The list reads the outbox rows keyed ``recap:YYYY-MM`` (the e-mail itself, sent once); a download renders the
recap again from the audit trail, exactly as ``ntbcare report monthly`` does. Reading never changes anything.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from flask import Response, abort, make_response, render_template
from sqlalchemy import select

from ntbcare.core.models import OutboundMail, utcnow
from ntbcare.pipeline.accountability import recap
from ntbcare.pipeline.accountability.periods import PeriodError, parse_month
from ntbcare.web.context import current_runtime
from ntbcare.web.ops.auth import operator_required
from ntbcare.web.ops.blueprint import bp

MEDIA_TYPES = {"html": "text/html; charset=utf-8", "csv": "text/csv; charset=utf-8", "pdf": "application/pdf"}
STATES = {"sent": "terkirim", "pending": "menunggu", "sending": "sedang dikirim", "failed": "gagal"}


@dataclass(frozen=True)
class RecapRow:
    month: str  # YYYY-MM
    label: str
    recipients: int
    state: str
    state_label: str
    attempts: int
    created_at: datetime
    sent_at: datetime | None
    error: str | None


def recap_rows() -> list[RecapRow]:
    """Every recap the outbox holds, newest month first."""
    with current_runtime().db.session() as session:
        mails = session.scalars(select(OutboundMail).where(OutboundMail.kind == "recap")
                                .order_by(OutboundMail.key.desc())).all()
        rows = []
        for mail in mails:
            month = mail.key.split(":", 1)[1]
            try:
                label = parse_month(month).label
            except PeriodError:
                label = month
            rows.append(RecapRow(month=month, label=label, recipients=len(mail.recipients or []),
                                 state=mail.status, state_label=STATES.get(mail.status, mail.status),
                                 attempts=mail.attempts, created_at=mail.created_at, sent_at=mail.sent_at,
                                 error=(mail.error or "")[:200] or None))
    return rows


@bp.get("/reports")
@operator_required
def reports() -> Response:
    return make_response(render_template("ops/reports.html", rows=recap_rows(), formats=recap.FORMATS))


@bp.get("/reports/<month>.<fmt>")
@operator_required
def report_download(month: str, fmt: str) -> Response:
    """The recap of ``month`` (YYYY-MM) rendered now from the audit trail, as a file to save."""
    if fmt not in MEDIA_TYPES:
        abort(404)
    try:
        period = parse_month(month)
    except PeriodError:
        abort(404)
    runtime = current_runtime()
    with runtime.db.session() as session:
        body = recap.render(session, runtime.settings, runtime.pipeline.deadline_policy, period, utcnow(), fmt)
    response = make_response(body)
    response.headers["Content-Type"] = MEDIA_TYPES[fmt]
    response.headers["Content-Disposition"] = f'attachment; filename="rekap-ntbcare-{period.first:%Y-%m}.{fmt}"'
    response.headers["Cache-Control"] = "no-store"
    return response
