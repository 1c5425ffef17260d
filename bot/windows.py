"""Facebook's rules of what the page may send to a citizen, and when (pure functions, no I/O).

Checked before every call so that we do not spend a call (and risk an error streak) on a message Meta will
refuse: Messenger ``RESPONSE`` only inside 24 hours of the citizen's last message, the ``HUMAN_AGENT`` tag up to
7 days when the page has that permission, and one private reply per comment or visitor post within 7 days of
its creation. Public comment replies have no window.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

STANDARD_WINDOW = timedelta(hours=24)
HUMAN_AGENT_WINDOW = timedelta(days=7)
PRIVATE_REPLY_WINDOW = timedelta(days=7)
HUMAN_AGENT_TAG = "HUMAN_AGENT"


@dataclass(frozen=True)
class MessengerRoute:
    """How a Messenger message may go out now: ``RESPONSE``, or ``MESSAGE_TAG`` with a tag."""

    messaging_type: str
    tag: str | None = None


RESPONSE = MessengerRoute("RESPONSE")
HUMAN_AGENT = MessengerRoute("MESSAGE_TAG", HUMAN_AGENT_TAG)


def messenger_route(
    last_citizen_message_at: datetime | None, now: datetime, *, human_agent_allowed: bool
) -> MessengerRoute | None:
    """The allowed way to message a citizen now, or None when no private message is allowed.

    The windows run from the citizen's last message; a boundary instant counts as outside (Meta's own check
    runs a little later than ours, so we stay on the safe side).
    """
    if last_citizen_message_at is None:
        return None
    age = now - last_citizen_message_at
    if age < timedelta(0):
        age = timedelta(0)
    if age < STANDARD_WINDOW:
        return RESPONSE
    if human_agent_allowed and age < HUMAN_AGENT_WINDOW:
        return HUMAN_AGENT
    return None


def private_reply_allowed(object_created_at: datetime | None, now: datetime, *, already_used: bool = False) -> bool:
    """Whether the one private reply to a comment or visitor post may still be sent."""
    if already_used or object_created_at is None:
        return False
    return now - object_created_at < PRIVATE_REPLY_WINDOW
