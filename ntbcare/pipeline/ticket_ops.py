"""What an operator does to one ticket from the console: assign, not a complaint, reopen, close, an internal
note, a fresh link e-mail to the agency, every agency link revoked, a failed reply sent again. Merge and split are in
:mod:`ntbcare.pipeline.ticket_merge`.

Each action holds the ticket for its transaction (:mod:`ntbcare.pipeline.ticket_claim`: two operators at
once, one wins and the other is told), writes its audit entry as ``operator:<username>``, and is refused
with a one-line Indonesian message (:class:`DecisionRefused`) rather than half done. E-mails and replies
are written in the transaction and sent after the commit, best effort; the sweeper retries the rest.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select

from bot.outbox import retry_replies
from ntbcare.core.lifecycle import audit, transition
from ntbcare.core.models import Agency, OutboundMail, Reply, ReplyStatus, Ticket, TicketNote, TicketStatus
from ntbcare.pipeline.decisions import DecisionRefused, void_links
from ntbcare.pipeline.join import Pipeline
from ntbcare.pipeline.ticket_claim import claimed, lookup, refuse_merged
from routing import decisions as routing_decisions
from routing.route import add_mail

log = logging.getLogger(__name__)

NOTE_MAX_CHARS = 4000
REOPENABLE = (TicketStatus.CLOSED, TicketStatus.NOT_COMPLAINT, TicketStatus.WITHDRAWN, TicketStatus.ANSWERED)
WITH_AGENCY = (TicketStatus.ROUTED, TicketStatus.FORWARDED, TicketStatus.ANSWERED)


@dataclass(frozen=True)
class Done:
    """What an action did, as the console tells the operator."""

    number: str
    message: str


def _send_mails(pipeline: Pipeline, ids: list[int]) -> None:
    if not ids:
        return
    try:
        pipeline.send_mails(ids)
    except Exception:
        log.exception("sending mails %s failed; the sweeper retries", ids)


def _expect_review(ticket: Ticket, in_review: bool) -> None:
    if in_review and ticket.status != TicketStatus.REVIEW:
        raise DecisionRefused(f"Tiket {ticket.number} sudah tidak di antrean tinjauan; dilewati.")


def assign(pipeline: Pipeline, number: str, agency_code: str, *, actor: str,
           seen: datetime | None = None, in_review: bool = False) -> Done:
    """Give the ticket to an agency and forward it at once, as a routed ticket is; reassigning revokes the
    old agency's links."""
    code = (agency_code or "").strip().upper()[:40]
    if not code:
        raise DecisionRefused("Pilih instansi tujuan terlebih dahulu.")
    with claimed(pipeline.db, number, seen) as (session, ticket):
        refuse_merged(session, ticket)
        _expect_review(ticket, in_review)
        agency = session.get(Agency, code)
        if agency is None or not agency.active:
            raise DecisionRefused(f"Kode instansi {code!r} tidak dikenal. Pilih instansi dari daftar.")
        if ticket.agency_code == code and ticket.status in WITH_AGENCY:
            raise DecisionRefused(f"Tiket {ticket.number} sudah ditangani {agency.name}.")
        routing_decisions.assign(session, ticket, code, actor=actor)
        session.flush()
        mail_ids = [m.id for m in session.scalars(select(OutboundMail).where(
            OutboundMail.ticket_id == ticket.id, OutboundMail.kind == "forward",
            OutboundMail.status == "pending"))]
        routed = ticket.status == TicketStatus.ROUTED
        result = Done(ticket.number, f"Tiket {ticket.number} diteruskan ke {agency.name}." if routed else
                      f"Tiket {ticket.number} ditetapkan ke {agency.name}, tetapi instansi ini belum punya "
                      "alamat e-mail kontak: tiket tetap di antrean tinjauan.")
    _send_mails(pipeline, mail_ids)
    return result


def not_complaint(pipeline: Pipeline, number: str, *, actor: str, seen: datetime | None = None,
                  in_review: bool = False) -> Done:
    """Not a complaint (a training example too); reversible by assigning or reopening it. ``in_review``: only
    if the ticket is still in the review queue (bulk decisions)."""
    with claimed(pipeline.db, number, seen) as (session, ticket):
        refuse_merged(session, ticket)
        _expect_review(ticket, in_review)
        if ticket.status == TicketStatus.NOT_COMPLAINT:
            raise DecisionRefused(f"Tiket {ticket.number} sudah ditandai bukan pengaduan.")
        routing_decisions.mark_not_complaint(session, ticket, actor=actor)
        return Done(ticket.number, f"Tiket {ticket.number} ditandai bukan pengaduan.")


def reopen(pipeline: Pipeline, number: str, *, actor: str, seen: datetime | None = None) -> Done:
    """A finished ticket goes back to the review queue, where an operator decides again."""
    with claimed(pipeline.db, number, seen) as (session, ticket):
        refuse_merged(session, ticket)
        if ticket.status not in REOPENABLE:
            raise DecisionRefused(f"Tiket {ticket.number} masih terbuka; tidak perlu dibuka kembali.")
        ticket.review_reason = "reopened"
        transition(session, ticket, TicketStatus.REVIEW, actor=actor, action="reopened")
        return Done(ticket.number, f"Tiket {ticket.number} dibuka kembali dan masuk antrean tinjauan.")


