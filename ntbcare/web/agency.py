"""The agency ticket page behind the signed single-ticket link: read on GET, act only on CSRF-checked POST.

Mail scanners follow links, so GET never writes. Every POST re-verifies the token and compares the ticket's
``link_version`` (revocation) and agency inside the write transaction, audits as ``agency:<code>``, and
answers with a page in Bahasa Indonesia. An answer is stored with the replies it owes in one transaction and
sent right after commit on a best-effort basis; the sweeper retries whatever that attempt leaves.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from flask import Blueprint, Response, current_app, make_response, redirect, render_template, request, url_for
from flask_wtf.csrf import CSRFError
from sqlalchemy import select
from sqlalchemy.orm import Session
from werkzeug.exceptions import HTTPException
from werkzeug.wrappers import Response as BaseResponse

from ntbcare.core.display import CHANNEL_LABELS, format_duration, format_wita
from ntbcare.core.links import LinkExpired, LinkInvalid, read_agency_token
from ntbcare.core.models import Agency, AgencyAnswer, AuditEntry, Reply, Ticket, TicketStatus, utcnow
from ntbcare.core.queries import facebook_url, location_label, reduced_name
from ntbcare.pipeline import decisions
from ntbcare.pipeline.runtime import Runtime
from ntbcare.web.errors import GENERIC_MESSAGE, error_page

log = logging.getLogger(__name__)

bp = Blueprint("agency", __name__)

ANSWER_MAX_CHARS = 2000
NOTE_MAX_CHARS = 1000
CAN_ANSWER = (TicketStatus.ROUTED, TicketStatus.FORWARDED, TicketStatus.ANSWERED)
CAN_DECLINE = (TicketStatus.ROUTED, TicketStatus.FORWARDED)
PERSONAL_DATA_LABELS = {"nik": "NIK", "email": "alamat e-mail", "phone": "nomor telepon"}
STATUS_LABELS = {
    TicketStatus.NEW: "Baru diterima",
    TicketStatus.REVIEW: "Ditinjau operator",
    TicketStatus.ROUTED: "Diteruskan ke instansi",
    TicketStatus.FORWARDED: "Menunggu jawaban instansi",
    TicketStatus.ANSWERED: "Sudah dijawab",
    TicketStatus.CLOSED: "Selesai",
    TicketStatus.WITHDRAWN: "Ditarik oleh pelapor",
    TicketStatus.NOT_COMPLAINT: "Bukan pengaduan",
}
HISTORY_LABELS = {
    "opened": "Laporan diterima dari warga",
    "classified": "Laporan diklasifikasi",
    "review": "Diperiksa operator",
    "routed": "Ditetapkan ke instansi",
    "reassigning": "Dialihkan ke instansi lain",
    "forward_sent": "E-mail laporan dikirim ke instansi",
    "forwarded": "E-mail laporan dikirim ke instansi",
    "reminder_sent": "E-mail pengingat dikirim",
    "escalation_sent": "Eskalasi dikirim ke operator",
    "overdue": "Batas waktu jawaban terlewati",
    "message_joined": "Warga menambahkan pesan",
    "text_edited": "Warga mengubah isi laporan",
    "message_removed": "Warga menghapus pesan",
    "comment_hidden": "Komentar disembunyikan",
    "comment_unhidden": "Komentar ditampilkan kembali",
    "agency_answer": "Instansi mengirim jawaban",
    "agency_done": "Instansi menandai selesai",
    "not_ours": "Instansi menyatakan bukan kewenangannya",
    "not_complaint": "Dinyatakan bukan pengaduan",
    "withdrawn": "Laporan ditarik oleh warga",
    "answered": "Jawaban tampil di Facebook",
    "answer_posted": "Jawaban tambahan tampil di Facebook",
    "reply_sent": "Balasan otomatis terkirim ke warga",
    "reply_failed": "Pengiriman balasan gagal",
    "reply_undeliverable": "Balasan tidak dapat dikirim lewat Messenger",
    "reply_retry": "Operator mengulang pengiriman balasan",
}
ACTOR_LABELS = {"system": "Sistem", "citizen": "Warga", "classifier": "Sistem", "bot": "Sistem",
                "operator": "Operator", "agency": "Instansi"}
REPLY_STATE_LABELS = {
    "pending": "Sedang dikirim ke Facebook",
    "sending": "Sedang dikirim ke Facebook",
    "unknown": "Sedang dipastikan ke Facebook",
    "sent": "Sudah tampil di Facebook",
    "failed": "Gagal dikirim; operator akan menindaklanjuti",
    "undeliverable": "Tidak dapat dikirim lewat Messenger (di luar batas waktu Facebook); operator akan "
                     "menindaklanjuti",
}


class Refusal(Exception):
    """The link cannot be used; carries the status and the page kind that explains why."""

    def __init__(self, status: int, kind: str) -> None:
        super().__init__(kind)
        self.status, self.kind = status, kind


def _runtime() -> Runtime:
    return current_app.extensions["ntbcare"]


def _open(session: Session, token: str, *, lock: bool = False) -> Ticket:
    """The ticket a genuine, current link names; raises Refusal (404 tampered, 410 expired or revoked)."""
    settings = _runtime().settings
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
    settings = _runtime().settings
    html = render_template("agency/refused.html", kind=refusal.kind, operator_emails=settings.operator_emails)
    return make_response(html, refusal.status)


def _history(session: Session, ticket: Ticket) -> list[dict[str, str]]:
    entries = session.scalars(select(AuditEntry).where(AuditEntry.ticket_id == ticket.id)
                              .order_by(AuditEntry.at, AuditEntry.id))
    rows = []
    for entry in entries:
        what = HISTORY_LABELS.get(entry.action)
        if what is None:
            what = f"Status: {STATUS_LABELS.get(entry.to_status, entry.to_status)}" if entry.to_status else None
        if what is None:
            continue
        who = ACTOR_LABELS.get(entry.actor.split(":", 1)[0], "Sistem")
        rows.append({"at": format_wita(entry.at), "what": what, "who": who})
    return rows


def _deadline(ticket: Ticket, now: datetime) -> dict[str, Any] | None:
    if ticket.deadline_at is None:
        return None
    if ticket.answered_at is not None:
        return {"at": format_wita(ticket.deadline_at), "answered": format_wita(ticket.answered_at)}
    overdue = ticket.deadline_at <= now
    span = now - ticket.deadline_at if overdue else ticket.deadline_at - now
    return {"at": format_wita(ticket.deadline_at), "overdue": overdue, "span": format_duration(span)}


def _page(session: Session, ticket: Ticket, token: str, *, errors: dict[str, str] | None = None,
          form: dict[str, str] | None = None, notice: str | None = None, status: int = 200) -> Response:
    agency = session.get(Agency, ticket.agency_code) if ticket.agency_code else None
    answers = session.scalars(select(AgencyAnswer).where(AgencyAnswer.ticket_id == ticket.id,
                                                         AgencyAnswer.action == "answer")
                              .order_by(AgencyAnswer.created_at, AgencyAnswer.id)).all()
    states = {reply.key: reply.status for reply in session.scalars(
        select(Reply).where(Reply.ticket_id == ticket.id, Reply.kind == "answer").order_by(Reply.id))}
    now = utcnow()
    messenger_closed = decisions.messenger_window_closed(_runtime().settings, ticket, now)
    targets = session.scalars(select(Agency).where(Agency.active.is_(True), Agency.code != ticket.agency_code)
                              .order_by(Agency.name)).all()
    html = render_template(
        "agency/ticket.html", token=token, ticket=ticket, agency=agency, errors=errors or {}, form=form or {},
        notice=notice, status_label=STATUS_LABELS.get(ticket.status, ticket.status),
        channel_label=CHANNEL_LABELS.get(ticket.channel, ticket.channel), citizen=(reduced_name(ticket) or "Warga"),
        location=location_label(ticket) or "Tidak disebutkan", facebook_url=facebook_url(ticket),
        opened=format_wita(ticket.opened_at), deadline=_deadline(ticket, now), history=_history(session, ticket),
        answers=[{"at": format_wita(a.created_at), "text": a.text, "agency": a.agency_code,
                  "state": _delivery_state(states, a)} for a in answers],
        public=decisions.answer_is_public(ticket), messenger_closed=messenger_closed, targets=targets,
        can_answer=ticket.status in CAN_ANSWER, can_decline=ticket.status in CAN_DECLINE,
        has_answer=bool(answers),
        answer_max=ANSWER_MAX_CHARS, note_max=NOTE_MAX_CHARS,
    )
    return make_response(html, status)


def _delivery_state(states: dict[str, str], answer: AgencyAnswer) -> str | None:
    """The answer's delivery in words; a public fallback that was sent counts as delivered."""
    fallback = states.get(f"answer-fallback:{answer.id}")
    status = "sent" if fallback == "sent" else states.get(f"answer:{answer.id}")
    return REPLY_STATE_LABELS.get(status) if status else None


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
    notice = "Laporan ini sudah tidak dapat diubah dari halaman ini (status: " \
             f"{STATUS_LABELS.get(ticket.status, ticket.status)})."
    return _page(session, ticket, token, notice=notice, status=409)


