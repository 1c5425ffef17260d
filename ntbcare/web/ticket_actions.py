"""The agency's ticket page and its three actions (answer, bukan kewenangan, tandai selesai), written once for
both ways in: the signed per-ticket link from the e-mail (:mod:`ntbcare.web.agency`) and the agency inbox
(:mod:`ntbcare.web.agency_inbox`). An entry point says how it finds the ticket, who acts, and where its forms
post (a :class:`TicketAccess`); everything else, and every decision through :mod:`ntbcare.pipeline.decisions`,
is the same.

GET never writes (mail scanners follow links). Every POST finds the ticket again inside the write transaction
(locked), so a revoked link or a ticket given to another agency in the meantime is refused, not acted on. An
answer is stored with the replies it owes in one transaction and sent right after commit on a best-effort
basis; the sweeper retries whatever that attempt leaves.
"""

from __future__ import annotations

import logging
from typing import Protocol

from flask import Response, make_response, redirect, render_template, request
from sqlalchemy import select
from sqlalchemy.orm import Session
from werkzeug.wrappers import Response as BaseResponse

from ntbcare.core.models import Agency, AgencyAnswer, Ticket, TicketStatus, utcnow
from ntbcare.pipeline import decisions
from ntbcare.web.context import current_runtime
from ntbcare.web.presentation import PERSONAL_DATA_LABELS, status_label, ticket_facts

log = logging.getLogger(__name__)

ANSWER_MAX_CHARS = 2000
NOTE_MAX_CHARS = 1000
CAN_ANSWER = (TicketStatus.ROUTED, TicketStatus.FORWARDED, TicketStatus.ANSWERED)
CAN_DECLINE = (TicketStatus.ROUTED, TicketStatus.FORWARDED)
ACTIONS = ("answer", "not-ours", "done")
NOTICES = {"answer": "Terima kasih. Jawaban Anda tersimpan; status pengirimannya tertera di bawah.",
           "done": "Laporan ditandai selesai. Terima kasih."}


class Refusal(Exception):
    """The ticket cannot be opened this way; carries the status and the page kind that explains why."""

    def __init__(self, status: int, kind: str) -> None:
        super().__init__(kind)
        self.status, self.kind = status, kind


class TicketAccess(Protocol):
    """One way in to a ticket: how it is found, who acts, where the forms post and what a refusal shows."""

    def open(self, session: Session, *, lock: bool = False) -> Ticket:
        """The ticket, or raise :class:`Refusal`."""
        ...

    def actor(self, ticket: Ticket) -> str: ...

    def url(self, action: str | None = None, ok: str | None = None) -> str:
        """The page (``action`` None, with an ``ok`` notice) or the address an action's form posts to."""
        ...

    def refused(self, refusal: Refusal) -> Response: ...

    @property
    def inbox_url(self) -> str | None:
        """Where "back to the list" leads, when there is a list."""
        ...


