"""Merging two tickets about one problem, and splitting a message off into a ticket of its own.

Nothing is lost either way: a merged ticket keeps its messages and points to the survivor
(``merged_into_id``, status ``merged``), whose timeline and ``tickets show`` read them from there; a split
moves one message to a new ticket in review. Both hold every ticket they change
(:mod:`ntbcare.pipeline.ticket_claim`), so a concurrent action on either is refused, not interleaved; a merge
holds its two tickets in id order, so crossed merges (A into B, B into A) cannot deadlock.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from ntbcare.core.lifecycle import WITA, audit, reserve_ticket_numbers, transition
from ntbcare.core.models import MediaFile, Ticket, TicketMessage, TicketStatus, utcnow
from ntbcare.pipeline.decisions import DecisionRefused
from ntbcare.pipeline.join import Pipeline
from ntbcare.pipeline.ticket_claim import claim_in_order, claimed, conflicts_refused, lookup, refuse_merged
from ntbcare.pipeline.ticket_ops import Done


def merged_ids(session: Session, ticket: Ticket) -> list[int]:
    """The tickets merged into ``ticket`` (a merge re-points earlier merges, so one level is all)."""
    return list(session.scalars(select(Ticket.id).where(Ticket.merged_into_id == ticket.id)))


def _free_number(session: Session) -> str:
    """The year's next reference number; skips numbers already taken (tickets imported or made by hand while
    the counter lagged) rather than failing on the unique number."""
    year = utcnow().astimezone(WITA).year
    for _attempt in range(1000):
        (number,) = reserve_ticket_numbers(session, year, 1)
        if session.scalar(select(Ticket.id).where(Ticket.number == number)) is None:
            return number
    raise DecisionRefused("Nomor tiket baru tidak dapat dibuat; periksa penghitung nomor tiket.")


def merge(pipeline: Pipeline, number: str, into: str, *, actor: str, seen: datetime | None = None) -> Done:
    """Fold ``number`` into ``into``: same problem, one ticket to follow. The merged ticket's agency links
    stop working; tickets merged into it earlier move on to the survivor."""
    target = (into or "").strip()
    if not target:
        raise DecisionRefused("Isi nomor tiket tujuan penggabungan.")
    with conflicts_refused(number), pipeline.db.scope() as session:
        ticket = lookup(session, number)
        survivor = session.scalars(select(Ticket).where(Ticket.number == target.upper())).first()
        other = survivor is not None and survivor.id != ticket.id
        # Both held, lowest id first (one order for every merge, so crossed merges queue, never deadlock).
        claim_in_order(session, [(ticket, seen), (survivor, None)] if other and survivor else [(ticket, seen)])
        refuse_merged(session, ticket)
        if survivor is None:
            raise DecisionRefused(f"Tiket tujuan {target[:40]!r} tidak ditemukan. Periksa nomornya.")
        if not other:
            raise DecisionRefused("Tiket tidak dapat digabung ke dirinya sendiri.")
        if survivor.status == TicketStatus.MERGED:
            raise DecisionRefused(f"Tiket tujuan {survivor.number} sudah digabung ke tiket lain; "
                                  "gabungkan ke tiket akhirnya.")
        session.execute(update(Ticket).where(Ticket.merged_into_id == ticket.id)
                        .values(merged_into_id=survivor.id).execution_options(synchronize_session=False))
        ticket.merged_into_id = survivor.id
        ticket.review_reason = None
        ticket.link_version += 1
        transition(session, ticket, TicketStatus.MERGED, actor=actor, action="merged",
                   detail={"into": survivor.number})
        audit(session, survivor, "merged_in", actor=actor, detail={"from": ticket.number})
        return Done(ticket.number, f"Tiket {ticket.number} digabung ke {survivor.number}.")


def split(pipeline: Pipeline, number: str, message_id: int | None, *, actor: str,
          seen: datetime | None = None) -> Done:
    """Move one message off into a new ticket in the review queue (a different problem in the same thread).
    The opening message stays: it is what the ticket is."""
    if message_id is None:
        raise DecisionRefused("Pilih pesan yang akan dipisah menjadi tiket baru.")
    with claimed(pipeline.db, number, seen) as (session, ticket):
        refuse_merged(session, ticket)
        message = session.get(TicketMessage, message_id)
        if message is None or message.ticket_id != ticket.id:
            raise DecisionRefused(f"Pesan itu bukan bagian dari tiket {ticket.number}. Muat ulang halamannya.")
        if message.external_id == ticket.origin_id:
            raise DecisionRefused("Pesan pembuka tidak dapat dipisah; pisahkan pesan lain, atau tutup tiketnya.")
        new_number = _free_number(session)
        new = Ticket(number=new_number, status=TicketStatus.REVIEW, channel=ticket.channel,
                     text=message.text or "", attachments=list(message.attachments or []),
                     citizen_id=ticket.citizen_id, origin_id=f"split:{message.external_id}",
                     post_id=ticket.post_id, psid=ticket.psid, permalink=ticket.permalink,
                     comment_id=message.external_id if message.kind in ("comment", "reply") else None,
                     tier=ticket.tier, deadline_at=ticket.deadline_at, location_code=ticket.location_code,
                     review_reason="split", opened_at=message.occurred_at,
                     last_citizen_message_at=message.occurred_at)
        session.add(new)
        session.flush()
        message.ticket = new
        session.execute(update(MediaFile).where(MediaFile.message_id == message.id)  # its photos go with it
                        .values(ticket_id=new.id).execution_options(synchronize_session=False))
        audit(session, new, "split_from", actor=actor, to_status=TicketStatus.REVIEW,
              detail={"from": ticket.number, "message": message.external_id})
        audit(session, ticket, "split_off", actor=actor, detail={"to": new.number, "message": message.external_id})
        return Done(ticket.number, f"Pesan dipisah dari {ticket.number} menjadi tiket baru {new.number}.")

