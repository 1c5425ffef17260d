"""The console's home (``/ops/``): counts of what needs a person, each linking to its list, and the routing
model's current figures; plus the lists of failed replies, deliveries, e-mails and attachment downloads and of
agencies without contacts (``/ops/attention/<kind>``)."""

from __future__ import annotations

from flask import Response, abort, make_response, render_template

from ntbcare.core.models import utcnow
from ntbcare.pipeline import console_counts
from ntbcare.pipeline.retraining import model_status
from ntbcare.web.context import current_runtime
from ntbcare.web.ops.auth import operator_required
from ntbcare.web.ops.blueprint import bp

ATTENTION = {
    "replies": ("Balasan Facebook gagal atau tidak terkirim", console_counts.failed_replies),
    "deliveries": ("Kiriman webhook gagal diproses", console_counts.failed_deliveries),
    "mails": ("E-mail gagal terkirim atau terpental", console_counts.failed_mails),
    "media": ("Lampiran warga gagal diunduh", console_counts.failed_media),
    "contacts": ("Instansi tanpa kontak e-mail", console_counts.agencies_without_contacts),
}


@bp.get("/")
@operator_required
def dashboard() -> Response:
    runtime = current_runtime()
    with runtime.db.session() as session:
        counts = console_counts.counts(session, now=utcnow())
        model = model_status(session, runtime.settings)
    return make_response(render_template("ops/dashboard.html", counts=counts, model=model,
                                         retrain_every=runtime.settings.retrain_after_decisions))


@bp.get("/attention/<kind>")
@operator_required
def attention(kind: str) -> Response:
    if kind not in ATTENTION:
        abort(404)
    title, query = ATTENTION[kind]
    with current_runtime().db.session() as session:
        rows = query(session)
        html = render_template("ops/attention.html", kind=kind, title=title, rows=rows)
    return make_response(html)
