"""How a ticket reads to a person, in Bahasa Indonesia: labels for statuses, history entries, actors and reply
delivery, the deadline in words, and the facts a ticket page shows.

Kept apart from the views so every surface that shows a ticket (the agency page now, the operator console
later) words the same fact the same way, and the views keep only what a request does.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from ntbcare.core.display import CHANNEL_LABELS, format_duration, format_short_wita, format_wita
from ntbcare.core.models import Agency, AgencyAnswer, AuditEntry, Reply, Ticket, TicketStatus
from ntbcare.core.queries import facebook_url, location_label, reduced_name
from ntbcare.core.security import CdnTarget, cdn_target, defang_url, http_url
from ntbcare.core.settings import Settings
from ntbcare.pipeline import decisions
from ntbcare.pipeline.media_view import page_media
from ntbcare.pipeline.ticket_timeline import photos

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


def status_label(status: str) -> str:
    """A ticket status as people read it; an unknown status is shown as stored rather than hidden."""
    return STATUS_LABELS.get(status, status)


def actor_label(actor: str) -> str:
    """Who acted, as people read it; for an agency also which one and, from its inbox, which address:
    ``agency:PLN`` reads "Instansi PLN", ``agency:PLN:humas@pln.test`` "Instansi PLN (humas@pln.test)"."""
    kind, _, rest = actor.partition(":")
    label = ACTOR_LABELS.get(kind, "Sistem")
    if kind != "agency" or not rest:
        return label
    code, _, email = rest.partition(":")
    return f"{label} {code}" + (f" ({email})" if email else "")


def history(session: Session, ticket: Ticket) -> list[dict[str, str]]:
    """The audit trail as rows (when, what, who); internal entries with no wording and no status are left out."""
    entries = session.scalars(select(AuditEntry).where(AuditEntry.ticket_id == ticket.id)
                              .order_by(AuditEntry.at, AuditEntry.id))
    rows = []
    for entry in entries:
        what = HISTORY_LABELS.get(entry.action)
        if what is None and entry.to_status:
            what = f"Status: {status_label(entry.to_status)}"
        if what is None:
            continue
        who = actor_label(entry.actor)
        rows.append({"at": format_wita(entry.at), "what": what, "who": who})
    return rows


def deadline(ticket: Ticket, now: datetime) -> dict[str, Any] | None:
    """The first-answer deadline: when it was answered, or how long is left or overdue."""
    if ticket.deadline_at is None:
        return None
    if ticket.answered_at is not None:
        return {"at": format_wita(ticket.deadline_at), "answered": format_wita(ticket.answered_at)}
    overdue = ticket.deadline_at <= now
    span = now - ticket.deadline_at if overdue else ticket.deadline_at - now
    return {"at": format_wita(ticket.deadline_at), "overdue": overdue, "span": format_duration(span)}


def delivery_state(states: dict[str, str], answer: AgencyAnswer) -> str | None:
    """The answer's delivery in words; a public fallback that was sent counts as delivered."""
    fallback = states.get(f"answer-fallback:{answer.id}")
    status = "sent" if fallback == "sent" else states.get(f"answer:{answer.id}")
    return REPLY_STATE_LABELS.get(status) if status else None


def answers(session: Session, ticket: Ticket) -> list[dict[str, Any]]:
    """The agency's earlier answers, oldest first, each with how far its reply to the citizen got."""
    stored = session.scalars(select(AgencyAnswer).where(AgencyAnswer.ticket_id == ticket.id,
                                                        AgencyAnswer.action == "answer")
                             .order_by(AgencyAnswer.created_at, AgencyAnswer.id)).all()
    states = {reply.key: reply.status for reply in session.scalars(
        select(Reply).where(Reply.ticket_id == ticket.id, Reply.kind == "answer").order_by(Reply.id))}
    return [{"at": format_wita(a.created_at), "text": a.text, "agency": a.agency_code,
             "state": delivery_state(states, a)} for a in stored]


def ticket_facts(session: Session, settings: Settings, ticket: Ticket, now: datetime) -> dict[str, Any]:
    """What a ticket page shows about the ticket; the citizen only as a first name and an initial. Kept photos
    and files link through signed links for the ticket's agency at its current link version."""
    earlier = answers(session, ticket)
    media = page_media(session, settings, [ticket], ticket.agency_code).get(ticket.id) if ticket.agency_code else {}
    return {
        "attachments": agency_attachments(photos(ticket.attachments, media)),
        "ticket": ticket,
        "agency": session.get(Agency, ticket.agency_code) if ticket.agency_code else None,
        "status_label": status_label(ticket.status),
        "channel_label": CHANNEL_LABELS.get(ticket.channel, ticket.channel),
        "citizen": reduced_name(ticket) or "Warga",
        "location": location_label(ticket) or "Tidak disebutkan",
        "facebook_url": http_url(facebook_url(ticket)),  # never a javascript: or data: href
        "opened": format_wita(ticket.opened_at),
        "deadline": deadline(ticket, now),
        "history": history(session, ticket),
        "answers": earlier,
        "has_answer": bool(earlier),
        "public": decisions.answer_is_public(ticket),
        "messenger_closed": decisions.messenger_window_closed(settings, ticket, now),
    }


def agency_attachments(links: list[dict[str, str]]) -> list[dict[str, str]]:
    """What an agency may click: a kept file, Facebook's own CDN link while it is not kept yet, or the map of a
    shared location (a link we build from its coordinates). Any other URL a citizen's payload carried (a shared
    link) is shown defanged, as in the agency's e-mail, never as a link."""
    shown = []
    for link in links:
        if link["stored"] or link["type"] == "location" or isinstance(cdn_target(link["url"]), CdnTarget):
            shown.append(link)
        else:
            shown.append({**link, "url": "", "text": defang_url(link["url"])})
    return shown


FIRST_WORDS = 14


def first_words(text: str, count: int = FIRST_WORDS) -> str:
    """The opening of a complaint for a list: whole words, an ellipsis when there is more."""
    words = (text or "").split()
    if not words:
        return "(tanpa teks)"
    return " ".join(words[:count]) + (" …" if len(words) > count else "")


def clock(ticket: Ticket, now: datetime) -> dict[str, Any]:
    """The deadline as a list shows it: answered, closed, overdue by, or time left."""
    if ticket.status == TicketStatus.CLOSED:
        return {"text": "Selesai", "tone": "done"}
    if ticket.answered_at is not None:
        return {"text": f"Dijawab {format_short_wita(ticket.answered_at)}", "tone": "done"}
    if ticket.deadline_at is None:
        return {"text": "Belum ada batas waktu", "tone": "none"}
    if ticket.deadline_at <= now:
        return {"text": f"Lewat batas {format_duration(now - ticket.deadline_at)}", "tone": "late"}
    return {"text": f"Sisa {format_duration(ticket.deadline_at - now)}", "tone": "left"}


def inbox_row(ticket: Ticket, agency_code: str, now: datetime, returned_at: datetime | None = None) -> dict[str, Any]:
    """One row of the agency inbox; ``link`` only while the ticket is still this agency's."""
    return {
        "number": ticket.number,
        "link": ticket.agency_code == agency_code,
        "channel": CHANNEL_LABELS.get(ticket.channel, ticket.channel),
        "received": format_short_wita(ticket.opened_at),
        "clock": clock(ticket, now),
        "urgent": ticket.urgent,
        "location": location_label(ticket) or "Lokasi tidak disebutkan",
        "first_words": first_words(ticket.text),
        "returned": format_short_wita(returned_at) if returned_at else None,
        "status_label": status_label(ticket.status),
    }
