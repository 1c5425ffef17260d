"""The e-mails agencies receive: the forward of a complaint, the reminder before its deadline and the
escalation after it.

Messages are rendered from Jinja2 templates in ``templates/mail`` (plain text and HTML, Indonesian); HTML is
autoescaped, so a citizen's text can never add markup to an agency's mailbox. Sending them is
:mod:`ntbcare.core.mail_transport`'s job.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid, parseaddr
from functools import lru_cache
from pathlib import Path

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

from ntbcare.core.display import CHANNEL_LABELS, format_duration, format_short_wita, format_wita
from ntbcare.core.security import defang_text, defang_url, facebook_url, http_url

TEMPLATE_DIR = Path(__file__).parent / "templates" / "mail"


@dataclass(frozen=True)
class ForwardContent:
    """What an agency needs to act on a ticket; the citizen appears only as a reduced label."""

    number: str
    agency_code: str
    agency_name: str
    text: str
    citizen_label: str
    channel: str
    location_label: str | None
    facebook_url: str | None
    created_at: datetime
    deadline: datetime
    urgent: bool
    answer_url: str
    answer_link_expires_at: datetime | None = None
    shared_locations: tuple[dict[str, str], ...] = ()  # places the citizen shared: coordinates and a map link


def _http_url(value: str | None, *, required: bool, name: str) -> str | None:
    if http_url(value):
        return value
    if required:
        raise ValueError(f"{name} must be an absolute http(s) URL")
    return None


def _citizen_address(url: str | None) -> str | None:
    if url is None or facebook_url(url):
        return url
    return f"{defang_url(url)} (alamat disamarkan, bukan tautan NTB Care)"


def _one_line(value: str) -> str:
    return " ".join(value.split())


def _require_aware(ticket: ForwardContent, now: datetime) -> None:
    for name, moment in (("created_at", ticket.created_at), ("deadline", ticket.deadline), ("now", now)):
        if moment.tzinfo is None or moment.utcoffset() is None:
            raise ValueError(f"{name} must be a timezone-aware datetime")


@lru_cache(maxsize=1)
def _environment() -> Environment:
    return Environment(
        loader=FileSystemLoader(TEMPLATE_DIR),
        autoescape=select_autoescape(enabled_extensions=("html",), disabled_extensions=("txt",), default=True),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )


def _context(ticket: ForwardContent, now: datetime) -> dict[str, object]:
    _require_aware(ticket, now)
    expires = ticket.answer_link_expires_at
    facebook = _http_url(ticket.facebook_url, required=False, name="facebook_url")
    text = ticket.text.strip() or "(tanpa teks, lihat lampiran di Facebook)"
    return {
        "number": ticket.number,
        "agency_name": _one_line(ticket.agency_name),
        "agency_code": ticket.agency_code,
        "text": text,
        # Plain text: mail clients turn bare URLs into links, so a citizen's (and Facebook's) URLs are defanged
        # and only our answer link stays clickable.
        "text_plain": defang_text(text),
        "citizen_label": _one_line(ticket.citizen_label) or "Warga",
        "channel_label": CHANNEL_LABELS.get(ticket.channel, ticket.channel),
        "location_label": _one_line(ticket.location_label or "") or "Tidak disebutkan",
        "shared_locations": list(ticket.shared_locations),
        # A link only to Facebook itself; any other address from the payload reads as defanged text.
        "facebook_url": facebook_url(facebook),
        "facebook_url_plain": _citizen_address(facebook),
        "answer_url": _http_url(ticket.answer_url, required=True, name="answer_url"),
        "created": format_wita(ticket.created_at),
        "deadline": format_wita(ticket.deadline),
        "link_expires": format_wita(expires) if expires else None,
        "urgent": ticket.urgent,
        "remaining": format_duration(ticket.deadline - now),
        "overdue": format_duration(now - ticket.deadline),
    }


def compose(template: str, subject: str, context: dict[str, object], *, number: str, mail_from: str,
            to: list[str], message_id: str | None) -> EmailMessage:
    """A plain-text and HTML message from ``template``; ``number`` names what it is about (a ticket number,
    or a digest or sign-in reference) in its headers."""
    if not to or not all("@" in parseaddr(address)[1] for address in to):
        raise ValueError(f"to must list one or more e-mail addresses, got {to!r}")
    environment = _environment()
    message = EmailMessage()
    message["Subject"] = _one_line(subject)
    message["From"] = mail_from
    message["To"] = ", ".join(to)
    message["Date"] = format_datetime(datetime.now(UTC))
    domain = parseaddr(mail_from)[1].rpartition("@")[2] or "ntbcare.invalid"
    message["Message-ID"] = message_id or make_msgid(idstring=f"{template}.{number}", domain=domain)
    message["X-NTBCare-Ticket"] = number
    message["X-NTBCare-Kind"] = template
    message["Auto-Submitted"] = "auto-generated"
    message.set_content(environment.get_template(f"{template}.txt").render(context))
    message.add_alternative(environment.get_template(f"{template}.html").render(context), subtype="html")
    return message


def build_forward_email(ticket: ForwardContent, *, mail_from: str, to: list[str],
                        message_id: str | None = None) -> EmailMessage:
    """The first e-mail to the agency's contacts: the complaint, its deadline and the answer link."""
    context = _context(ticket, datetime.now(UTC))
    flag = "[MENDESAK] " if ticket.urgent else ""
    subject = (f"[NTB Care] {flag}{ticket.number}: Laporan baru untuk {context['agency_name']} "
               f"— batas jawab {format_short_wita(ticket.deadline)}")
    return compose("forward", subject, context, number=ticket.number, mail_from=mail_from, to=to,
                    message_id=message_id)


def build_reminder_email(ticket: ForwardContent, *, mail_from: str, to: list[str], now: datetime | None = None,
                         message_id: str | None = None) -> EmailMessage:
    """A reminder to an agency that has not answered yet: before the deadline (scheduled), or after it (an
    operator's reminder from the console's overdue board), which then says how long it is overdue."""
    moment = now or datetime.now(UTC)
    context = _context(ticket, moment)
    context["late"] = moment >= ticket.deadline
    if context["late"]:
        subject = (f"[NTB Care] Pengingat {ticket.number}: batas jawab {format_short_wita(ticket.deadline)} "
                   f"sudah lewat {context['overdue']}")
    else:
        subject = (f"[NTB Care] Pengingat {ticket.number}: mohon dijawab sebelum {format_short_wita(ticket.deadline)} "
                   f"(sisa {context['remaining']})")
    return compose("reminder", subject, context, number=ticket.number, mail_from=mail_from, to=to,
                    message_id=message_id)


def build_escalation_email(ticket: ForwardContent, *, mail_from: str, to: list[str], now: datetime | None = None,
                           console_url: str | None = None, message_id: str | None = None) -> EmailMessage:
    """To operators and the head of the agency once the deadline has passed; no agency answer link inside."""
    context = _context(ticket, now or datetime.now(UTC))
    context["console_url"] = _http_url(console_url, required=False, name="console_url")
    subject = (f"[NTB Care] Eskalasi {ticket.number}: {context['agency_name']} belum menjawab, "
               f"lewat batas {format_short_wita(ticket.deadline)}")
    return compose("escalation", subject, context, number=ticket.number, mail_from=mail_from, to=to,
                    message_id=message_id)
