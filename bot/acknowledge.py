"""Acknowledgements for newly opened tickets, and hiding public comments that expose personal data.

A comment or visitor post gets a short public reply with the ticket number and the one private reply Meta
allows (only within 7 days of the comment); a Messenger ticket gets a message. When a public comment carries
a NIK, a phone number or an e-mail address and hiding is on, the comment is hidden and the public reply is
skipped, so the conversation continues privately; the ticket keeps the full text.
"""

from __future__ import annotations

from sqlalchemy.orm import Session

from bot.outbox import COMMENT_REPLY, HIDE, MESSENGER, PRIVATE_REPLY, OwedReply, owe_replies, owe_reply, public_target
from bot.privacy import contains_personal_data
from bot.texts import fill, template_text
from bot.windows import private_reply_allowed
from ntbcare.core.models import Channel, Reply, Ticket, utcnow
from ntbcare.core.settings import Settings


def _ack_enabled(settings: Settings, channel: str) -> bool:
    return {Channel.COMMENT: settings.ack_comment, Channel.POST: settings.ack_post,
            Channel.MESSENGER: settings.ack_messenger, Channel.MENTION: settings.ack_mention}.get(channel, False)


ACK_TEMPLATES = ("ack_messenger", "ack_public", "ack_private", "ack_private_hidden")


def acknowledge_tickets(session: Session, settings: Settings, tickets: list[Ticket]) -> list[Reply]:
    """Owe the acknowledgements (and privacy hiding) of newly opened tickets; safe to call twice.

    A routing pass acknowledges up to hundreds of tickets: the templates are read once and the rows owed
    together (:func:`owe_replies`)."""
    owed: list[OwedReply] = []
    now = utcnow()
    templates = {key: template_text(session, key) for key in ACK_TEMPLATES}

    def text(key: str, ticket: Ticket) -> str:
        return fill(key, templates[key], number=ticket.number)

    for ticket in tickets:
        if ticket.channel == Channel.MESSENGER:
            psid = ticket.psid or (ticket.citizen.psid if ticket.citizen is not None else None)
            if settings.ack_messenger and psid:
                owed.append(OwedReply(ticket, f"ack-messenger:{ticket.id}", "ack", MESSENGER, psid,
                                      text("ack_messenger", ticket)))
            continue
        target = public_target(ticket)
        if target is None:
            continue
        hide = (ticket.channel in (Channel.COMMENT, Channel.MENTION) and ticket.comment_id is not None
                and settings.hide_pii_comments
                and contains_personal_data(ticket.text))
        if hide:
            owed.append(OwedReply(ticket, f"hide:{ticket.id}", "privacy", HIDE, target, "is_hidden=true"))
        if not _ack_enabled(settings, ticket.channel):
            continue
        if not hide:
            owed.append(OwedReply(ticket, f"ack-public:{ticket.id}", "ack", COMMENT_REPLY, target,
                                  text("ack_public", ticket)))
        if private_reply_allowed(ticket.opened_at, now):
            owed.append(OwedReply(ticket, f"ack-private:{ticket.id}", "ack", PRIVATE_REPLY, target,
                                  text("ack_private_hidden" if hide else "ack_private", ticket)))
    return owe_replies(session, owed)


def hide_changed_comments(session: Session, settings: Settings,
                          comments: list[tuple[Ticket, str, str]]) -> list[Reply]:
    """Public comments added to a known ticket or edited later are checked again: one that now shows a NIK,
    a phone number or an e-mail address is hidden (once per comment), as at the ticket's opening."""
    if not settings.hide_pii_comments:
        return []
    owed: list[Reply] = []
    for ticket, comment_id, text in comments:
        if not contains_personal_data(text or ""):
            continue
        key = f"hide:{ticket.id}" if comment_id == public_target(ticket) else f"hide:{ticket.id}:{comment_id}"
        owed.append(owe_reply(session, ticket, key=key, kind="privacy", channel=HIDE, target_id=comment_id,
                              text="is_hidden=true"))
    return owed
