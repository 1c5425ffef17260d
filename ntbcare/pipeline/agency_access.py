"""How an agency contact gets into its inbox without a password, and what the inbox lists.

A contact asks for a sign-in link with its address; when the address is a contact (``emails``) or head contact
(``data["head_emails"]``) of an active agency, a random single-use token is mailed to it and only its SHA-256
is stored (:class:`AgencySignIn`). Asking is answered the same way whatever the address, so the work that
differs (the lookup, the write, the SMTP conversation) runs off the request path, in :class:`SignInMailer`.
The inbox lists one agency's tickets; the web layer only renders what these functions return.
"""

from __future__ import annotations

import hashlib
import logging
import secrets
import threading
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.utils import make_msgid

from sqlalchemy import Select, and_, case, exists, func, or_, select, update
from sqlalchemy.orm import Session

from ntbcare.core.agency_account_mail import build_sign_in_email
from ntbcare.core.bounces import stamp
from ntbcare.core.db import Database
from ntbcare.core.mail_transport import MailError, SmtpConfig, send_email
from ntbcare.core.models import (
    Agency,
    AgencyAnswer,
    AgencySignIn,
    MailStatus,
    OutboundMail,
    Ticket,
    TicketStatus,
    utcnow,
)
from ntbcare.core.settings import Settings

log = logging.getLogger(__name__)

LINK_MINUTES = 15
LOGIN_PATH = "/agency/login"
PAGE_SIZE = 20
TABS: dict[str, tuple[str, ...]] = {
    "open": (TicketStatus.ROUTED, TicketStatus.FORWARDED),
    "answered": (TicketStatus.ANSWERED,),
    "closed": (TicketStatus.CLOSED,),
    "returned": (),  # tickets this agency declined ("bukan kewenangan"), wherever they are now
}


def normalize_email(raw: str) -> str | None:
    """The address as contacts are compared (trimmed, lower case), or None when it cannot be an address."""
    address = (raw or "").strip().lower()
    local, _, domain = address.rpartition("@")
    if not local or "." not in domain or len(address) > 254 or any(c.isspace() for c in address):
        return None
    return address


def contacts(agency: Agency) -> set[str]:
    """Every address that may sign in for ``agency``: its contacts and its head contacts."""
    heads = (agency.data or {}).get("head_emails") or []
    return {a.strip().lower() for a in [*(agency.emails or []), *heads] if isinstance(a, str) and a.strip()}


def agencies_of(session: Session, email: str) -> list[Agency]:
    """The active agencies ``email`` is a contact of, by name (a registry of ~65 rows: filtered here)."""
    agencies = session.scalars(select(Agency).where(Agency.active.is_(True)).order_by(Agency.name)).all()
    return [agency for agency in agencies if email in contacts(agency)]


def signed_in_agency(session: Session, code: str, email: str) -> Agency | None:
    """The agency a session acts for, while the address is still one of its contacts and it is active."""
    agency = session.get(Agency, code)
    return agency if agency is not None and agency.active and email in contacts(agency) else None


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def sign_in_link(settings: Settings, token: str) -> str:
    return f"{settings.public_base_url}{LOGIN_PATH}/{token}"


def create_sign_in(session: Session, email: str, now: datetime | None = None) -> tuple[AgencySignIn, str] | None:
    """A new single-use sign-in for ``email`` with its raw token, or None when it is nobody's contact."""
    agencies = agencies_of(session, email)
    if not agencies:
        return None
    at = now or utcnow()
    token = secrets.token_urlsafe(32)
    sign_in = AgencySignIn(token_hash=token_hash(token), email=email, agency_codes=[a.code for a in agencies],
                           created_at=at, expires_at=at + timedelta(minutes=LINK_MINUTES))
    session.add(sign_in)
    session.flush()
    return sign_in, token


