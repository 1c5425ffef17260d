"""The published tickets: the rows the agency page lists and that the Open311 API serves, anonymised."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Select, select
from sqlalchemy.orm import Session, selectinload

from ntbcare.core.models import Agency, Ticket
from ntbcare.pipeline.accountability.anonymise import PublicTicket, public_answers, public_view
from ntbcare.pipeline.accountability.figures import BACKLOG, publishable
from routing.deadlines import DeadlinePolicy


def published() -> Select[Any]:
    """Tickets the public may see: with an agency, never withdrawn, not-a-complaint, merged or hidden."""
    return select(Ticket).where(publishable()).options(selectinload(Ticket.citizen))


def views(session: Session, tickets: list[Ticket], policy: DeadlinePolicy | None = None) -> list[PublicTicket]:
    """The public form of each ticket, with its agency's name and public answers, in the given order."""
    answers = public_answers(session, [t.id for t in tickets])
    codes = {t.agency_code for t in tickets if t.agency_code}
    agencies = {a.code: a for a in session.scalars(select(Agency).where(Agency.code.in_(codes)))} if codes else {}
    return [public_view(t, agencies.get(t.agency_code or ""), answers.get(t.id, []), policy) for t in tickets]


def recent_for_agency(session: Session, code: str, *, limit: int = 20,
                      before: datetime | None = None) -> list[PublicTicket]:
    """An agency's latest published tickets, newest first."""
    query = published().where(Ticket.agency_code == code)
    if before is not None:
        query = query.where(Ticket.opened_at < before)
    query = query.order_by(Ticket.opened_at.desc(), Ticket.id.desc()).limit(limit)
    tickets: list[Ticket] = list(session.scalars(query))
    return views(session, tickets)


def oldest_open(session: Session, *, limit: int = 10) -> list[PublicTicket]:
    """The oldest complaints still waiting for an agency's first answer (the monthly recap lists ten)."""
    query = published().where(Ticket.status.in_(BACKLOG)).order_by(Ticket.opened_at, Ticket.id).limit(limit)
    return views(session, list(session.scalars(query)))
