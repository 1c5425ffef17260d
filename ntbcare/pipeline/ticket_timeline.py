"""Everything that happened to a ticket, on one timeline, for the console's ticket page: the citizen's messages
(with those of tickets merged into it) and photos, webhook events, e-mails with their delivery state, the
agency's answers, Facebook replies with their state, the audit trail and internal notes.

Items carry plain text; the template escapes it. An attachment kept in MEDIA_DIR links to it through a signed
link (:mod:`ntbcare.pipeline.media_view`); any other attachment link is kept only when it is http(s).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from ntbcare.core.display import shared_locations
from ntbcare.core.models import (
    AgencyAnswer,
    AuditEntry,
    Event,
    OutboundMail,
    Reply,
    ReplyStatus,
    Ticket,
    TicketMessage,
    TicketNote,
)
from ntbcare.core.security import http_url
from ntbcare.pipeline.media_view import MediaLink

MAIL_KINDS = {"forward": "E-mail laporan ke instansi", "reminder": "E-mail pengingat ke instansi",
              "escalation": "E-mail eskalasi"}
MAIL_STATES = {"pending": "menunggu dikirim", "sending": "sedang dikirim", "sent": "terkirim", "failed": "gagal",
               "bounced": "terpental"}
REPLY_STATES = {"pending": "menunggu dikirim", "sending": "sedang dikirim", "unknown": "sedang dipastikan",
                "sent": "tampil di Facebook", "failed": "gagal", "undeliverable": "tidak dapat dikirim"}
ANSWER_KINDS = {"answer": "Jawaban instansi", "done": "Instansi menandai selesai",
                "not_ours": "Instansi: bukan kewenangan kami"}


@dataclass
class Item:
    """One line of the timeline."""

    at: datetime
    kind: str  # message, event, mail, answer, reply, audit, note
    title: str
    text: str = ""
    state: str = ""
    bad: bool = False  # a failure the operator should notice
    who: str = ""
    links: list[dict[str, str]] = field(default_factory=list)
    reply_id: int | None = None  # a reply that may be sent again
    message_id: int | None = None  # a message that may be split off


def photos(attachments: list[dict[str, Any]] | None,
           media: Mapping[str, MediaLink] | None = None) -> list[dict[str, str]]:
    """The attachments as safe links: our signed link once a file is kept (``stored``), else Facebook's http(s)
    URL with what became of the download (``note``, ``reason``); a shared location as a map link built from its
    coordinates (``note`` holds them); anything else is dropped."""
    links = []
    for attachment in attachments or []:
        if not isinstance(attachment, dict) or attachment.get("type") == "location":
            continue
        kind = str(attachment.get("type") or "file")
        kept = (media or {}).get(str(attachment.get("url") or ""))
        url = http_url(attachment.get("url"))
        if kept is not None and kept.href:
            links.append({"type": kind, "url": kept.href, "stored": "1", "note": "", "reason": ""})
        elif url:
            links.append({"type": kind, "url": url, "stored": "", "note": kept.note if kept else "",
                          "reason": kept.reason if kept else ""})
    for place in shared_locations(attachments):
        links.append({"type": "location", "url": place["map_url"], "stored": "", "note": place["coordinates"],
                      "reason": ""})
    return links


def _messages(session: Session, ticket: Ticket, media: Mapping[str, MediaLink]) -> list[Item]:
    merged = dict(session.execute(select(Ticket.id, Ticket.number).where(Ticket.merged_into_id == ticket.id)).all())
    rows = session.scalars(select(TicketMessage).where(TicketMessage.ticket_id.in_([ticket.id, *merged]))
                           .order_by(TicketMessage.occurred_at, TicketMessage.id))
    items = []
    for message in rows:
        source = f" (dari tiket {merged[message.ticket_id]})" if message.ticket_id in merged else ""
        flags = " · dihapus warga" if message.removed else " · disembunyikan" if message.hidden else ""
        opening = message.external_id == ticket.origin_id
        items.append(Item(message.occurred_at, "message", f"Pesan warga ({message.kind}){source}{flags}",
                          text=message.text or "", links=photos(message.attachments, media),
                          message_id=None if opening or source else message.id))
    return items


def timeline(session: Session, ticket: Ticket, media: Mapping[str, MediaLink] | None = None) -> list[Item]:
    """Every item of the ticket, oldest first; ``media``: its kept attachments (see :func:`photos`)."""
    items = _messages(session, ticket, media or {})
    for event in session.scalars(select(Event).where(Event.ticket_id == ticket.id)):
        items.append(Item(event.occurred_at or event.created_at, "event", f"Kejadian Facebook: {event.kind}",
                          state=event.outcome, text=event.reason or ""))
    for mail in session.scalars(select(OutboundMail).where(OutboundMail.ticket_id == ticket.id)):
        items.append(Item(mail.sent_at or mail.created_at, "mail", MAIL_KINDS.get(mail.kind, f"E-mail {mail.kind}"),
                          text=", ".join(mail.recipients or []), state=MAIL_STATES.get(mail.status, mail.status),
                          bad=mail.status in ("failed", "bounced"), who=mail.error or ""))
    for answer in session.scalars(select(AgencyAnswer).where(AgencyAnswer.ticket_id == ticket.id)):
        items.append(Item(answer.created_at, "answer", ANSWER_KINDS.get(answer.action, answer.action),
                          text=answer.text, who=answer.agency_code))
    for reply in session.scalars(select(Reply).where(Reply.ticket_id == ticket.id)):
        failed = reply.status in (ReplyStatus.FAILED, ReplyStatus.UNDELIVERABLE)
        items.append(Item(reply.sent_at or reply.created_at, "reply", f"Balasan Facebook ({reply.kind}, "
                          f"{reply.channel})", text=reply.text, state=REPLY_STATES.get(reply.status, reply.status),
                          bad=failed, who=reply.error or "", reply_id=reply.id if failed else None))
    for entry in session.scalars(select(AuditEntry).where(AuditEntry.ticket_id == ticket.id)):
        change = f" ({entry.from_status or '-'} → {entry.to_status})" if entry.to_status else ""
        detail = ", ".join(f"{k}: {v}" for k, v in sorted((entry.detail or {}).items()))
        items.append(Item(entry.at, "audit", f"Riwayat: {entry.action}{change}", text=detail, who=entry.actor))
    for note in session.scalars(select(TicketNote).where(TicketNote.ticket_id == ticket.id)):
        items.append(Item(note.created_at, "note", "Catatan internal", text=note.text, who=note.author))
    return sorted(items, key=lambda item: item.at)