def send_sign_in(db: Database, settings: Settings, email: str) -> int | None:
    """Mail a sign-in link to ``email`` if it is a contact; returns the ``OutboundMail`` id that records it.

    The row holds the outcome, never the link; it is written ``sending`` without a lease, so the mail sender
    never picks it up again: a sign-in link is not retried (it is short-lived; the person asks again).
    """
    with db.scope() as session:
        created = create_sign_in(session, email)
        if created is None:
            log.info("sign-in link asked for an address that is no agency's contact")
            return None
        sign_in, token = created
        names = [agency.name for agency in agencies_of(session, email)]
        mail = OutboundMail(key=f"sign-in:{sign_in.id}", kind="sign_in", ticket_id=None,
                            agency_code=sign_in.agency_codes[0], recipients=[email], status=MailStatus.SENDING,
                            attempts=1, message_id=make_msgid(domain="ntbcare"))
        session.add(mail)
        session.flush()
        mail_id, expires_at = mail.id, sign_in.expires_at
    error: str | None = None
    if not settings.smtp_url:
        error = "SMTP_URL is not set"
    else:
        try:
            message = build_sign_in_email(agency_names=names, link=sign_in_link(settings, token),
                                          expires_at=expires_at, mail_from=settings.mail_from, to=[email])
            send_email(SmtpConfig.from_url(settings.smtp_url), message,
                       envelope_from=stamp(settings, message, mail_id))
        except (MailError, ValueError) as exc:
            error = f"{type(exc).__name__}: {exc}"[:2000]
    with db.scope() as session:
        stored = session.get(OutboundMail, mail_id)
        if stored is not None:
            stored.status = MailStatus.FAILED if error else MailStatus.SENT
            stored.error, stored.sent_at = error, None if error else utcnow()
    if error:
        log.warning("sign-in mail %s not sent: %s", mail_id, error)
    return mail_id


class SignInMailer:
    """Sends sign-in mail on its own thread, so asking answers in the same time whether or not a mail goes."""

    def __init__(self, db: Database, settings: Settings) -> None:
        self.db, self.settings = db, settings
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sign-in-mail")
        self._pending: set[Future[int | None]] = set()
        self._lock = threading.Lock()

    def submit(self, email: str) -> None:
        future = self._pool.submit(self._send, email)
        with self._lock:
            self._pending.add(future)
        future.add_done_callback(self._forget)

    def _send(self, email: str) -> int | None:
        try:
            return send_sign_in(self.db, self.settings, email)
        except Exception:
            log.exception("sign-in mail could not be prepared")
            return None

    def _forget(self, future: Future[int | None]) -> None:
        with self._lock:
            self._pending.discard(future)

    def wait_idle(self, timeout: float = 30.0) -> None:
        """Wait for every submitted mail (tests, shutdown)."""
        with self._lock:
            pending = set(self._pending)
        wait(pending, timeout=timeout)

    def close(self) -> None:
        self._pool.shutdown(wait=True)


@dataclass(frozen=True)
class Grant:
    """What a consumed sign-in link grants: the address and the agencies (code, name) it may act for."""

    email: str
    agencies: tuple[tuple[str, str], ...]


def link_is_usable(session: Session, token: str, now: datetime | None = None) -> bool:
    """Whether the link would sign in now (read-only: mail scanners open links)."""
    at = now or utcnow()
    row = session.scalars(select(AgencySignIn).where(AgencySignIn.token_hash == token_hash(token))).first()
    return row is not None and row.used_at is None and row.expires_at > at


def consume(session: Session, token: str, now: datetime | None = None) -> Grant | None:
    """Use the link once: None when it is unknown, used or expired, or the address is no longer a contact."""
    at = now or utcnow()
    used = session.execute(update(AgencySignIn).where(
        AgencySignIn.token_hash == token_hash(token), AgencySignIn.used_at.is_(None), AgencySignIn.expires_at > at,
    ).values(used_at=at).execution_options(synchronize_session=False))
    if getattr(used, "rowcount", 0) != 1:
        return None
    row = session.scalars(select(AgencySignIn).where(AgencySignIn.token_hash == token_hash(token))).one()
    granted = [a for a in agencies_of(session, row.email) if a.code in (row.agency_codes or [])]
    if not granted:
        return None
    return Grant(email=row.email, agencies=tuple((a.code, a.name) for a in granted))


