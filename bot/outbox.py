"""The outbox of replies to citizens: every message the page owes is a ``Reply`` row, written before any call.

A row's unique key makes owing idempotent (an answer or acknowledgement owed twice is one row), so the sender
(:mod:`bot.sender`) can be run by any number of workers and crashes without a message going out twice or
being lost. This module writes those rows, and holds the operator's levers over them: the Page-token pause
and the retry of failed replies.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Select, exists, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, aliased

from bot.errors import GraphError
from bot.privacy import scrub
from bot.splitting import MESSENGER_LIMIT, shorten, split_message
from bot.texts import render
from ntbcare.core.db import Database
from ntbcare.core.lifecycle import audit
from ntbcare.core.models import Agency, AgencyAnswer, Channel, Reply, ReplyStatus, ServiceFlag, Ticket

log = logging.getLogger(__name__)

PAGE_TOKEN_FLAG = "page_token_invalid"
MARKER_PREFIX = "ntbcare:"
COMMENT_REPLY, PRIVATE_REPLY, MESSENGER, HIDE = "comment_reply", "private_reply", "messenger", "hide"


def marker(key: str) -> str:
    """The ``metadata`` we attach to Messenger sends; the echo brings it back for reconciliation."""
    return MARKER_PREFIX + key


# -- owing ---------------------------------------------------------------------------------------------------


def owe_reply(session: Session, ticket: Ticket | None, *, key: str, kind: str, channel: str, target_id: str,
              text: str) -> Reply:
    """Write the intent to send (once per key, ever); a second owe returns the existing row unchanged.

    A Messenger text over the Send API's limit becomes several rows (``<key>``, ``<key>#2``, …), each
    following the one before it; the first is returned. The one private reply a comment allows cannot be
    followed by a second message, so its text is shortened instead.
    """
    existing = session.scalars(select(Reply).where(Reply.key == key)).first()
    if existing is not None:
        return existing
    parts = _parts(channel, text)
    first: Reply | None = None
    previous: Reply | None = None
    try:
        with session.begin_nested():
            for number, part in enumerate(parts, start=1):
                reply = Reply(key=key if number == 1 else f"{key}#{number}", ticket=ticket, kind=kind,
                              channel=channel, target_id=target_id, text=part, status=ReplyStatus.PENDING,
                              attempts=0, follows_id=previous.id if previous is not None else None)
                session.add(reply)
                session.flush()
                first, previous = first or reply, reply
    except IntegrityError:  # another worker owed it first
        return session.scalars(select(Reply).where(Reply.key == key)).one()
    assert first is not None
    return first


@dataclass(frozen=True)
class OwedReply:
    """One reply to owe with :func:`owe_replies` (the arguments of :func:`owe_reply`)."""

    ticket: Ticket | None
    key: str
    kind: str
    channel: str
    target_id: str
    text: str


def _parts(channel: str, text: str) -> list[str]:
    if channel == COMMENT_REPLY:
        return [scrub(text)]
    if channel == PRIVATE_REPLY:
        return [shorten(text, MESSENGER_LIMIT)]
    if channel == MESSENGER:
        return split_message(text, MESSENGER_LIMIT)
    return [text]


def owe_replies(session: Session, owed: Sequence[OwedReply]) -> list[Reply]:
    """:func:`owe_reply` for a batch (the acknowledgements of a routing pass): one lookup of the keys and one
    savepoint for all, instead of a lookup, a savepoint and a flush per reply. Returns the first row of each,
    in order. A Messenger text in several parts, and the whole batch when a concurrent worker owed one of the
    keys first, go one by one."""
    if not owed:
        return []
    known = {r.key: r for r in session.scalars(select(Reply).where(Reply.key.in_([o.key for o in owed])))}
    fresh: dict[str, Reply] = {}
    for o in owed:
        parts = _parts(o.channel, o.text)
        if o.key in known or o.key in fresh or len(parts) > 1:
            continue
        fresh[o.key] = Reply(key=o.key, ticket=o.ticket, kind=o.kind, channel=o.channel, target_id=o.target_id,
                             text=parts[0], status=ReplyStatus.PENDING, attempts=0)
    try:
        with session.begin_nested():
            session.add_all(fresh.values())
    except IntegrityError:  # another worker owed one of them first
        fresh = {}
    rows = {**known, **fresh}
    return [rows.get(o.key) or owe_reply(session, o.ticket, key=o.key, kind=o.kind, channel=o.channel,
                                         target_id=o.target_id, text=o.text) for o in owed]


def followers(session: Session, reply: Reply) -> list[Reply]:
    """The parts that follow ``reply`` (none for a message in one part), in order."""
    chain: list[Reply] = []
    current = reply
    while (nxt := session.scalars(select(Reply).where(Reply.follows_id == current.id)).first()) is not None:
        chain.append(nxt)
        current = nxt
    return chain


def public_target(ticket: Ticket) -> str | None:
    """The comment or visitor post a public reply goes under (None for a pure Messenger ticket)."""
    if ticket.channel == Channel.COMMENT:
        return ticket.comment_id or ticket.origin_id
    if ticket.channel == Channel.POST:
        return ticket.post_id or ticket.origin_id
    if ticket.channel == Channel.MENTION:  # under the comment that tagged the page, else under the post
        return ticket.comment_id or ticket.post_id
    return ticket.comment_id or None


def _agency_name(session: Session, code: str) -> str:
    agency = session.get(Agency, code)
    return agency.name if agency is not None else code


def owe_public_answer(session: Session, ticket: Ticket, answer: AgencyAnswer, key: str) -> Reply | None:
    """The public reply carrying an answer, under the ticket's comment or post (None when it has neither)."""
    target = public_target(ticket)
    if target is None:
        return None
    text = render(session, "answer_public", agency=_agency_name(session, answer.agency_code),
                  number=ticket.number, answer=scrub(answer.text))
    return owe_reply(session, ticket, key=key, kind="answer", channel=COMMENT_REPLY, target_id=target, text=text)


