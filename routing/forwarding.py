"""Sending the e-mails we owe (forward, reminder, escalation) and deciding when follow-ups are due.

Each mail is a row written before any SMTP traffic. A sender claims due rows (``sending`` with a lease),
sends, and records the outcome: ``sent``; back to ``pending`` with a backoff on a temporary failure (an
outage, a 4xx); ``failed`` on a permanent one, which puts a forward back in front of an operator. A
sender that dies mid-send leaves a lease that expires, and the mail is tried again: never lost.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from email.message import EmailMessage
from email.utils import make_msgid

from sqlalchemy import and_, or_, select
from sqlalchemy.orm import Session

from ntbcare.core.agency_mail import (
    ForwardContent,
    build_escalation_email,
    build_forward_email,
    build_reminder_email,
)
from ntbcare.core.bounces import stamp
from ntbcare.core.db import Database
from ntbcare.core.display import shared_locations
from ntbcare.core.lifecycle import audit, transition
from ntbcare.core.links import agency_link_url, make_agency_token
from ntbcare.core.mail_transport import MailPermanentError, MailTemporaryError, SmtpConfig, send_email
from ntbcare.core.models import Agency, MailStatus, OutboundMail, Ticket, TicketStatus, utcnow
from ntbcare.core.queries import facebook_url, location_label, reduced_name
from ntbcare.core.settings import Settings
from routing.deadlines import DeadlinePolicy, reminder_times
from routing.digest import build_digest
from routing.route import add_mail, put_in_review

log = logging.getLogger(__name__)

MailBuilder = Callable[[Session, Settings, OutboundMail, datetime], EmailMessage]

LEASE = timedelta(minutes=5)
MAX_BACKOFF_SECONDS = 3600.0


@dataclass
class SendResult:
    """Mail ids by outcome of one sending round (for logs and the sweeper's report)."""

    sent: list[int] = field(default_factory=list)
    retry: list[int] = field(default_factory=list)
    failed: list[int] = field(default_factory=list)


def citizen_label(ticket: Ticket) -> str:
    """The reduced citizen name with where they wrote, for the agency e-mail."""
    label = reduced_name(ticket) or "Warga"
    where = {"comment": "komentar Facebook", "post": "postingan di halaman Facebook", "messenger": "Messenger"}
    return f"{label} ({where.get(ticket.channel, 'Facebook')})"


def answer_link(settings: Settings, ticket: Ticket, agency_code: str) -> str:
    """The signed link an agency answers through; a reassignment bumps link_version and voids older ones."""
    token = make_agency_token(settings.secret_key, ticket.id, agency_code, ticket.link_version)
    return agency_link_url(settings.public_base_url, token)


def forward_content(settings: Settings, ticket: Ticket, agency: Agency, now: datetime) -> ForwardContent:
    """What every mail about this ticket to this agency shows (forward, reminder and escalation alike)."""
    return ForwardContent(
        number=ticket.number, agency_code=agency.code, agency_name=agency.name, text=ticket.text,
        citizen_label=citizen_label(ticket), channel=ticket.channel, location_label=location_label(ticket),
        facebook_url=facebook_url(ticket), created_at=ticket.opened_at, deadline=ticket.deadline_at or now,
        urgent=ticket.urgent, answer_url=answer_link(settings, ticket, agency.code),
        answer_link_expires_at=now + timedelta(days=settings.agency_link_max_age_days),
        shared_locations=tuple(shared_locations(ticket.attachments)),
    )


def _claim(db: Database, now: datetime, ids: list[int] | None, limit: int) -> list[int]:
    with db.scope() as session:
        due = or_(
            and_(OutboundMail.status == MailStatus.PENDING,
                 or_(OutboundMail.next_attempt_at.is_(None), OutboundMail.next_attempt_at <= now)),
            and_(OutboundMail.status == MailStatus.SENDING, OutboundMail.claimed_until < now),
        )
        query = select(OutboundMail).where(due).order_by(OutboundMail.id).limit(limit)
        if ids is not None:
            query = query.where(OutboundMail.id.in_(ids))
        mails = session.scalars(query.with_for_update(skip_locked=True)).all()
        for mail in mails:
            mail.status = MailStatus.SENDING
            mail.claimed_until = now + LEASE
            mail.attempts += 1
            mail.message_id = mail.message_id or make_msgid(domain="ntbcare")  # stable across retries
        return [m.id for m in mails]


def _build(session: Session, settings: Settings, mail: OutboundMail, now: datetime,
           builders: Mapping[str, MailBuilder]) -> EmailMessage:
    if mail.kind in builders:  # kinds built above routing (the monthly recap)
        return builders[mail.kind](session, settings, mail, now)
    agency = session.get(Agency, mail.agency_code) if mail.agency_code else None
    if agency is None:
        raise MailPermanentError(f"agency {mail.agency_code!r} is not in the registry")
    if mail.kind == "digest":
        return build_digest(session, settings, mail, agency, now)
    ticket = mail.ticket
    if ticket is None:
        raise MailPermanentError(f"{mail.kind} mail {mail.key!r} names no ticket")
    content = forward_content(settings, ticket, agency, now)
    if mail.kind == "forward":
        return build_forward_email(content, mail_from=settings.mail_from, to=mail.recipients,
                                   message_id=mail.message_id)
    if mail.kind == "reminder":
        return build_reminder_email(content, now=now, mail_from=settings.mail_from, to=mail.recipients,
                                    message_id=mail.message_id)
    return build_escalation_email(content, now=now, console_url=f"{settings.public_base_url}/ops/tickets/"
                                  f"{ticket.number}", mail_from=settings.mail_from, to=mail.recipients,
                                  message_id=mail.message_id)


def send_due_mails(db: Database, settings: Settings, *, ids: list[int] | None = None, limit: int = 50,
                   builders: Mapping[str, MailBuilder] | None = None) -> SendResult:
    """Send the mails that are due (or just these ids); safe to run from several workers at once.
    ``builders`` build the kinds of mail this module does not know, by kind."""
    result = SendResult()
    if not settings.smtp_url:
        return result  # nothing is lost: they stay pending until SMTP_URL is set
    config = SmtpConfig.from_url(settings.smtp_url)
    now = utcnow()
    for mail_id in _claim(db, now, ids, limit):
        # Building only reads (the session is never committed): a read session, so a slow build (the monthly
        # recap renders a PDF) never keeps SQLite's write lock, and webhook commits, waiting.
        with db.read_session() as session:
            mail = session.get(OutboundMail, mail_id)
            if mail is None:
                continue  # deleted since it was claimed: nothing is owed any more
            message: EmailMessage | None = None
            error: Exception | None = None
            try:
                message = _build(session, settings, mail, now, builders or {})
            except (MailPermanentError, ValueError) as exc:
                error = exc
        if message is not None:
            try:
                send_email(config, message, envelope_from=stamp(settings, message, mail_id))
            except (MailTemporaryError, MailPermanentError) as exc:
                error = exc
        _record_outcome(db, mail_id, error, result)
    return result


def _record_outcome(db: Database, mail_id: int, error: Exception | None, result: SendResult) -> None:
    now = utcnow()
    with db.scope() as session:
        mail = session.get(OutboundMail, mail_id)
        if mail is None:
            return
        ticket = mail.ticket
        if error is None:
            mail.sent_at, mail.claimed_until = now, None
            result.sent.append(mail_id)
            if mail.status == MailStatus.BOUNCED:  # its bounce was read before this outcome: it stays bounced
                return
            mail.status, mail.error = MailStatus.SENT, None
            if ticket is None:
                return
            if mail.kind == "forward" and ticket.status == TicketStatus.ROUTED:
                ticket.forwarded_at = now
                transition(session, ticket, TicketStatus.FORWARDED, action="forwarded",
                           detail={"agency": mail.agency_code, "to": mail.recipients})
            else:
                audit(session, ticket, f"{mail.kind}_sent", detail={"to": mail.recipients})
            return
        mail.error = f"{type(error).__name__}: {error}"[:2000]
        mail.claimed_until = None
        if isinstance(error, MailTemporaryError):
            delay = random.uniform(0, min(MAX_BACKOFF_SECONDS, 30.0 * 2 ** max(0, mail.attempts - 1)))
            mail.status, mail.next_attempt_at = MailStatus.PENDING, now + timedelta(seconds=delay)
            result.retry.append(mail_id)
            log.warning("mail %s (%s) not sent, retrying in %.0fs: %s", mail_id, mail.kind, delay, error)
            return
        mail.status = MailStatus.FAILED
        result.failed.append(mail_id)
        log.error("mail %s (%s) refused for good: %s", mail_id, mail.kind, error)
        if mail.kind == "forward" and ticket is not None and ticket.status == TicketStatus.ROUTED:
            put_in_review(session, ticket, "forward_failed", actor="mailer", detail={"error": mail.error})


def schedule_followups(db: Database, settings: Settings, policy: DeadlinePolicy) -> list[int]:
    """Owe reminders before the deadline and an escalation after it, for tickets not yet answered."""
    now = utcnow()
    created: list[int] = []
    with db.scope() as session:
        tickets = session.scalars(
            select(Ticket).where(Ticket.status == TicketStatus.FORWARDED, Ticket.deadline_at.is_not(None),
                                 Ticket.answered_at.is_(None))
        ).all()
        for ticket in tickets:
            agency = session.get(Agency, ticket.agency_code) if ticket.agency_code else None
            deadline = ticket.deadline_at
            if agency is None or deadline is None:
                continue
            start = ticket.forwarded_at or ticket.opened_at
            calendar = None if ticket.tier == "urgent" else policy.calendar
            for n, moment in enumerate(reminder_times(start, deadline, calendar=calendar,
                                                      fractions=policy.reminder_fractions)):
                if moment <= now < deadline and agency.emails:
                    mail = add_mail(session, key=f"reminder:{ticket.id}:{n}", kind="reminder", ticket=ticket,
                                    agency_code=agency.code, recipients=agency.emails)
                    if mail is not None:
                        session.flush()
                        created.append(mail.id)
            if now >= deadline:
                heads = list((agency.data or {}).get("head_emails") or [])
                recipients = list(dict.fromkeys([*settings.operator_emails, *heads]))
                key = f"escalation:{ticket.id}"
                if recipients:
                    mail = add_mail(session, key=key, kind="escalation", ticket=ticket, agency_code=agency.code,
                                    recipients=recipients)
                    if mail is not None:
                        session.flush()
                        created.append(mail.id)
                        audit(session, ticket, "overdue", detail={"deadline": deadline.isoformat(),
                                                                  "escalated_to": recipients})
    return created

