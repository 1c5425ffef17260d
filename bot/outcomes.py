"""What a settled reply does to its row, its ticket and the audit trail, and the report of one sender pass.

Both ways a reply gets settled (its own call, or a read-back that found it already posted) end here, so an
answer turns its ticket ``answered`` and an undeliverable Messenger answer falls back to a public reply the
same way whichever path got there.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy.orm import Session

from bot.outbox import (
    COMMENT_REPLY,
    HIDE,
    MESSENGER,
    PRIVATE_REPLY,
    followers,
    owe_messenger_answer,
    owe_public_answer,
)
from bot.rating import owe_rating_prompt
from ntbcare.core.lifecycle import audit, transition
from ntbcare.core.metrics_db import observe_acknowledgement
from ntbcare.core.models import AgencyAnswer, Channel, Reply, ReplyStatus, TicketStatus

log = logging.getLogger(__name__)

ANSWERABLE = (TicketStatus.NEW, TicketStatus.REVIEW, TicketStatus.ROUTED, TicketStatus.FORWARDED)


@dataclass
class ReplyReport:
    """What one sender pass did, by reply id; ``paused`` names why nothing was sent at all."""

    sent: list[int] = field(default_factory=list)
    reconciled: list[int] = field(default_factory=list)
    retry: list[int] = field(default_factory=list)
    unknown: list[int] = field(default_factory=list)
    failed: list[int] = field(default_factory=list)
    undeliverable: list[int] = field(default_factory=list)
    paused: str | None = None


def mark_sent(session: Session, reply: Reply, graph_id: str | None, *, now: datetime, how: str,
              learned_psid: str | None = None) -> None:
    """Facebook has the reply: store its id; an answer makes the ticket ``answered``.

    ``learned_psid`` is the commenter's Messenger id from a private reply's response: with it, the citizen's
    Messenger answers join this comment's ticket.
    """
    reply.status, reply.graph_id, reply.sent_at, reply.error = ReplyStatus.SENT, graph_id, now, None
    ticket = reply.ticket
    detail = {"reply": reply.key, "channel": reply.channel, "graph_id": graph_id, "how": how}
    if ticket is None:  # a status answer to someone without a ticket: nothing else to record
        audit(session, None, "reply_sent", actor="bot", detail=detail)
        return
    if reply.channel == PRIVATE_REPLY and learned_psid and not ticket.psid:
        ticket.psid = str(learned_psid)
    if reply.kind == "ack":
        observe_acknowledgement(session, ticket, now, reply.channel)
    if reply.kind != "answer":
        audit(session, ticket, "comment_hidden" if reply.channel == HIDE else "reply_sent", actor="bot",
              detail=detail)
        return
    ticket.answered_at = ticket.answered_at or now
    if ticket.status not in ANSWERABLE or not transition(session, ticket, TicketStatus.ANSWERED, actor="bot",
                                                         action="answered", detail=detail):
        audit(session, ticket, "answer_posted", actor="bot", detail=detail)
    if not followers(session, reply):  # the last part of the answer reached the citizen
        owe_rating_prompt(session, ticket, reply)  # once per answer cycle


def mark_failed(session: Session, reply: Reply, error: str | None, report: ReplyReport) -> None:
    """Given up: an operator sees it in ``ntbcare replies list`` and may retry it."""
    reply.status, reply.error, reply.next_attempt_at = ReplyStatus.FAILED, error, None
    audit(session, reply.ticket, "reply_failed", actor="bot", detail={"reply": reply.key, "error": error})
    report.failed.append(reply.id)
    log.error("reply %s (%s) failed: %s", reply.id, reply.key, error)
    _settle_followers(session, reply, ReplyStatus.FAILED)


def mark_undeliverable(session: Session, reply: Reply, reason: str | None, report: ReplyReport) -> None:
    """Facebook's rules forbid sending it now; a Messenger answer is owed publicly instead where it can be."""
    reply.status, reply.error, reply.next_attempt_at = ReplyStatus.UNDELIVERABLE, reason, None
    audit(session, reply.ticket, "reply_undeliverable", actor="bot", detail={"reply": reply.key,
                                                                              "reason": reason})
    report.undeliverable.append(reply.id)
    _settle_followers(session, reply, ReplyStatus.UNDELIVERABLE)
    ticket = reply.ticket
    if (ticket is None or reply.kind != "answer" or not reply.key.startswith("answer:")
            or reply.follows_id is not None):
        return
    answer = session.get(AgencyAnswer, int(reply.key.split(":", 1)[1]))
    if answer is None:
        return
    if reply.channel == MESSENGER:
        owe_public_answer(session, ticket, answer, f"answer-fallback:{answer.id}")
    elif reply.channel == COMMENT_REPLY and ticket.channel == Channel.MENTION:
        # Facebook refused a reply under a post elsewhere: the citizen hears it in Messenger (the PSID the private
        # acknowledgement taught us), within the window like any Messenger answer.
        owe_messenger_answer(session, ticket, answer, f"answer-fallback:{answer.id}")


def _settle_followers(session: Session, reply: Reply, status: str) -> None:
    """The later parts of a message whose earlier part will not be sent end the same way (visible, retryable)."""
    for later in followers(session, reply):
        if later.status == ReplyStatus.PENDING:
            later.status, later.next_attempt_at = status, None
            later.error = f"an earlier part ({reply.key}) was not sent"
