"""The console's ticket actions: ``POST /ops/tickets/<number>/<action>`` for assign, not-complaint, merge,
split, reopen, close, note, resend-link, revoke-links and retry-reply, and the review queue's bulk form.

Every action goes through :mod:`ntbcare.pipeline.ticket_ops` / :mod:`ntbcare.pipeline.ticket_merge` as
``operator:<username>``, carrying the ticket version the operator saw (``seen``); a refusal (unknown agency,
missing or merged target, the ticket changed meanwhile) comes back as a message on the page, never a 500.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from flask import abort, flash, redirect, request
from werkzeug.datastructures import MultiDict
from werkzeug.wrappers import Response as BaseResponse

from ntbcare.pipeline import ticket_merge, ticket_ops
from ntbcare.pipeline.decisions import DecisionRefused
from ntbcare.pipeline.join import Pipeline
from ntbcare.pipeline.ticket_claim import TicketNotFound, parse_seen
from ntbcare.pipeline.ticket_ops import Done
from ntbcare.web.context import current_runtime
from ntbcare.web.ops.auth import current_operator, operator_required
from ntbcare.web.ops.blueprint import bp

Action = Callable[[Pipeline, str, "MultiDict[str, str]", str, "datetime | None"], Done]
BULK_ACTIONS = ("assign", "not-complaint")
BULK_MAX = 200


def _int(value: str | None) -> int | None:
    try:
        return int(value) if value else None
    except ValueError:
        return None


ACTIONS: dict[str, Action] = {
    "assign": lambda p, n, f, actor, seen: ticket_ops.assign(p, n, f.get("agency", ""), actor=actor, seen=seen),
    "not-complaint": lambda p, n, f, actor, seen: ticket_ops.not_complaint(p, n, actor=actor, seen=seen),
    "merge": lambda p, n, f, actor, seen: ticket_merge.merge(p, n, f.get("into", ""), actor=actor, seen=seen),
    "split": lambda p, n, f, actor, seen: ticket_merge.split(p, n, _int(f.get("message")), actor=actor, seen=seen),
    "reopen": lambda p, n, f, actor, seen: ticket_ops.reopen(p, n, actor=actor, seen=seen),
    "close": lambda p, n, f, actor, seen: ticket_ops.close(p, n, actor=actor, seen=seen),
    "note": lambda p, n, f, actor, seen: ticket_ops.add_note(p, n, f.get("note", ""), actor=actor),
    "resend-link": lambda p, n, f, actor, seen: ticket_ops.resend_link(p, n, actor=actor, seen=seen),
    "revoke-links": lambda p, n, f, actor, seen: ticket_ops.revoke_links(p, n, actor=actor, seen=seen,
                                                                         resend=f.get("resend") == "1"),
    "retry-reply": lambda p, n, f, actor, seen: ticket_ops.retry_reply(p, n, actor=actor,
                                                                       reply_id=_int(f.get("reply"))),
}


def back_to(default: str) -> str:
    """Where the form asked to go back to (``next``), if it is a console page; else ``default``."""
    target = request.form.get("next") or ""
    if target.startswith("/ops/") and not target.startswith("//") and "\\" not in target and len(target) < 500:
        return target
    return default


@bp.post("/tickets/<number>/<action>")
@operator_required
def ticket_action(number: str, action: str) -> BaseResponse:
    act = ACTIONS.get(action)
    if act is None:
        abort(404)
    number = number[:40]
    here = f"/ops/tickets/{number}"
    try:
        done = act(current_runtime().pipeline, number, request.form, current_operator().actor,
                   parse_seen(request.form.get("seen")))
    except TicketNotFound as missing:
        # The missing ticket's own page is a 404 that shows no message: go where the refusal can be read.
        flash(str(missing), "warn")
        target = back_to("/ops/tickets")
        return redirect("/ops/tickets" if target.split("?", 1)[0] == here else target, code=303)
    except DecisionRefused as refused:
        flash(str(refused), "warn")
    else:
        flash(done.message, "ok")
    return redirect(back_to(here), code=303)


@bp.post("/review/bulk")
@operator_required
def review_bulk() -> BaseResponse:
    """One decision over the selected review tickets; each is its own transaction, so one refusal (a ticket
    someone else just decided) does not undo the others."""
    action = request.form.get("action", "")
    numbers = [n[:40] for n in request.form.getlist("numbers") if n.strip()][:BULK_MAX]
    if action not in BULK_ACTIONS:
        flash("Pilih tindakan massal: tetapkan ke instansi atau bukan pengaduan.", "warn")
        return redirect("/ops/review", code=303)
    if not numbers:
        flash("Belum ada tiket yang dipilih.", "warn")
        return redirect("/ops/review", code=303)
    pipeline, actor = current_runtime().pipeline, current_operator().actor
    done, refused = [], []
    for number in numbers:
        try:
            if action == "assign":
                ticket_ops.assign(pipeline, number, request.form.get("agency", ""), actor=actor, in_review=True)
            else:
                ticket_ops.not_complaint(pipeline, number, actor=actor, in_review=True)
            done.append(number)
        except DecisionRefused as exc:
            refused.append(str(exc))
    if done:
        flash(f"{len(done)} tiket diproses: {', '.join(done)}.", "ok")
    for message in refused[:10]:
        flash(message, "warn")
    return redirect("/ops/review", code=303)
