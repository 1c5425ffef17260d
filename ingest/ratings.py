"""A citizen's word on the agency's answer: a quick-reply rating, or writing that it is not fixed.

After an answer reaches the citizen the bot asks once for a rating (quick replies "Puas", "Kurang puas",
"Belum selesai", payload ``RATING:<value>:<number>``). A tap, or a short message saying it is not fixed yet,
is a rating of the citizen's latest answered or closed ticket, not new complaint text; "belum selesai" also
reopens that ticket (the pipeline tells the agency and restarts the deadline).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from ingest.events import NormalizedEvent
from ntbcare.core.lifecycle import audit
from ntbcare.core.models import Citizen, Rating, RatingValue, Reply, Ticket, TicketStatus

RATING_PAYLOAD = "RATING"
# "belum selesai", "blm diperbaiki", "tidak ada perbaikan", "masih rusak", "lampunya masih mati"...
NOT_FIXED = re.compile(
    r"\b(?:belum|blm|tidak|tdk|gak|nggak|ndak|ndeq)\b(?:\s+\w+){0,2}?\s+"
    r"(?:selesai|beres|diperbaiki|diperbaik|ditangani|ditindaklanjuti|ada\s+perbaikan|ada\s+tindakan)\b"
    r"|\bmasih\s+(?:\w+\s+)?(?:rusak|mati|sama|macet|banjir|bocor|menumpuk)\b",
    re.IGNORECASE,
)
# Words that may mean "not fixed" in a message the rule above does not settle: an operator decides.
MAYBE_NOT_FIXED = re.compile(r"\b(?:belum|blm|masih|tidak|tdk|gak|nggak|ndak)\b", re.IGNORECASE)
# The outbox channel of a public reply under a comment (bot.outbox.COMMENT_REPLY; ingest never imports bot).
COMMENT_REPLY = "comment_reply"
# A longer message is a new complaint (or more detail), not a verdict on the answer.
MAX_WORDS = 12
ANSWERED = (TicketStatus.ANSWERED, TicketStatus.CLOSED)


@dataclass(frozen=True)
class RatingSignal:
    """What the citizen said of an answer; ``typed`` when written rather than tapped."""

    value: str
    number: str | None
    typed: bool


def says_not_fixed(text: str | None) -> bool:
    """A short message saying the problem is not solved yet."""
    return bool(text) and len((text or "").split()) <= MAX_WORDS and NOT_FIXED.search(text or "") is not None


def rating_signal(ev: NormalizedEvent) -> RatingSignal | None:
    """The rating a Messenger message or button carries, if any."""
    if ev.source != "messenger" or not ev.author_id:
        return None
    parts = (ev.payload or "").split(":")
    if parts[0].upper() == RATING_PAYLOAD and len(parts) >= 2:
        value = parts[1].lower()
        if value in RatingValue.ALL:
            return RatingSignal(value, parts[2] if len(parts) > 2 and parts[2] else None, typed=False)
        return None
    if says_not_fixed(ev.text):
        return RatingSignal(RatingValue.NOT_RESOLVED, None, typed=True)
    return None


def rated_ticket(session: Session, psid: str, number: str | None) -> Ticket | None:
    """The citizen's answered or closed ticket the rating is about: the numbered one, else the latest."""
    citizen_ids = select(Citizen.id).where(Citizen.psid == psid)
    query = select(Ticket).where(or_(Ticket.psid == psid, Ticket.citizen_id.in_(citizen_ids)),
                                 Ticket.status.in_(ANSWERED))
    if number:
        query = query.where(Ticket.number == number.upper())
    return session.scalars(query.order_by(Ticket.answered_at.desc(), Ticket.id.desc())).first()


def ticket_of_page_reply(session: Session, comment_id: str | None) -> Ticket | None:
    """The ticket whose public reply (an acknowledgement or an answer) is the comment ``comment_id``."""
    if not comment_id:
        return None
    reply = session.scalars(select(Reply).where(Reply.graph_id == comment_id, Reply.channel == COMMENT_REPLY)).first()
    return reply.ticket if reply is not None else None


def record_rating(session: Session, ticket: Ticket, value: str) -> None:
    """One rating row per answer rated, for the agency that answered (the public figures read these)."""
    session.add(Rating(ticket_id=ticket.id, agency_code=ticket.agency_code, value=value))
    audit(session, ticket, "rated", actor="citizen", detail={"value": value})
