"""Reconciliation: a reply whose outcome is unknown is looked for on Facebook before it is ever sent again.

Graph writes have no idempotency key, so an ambiguous outcome (read timeout, reset, 5xx, codes 1/2, a crash
that left a row ``sending``) makes the row ``unknown``. A public reply is looked for among the comment's
replies from the page, a Messenger message among the stored echoes carrying our ``metadata`` marker and then,
when no echo came, in the Page's conversation with the citizen (Conversations API); only when it is not found
does the row go back to ``pending``.
"""

from __future__ import annotations

import logging
from datetime import datetime

from sqlalchemy import select, update

from bot.errors import GraphError, InvalidGraphIdError, RateLimitedError, TokenInvalidError
from bot.graph import GraphClient
from bot.ids import graph_id
from bot.outbox import COMMENT_REPLY, HIDE, MESSENGER, due_replies, flag_page_token, marker
from bot.outcomes import ReplyReport, mark_failed, mark_sent
from bot.pacing import Pacer, SenderPolicy
from ntbcare.core.db import Database
from ntbcare.core.models import Event, Reply, ReplyStatus

log = logging.getLogger(__name__)

ECHO_SCAN_LIMIT = 5000


def find_comment_reply(client: GraphClient, target: str, text: str, since: datetime) -> tuple[bool, str | None]:
    """Whether the page already replied ``text`` under ``target`` (whitespace-insensitive), and its id."""
    wanted = " ".join(text.split())
    for item in client.list_comment_replies(target, since=since):
        author = (item.get("from") or {}).get("id")
        if author == client.page_id and " ".join(str(item.get("message") or "").split()) == wanted:
            return True, item.get("id")
    return False, None


def find_in_conversation(client: GraphClient, psid: str, text: str, since: datetime) -> tuple[bool, str | None]:
    """Whether the Page's conversation with ``psid`` holds ``text`` from the Page since ``since``, and its id.

    The authority when no echo came: an echo may arrive late (or never, while the webhook was down), and a
    message sent again because its echo was late would reach the citizen twice.
    """
    wanted = " ".join(text.split())
    for item in client.list_conversation_messages(psid, since):
        author = (item.get("from") or {}).get("id")
        if author == client.page_id and " ".join(str(item.get("message") or "").split()) == wanted:
            return True, item.get("id")
    return False, None


def find_echo(db: Database, key: str, since: datetime) -> tuple[bool, str | None]:
    """Whether a stored Messenger echo carries this reply's marker, and the message id."""
    wanted = marker(key)
    with db.session() as session:
        echoes = session.scalars(select(Event).where(Event.kind == "echo", Event.created_at >= since)
                                 .order_by(Event.id.desc()).limit(ECHO_SCAN_LIMIT))
        for event in echoes:
            message = (event.payload or {}).get("message") or {}
            if isinstance(message, dict) and message.get("metadata") == wanted:
                return True, message.get("mid") or event.external_id
    return False, None


class Reconciler:
    """The read-back half of a sender pass; ``reconcile`` returns False when the pass must stop."""

    def __init__(self, db: Database, client: GraphClient, policy: SenderPolicy, pacer: Pacer,
                 report: ReplyReport) -> None:
        self.db, self.client, self.policy, self.pacer, self.report = db, client, policy, pacer, report

    def recover_stale(self, ids: list[int] | None) -> None:
        """A row still ``sending`` after the lease belongs to a sender that died mid-call: outcome unknown."""
        now = self.pacer.now()
        stale = update(Reply).where(Reply.status == ReplyStatus.SENDING, Reply.claimed_at < now - self.policy.lease)
        if ids is not None:
            stale = stale.where(Reply.id.in_(ids))
        with self.db.scope() as session:
            session.execute(stale.values(status=ReplyStatus.UNKNOWN, next_attempt_at=now,
                                         error="sender stopped during the call"))

    def claim(self, ids: list[int] | None, limit: int) -> list[int]:
        """Due unknown rows, held off other senders for the lease while this pass reads them back."""
        with self.db.scope() as session:
            replies = session.scalars(due_replies(ReplyStatus.UNKNOWN, self.pacer.now(), ids, limit)).all()
            for reply in replies:
                reply.next_attempt_at = self.pacer.now() + self.policy.lease
            return [r.id for r in replies]

    def release(self, ids: list[int]) -> None:
        """Unknown rows claimed for read-back but not read: due again when the throttle ends."""
        if not ids:
            return
        with self.db.scope() as session:
            session.execute(update(Reply).where(Reply.id.in_(ids), Reply.status == ReplyStatus.UNKNOWN)
                            .values(next_attempt_at=self.pacer.resume_at))

    def reconcile(self, reply_id: int) -> bool:
        """Settle one unknown row: sent if found, pending again if not, failed once its attempts are used up."""
        with self.db.session() as session:
            reply = session.get_one(Reply, reply_id)
            channel, target, text, key = reply.channel, reply.target_id, reply.text, reply.key
            since = reply.created_at - self.policy.clock_skew
            # a Messenger send goes to a PSID; a private reply's recipient is the comment, its PSID the ticket's
            psid = target if channel == MESSENGER else (reply.ticket.psid if reply.ticket is not None else None)
        try:
            if channel == COMMENT_REPLY:
                found, posted_id = find_comment_reply(self.client, graph_id(target), text, since)
            elif channel == HIDE:
                found, posted_id = False, None  # hiding is idempotent: simply do it again
            else:
                found, posted_id = find_echo(self.db, key, since)
                if not found and psid:
                    found, posted_id = find_in_conversation(self.client, graph_id(psid), text, since)
        except InvalidGraphIdError as exc:  # it cannot be looked up, nor will it ever be sent to: fail it now
            return self._settle_failed(reply_id, f"{type(exc).__name__}: {exc}")
        except GraphError as exc:
            return self._read_back_failed(reply_id, exc)
        with self.db.scope() as session:
            reply = session.get_one(Reply, reply_id)
            if reply.status != ReplyStatus.UNKNOWN:
                return True
            if found:
                mark_sent(session, reply, posted_id, now=self.pacer.now(), how="read_back")
                self.report.reconciled.append(reply_id)
            elif reply.attempts >= self.policy.max_attempts:
                mark_failed(session, reply, f"not found by read-back after {reply.attempts} attempts", self.report)
            else:
                reply.status, reply.next_attempt_at = ReplyStatus.PENDING, None
        return True

    def _settle_failed(self, reply_id: int, reason: str) -> bool:
        with self.db.scope() as session:
            reply = session.get_one(Reply, reply_id)
            if reply.status == ReplyStatus.UNKNOWN:
                mark_failed(session, reply, reason, self.report)
        return True

    def _read_back_failed(self, reply_id: int, exc: GraphError) -> bool:
        """The row stays unknown, to be read back later; throttling or a dead token also end the pass."""
        with self.db.scope() as session:
            reply = session.get_one(Reply, reply_id)
            delay = self.policy.retry_delay(exc, reply.attempts)
            if isinstance(exc, RateLimitedError):
                self.pacer.pause(delay)
            reply.next_attempt_at, reply.error = self.pacer.after(delay), f"read-back: {exc}"[:2000]
            self.report.unknown.append(reply_id)
            if isinstance(exc, TokenInvalidError):
                flag_page_token(session, exc)
        log.warning("read-back of reply %s failed, staying unknown: %s", reply_id, exc)
        return not isinstance(exc, RateLimitedError | TokenInvalidError)
