"""The agency ticket page behind the signed single-ticket link: read on GET, act only on CSRF-checked POST.

Mail scanners follow links, so GET never writes. Every POST re-verifies the token and compares the ticket's
``link_version`` (revocation) and agency inside the write transaction, audits as ``agency:<code>``, and
answers with a page in Bahasa Indonesia. An answer is stored with the replies it owes in one transaction and
sent right after commit on a best-effort basis; the sweeper retries whatever that attempt leaves.
How the ticket reads (labels, history, deadline) lives in :mod:`ntbcare.web.presentation`.
"""

from __future__ import annotations

import logging

from flask import Blueprint, Response, make_response, redirect, render_template, request, url_for
from sqlalchemy import select
from sqlalchemy.orm import Session
from werkzeug.wrappers import Response as BaseResponse

from ntbcare.core.links import LinkExpired, LinkInvalid, read_agency_token
from ntbcare.core.models import Agency, AgencyAnswer, Ticket, TicketStatus, utcnow
from ntbcare.pipeline import decisions
from ntbcare.web.context import current_runtime
from ntbcare.web.errors import Wording
from ntbcare.web.presentation import PERSONAL_DATA_LABELS, status_label, ticket_facts

log = logging.getLogger(__name__)

bp = Blueprint("agency", __name__, url_prefix="/a")
ERRORS = Wording(
    csrf="Formulir kedaluwarsa atau tidak sah. Buka kembali tautan dari e-mail, lalu kirim ulang.",
    by_status={405: "Halaman ini hanya dapat dibuka dari tautan e-mail."},
)

ANSWER_MAX_CHARS = 2000
NOTE_MAX_CHARS = 1000
CAN_ANSWER = (TicketStatus.ROUTED, TicketStatus.FORWARDED, TicketStatus.ANSWERED)
CAN_DECLINE = (TicketStatus.ROUTED, TicketStatus.FORWARDED)
NOTICES = {"answer": "Terima kasih. Jawaban Anda tersimpan; status pengirimannya tertera di bawah.",
           "done": "Laporan ditandai selesai. Terima kasih."}


class Refusal(Exception):
    """The link cannot be used; carries the status and the page kind that explains why."""

    def __init__(self, status: int, kind: str) -> None:
        super().__init__(kind)
        self.status, self.kind = status, kind


def _open(session: Session, token: str, *, lock: bool = False) -> Ticket:
    """The ticket a genuine, current link names; raises Refusal (404 tampered, 410 expired or revoked)."""
    settings = current_runtime().settings
    try:
        claims = read_agency_token(settings.secret_key, token, settings.agency_link_max_age_days * 86400,
                                   now=utcnow())
    except LinkExpired:
        raise Refusal(410, "expired") from None
    except LinkInvalid:
        raise Refusal(404, "invalid") from None
    query = select(Ticket).where(Ticket.id == claims.ticket_id)
    ticket = session.scalars(query.with_for_update() if lock else query).first()
    if ticket is None:
        raise Refusal(404, "invalid")
    if ticket.link_version != claims.link_version or ticket.agency_code != claims.agency_code:
        raise Refusal(410, "revoked")
    return ticket


def _refusal_page(refusal: Refusal) -> Response:
    settings = current_runtime().settings
    html = render_template("agency/refused.html", kind=refusal.kind, operator_emails=settings.operator_emails)
    return make_response(html, refusal.status)


def _page(session: Session, ticket: Ticket, token: str, *, errors: dict[str, str] | None = None,
          form: dict[str, str] | None = None, notice: str | None = None, status: int = 200) -> Response:
    facts = ticket_facts(session, current_runtime().settings, ticket, utcnow())
    targets = session.scalars(select(Agency).where(Agency.active.is_(True), Agency.code != ticket.agency_code)
                              .order_by(Agency.name)).all()
    html = render_template(
        "agency/ticket.html", **facts, token=token, errors=errors or {}, form=form or {}, notice=notice,
        targets=targets, can_answer=ticket.status in CAN_ANSWER, can_decline=ticket.status in CAN_DECLINE,
        answer_max=ANSWER_MAX_CHARS, note_max=NOTE_MAX_CHARS,
    )
    return make_response(html, status)


def _answer_error(ticket: Ticket, text: str) -> str | None:
    if not text:
        return "Jawaban wajib diisi."
    if len(text) > ANSWER_MAX_CHARS:
        return f"Jawaban terlalu panjang: paling banyak {ANSWER_MAX_CHARS} karakter."
    found = decisions.personal_data_in_public_answer(ticket, text)
    if found:
        named = ", ".join(PERSONAL_DATA_LABELS[kind] for kind in found)
        return f"Jawaban tampil publik di Facebook: hapus {named} dari jawaban."
    return None


