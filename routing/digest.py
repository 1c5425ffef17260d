"""The weekly digest: every Monday from 07:00 WITA, each agency with open tickets gets one e-mail listing them
(overdue first) with where to sign in to its inbox.

The digest is an outbox row keyed by agency and week, so however many sweepers run on Monday (from 07:00 to
midnight WITA, which also covers a server that was down early that morning), each agency gets it once per
week; on other days none is owed, so a deployment started mid-week does not send a "weekly" digest on a
Friday. An agency with ``digest: false`` in the registry gets none.
"""

from __future__ import annotations

from datetime import datetime, time, timedelta
from email.message import EmailMessage
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from ntbcare.core.agency_account_mail import DigestRow, build_digest_email
from ntbcare.core.db import Database
from ntbcare.core.models import Agency, OutboundMail, Ticket, TicketStatus, utcnow
from ntbcare.core.queries import location_label
from ntbcare.core.settings import Settings
from routing.route import add_mail

WITA = ZoneInfo("Asia/Makassar")
DIGEST_STARTS = time(7, 0)  # Monday, WITA
OPEN = (TicketStatus.ROUTED, TicketStatus.FORWARDED)
FIRST_WORDS = 12


def digest_week(now: datetime) -> str:
    """The digest week ``now`` falls in: weeks run from Monday 07:00 WITA to the next Monday 07:00."""
    shifted = now.astimezone(WITA) - timedelta(hours=DIGEST_STARTS.hour, minutes=DIGEST_STARTS.minute)
    year, week, _ = shifted.isocalendar()
    return f"{year}-W{week:02d}"


def wants_digest(agency: Agency) -> bool:
    return bool(agency.active and agency.emails and (agency.data or {}).get("digest", True) is not False)


def open_tickets(session: Session, agency_code: str, now: datetime) -> list[Ticket]:
    """The agency's open tickets, overdue first, then by deadline (tickets without one last), oldest first."""
    tickets = session.scalars(select(Ticket).where(Ticket.agency_code == agency_code, Ticket.status.in_(OPEN))
                              .order_by(Ticket.opened_at, Ticket.id)).all()
    far = datetime.max.replace(tzinfo=now.tzinfo)
    return sorted(tickets, key=lambda t: (not (t.deadline_at is not None and t.deadline_at <= now),
                                          t.deadline_at or far))


def digest_due(now: datetime) -> bool:
    """Monday from 07:00 until midnight, WITA."""
    local = now.astimezone(WITA)
    return local.weekday() == 0 and local.time() >= DIGEST_STARTS


def owe_weekly_digests(db: Database, now: datetime | None = None) -> list[int]:
    """On Monday from 07:00 WITA, owe this week's digest to every agency that wants one and has open
    tickets; returns the new mail ids (none on other days, or when already owed this week)."""
    at = now or utcnow()
    if not digest_due(at):
        return []
    week = digest_week(at)
    created: list[int] = []
    with db.scope() as session:
        for agency in session.scalars(select(Agency).order_by(Agency.code)):
            if not wants_digest(agency) or not open_tickets(session, agency.code, at):
                continue
            mail = add_mail(session, key=f"digest:{agency.code}:{week}", kind="digest", ticket=None,
                            agency_code=agency.code, recipients=list(agency.emails))
            if mail is not None:
                session.flush()
                created.append(mail.id)
    return created


def build_digest(session: Session, settings: Settings, mail: OutboundMail, agency: Agency,
                 now: datetime) -> EmailMessage:
    """The digest as it stands when it is sent (tickets answered since it was owed are left out)."""
    rows = [DigestRow(number=t.number, received_at=t.opened_at, deadline=t.deadline_at, location=location_label(t),
                      first_words=" ".join((t.text or "").split()[:FIRST_WORDS]))
            for t in open_tickets(session, agency.code, now)]
    week = mail.key.rsplit(":", 1)[-1]
    return build_digest_email(agency_name=agency.name, agency_code=agency.code, rows=rows,
                              sign_in_url=f"{settings.public_base_url}/agency/login", week=week, now=now,
                              mail_from=settings.mail_from, to=list(mail.recipients), message_id=mail.message_id)
