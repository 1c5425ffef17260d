"""The reply sender: never twice, never lost.

A pass first reconciles rows whose outcome is unknown (:mod:`bot.readback`), then claims due ``pending`` rows
with a status-guarded update, calls Graph outside any transaction and records the outcome only if its claim
still holds. Only a definite "not sent" is retried blindly; anything that may have been posted becomes
``unknown`` and is read back before it is ever sent again. Any number of workers may run passes at once.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from bot.client import PageTokenMissing, graph_client
from bot.errors import (
    AmbiguousOutcomeError,
    ConnectionFailedError,
    DuplicatePostError,
    GraphError,
    GraphPermissionError,
    OutsideWindowError,
    PolicyBlockedError,
    RateLimitedError,
    TokenInvalidError,
    TransientGraphError,
)
from bot.graph import GraphClient
from bot.ids import graph_id
from bot.outbox import (
    COMMENT_REPLY,
    HIDE,
    PAGE_TOKEN_FLAG,
    PRIVATE_REPLY,
    due_replies,
    flag_page_token,
    marker,
    page_token_paused,
)
from bot.outcomes import ReplyReport, mark_failed, mark_sent, mark_undeliverable
from bot.pacing import Pacer, SenderPolicy
from bot.privacy import scrub
from bot.rating import rating_quick_replies
from bot.readback import Reconciler
from bot.windows import messenger_route, private_reply_allowed
from ntbcare.core.db import Database
from ntbcare.core.logformat import log_context
from ntbcare.core.models import Channel, Reply, ReplyStatus, Ticket, utcnow
from ntbcare.core.settings import Settings

log = logging.getLogger(__name__)

GraphCall = Callable[[], str | None]


def send_due_replies(db: Database, settings: Settings, client: GraphClient | None = None, *,
                     ids: list[int] | None = None, limit: int = 50, policy: SenderPolicy | None = None,
                     now: datetime | None = None) -> ReplyReport:
    """Reconcile unknown replies, then send the due ones; safe to run from several workers at once."""
    policy = policy or SenderPolicy()
    clock: Callable[[], datetime] = (lambda: now) if now is not None else utcnow
    report = ReplyReport()
    with db.session() as session:
        if page_token_paused(session):
            report.paused = PAGE_TOKEN_FLAG
            return report
    if client is None:
        try:
            client = graph_client(settings)
        except PageTokenMissing:
            report.paused = "no_page_token"
            return report
    pacer = Pacer(policy, client.governor, clock)
    reconciler = Reconciler(db, client, policy, pacer, report)
    reconciler.recover_stale(ids)
    unknown = reconciler.claim(ids, limit)
    for index, reply_id in enumerate(unknown):
        if pacer.throttled():
            reconciler.release(unknown[index:])
            return report
        if not reconciler.reconcile(reply_id):
            reconciler.release(unknown[index + 1 :])
            return report
    sender = _Sender(db, settings, client, policy, pacer, report)
    wanted: list[int] | None = ids
    while True:  # a message in parts: each round sends the parts whose earlier part the round before sent
        claimed = sender.claim(wanted, limit)
        sent_before = len(report.sent)
        for index, reply_id in enumerate(claimed):
            if pacer.throttled():
                sender.release(claimed[index:])
                return report
            with log_context(reply_id=reply_id):
                carry_on = sender.send(reply_id)
            if not carry_on:
                sender.release(claimed[index + 1 :])
                return report
        wanted = sender.next_parts(report.sent[sent_before:])
        if not wanted:
            return report


class _Sender:
    """The sending half of a pass; ``send`` returns False when the whole pass must stop (throttle, dead token)."""

    def __init__(self, db: Database, settings: Settings, client: GraphClient, policy: SenderPolicy, pacer: Pacer,
                 report: ReplyReport) -> None:
        self.db, self.settings, self.client, self.policy = db, settings, client, policy
        self.pacer, self.report = pacer, report
        self.learned_psid: str | None = None  # from this send's private reply response

    def claim(self, ids: list[int] | None, limit: int) -> list[int]:
        """Due pending rows become ``sending`` under this pass, each attempt counted."""
        with self.db.scope() as session:
            replies = session.scalars(due_replies(ReplyStatus.PENDING, self.pacer.now(), ids, limit)).all()
            for reply in replies:
                reply.status, reply.claimed_at = ReplyStatus.SENDING, self.pacer.now()
                reply.attempts += 1
            return [r.id for r in replies]

    def next_parts(self, sent: list[int]) -> list[int]:
        """The parts waiting right behind these just-sent replies."""
        if not sent:
            return []
        with self.db.session() as session:
            return list(session.scalars(select(Reply.id).where(Reply.follows_id.in_(sent),
                                                               Reply.status == ReplyStatus.PENDING)))

    def release(self, ids: list[int]) -> None:
        """Claimed but not tried: back to pending, the attempt not counted."""
        if not ids:
            return
        with self.db.scope() as session:
            session.execute(update(Reply).where(Reply.id.in_(ids), Reply.status == ReplyStatus.SENDING)
                            .values(status=ReplyStatus.PENDING, attempts=Reply.attempts - 1,
                                    next_attempt_at=self.pacer.resume_at))

    def send(self, reply_id: int) -> bool:
        """One call for one claimed row, outside any transaction; the outcome is kept only if the claim holds."""
        with self.db.session() as session:
            reply = session.get_one(Reply, reply_id)
            claimed_at = reply.claimed_at
            call, refusal = self._plan(reply, reply.ticket)
        outcome: GraphError | None = None
        graph_id: str | None = None
        self.learned_psid = None
        if call is not None:
            try:
                graph_id = call()
            except GraphError as exc:
                outcome = exc
        with self.db.scope() as session:
            reply = session.get_one(Reply, reply_id)
            if reply.status != ReplyStatus.SENDING or reply.claimed_at != claimed_at:
                log.warning("reply %s was taken over during the call; outcome left to its new owner", reply_id)
                return True
            if refusal is not None:
                mark_undeliverable(session, reply, refusal, self.report)
                return True
            return self._record(session, reply, graph_id, outcome)

    def _plan(self, reply: Reply, ticket: Ticket | None) -> tuple[GraphCall | None, str | None]:
        """The Graph call for a reply, or why Facebook's rules forbid sending it now.

        Each call checks the target first: an id from a payload that is not a Facebook id raises
        ``InvalidGraphIdError`` before any request, and the reply fails with that reason.
        """
        client, now, text, target = self.client, self.pacer.now(), reply.text, reply.target_id
        if reply.channel == COMMENT_REPLY:
            return (lambda: client.reply_to_comment(graph_id(target), scrub(text))), None
        if reply.channel == HIDE:
            return (lambda: target if client.hide_comment(graph_id(target)) else None), None
        if reply.channel == PRIVATE_REPLY and ticket is not None:
            if not private_reply_allowed(ticket.opened_at, now):
                return None, "private reply window (7 days after the comment) has passed"
            is_post = ticket.channel == Channel.POST or (ticket.channel == Channel.MENTION and not ticket.comment_id)

            def private_reply() -> str | None:
                response = client.send_private_reply(graph_id(target), text, is_post=is_post,
                                                     metadata=marker(reply.key))
                self.learned_psid = response.get("recipient_id")  # the commenter's PSID, see mark_sent
                return response.get("message_id")

            return private_reply, None
        if reply.kind == "status" or ticket is None:  # answers the question that opened the window just now
            route = messenger_route(now, now, human_agent_allowed=False)
        else:
            route = messenger_route(ticket.last_citizen_message_at or ticket.opened_at, now,
                                    human_agent_allowed=self.settings.human_agent_tag and reply.kind == "answer")
        if route is None:
            return None, "outside the Messenger window (24 hours, or 7 days with HUMAN_AGENT)"
        quick = rating_quick_replies(ticket.number) if reply.kind == "rating" and ticket is not None else None
        return (lambda: client.send_message(graph_id(target), text, messaging_type=route.messaging_type,
                                            tag=route.tag, metadata=marker(reply.key),
                                            quick_replies=quick).get("message_id")), None

    def _record(self, session: Session, reply: Reply, graph_id: str | None, error: GraphError | None) -> bool:
        if error is None:
            if reply.channel == HIDE and graph_id is None:
                mark_failed(session, reply, "Facebook did not confirm hiding the comment", self.report)
                return True
            self._sent(session, reply, graph_id, how="call")
            return True
        reply.error = f"{type(error).__name__}: {error}"[:2000]
        if isinstance(error, DuplicatePostError) and reply.attempts > 1:
            self._sent(session, reply, None, how="duplicate_refused")
        elif isinstance(error, RateLimitedError):
            reply.status, reply.next_attempt_at = ReplyStatus.PENDING, self.pacer.pause(
                max(error.retry_after_seconds, 1.0))
            reply.attempts -= 1  # definitely not sent: does not use up the budget
            self.report.retry.append(reply.id)
            return False
        elif isinstance(error, TokenInvalidError):
            reply.status, reply.attempts, reply.next_attempt_at = ReplyStatus.PENDING, reply.attempts - 1, None
            flag_page_token(session, error)
            self.report.retry.append(reply.id)
            return False
        elif isinstance(error, OutsideWindowError) or self._refused_elsewhere(reply, error):
            mark_undeliverable(session, reply, reply.error, self.report)
        elif self._ambiguous(reply, error):
            reply.status, reply.next_attempt_at = ReplyStatus.UNKNOWN, self.pacer.now() + self.policy.reconcile_after
            self.report.unknown.append(reply.id)
        elif isinstance(error, TransientGraphError | AmbiguousOutcomeError):  # not sent, or safe to repeat
            self._retry_later(session, reply, self.policy.retry_delay(error, reply.attempts))
        else:
            mark_failed(session, reply, reply.error, self.report)
        return True

    def _sent(self, session: Session, reply: Reply, graph_id: str | None, *, how: str) -> None:
        mark_sent(session, reply, graph_id, now=self.pacer.now(), how=how, learned_psid=self.learned_psid)
        self.report.sent.append(reply.id)

    @staticmethod
    def _refused_elsewhere(reply: Reply, error: GraphError) -> bool:
        """A mention's post or comment lives elsewhere and may not take the page's comments: not a failure of
        ours, and the answer then goes to Messenger (:func:`bot.outcomes.mark_undeliverable`)."""
        return (isinstance(error, GraphPermissionError) and reply.channel == COMMENT_REPLY
                and reply.ticket is not None and reply.ticket.channel == Channel.MENTION)

    @staticmethod
    def _ambiguous(reply: Reply, error: GraphError) -> bool:
        """A write that may have happened: anything but a definite "not sent" (hiding is safe to repeat)."""
        if reply.channel == HIDE:
            return False
        if isinstance(error, AmbiguousOutcomeError):
            return True
        definitely_not_sent = isinstance(error, PolicyBlockedError | ConnectionFailedError)
        return isinstance(error, TransientGraphError) and not definitely_not_sent

    def _retry_later(self, session: Session, reply: Reply, delay: float) -> None:
        if reply.attempts >= self.policy.max_attempts:
            mark_failed(session, reply, f"gave up after {reply.attempts} attempts: {reply.error}", self.report)
            return
        reply.status, reply.next_attempt_at = ReplyStatus.PENDING, self.pacer.after(delay)
        self.report.retry.append(reply.id)