def close(pipeline: Pipeline, number: str, *, actor: str, seen: datetime | None = None) -> Done:
    """The operator closes the ticket (done, or nothing more to do)."""
    with claimed(pipeline.db, number, seen) as (session, ticket):
        refuse_merged(session, ticket)
        if ticket.status in TicketStatus.FINAL:
            raise DecisionRefused(f"Tiket {ticket.number} sudah tidak terbuka; tidak ada yang ditutup.")
        ticket.review_reason = None
        transition(session, ticket, TicketStatus.CLOSED, actor=actor, action="closed_by_operator")
        return Done(ticket.number, f"Tiket {ticket.number} ditutup.")


def add_note(pipeline: Pipeline, number: str, text: str, *, actor: str) -> Done:
    """An internal note for colleagues; never shown to citizens or agencies. Notes never conflict, so a note
    does not hold the ticket (a colleague's open form stays valid)."""
    body = (text or "").strip()
    if not body:
        raise DecisionRefused("Catatan kosong. Tulis catatannya terlebih dahulu.")
    if len(body) > NOTE_MAX_CHARS:
        raise DecisionRefused(f"Catatan terlalu panjang ({len(body)} karakter; paling banyak {NOTE_MAX_CHARS}).")
    with pipeline.db.scope() as session:
        ticket = lookup(session, number)
        note = TicketNote(ticket_id=ticket.id, author=actor, text=body)
        session.add(note)
        session.flush()
        audit(session, ticket, "note_added", actor=actor, detail={"note": note.id, "chars": len(body)})
        return Done(ticket.number, f"Catatan ditambahkan ke tiket {ticket.number}.")


def resend_link(pipeline: Pipeline, number: str, *, actor: str, seen: datetime | None = None) -> Done:
    """A fresh forward e-mail with the ticket's current link to the agency's contacts (lost, or a new
    contact); earlier links keep working until a reassignment or ``tickets revoke-links``."""
    with claimed(pipeline.db, number, seen) as (session, ticket):
        refuse_merged(session, ticket)
        agency = session.get(Agency, ticket.agency_code) if ticket.agency_code else None
        if agency is None or ticket.status not in WITH_AGENCY:
            raise DecisionRefused(f"Tiket {ticket.number} belum diteruskan ke instansi; tetapkan instansinya dulu.")
        if not agency.emails:
            raise DecisionRefused(f"{agency.name} belum punya alamat e-mail kontak. Isi kontaknya dulu.")
        sent_before = session.scalar(select(func.count()).select_from(OutboundMail).where(
            OutboundMail.ticket_id == ticket.id, OutboundMail.key.like(f"resend:{ticket.id}:%")))
        mail = add_mail(session, key=f"resend:{ticket.id}:{agency.code}:{ticket.link_version}:{(sent_before or 0) + 1}",
                        kind="forward", ticket=ticket, agency_code=agency.code, recipients=agency.emails)
        if mail is None:
            raise DecisionRefused("Tautan baru saja dikirim ulang oleh orang lain. Muat ulang halamannya.")
        session.flush()
        audit(session, ticket, "link_resent", actor=actor, detail={"agency": agency.code, "mail": mail.id})
        mail_id, result = mail.id, Done(ticket.number, f"Tautan tiket {ticket.number} dikirim ulang ke "
                                                       f"{agency.name} ({', '.join(agency.emails)}).")
    _send_mails(pipeline, [mail_id])
    return result


def revoke_links(pipeline: Pipeline, number: str, *, actor: str, seen: datetime | None = None,
                 resend: bool = False) -> Done:
    """Void every agency link issued for the ticket (one leaked) without reassigning it; with ``resend`` the
    agency's contacts get a fresh link at once, so its work goes on (its inbox sign-in is not affected)."""
    with claimed(pipeline.db, number, seen) as (session, ticket):
        refuse_merged(session, ticket)
        void_links(session, ticket, actor=actor)
        message = f"Semua tautan instansi untuk tiket {ticket.number} yang pernah dikirim kini tidak berlaku."
    if not resend:
        return Done(number, message)
    try:
        again = resend_link(pipeline, number, actor=actor)
    except DecisionRefused as refused:
        return Done(number, f"{message} Tautan baru belum dikirim: {refused}")
    return Done(number, f"{message} {again.message}")


def retry_reply(pipeline: Pipeline, number: str, *, actor: str, reply_id: int | None = None) -> Done:
    """Send a failed or undeliverable Facebook reply again, through the reply outbox: the same row is put
    back in the queue, so it can never be posted twice (a reply that might have gone out is reconciled,
    not retried)."""
    with pipeline.db.session() as session:
        ticket = lookup(session, number)
        query = select(Reply.id).where(Reply.ticket_id == ticket.id,
                                       Reply.status.in_((ReplyStatus.FAILED, ReplyStatus.UNDELIVERABLE)))
        if reply_id is not None:
            query = query.where(Reply.id == reply_id)
        ids = list(session.scalars(query))
        ticket_number = ticket.number
    if not ids:
        raise DecisionRefused(f"Tiket {ticket_number} tidak punya balasan Facebook yang gagal untuk dikirim ulang.")
    queued = retry_replies(pipeline.db, ids, actor=actor)
    if not queued:
        raise DecisionRefused("Balasan ini baru saja dikirim ulang oleh orang lain. Muat ulang halamannya.")
    pipeline.send_replies_soon(queued)
    return Done(ticket_number, f"{len(queued)} balasan Facebook tiket {ticket_number} dikirim ulang.")
