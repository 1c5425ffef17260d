"""E-mail to agencies: build the forward, reminder and escalation messages and send them over SMTP_URL.

Messages are rendered from Jinja2 templates in ``templates/mail`` (plain text and HTML, Indonesian); HTML is
autoescaped, so a citizen's text can never add markup to an agency's mailbox. :func:`send_email` sorts every
failure into :class:`MailTemporaryError` (retry later: refused connection, timeout, 4xx) or
:class:`MailPermanentError` (5xx: retrying cannot help), so the caller's queue retries only what can heal.
"""

from __future__ import annotations

import logging
import smtplib
import ssl
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid, parseaddr
from functools import lru_cache
from pathlib import Path
from urllib.parse import parse_qsl, unquote, urlsplit
from zoneinfo import ZoneInfo

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

logger = logging.getLogger(__name__)

TEMPLATE_DIR = Path(__file__).parent / "templates" / "mail"
DISPLAY_TZ = ZoneInfo("Asia/Makassar")
_DAYS = ("Senin", "Selasa", "Rabu", "Kamis", "Jumat", "Sabtu", "Minggu")
_MONTHS = ("Januari", "Februari", "Maret", "April", "Mei", "Juni", "Juli", "Agustus", "September", "Oktober",
           "November", "Desember")
CHANNEL_LABELS = {
    "comment": "Komentar di Halaman Facebook",
    "post": "Kiriman warga di Halaman Facebook",
    "messenger": "Pesan Facebook Messenger",
}
_URL_HELP = "expected e.g. smtp://user:pass@host:587?starttls=1 or smtps://user:pass@host:465?timeout=10"


class MailError(Exception):
    """A message could not be handed to the SMTP server; ``smtp_code`` is the server's reply code if any."""

    def __init__(self, message: str, smtp_code: int | None = None) -> None:
        super().__init__(message)
        self.smtp_code = smtp_code


class MailTemporaryError(MailError):
    """Worth retrying later: the server is down, slow, or answered 4xx."""


class MailPermanentError(MailError):
    """Not worth retrying: the server answered 5xx (e.g. 550 recipient rejected) or refuses our setup."""


@dataclass(frozen=True)
class SmtpConfig:
    """Where and how to submit mail; ``security`` is "none", "starttls" or "tls" (implicit, smtps://)."""

    host: str
    port: int
    username: str = ""
    password: str = field(default="", repr=False)
    security: str = "none"
    timeout: float = 10.0

    @classmethod
    def from_url(cls, url: str) -> SmtpConfig:
        """Parse SMTP_URL; STARTTLS is on by default when credentials are given, off otherwise."""
        parts = urlsplit((url or "").strip())
        if parts.scheme not in {"smtp", "smtps"}:
            raise ValueError(f"SMTP_URL must start with smtp:// or smtps://; {_URL_HELP}")
        try:
            port = parts.port
        except ValueError:
            raise ValueError(f"SMTP_URL has an invalid port; {_URL_HELP}") from None
        if not parts.hostname or parts.path not in {"", "/"} or parts.fragment:
            raise ValueError(f"SMTP_URL needs a host and nothing after it but ?parameters; {_URL_HELP}")
        params = dict(parse_qsl(parts.query, keep_blank_values=True))
        unknown = set(params) - {"starttls", "timeout"}
        if unknown:
            raise ValueError(f"SMTP_URL has unknown parameters {sorted(unknown)}; {_URL_HELP}")
        username, password = unquote(parts.username or ""), unquote(parts.password or "")
        starttls = _flag(params["starttls"]) if "starttls" in params else bool(username)
        if parts.scheme == "smtps" and "starttls" in params:
            raise ValueError("SMTP_URL: smtps:// is already TLS, drop the starttls parameter")
        security = "tls" if parts.scheme == "smtps" else ("starttls" if starttls else "none")
        try:
            timeout = float(params.get("timeout", "10"))
        except ValueError:
            raise ValueError(f"SMTP_URL timeout must be a number of seconds; {_URL_HELP}") from None
        if not 0 < timeout <= 600:
            raise ValueError("SMTP_URL timeout must be between 0 and 600 seconds")
        default_port = {"tls": 465, "starttls": 587, "none": 25}[security]
        return cls(parts.hostname, port or default_port, username, password, security, timeout)


def _flag(value: str) -> bool:
    if value.lower() in {"1", "true", "yes", "on"}:
        return True
    if value.lower() in {"0", "false", "no", "off"}:
        return False
    raise ValueError(f"SMTP_URL starttls must be 1 or 0, got {value!r}")


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


def format_wita(moment: datetime) -> str:
    """Indonesian long form in WITA, e.g. "Rabu, 2 Desember 2026 pukul 14.00 WITA"."""
    local = moment.astimezone(DISPLAY_TZ)
    return f"{_DAYS[local.weekday()]}, {local.day} {_MONTHS[local.month - 1]} {local.year} pukul {local:%H.%M} WITA"


def _short_wita(moment: datetime) -> str:
    local = moment.astimezone(DISPLAY_TZ)
    return f"{local.day} {_MONTHS[local.month - 1][:3]} {local.year} {local:%H.%M} WITA"