def _field(name: str) -> str:
    return (request.form.get(name) or "").replace("\r\n", "\n").strip()


def _actor(ticket: Ticket) -> str:
    return f"agency:{ticket.agency_code}"


def _not_actionable(session: Session, ticket: Ticket, token: str) -> Response:
    notice = f"Laporan ini sudah tidak dapat diubah dari halaman ini (status: {status_label(ticket.status)})."
    return _page(session, ticket, token, notice=notice, status=409)


@bp.get("/<token>")
def ticket_page(token: str) -> Response:
    """Read-only: shows the ticket and the forms; changes nothing (mail scanners follow links)."""
    with current_runtime().db.session() as session:
        try:
            ticket = _open(session, token)
        except Refusal as refusal:
            return _refusal_page(refusal)
        return _page(session, ticket, token, notice=NOTICES.get(request.args.get("ok", "")))


@bp.post("/<token>/answer")
def answer(token: str) -> BaseResponse:
    """Store the answer and the reply it owes in one transaction, then try to post it at once."""
    text = _field("answer")
    reply_ids: list[int] = []
    try:
        with current_runtime().db.scope() as session:
            ticket = _open(session, token, lock=True)
            if ticket.status not in CAN_ANSWER:
                return _not_actionable(session, ticket, token)
            error = _answer_error(ticket, text)
            if error:
                return _page(session, ticket, token, errors={"answer": error}, form={"answer": text}, status=422)
            reply_ids = decisions.agency_answers(session, ticket, text, actor=_actor(ticket))
    except Refusal as refusal:
        return _refusal_page(refusal)
    if reply_ids:
        current_runtime().pipeline.send_replies_soon(reply_ids)
    return redirect(url_for("agency.ticket_page", token=token, ok="answer"), code=303)


@bp.post("/<token>/not-ours")
def not_ours(token: str) -> Response:
    """The agency declines: back to an operator, or on to the target it names; the link stops working."""
    reason, suggested = _field("reason"), _field("suggested")
    try:
        with current_runtime().db.scope() as session:
            ticket = _open(session, token, lock=True)
            if ticket.status not in CAN_DECLINE:
                return _not_actionable(session, ticket, token)
            errors: dict[str, str] = {}
            if not reason:
                errors["reason"] = "Alasan wajib diisi."
            elif len(reason) > NOTE_MAX_CHARS:
                errors["reason"] = f"Alasan terlalu panjang: paling banyak {NOTE_MAX_CHARS} karakter."
            target = session.get(Agency, suggested) if suggested else None
            if suggested and (target is None or not target.active or suggested == ticket.agency_code):
                errors["suggested"] = "Pilih instansi tujuan dari daftar."
            if errors:
                return _page(session, ticket, token, errors=errors, form={"reason": reason, "suggested": suggested},
                             status=422)
            number, declined_by = ticket.number, ticket.agency_code
            decisions.agency_declines(session, ticket, reason=reason, suggested=suggested or None)
            target_name = target.name if target else None
    except Refusal as refusal:
        return _refusal_page(refusal)
    log.info("agency %s declined ticket %s", declined_by, number)
    return make_response(render_template("agency/declined.html", number=number, target_name=target_name))


@bp.post("/<token>/done")
def done(token: str) -> BaseResponse:
    """Close the ticket: allowed once an answer exists, or with a note saying what was done."""
    note = _field("note")
    try:
        with current_runtime().db.scope() as session:
            ticket = _open(session, token, lock=True)
            if ticket.status not in CAN_ANSWER:
                return _not_actionable(session, ticket, token)
            has_answer = session.scalar(select(AgencyAnswer.id).where(
                AgencyAnswer.ticket_id == ticket.id, AgencyAnswer.action == "answer")) is not None
            error = None
            if len(note) > NOTE_MAX_CHARS:
                error = f"Catatan terlalu panjang: paling banyak {NOTE_MAX_CHARS} karakter."
            elif not note and not has_answer:
                error = "Belum ada jawaban: tulis catatan tindak lanjut sebelum menandai selesai."
            if error:
                return _page(session, ticket, token, errors={"note": error}, form={"note": note}, status=422)
            decisions.agency_closes(session, ticket, note=note, actor=_actor(ticket))
    except Refusal as refusal:
        return _refusal_page(refusal)
    return redirect(url_for("agency.ticket_page", token=token, ok="done"), code=303)
