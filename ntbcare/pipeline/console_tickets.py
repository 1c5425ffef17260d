"""What the console's review queue and ticket search read: filters from a query string, one page of tickets,
the classifier's suggestions and why a ticket is in review (suggested duplicates:
:mod:`ntbcare.pipeline.console_duplicates`).

Built for 100,000 tickets: every list is one indexed, ordered, limited query (revision 0006's
``(status|agency|channel, opened_at)`` indexes, revision 0010's trigram index for free text and
``(status, deadline_at, opened_at)`` for overdue); a page's ids are chosen first, from the indexes alone where
they cover the filters, and only those rows are read whole. Pages know whether a next one exists by reading
one row more, never by counting the whole table.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any

from sqlalchemy import ColumnElement, func, select
from sqlalchemy.orm import Session

from ntbcare.core.lifecycle import WITA
from ntbcare.core.models import Channel, Citizen, Ticket, TicketStatus
from ntbcare.core.ticket_search import text_condition
from ntbcare.pipeline.console_counts import overdue_filter

PER_PAGE = 50
REVIEW_PAGE = 25
NUMBER = re.compile(r"^NTB-\d{4}-\d{1,6}$", re.IGNORECASE)
REVIEW_REASONS = {
    "low_confidence": "Klasifikasi kurang yakin",
    "close_candidates": "Beberapa instansi sama mungkinnya",
    "jurisdiction_unknown": "Kewenangan (provinsi/kabupaten) tidak jelas",
    "unknown_agency": "Instansi tujuan tidak dikenal",
    "no_contacts": "Instansi belum punya kontak e-mail",
    "not_ours": "Instansi menyatakan \"bukan kewenangan\"",
    "no_text": "Laporan tanpa teks",
    "forward_failed": "E-mail ke instansi gagal terkirim",
    "forward_bounced": "E-mail ke instansi terpental (ditolak server penerima): instansi belum menerimanya",
    "maybe_not_fixed": "Warga mungkin menyatakan masalahnya belum selesai; pastikan, lalu buka kembali atau tutup",
    "split": "Dipisah dari tiket lain",
    "reopened": "Dibuka kembali oleh operator",
}


def reason_label(reason: str | None) -> str:
    return REVIEW_REASONS.get(reason or "", reason or "Perlu keputusan operator")


@dataclass(frozen=True)
class Filters:
    """The search form's fields, already checked; anything unreadable is simply not applied."""

    q: str = ""
    status: str = ""
    agency: str = ""
    channel: str = ""
    overdue: bool = False
    since: date | None = None
    until: date | None = None
    page: int = 1

    def query_args(self, **changes: Any) -> dict[str, str]:
        """The filters as query-string arguments (for the pager's links), without the empty ones."""
        values = {"q": self.q, "status": self.status, "agency": self.agency, "channel": self.channel,
                  "overdue": "1" if self.overdue else "", "from": self.since.isoformat() if self.since else "",
                  "to": self.until.isoformat() if self.until else "", "page": str(self.page)}
        values.update({k: str(v) for k, v in changes.items()})
        return {k: v for k, v in values.items() if v and not (k == "page" and v == "1")}


def _date(value: str | None) -> date | None:
    try:
        return date.fromisoformat((value or "").strip()) if value else None
    except ValueError:
        return None


def parse_filters(args: Mapping[str, str]) -> Filters:
    """Read ``q``, ``status``, ``agency``, ``channel``, ``overdue=1``, ``from``/``to`` (YYYY-MM-DD) and ``page``."""
    status = (args.get("status") or "").strip()
    channel = (args.get("channel") or "").strip()
    try:
        page = max(1, min(int(args.get("page") or 1), 10_000))
    except ValueError:
        page = 1
    return Filters(q=(args.get("q") or "").strip()[:200], status=status if status in TicketStatus.ALL else "",
                   agency=(args.get("agency") or "").strip().upper()[:40],
                   channel=channel if channel in Channel.ALL else "", overdue=args.get("overdue") == "1",
                   since=_date(args.get("from")), until=_date(args.get("to")), page=page)


def _wita_start(day: date) -> datetime:
    return datetime.combine(day, time.min, tzinfo=WITA)


def _conditions(session: Session, filters: Filters, now: datetime) -> list[ColumnElement[bool]]:
    where: list[ColumnElement[bool]] = []
    if filters.q:
        q = filters.q
        where.append(Ticket.number == q.upper() if NUMBER.match(q) else text_condition(session, q))
    if filters.status:
        where.append(Ticket.status == filters.status)
    if filters.agency:
        where.append(Ticket.agency_code == filters.agency)
    if filters.channel:
        where.append(Ticket.channel == filters.channel)
    if filters.overdue:
        where.extend(overdue_filter(now))
    if filters.since:
        where.append(Ticket.opened_at >= _wita_start(filters.since))
    if filters.until:
        where.append(Ticket.opened_at < _wita_start(filters.until + timedelta(days=1)))
    return where


@dataclass
class TicketPage:
    tickets: Sequence[Ticket]
    page: int
    has_next: bool
    names: dict[int, str] = field(default_factory=dict)


def _names(session: Session, tickets: Sequence[Ticket]) -> dict[int, str]:
    ids = {t.citizen_id for t in tickets if t.citizen_id is not None}
    if not ids:
        return {}
    rows = session.execute(select(Citizen.id, Citizen.display_name).where(Citizen.id.in_(ids)))
    return {row.id: row.display_name or "" for row in rows}


def search(session: Session, filters: Filters, now: datetime, per_page: int = PER_PAGE) -> TicketPage:
    """One page of matching tickets, newest first. The page's ids are chosen first (from an index alone when
    it covers the filters, e.g. every overdue ticket), then only those rows are read whole."""
    newest = (Ticket.opened_at.desc(), Ticket.id.desc())
    ids = (select(Ticket.id).where(*_conditions(session, filters, now)).order_by(*newest)
           .offset((filters.page - 1) * per_page).limit(per_page + 1).subquery("page_ids"))
    rows = session.scalars(select(Ticket).join(ids, ids.c.id == Ticket.id).order_by(*newest)).all()
    tickets = rows[:per_page]
    return TicketPage(tickets, filters.page, len(rows) > per_page, _names(session, tickets))


def review_queue(session: Session, page: int = 1, per_page: int = REVIEW_PAGE) -> TicketPage:
    """Tickets waiting for an operator, oldest first (the order the province is judged by)."""
    rows = session.scalars(select(Ticket).where(Ticket.status == TicketStatus.REVIEW)
                           .order_by(Ticket.opened_at, Ticket.id)
                           .offset((page - 1) * per_page).limit(per_page + 1)).all()
    tickets = rows[:per_page]
    return TicketPage(tickets, page, len(rows) > per_page, _names(session, tickets))


def review_count(session: Session) -> int:
    return session.scalar(select(func.count()).select_from(Ticket).where(Ticket.status == TicketStatus.REVIEW)) or 0


def candidates(ticket: Ticket, limit: int = 3) -> list[dict[str, Any]]:
    """The classifier's top suggestions ``{"agency", "score"}`` stored on the ticket, best first."""
    stored = (ticket.classification or {}).get("candidates") or []
    valid = [c for c in stored if isinstance(c, dict) and isinstance(c.get("agency"), str)]
    return sorted(valid, key=lambda c: -float(c.get("score") or 0))[:limit]