def format_duration(span: timedelta) -> str:
    """Indonesian duration rounded down to minutes, e.g. "1 hari 3 jam 5 menit"."""
    minutes = max(int(span.total_seconds() // 60), 0)
    if minutes == 0:
        return "kurang dari 1 menit"
    days, rest = divmod(minutes, 24 * 60)
    hours, minutes = divmod(rest, 60)
    pieces = [f"{n} {unit}" for n, unit in ((days, "hari"), (hours, "jam"), (minutes, "menit")) if n]
    return " ".join(pieces)


def _http_url(value: str | None, *, required: bool, name: str) -> str | None:
    if value and urlsplit(value).scheme in {"http", "https"} and urlsplit(value).hostname:
        return value
    if required:
        raise ValueError(f"{name} must be an absolute http(s) URL")
    return None


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
    return {
        "number": ticket.number,
        "agency_name": _one_line(ticket.agency_name),
        "agency_code": ticket.agency_code,
        "text": ticket.text.strip() or "(tanpa teks, lihat lampiran di Facebook)",
        "citizen_label": _one_line(ticket.citizen_label) or "Warga",
        "channel_label": CHANNEL_LABELS.get(ticket.channel, ticket.channel),
        "location_label": _one_line(ticket.location_label or "") or "Tidak disebutkan",
        "facebook_url": _http_url(ticket.facebook_url, required=False, name="facebook_url"),
        "answer_url": _http_url(ticket.answer_url, required=True, name="answer_url"),
        "created": format_wita(ticket.created_at),
        "deadline": format_wita(ticket.deadline),
        "link_expires": format_wita(expires) if expires else None,
        "urgent": ticket.urgent,
        "remaining": format_duration(ticket.deadline - now),
        "overdue": format_duration(now - ticket.deadline),
    }


def _compose(template: str, subject: str, context: dict[str, object], *, number: str, mail_from: str,
             to: list[str], message_id: str | None) -> EmailMessage:
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
               f"— batas jawab {_short_wita(ticket.deadline)}")
    return _compose("forward", subject, context, number=ticket.number, mail_from=mail_from, to=to,
                    message_id=message_id)


def build_reminder_email(ticket: ForwardContent, *, mail_from: str, to: list[str], now: datetime | None = None,
                         message_id: str | None = None) -> EmailMessage:
    """A reminder before the deadline to an agency that has not answered yet."""
    context = _context(ticket, now or datetime.now(UTC))
    subject = (f"[NTB Care] Pengingat {ticket.number}: mohon dijawab sebelum {_short_wita(ticket.deadline)} "
               f"(sisa {context['remaining']})")
    return _compose("reminder", subject, context, number=ticket.number, mail_from=mail_from, to=to,
                    message_id=message_id)


def build_escalation_email(ticket: ForwardContent, *, mail_from: str, to: list[str], now: datetime | None = None,
                           console_url: str | None = None, message_id: str | None = None) -> EmailMessage:
    """To operators and the head of the agency once the deadline has passed; no agency answer link inside."""
    context = _context(ticket, now or datetime.now(UTC))
    context["console_url"] = _http_url(console_url, required=False, name="console_url")
    subject = (f"[NTB Care] Eskalasi {ticket.number}: {context['agency_name']} belum menjawab, "
               f"lewat batas {_short_wita(ticket.deadline)}")
    return _compose("escalation", subject, context, number=ticket.number, mail_from=mail_from, to=to,
                    message_id=message_id)


def _error_for_code(code: int, detail: str) -> MailError:
    kind = MailTemporaryError if 400 <= code < 500 else MailPermanentError
    return kind(f"SMTP server answered {code}: {detail}", smtp_code=code)


def _connect(config: SmtpConfig) -> smtplib.SMTP:
    if config.security == "tls":
        return smtplib.SMTP_SSL(config.host, config.port, timeout=config.timeout,
                                context=ssl.create_default_context())
    smtp = smtplib.SMTP(config.host, config.port, timeout=config.timeout)
    if config.security == "starttls":
        try:
            smtp.starttls(context=ssl.create_default_context())
        except BaseException:
            smtp.close()
            raise
    return smtp


def send_email(config: SmtpConfig, message: EmailMessage) -> None:
    """Hand ``message`` to the SMTP server, or raise MailTemporaryError / MailPermanentError."""
    number, message_id = message.get("X-NTBCare-Ticket", "-"), message.get("Message-ID", "-")
    smtp: smtplib.SMTP | None = None
    try:
        smtp = _connect(config)
        if config.username:
            smtp.login(config.username, config.password)
        refused = smtp.send_message(message)
    except smtplib.SMTPRecipientsRefused as exc:
        codes = [code for code, _ in exc.recipients.values()]
        kind = MailTemporaryError if any(400 <= code < 500 for code in codes) else MailPermanentError
        raise kind(f"SMTP server refused every recipient (codes {sorted(set(codes))})",
                   smtp_code=min(codes, default=None)) from exc
    except smtplib.SMTPResponseException as exc:
        detail = exc.smtp_error.decode("utf-8", "replace") if isinstance(exc.smtp_error, bytes) else exc.smtp_error
        raise _error_for_code(exc.smtp_code, str(detail)) from exc
    except (smtplib.SMTPNotSupportedError, ssl.SSLCertVerificationError) as exc:
        raise MailPermanentError(f"SMTP setup rejected ({type(exc).__name__}): check SMTP_URL") from exc
    except (smtplib.SMTPException, OSError) as exc:
        raise MailTemporaryError(f"SMTP server unreachable ({type(exc).__name__}: {exc})") from exc
    finally:
        if smtp is not None:
            _close(smtp)
    if refused:
        logger.warning("mail for ticket %s accepted for some recipients only; refused: %s",
                       number, {address: code for address, (code, _) in refused.items()})
    logger.info("mail for ticket %s handed to %s:%s (Message-ID %s)", number, config.host, config.port, message_id)


def _close(smtp: smtplib.SMTP) -> None:
    """Say QUIT politely; a failure here must not turn a delivered message into a retried one."""
    try:
        smtp.quit()
    except (smtplib.SMTPException, OSError):
        smtp.close()