def _page(access: TicketAccess, session: Session, ticket: Ticket, *, errors: dict[str, str] | None = None,
          form: dict[str, str] | None = None, notice: str | None = None, status: int = 200) -> Response:
    facts = ticket_facts(session, current_runtime().settings, ticket, utcnow())
    targets = session.scalars(select(Agency).where(Agency.active.is_(True), Agency.code != ticket.agency_code)
                              .order_by(Agency.name)).all()
    html = render_template(
        "agency/ticket.html", **facts, errors=errors or {}, form=form or {}, notice=notice, targets=targets,
        can_answer=ticket.status in CAN_ANSWER, can_decline=ticket.status in CAN_DECLINE,
        answer_max=ANSWER_MAX_CHARS, note_max=NOTE_MAX_CHARS,
        action_urls={action: access.url(action) for action in ACTIONS}, inbox_url=access.inbox_url,
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


def _not_actionable(access: TicketAccess, session: Session, ticket: Ticket) -> Response:
    notice = f"Laporan ini sudah tidak dapat diubah dari halaman ini (status: {status_label(ticket.status)})."
    return _page(access, session, ticket, notice=notice, status=409)


def show(access: TicketAccess) -> Response:
    """Read-only: the ticket and its forms; changes nothing."""
    with current_runtime().db.session() as session:
        try:
            ticket = access.open(session)
        except Refusal as refusal:
            return access.refused(refusal)
        return _page(access, session, ticket, notice=NOTICES.get(request.args.get("ok", "")))


def answer(access: TicketAccess) -> BaseResponse:
    """Store the answer and the reply it owes in one transaction, then try to post it at once."""
    text = _field("answer")
    reply_ids: list[int] = []
    try:
        with current_runtime().db.scope() as session:
            ticket = access.open(session, lock=True)
            if ticket.status not in CAN_ANSWER:
                return _not_actionable(access, session, ticket)
            error = _answer_error(ticket, text)
            if error:
                return _page(access, session, ticket, errors={"answer": error}, form={"answer": text}, status=422)
            reply_ids = decisions.agency_answers(session, ticket, text, actor=access.actor(ticket))
    except Refusal as refusal:
        return access.refused(refusal)
    if reply_ids:
        current_runtime().pipeline.send_replies_soon(reply_ids)
    return redirect(access.url(ok="answer"), code=303)


def not_ours(access: TicketAccess) -> Response:
    """The agency declines: back to an operator, or on to the target it names; it loses the ticket."""
    reason, suggested = _field("reason"), _field("suggested")
    try:
        with current_runtime().db.scope() as session:
            ticket = access.open(session, lock=True)
            if ticket.status not in CAN_DECLINE:
                return _not_actionable(access, session, ticket)
            errors: dict[str, str] = {}
            if not reason:
                errors["reason"] = "Alasan wajib diisi."
            elif len(reason) > NOTE_MAX_CHARS:
                errors["reason"] = f"Alasan terlalu panjang: paling banyak {NOTE_MAX_CHARS} karakter."
            target = session.get(Agency, suggested) if suggested else None
            if suggested and (target is None or not target.active or suggested == ticket.agency_code):
                errors["suggested"] = "Pilih instansi tujuan dari daftar."
            if errors:
                return _page(access, session, ticket, errors=errors, status=422,
                             form={"reason": reason, "suggested": suggested})
            number, declined_by = ticket.number, ticket.agency_code
            decisions.agency_declines(session, ticket, reason=reason, suggested=suggested or None,
                                      actor=access.actor(ticket))
            target_name = target.name if target else None
    except Refusal as refusal:
        return access.refused(refusal)
    log.info("agency %s declined ticket %s", declined_by, number)
    return make_response(render_template("agency/declined.html", number=number, target_name=target_name,
                                         inbox_url=access.inbox_url))


def done(access: TicketAccess) -> BaseResponse:
    """Close the ticket: allowed once an answer exists, or with a note saying what was done."""
    note = _field("note")
    try:
        with current_runtime().db.scope() as session:
            ticket = access.open(session, lock=True)
            if ticket.status not in CAN_ANSWER:
                return _not_actionable(access, session, ticket)
            has_answer = session.scalar(select(AgencyAnswer.id).where(
                AgencyAnswer.ticket_id == ticket.id, AgencyAnswer.action == "answer")) is not None
            error = None
            if len(note) > NOTE_MAX_CHARS:
                error = f"Catatan terlalu panjang: paling banyak {NOTE_MAX_CHARS} karakter."
            elif not note and not has_answer:
                error = "Belum ada jawaban: tulis catatan tindak lanjut sebelum menandai selesai."
            if error:
                return _page(access, session, ticket, errors={"note": error}, form={"note": note}, status=422)
            decisions.agency_closes(session, ticket, note=note, actor=access.actor(ticket))
    except Refusal as refusal:
        return access.refused(refusal)
    return redirect(access.url(ok="done"), code=303)