def owe_messenger_answer(session: Session, ticket: Ticket, answer: AgencyAnswer, key: str) -> Reply | None:
    """The answer as a Messenger message to the citizen's PSID (None when none is known)."""
    psid = ticket.psid or (ticket.citizen.psid if ticket.citizen is not None else None)
    if not psid:
        return None
    text = render(session, "answer_messenger", agency=_agency_name(session, answer.agency_code),
                  number=ticket.number, answer=answer.text)
    return owe_reply(session, ticket, key=key, kind="answer", channel=MESSENGER, target_id=psid, text=text)


def owe_answer(session: Session, ticket: Ticket, answer: AgencyAnswer) -> list[Reply]:
    """The reply (or replies) an agency answer needs: back where the complaint came from.

    Called in the transaction that stores the answer; the ticket becomes ``answered`` only once Facebook
    accepts the reply. Owing the same answer again returns the rows already owed.
    """
    if answer.id is None:
        session.flush()
    key = f"answer:{answer.id}"
    reply = owe_messenger_answer(session, ticket, answer, key) if ticket.channel == Channel.MESSENGER else None
    if reply is None:
        reply = owe_public_answer(session, ticket, answer, key)
    return [reply] if reply is not None else []


def due_replies(status: str, now: datetime, ids: list[int] | None, limit: int) -> Select[Reply]:
    """Rows in ``status`` whose next attempt is due (a part only once the part before it is sent), oldest first,
    locked past rows other senders hold."""
    earlier = aliased(Reply)
    previous_sent = exists().where(earlier.id == Reply.follows_id, earlier.status == ReplyStatus.SENT)
    query = select(Reply).where(Reply.status == status,
                                (Reply.next_attempt_at.is_(None)) | (Reply.next_attempt_at <= now),
                                Reply.follows_id.is_(None) | previous_sent)
    if ids is not None:
        query = query.where(Reply.id.in_(ids))
    return query.order_by(Reply.id).limit(limit).with_for_update(skip_locked=True)


# -- the Page-token pause and operator actions -----------------------------------------------------------------


def page_token_paused(session: Session) -> bool:
    """Whether Facebook refused the Page token (code 190): then no reply is sent until an operator resumes."""
    return session.get(ServiceFlag, PAGE_TOKEN_FLAG) is not None


def flag_page_token(session: Session, error: GraphError) -> None:
    """Pause all sending: every further call with a refused token would fail the same way."""
    if session.get(ServiceFlag, PAGE_TOKEN_FLAG) is None:
        session.add(ServiceFlag(key=PAGE_TOKEN_FLAG, value=str(error)[:1000]))
    log.critical("the Page token was refused (%s): replies are paused until it is replaced", error)


def clear_page_token_flag(db: Database) -> bool:
    """Resume sending after the Page token was replaced; returns whether sending was paused."""
    with db.scope() as session:
        flag = session.get(ServiceFlag, PAGE_TOKEN_FLAG)
        if flag is None:
            return False
        session.delete(flag)
        return True


def retry_replies(db: Database, ids: list[int] | None = None, *, actor: str = "operator") -> list[int]:
    """Put failed (or, by id, undeliverable) replies back in the queue with a fresh attempt budget, each with the
    later parts of its message."""
    statuses = (ReplyStatus.FAILED, ReplyStatus.UNDELIVERABLE) if ids else (ReplyStatus.FAILED,)
    with db.scope() as session:
        query = select(Reply).where(Reply.status.in_(statuses))
        if ids:
            query = query.where(Reply.id.in_(ids))
        replies = list(session.scalars(query.with_for_update()).all())
        chosen = {r.id for r in replies}
        for reply in list(replies):  # the later parts of a message go back with it
            later = [r for r in followers(session, reply) if r.id not in chosen
                     and r.status in (ReplyStatus.FAILED, ReplyStatus.UNDELIVERABLE)]
            replies.extend(later)
            chosen.update(r.id for r in later)
        for reply in replies:
            audit(session, reply.ticket, "reply_retry", actor=actor, detail={"reply": reply.key,
                                                                              "was": reply.status})
            reply.status, reply.attempts, reply.error, reply.next_attempt_at = ReplyStatus.PENDING, 0, None, None
        return [r.id for r in replies]
