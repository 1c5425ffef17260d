"""People's decisions carried through the pipeline: operators assign or dismiss a ticket; an agency answers,
declines ("bukan kewenangan") or closes it.

Each decision is written with everything it owes (forward e-mails, replies to the citizen, the training
example) in the caller's transaction or in one of its own; sending follows the commit, best effort, and the
sweeper retries whatever that attempt leaves. The web views and the CLI call these, never the domains.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.outbox import owe_answer, public_target
from bot.privacy import personal_data_kinds
from bot.windows import messenger_route
from ntbcare.core.lifecycle import audit, find_ticket, transition
from ntbcare.core.models import Agency, AgencyAnswer, Ticket, TicketStatus
from ntbcare.core.settings import Settings
from ntbcare.pipeline.join import Pipeline
from routing import decisions as routing_decisions


class DecisionRefused(Exception):
    """The decision cannot be made as asked; the message says why and what to do, in one line."""


@dataclass(frozen=True)
class Outcome:
    number: str
    status: str
    agency_code: str | None

    def summary(self) -> str:
        return f"{self.number}: {self.status}" + (f" ({self.agency_code})" if self.agency_code else "")


def _ticket(session: Session, number: str) -> Ticket:
    ticket = find_ticket(session, number)
    if ticket is None:
        raise DecisionRefused(f"no ticket {number!r}; see `ntbcare tickets list`")
    return ticket


def assign(pipeline: Pipeline, number: str, agency_code: str, *, actor: str) -> Outcome:
    """An operator gives a ticket to an agency (reassigning revokes the old links); it is e-mailed at once."""
    code = agency_code.strip().upper()
    with pipeline.db.scope() as session:
        ticket = _ticket(session, number)
        if session.get(Agency, code) is None:
            raise DecisionRefused(f"unknown agency code {agency_code!r}; see `ntbcare agencies list`")
        routing_decisions.assign(session, ticket, code, actor=actor)
        outcome = Outcome(ticket.number, ticket.status, ticket.agency_code)
    pipeline.send_mails()
    return outcome


@dataclass(frozen=True)
class Revoked:
    number: str
    old_version: int
    new_version: int
    agency_code: str | None

    def summary(self) -> str:
        whose = f" of {self.agency_code}" if self.agency_code else ""
        return (f"{self.number}: every agency link{whose} issued so far is revoked "
                f"(link version {self.old_version} -> {self.new_version})")


def revoke_links(pipeline: Pipeline, number: str, *, actor: str) -> Revoked:
    """Void every link issued for a ticket (one leaked) without reassigning it: links carry the version they
    were issued with, and only the current one opens the ticket. The next link e-mailed works."""
    with pipeline.db.scope() as session:
        return void_links(session, _ticket(session, number), actor=actor)


def void_links(session: Session, ticket: Ticket, *, actor: str) -> Revoked:
    """Bump the ticket's link version (in the caller's transaction) and audit it."""
    old = ticket.link_version
    ticket.link_version = old + 1
    audit(session, ticket, "links_revoked", actor=actor,
          detail={"from_version": old, "to_version": ticket.link_version, "agency": ticket.agency_code})
    return Revoked(ticket.number, old, ticket.link_version, ticket.agency_code)


def not_complaint(pipeline: Pipeline, number: str, *, actor: str) -> Outcome:
    """An operator says a ticket is not a complaint (reversible by assigning it)."""
    with pipeline.db.scope() as session:
        ticket = _ticket(session, number)
        routing_decisions.mark_not_complaint(session, ticket, actor=actor)
        return Outcome(ticket.number, ticket.status, ticket.agency_code)


def answer_is_public(ticket: Ticket) -> bool:
    """Whether the agency's answer will be posted publicly (a comment or a visitor post)."""
    return public_target(ticket) is not None


def personal_data_in_public_answer(ticket: Ticket, text: str) -> list[str]:
    """Kinds of personal data (``nik``, ``email``, ``phone``) that keep ``text`` from being posted publicly."""
    return personal_data_kinds(text) if answer_is_public(ticket) else []


def messenger_window_closed(settings: Settings, ticket: Ticket, now: datetime) -> bool:
    """A Messenger ticket whose citizen wrote too long ago for the page to answer there."""
    if ticket.channel != "messenger":
        return False
    last = ticket.last_citizen_message_at or ticket.opened_at
    return messenger_route(last, now, human_agent_allowed=settings.human_agent_tag) is None


def agency_answers(session: Session, ticket: Ticket, text: str, *, actor: str) -> list[int]:
    """Store the agency's answer and owe its replies to the citizen in the caller's transaction.

    Returns the replies to send after the commit; a repeated identical answer (a double tap, a resubmitted
    form) owes nothing again.
    """
    repeated = session.scalar(select(AgencyAnswer.id).where(
        AgencyAnswer.ticket_id == ticket.id, AgencyAnswer.action == "answer", AgencyAnswer.text == text))
    if repeated is not None:
        return []
    stored = AgencyAnswer(ticket_id=ticket.id, agency_code=ticket.agency_code, action="answer", text=text,
                          link_version=ticket.link_version)
    session.add(stored)
    session.flush()
    audit(session, ticket, "agency_answer", actor=actor, detail={"answer_id": stored.id, "chars": len(text)})
    replies = owe_answer(session, ticket, stored)
    session.flush()
    return [reply.id for reply in replies]


def agency_declines(session: Session, ticket: Ticket, *, reason: str, suggested: str | None,
                    actor: str | None = None) -> None:
    """"Bukan kewenangan kami": back to an operator, or on to the named target; the old link stops working.
    ``actor`` names who declined (default ``agency:<code>``; from the inbox ``agency:<code>:<email>``)."""
    session.add(AgencyAnswer(ticket_id=ticket.id, agency_code=ticket.agency_code, action="not_ours", text=reason,
                             link_version=ticket.link_version))
    routing_decisions.agency_not_ours(session, ticket, reason=reason, suggested=suggested, actor=actor)


def agency_closes(session: Session, ticket: Ticket, *, note: str, actor: str) -> None:
    """The agency marks the ticket done (with an earlier answer, or a note of what was done)."""
    stored = AgencyAnswer(ticket_id=ticket.id, agency_code=ticket.agency_code, action="done", text=note,
                          link_version=ticket.link_version)
    session.add(stored)
    session.flush()
    transition(session, ticket, TicketStatus.CLOSED, actor=actor, action="agency_done",
               detail={"answer_id": stored.id, "with_note": bool(note)})