def session_expired(signed_in_at: float, hours: int, now: datetime | None = None) -> bool:
    """Whether a session that started at ``signed_in_at`` (epoch seconds) is older than ``hours``."""
    return (now or utcnow()).timestamp() - signed_in_at >= hours * 3600


def now_epoch() -> float:
    return utcnow().timestamp()


ACTOR_MAX_CHARS = 255  # audit_entries.actor and routing_decisions.actor are VARCHAR(255)


def inbox_actor(agency_code: str, email: str) -> str:
    """Who acted from the inbox, for the audit trail: ``agency:<CODE>:<email>`` (cut to what the column holds)."""
    return f"agency:{agency_code}:{email}"[:ACTOR_MAX_CHARS]


def agency_ticket(session: Session, agency_code: str, number: str, *, lock: bool = False) -> Ticket | None:
    """The ticket ``number`` if it is this agency's now; another agency's ticket is simply not found."""
    query = select(Ticket).where(Ticket.number == number.strip().upper(), Ticket.agency_code == agency_code)
    return session.scalars(query.with_for_update() if lock else query).first()


@dataclass(frozen=True)
class InboxPage:
    tickets: list[Ticket]
    total: int
    page: int
    pages: int
    returned_at: dict[int, datetime]  # tab "returned": when this agency declined each ticket


def _escape_like(word: str) -> str:
    return word.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _tab_query(agency_code: str, tab: str) -> Select[Ticket]:
    if tab == "returned":
        declined = exists().where(AgencyAnswer.ticket_id == Ticket.id, AgencyAnswer.agency_code == agency_code,
                                  AgencyAnswer.action == "not_ours")
        return select(Ticket).where(declined)
    return select(Ticket).where(Ticket.agency_code == agency_code, Ticket.status.in_(TABS[tab]))


def _search(query: Select[Ticket], q: str) -> Select[Ticket]:
    """Every word must be in the number or the complaint (case-insensitive)."""
    for word in q.split()[:8]:
        pattern = f"%{_escape_like(word)}%"
        query = query.where(or_(Ticket.number.ilike(pattern, escape="\\"), Ticket.text.ilike(pattern, escape="\\")))
    return query


def tab_counts(session: Session, agency_code: str) -> dict[str, int]:
    counts = {}
    for tab in TABS:
        query = _tab_query(agency_code, tab)
        counts[tab] = session.scalar(select(func.count()).select_from(query.subquery())) or 0
    return counts


def inbox(session: Session, agency_code: str, *, tab: str = "open", q: str = "", page: int = 1,
          now: datetime | None = None) -> InboxPage:
    """One page of the agency's tickets in ``tab``: open ones overdue first, then by deadline (none last);
    the other tabs newest first. ``q`` searches numbers and words of the complaint."""
    at = now or utcnow()
    query = _search(_tab_query(agency_code, tab if tab in TABS else "open"), q)
    total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
    pages = max(1, -(-total // PAGE_SIZE))
    page = min(max(page, 1), pages)
    if tab == "open":
        overdue = case((and_(Ticket.deadline_at.is_not(None), Ticket.deadline_at <= at), 0), else_=1)
        order = [overdue, Ticket.deadline_at.is_(None), Ticket.deadline_at, Ticket.opened_at, Ticket.id]
    else:
        order = [Ticket.updated_at.desc(), Ticket.id.desc()]
    tickets = list(session.scalars(query.order_by(*order).offset((page - 1) * PAGE_SIZE).limit(PAGE_SIZE)))
    returned: dict[int, datetime] = {}
    if tab == "returned" and tickets:
        rows = session.execute(select(AgencyAnswer.ticket_id, func.max(AgencyAnswer.created_at)).where(
            AgencyAnswer.ticket_id.in_([t.id for t in tickets]), AgencyAnswer.agency_code == agency_code,
            AgencyAnswer.action == "not_ours").group_by(AgencyAnswer.ticket_id))
        returned = {row[0]: row[1] for row in rows}
    return InboxPage(tickets=tickets, total=total, page=page, pages=pages, returned_at=returned)