@bp.get("/a/<token>")
def ticket_page(token: str) -> Response:
    """Read-only: shows the ticket and the forms; changes nothing (mail scanners follow links)."""
    with _runtime().db.session() as session:
        try:
            ticket = _open(session, token)
        except Refusal as refusal:
            return _refusal_page(refusal)
        notice = {"answer": "Terima kasih. Jawaban Anda tersimpan; status pengirimannya tertera di bawah.",
                  "done": "Laporan ditandai selesai. Terima kasih."}.get(request.args.get("ok", ""))
        return _page(session, ticket, token, notice=notice)


@bp.post("/a/<token>/answer")
def answer(token: str) -> BaseResponse:
    """Store the answer and the reply it owes in one transaction, then try to post it at once."""
    text = _field("answer")
    reply_ids: list[int] = []
    try:
        with _runtime().db.scope() as session:
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
        _runtime().pipeline.send_replies_soon(reply_ids)
    return redirect(url_for("agency.ticket_page", token=token, ok="answer"), code=303)


@bp.post("/a/<token>/not-ours")
def not_ours(token: str) -> Response:
    """The agency declines: back to an operator, or on to the target it names; the link stops working."""
    reason, suggested = _field("reason"), _field("suggested")
    try:
        with _runtime().db.scope() as session:
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


@bp.post("/a/<token>/done")
def done(token: str) -> BaseResponse:
    """Close the ticket: allowed once an answer exists, or with a note saying what was done."""
    note = _field("note")
    try:
        with _runtime().db.scope() as session:
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


@bp.errorhandler(CSRFError)
def _csrf_failed(exc: CSRFError) -> Response:
    return error_page(400, "Formulir kedaluwarsa atau tidak sah. Buka kembali tautan dari e-mail, lalu kirim ulang.")


@bp.errorhandler(HTTPException)
def _http_error(exc: HTTPException) -> Response:
    messages = {413: "Isian terlalu besar.", 405: "Halaman ini hanya dapat dibuka dari tautan e-mail."}
    return error_page(exc.code or 500, messages.get(exc.code or 500, GENERIC_MESSAGE))
