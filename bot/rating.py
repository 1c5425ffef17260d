"""Asking the citizen, once per answer, whether it solved their problem; and telling them a ticket reopened.

The prompt goes to the citizen's Messenger (the ticket's PSID, or the one learned from a private reply) after
the agency's answer reached them, with three quick replies whose payload names the rating and the ticket.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from bot.outbox import MESSENGER, owe_reply
from bot.texts import render
from ntbcare.core.models import RatingValue, Reply, Ticket

RATING_CHOICES = ((RatingValue.SATISFIED, "Puas"), (RatingValue.UNSATISFIED, "Kurang puas"),
                  (RatingValue.NOT_RESOLVED, "Belum selesai"))


def rating_quick_replies(number: str) -> list[dict[str, Any]]:
    """The Send API ``quick_replies`` of the rating prompt (payload ``RATING:<value>:<number>``)."""
    return [{"content_type": "text", "title": title, "payload": f"RATING:{value}:{number}"}
            for value, title in RATING_CHOICES]


def _psid(ticket: Ticket) -> str | None:
    return ticket.psid or (ticket.citizen.psid if ticket.citizen is not None else None)


def owe_rating_prompt(session: Session, ticket: Ticket, answer: Reply) -> Reply | None:
    """Owe the prompt once the first answer reply reached the citizen (None without a Messenger id)."""
    psid = _psid(ticket)
    if psid is None:
        return None
    key = f"rating:{ticket.id}:{ticket.link_version}"  # once per answer cycle: a reopening asks again
    return owe_reply(session, ticket, key=key, kind="rating", channel=MESSENGER, target_id=psid,
                     text=render(session, "rating_prompt", number=ticket.number))


def owe_reopen_notice(session: Session, ticket: Ticket) -> Reply | None:
    """Tell the citizen their ticket went back to the agency (once per reopening)."""
    psid = _psid(ticket)
    if psid is None:
        return None
    return owe_reply(session, ticket, key=f"reopened:{ticket.id}:{ticket.link_version}", kind="reopened",
                     channel=MESSENGER, target_id=psid, text=render(session, "reopened", number=ticket.number))
