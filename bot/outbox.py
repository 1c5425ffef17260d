"""The outbox of replies to citizens: never twice, never lost.

Every message is a ``Reply`` row with a unique key, written before any Graph call. A sender claims due rows
with a status-guarded update, calls Graph outside any transaction and records the outcome only if its claim
still holds. Graph writes have no idempotency key, so an ambiguous outcome (read timeout, reset, 5xx, codes
1/2, a crash that left a row ``sending``) becomes ``unknown`` and is read back before anything is posted again:
public replies from the comment's replies, Messenger messages from the echo carrying our ``metadata`` marker.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from bot.backoff import backoff_delay
from bot.client import PageTokenMissing, graph_client
from bot.errors import (
    AmbiguousOutcomeError,
    ConnectionFailedError,
    DuplicatePostError,
    GraphError,
    OutsideWindowError,
    PolicyBlockedError,
    RateLimitedError,
    TokenInvalidError,
    TransientGraphError,
)
from bot.graph import GraphClient
from bot.privacy import scrub
from bot.texts import render
from bot.windows import messenger_route, private_reply_allowed
from ntbcare.core.db import Database
from ntbcare.core.lifecycle import audit, transition
from ntbcare.core.models import (
    Agency,
    AgencyAnswer,
    Channel,
    Event,
    Reply,
    ReplyStatus,
    ServiceFlag,
    Ticket,
    TicketStatus,
    utcnow,
)
from ntbcare.core.settings import Settings

log = logging.getLogger(__name__)

PAGE_TOKEN_FLAG = "page_token_invalid"
MARKER_PREFIX = "ntbcare:"
MESSENGER_TEXT_LIMIT = 1990
COMMENT_REPLY, PRIVATE_REPLY, MESSENGER, HIDE = "comment_reply", "private_reply", "messenger", "hide"
ANSWERABLE = (TicketStatus.NEW, TicketStatus.REVIEW, TicketStatus.ROUTED, TicketStatus.FORWARDED)


@dataclass(frozen=True)
class SenderPolicy:
    """Timing of the sender; the defaults suit production, tests shorten them."""

    max_attempts: int = 8
    lease: timedelta = timedelta(minutes=5)  # longer than any call (timeouts + governor wait)
    reconcile_after: timedelta = timedelta(seconds=30)  # give the Messenger echo time to arrive
    clock_skew: timedelta = timedelta(minutes=5)  # read-back looks this far before the row was owed
    backoff_base: float = 2.0
    backoff_cap: float = 600.0
    max_inline_wait: float = 5.0  # a longer throttle pause ends the pass instead of holding the worker


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
    throttled_until: datetime | None = None  # set when Meta's rate limit ended the pass early


def marker(key: str) -> str:
    """The ``metadata`` we attach to Messenger sends; the echo brings it back for reconciliation."""
    return MARKER_PREFIX + key


# -- owing ---------------------------------------------------------------------------------------------------


def owe_reply(session: Session, ticket: Ticket, *, key: str, kind: str, channel: str, target_id: str,
              text: str) -> Reply:
    """Write the intent to send (once per key, ever); a second owe returns the existing row unchanged."""
    existing = session.scalars(select(Reply).where(Reply.key == key)).first()
    if existing is not None:
        return existing
    if channel == COMMENT_REPLY:
        text = scrub(text)
    elif channel in (MESSENGER, PRIVATE_REPLY) and len(text) > MESSENGER_TEXT_LIMIT:
        text = text[: MESSENGER_TEXT_LIMIT - 1] + "…"
    reply = Reply(key=key, ticket=ticket, kind=kind, channel=channel, target_id=target_id, text=text,
                  status=ReplyStatus.PENDING, attempts=0)
    try:
        with session.begin_nested():
            session.add(reply)
    except IntegrityError:  # another worker owed it first
        return session.scalars(select(Reply).where(Reply.key == key)).one()
    return reply


def public_target(ticket: Ticket) -> str | None:
    """The comment or visitor post a public reply goes under (None for a pure Messenger ticket)."""
    if ticket.channel == Channel.COMMENT:
        return ticket.comment_id or ticket.origin_id
    if ticket.channel == Channel.POST:
        return ticket.post_id or ticket.origin_id
    return ticket.comment_id or None


def _agency_name(session: Session, code: str) -> str:
    agency = session.get(Agency, code)
    return agency.name if agency is not None else code


def _owe_public_answer(session: Session, ticket: Ticket, answer: AgencyAnswer, key: str) -> Reply | None:
    target = public_target(ticket)
    if target is None:
        return None
    text = render(session, "answer_public", agency=_agency_name(session, answer.agency_code),
                  number=ticket.number, answer=scrub(answer.text))
    return owe_reply(session, ticket, key=key, kind="answer", channel=COMMENT_REPLY, target_id=target, text=text)


def owe_answer(session: Session, ticket: Ticket, answer: AgencyAnswer) -> list[Reply]:
    """The reply (or replies) an agency answer needs: back where the complaint came from.

    Called in the transaction that stores the answer; the ticket becomes ``answered`` only once Facebook
    accepts the reply. Owing the same answer again returns the rows already owed.
    """
    if answer.id is None:
        session.flush()
    key = f"answer:{answer.id}"
    psid = ticket.psid or (ticket.citizen.psid if ticket.citizen is not None else None)
    if ticket.channel == Channel.MESSENGER and psid:
        text = render(session, "answer_messenger", agency=_agency_name(session, answer.agency_code),
                      number=ticket.number, answer=answer.text)
        return [owe_reply(session, ticket, key=key, kind="answer", channel=MESSENGER, target_id=psid, text=text)]
    reply = _owe_public_answer(session, ticket, answer, key)
    return [reply] if reply is not None else []


# -- operator actions ------------------------------------------------------------------------------------------


def page_token_paused(session: Session) -> bool:
    return session.get(ServiceFlag, PAGE_TOKEN_FLAG) is not None


def clear_page_token_flag(db: Database) -> bool:
    """Resume sending after the Page token was replaced; returns whether sending was paused."""
    with db.scope() as session:
        flag = session.get(ServiceFlag, PAGE_TOKEN_FLAG)
        if flag is None:
            return False
        session.delete(flag)
        return True


def retry_replies(db: Database, ids: list[int] | None = None, *, actor: str = "operator") -> list[int]:
    """Put failed (or, by id, undeliverable) replies back in the queue with a fresh attempt budget."""
    statuses = (ReplyStatus.FAILED, ReplyStatus.UNDELIVERABLE) if ids else (ReplyStatus.FAILED,)
    with db.scope() as session:
        query = select(Reply).where(Reply.status.in_(statuses))
        if ids:
            query = query.where(Reply.id.in_(ids))
        replies = session.scalars(query.with_for_update()).all()
        for reply in replies:
            audit(session, reply.ticket, "reply_retry", actor=actor, detail={"reply": reply.key,
                                                                              "was": reply.status})
            reply.status, reply.attempts, reply.error, reply.next_attempt_at = ReplyStatus.PENDING, 0, None, None
        return [r.id for r in replies]


# -- sending ---------------------------------------------------------------------------------------------------


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
    sender = _Sender(db, settings, client, policy, clock, report)
    sender.recover_stale(ids)
    unknown = sender.claim_unknown(ids, limit)
    for index, reply_id in enumerate(unknown):
        if sender.throttled():
            sender.release_unknown(unknown[index:])
            return report
        if not sender.reconcile(reply_id):
            sender.release_unknown(unknown[index + 1 :])
            return report
    claimed = sender.claim_pending(ids, limit)
    for index, reply_id in enumerate(claimed):
        if sender.throttled():
            sender.release(claimed[index:])
            break
        if not sender.send(reply_id):
            sender.release(claimed[index + 1 :])
            break
    return report


class _Sender:
    """One pass of the sender; methods return False when the whole pass must stop (throttle, dead token)."""

    def __init__(self, db: Database, settings: Settings, client: GraphClient, policy: SenderPolicy,
                 clock: Callable[[], datetime], report: ReplyReport) -> None:
        self.db, self.settings, self.client, self.policy = db, settings, client, policy
        self.clock, self.report = clock, report
        self.resume_at: datetime | None = None
        self.learned_psid: str | None = None  # from the last private reply's response

    def _due(self, status: str, ids: list[int] | None, limit: int):  # type: ignore[no-untyped-def]
        now = self.clock()
        query = select(Reply).where(Reply.status == status,
                                    (Reply.next_attempt_at.is_(None)) | (Reply.next_attempt_at <= now))
        if ids is not None:
            query = query.where(Reply.id.in_(ids))
        return query.order_by(Reply.id).limit(limit).with_for_update(skip_locked=True)

    def recover_stale(self, ids: list[int] | None) -> None:
        """A row still ``sending`` after the lease belongs to a sender that died mid-call: outcome unknown."""
        now = self.clock()
        stale = update(Reply).where(Reply.status == ReplyStatus.SENDING, Reply.claimed_at < now - self.policy.lease)
        if ids is not None:
            stale = stale.where(Reply.id.in_(ids))
        with self.db.scope() as session:
            session.execute(stale.values(status=ReplyStatus.UNKNOWN, next_attempt_at=now,
                                         error="sender stopped during the call"))

    def claim_unknown(self, ids: list[int] | None, limit: int) -> list[int]:
        with self.db.scope() as session:
            replies = session.scalars(self._due(ReplyStatus.UNKNOWN, ids, limit)).all()
            for reply in replies:
                reply.next_attempt_at = self.clock() + self.policy.lease
            return [r.id for r in replies]

    def claim_pending(self, ids: list[int] | None, limit: int) -> list[int]:
        with self.db.scope() as session:
            replies = session.scalars(self._due(ReplyStatus.PENDING, ids, limit)).all()
            for reply in replies:
                reply.status, reply.claimed_at, reply.attempts = ReplyStatus.SENDING, self.clock(), reply.attempts + 1
            return [r.id for r in replies]

    def throttled(self) -> bool:
        """True when the governor would hold the next call too long: the pass ends, rows wait in the DB."""
        delay = self.client.governor.delay_before_next_call()
        if delay <= self.policy.max_inline_wait:
            return False
        self.resume_at = self.clock() + timedelta(seconds=delay)
        self.report.throttled_until = self.resume_at
        return True

    def release_unknown(self, ids: list[int]) -> None:
        """Unknown rows claimed for read-back but not read: due again when the throttle ends."""
        if not ids:
            return
        with self.db.scope() as session:
            session.execute(update(Reply).where(Reply.id.in_(ids), Reply.status == ReplyStatus.UNKNOWN)
                            .values(next_attempt_at=self.resume_at))

    def release(self, ids: list[int]) -> None:
        """Claimed but not tried: back to pending, the attempt not counted."""
        if not ids:
            return
        with self.db.scope() as session:
            session.execute(update(Reply).where(Reply.id.in_(ids), Reply.status == ReplyStatus.SENDING)
                            .values(status=ReplyStatus.PENDING, attempts=Reply.attempts - 1,
                                    next_attempt_at=self.resume_at))

    # -- reconciliation --

    def reconcile(self, reply_id: int) -> bool:
        with self.db.session() as session:
            reply = session.get(Reply, reply_id)
            channel, target, text, key = reply.channel, reply.target_id, reply.text, reply.key
            since = reply.created_at - self.policy.clock_skew
        try:
            if channel == COMMENT_REPLY:
                found, graph_id = self._read_back_comment(target, text, since)
            elif channel == HIDE:
                found, graph_id = False, None  # hiding is idempotent: simply do it again
            else:
                found, graph_id = self._read_back_echo(key, since)
        except GraphError as exc:
            return self._reconcile_failed(reply_id, exc)
        with self.db.scope() as session:
            reply = session.get(Reply, reply_id)
            if reply.status != ReplyStatus.UNKNOWN:
                return True
            if found:
                self._mark_sent(session, reply, graph_id, how="read_back")
                self.report.reconciled.append(reply_id)
            elif reply.attempts >= self.policy.max_attempts:
                self._mark_failed(session, reply, f"not found by read-back after {reply.attempts} attempts")
            else:
                reply.status, reply.next_attempt_at = ReplyStatus.PENDING, None
        return True

    def _read_back_comment(self, target: str, text: str, since: datetime) -> tuple[bool, str | None]:
        wanted = " ".join(text.split())
        for item in self.client.list_comment_replies(target, since=since):
            author = (item.get("from") or {}).get("id")
            if author == self.client.page_id and " ".join(str(item.get("message") or "").split()) == wanted:
                return True, item.get("id")
        return False, None

    def _read_back_echo(self, key: str, since: datetime) -> tuple[bool, str | None]:
        wanted = marker(key)
        with self.db.session() as session:
            echoes = session.scalars(select(Event).where(Event.kind == "echo", Event.created_at >= since)
                                     .order_by(Event.id.desc()).limit(5000))
            for event in echoes:
                message = (event.payload or {}).get("message") or {}
                if isinstance(message, dict) and message.get("metadata") == wanted:
                    return True, message.get("mid") or event.external_id
        return False, None

    def _reconcile_failed(self, reply_id: int, exc: GraphError) -> bool:
        with self.db.scope() as session:
            reply = session.get(Reply, reply_id)
            delay = self._delay(exc, reply.attempts)
            if isinstance(exc, RateLimitedError):
                self.resume_at = self.report.throttled_until = self.clock() + timedelta(seconds=delay)
            reply.next_attempt_at, reply.error = self.clock() + timedelta(seconds=delay), f"read-back: {exc}"[:2000]
            self.report.unknown.append(reply_id)
            if isinstance(exc, TokenInvalidError):
                self._flag_token(session, exc)
        log.warning("read-back of reply %s failed, staying unknown: %s", reply_id, exc)
        return not isinstance(exc, RateLimitedError | TokenInvalidError)

    # -- one send --

    def send(self, reply_id: int) -> bool:
        with self.db.session() as session:
            reply = session.get(Reply, reply_id)
            claimed_at = reply.claimed_at
            call, refusal = self._plan(reply, reply.ticket)
        outcome: GraphError | None = None
        graph_id: str | None = None
        if call is not None:
            try:
                graph_id = call()
            except GraphError as exc:
                outcome = exc
        with self.db.scope() as session:
            reply = session.get(Reply, reply_id)
            if reply.status != ReplyStatus.SENDING or reply.claimed_at != claimed_at:
                log.warning("reply %s was taken over during the call; outcome left to its new owner", reply_id)
                return True
            if refusal is not None:
                self._mark_undeliverable(session, reply, refusal)
                return True
            return self._record(session, reply, graph_id, outcome)

    def _plan(self, reply: Reply, ticket: Ticket) -> tuple[Callable[[], str | None] | None, str | None]:
        """The Graph call for a reply, or why Facebook's rules forbid sending it now."""
        client, now, text, target = self.client, self.clock(), reply.text, reply.target_id
        if reply.channel == COMMENT_REPLY:
            return (lambda: client.reply_to_comment(target, scrub(text))), None
        if reply.channel == HIDE:
            return (lambda: target if client.hide_comment(target) else None), None
        if reply.channel == PRIVATE_REPLY:
            if not private_reply_allowed(ticket.opened_at, now):
                return None, "private reply window (7 days after the comment) has passed"
            is_post = ticket.channel == Channel.POST

            def private_reply() -> str | None:
                response = client.send_private_reply(target, text, is_post=is_post, metadata=marker(reply.key))
                self.learned_psid = response.get("recipient_id")  # the commenter's PSID, see _mark_sent
                return response.get("message_id")

            return private_reply, None
        if reply.kind == "status":
            route = messenger_route(now, now, human_agent_allowed=False)
        else:
            route = messenger_route(ticket.last_citizen_message_at or ticket.opened_at, now,
                                    human_agent_allowed=self.settings.human_agent_tag and reply.kind == "answer")
        if route is None:
            return None, "outside the Messenger window (24 hours, or 7 days with HUMAN_AGENT)"
        return (lambda: client.send_message(target, text, messaging_type=route.messaging_type, tag=route.tag,
                                            metadata=marker(reply.key)).get("message_id")), None

    def _record(self, session: Session, reply: Reply, graph_id: str | None, error: GraphError | None) -> bool:
        if error is None:
            if reply.channel == HIDE and graph_id is None:
                self._mark_failed(session, reply, "Facebook did not confirm hiding the comment")
                return True
            self._mark_sent(session, reply, graph_id, how="call")
            self.report.sent.append(reply.id)
            return True
        reply.error = f"{type(error).__name__}: {error}"[:2000]
        if isinstance(error, DuplicatePostError) and reply.attempts > 1:
            self._mark_sent(session, reply, None, how="duplicate_refused")
            self.report.sent.append(reply.id)
        elif isinstance(error, RateLimitedError):
            self.resume_at = self.clock() + timedelta(seconds=max(error.retry_after_seconds, 1.0))
            self.report.throttled_until = self.resume_at
            reply.status, reply.next_attempt_at = ReplyStatus.PENDING, self.resume_at
            reply.attempts -= 1  # definitely not sent: does not use up the budget
            self.report.retry.append(reply.id)
            return False
        elif isinstance(error, TokenInvalidError):
            reply.status, reply.attempts, reply.next_attempt_at = ReplyStatus.PENDING, reply.attempts - 1, None
            self._flag_token(session, error)
            self.report.retry.append(reply.id)
            return False
        elif isinstance(error, OutsideWindowError):
            self._mark_undeliverable(session, reply, reply.error)
        elif self._ambiguous(reply, error):
            reply.status, reply.next_attempt_at = ReplyStatus.UNKNOWN, self.clock() + self.policy.reconcile_after
            self.report.unknown.append(reply.id)
        elif isinstance(error, TransientGraphError | AmbiguousOutcomeError):  # not sent, or safe to repeat
            self._retry_later(session, reply, self._delay(error, reply.attempts))
        else:
            self._mark_failed(session, reply, reply.error)
        return True

    @staticmethod
    def _ambiguous(reply: Reply, error: GraphError) -> bool:
        """A write that may have happened: anything but a definite "not sent" (hiding is safe to repeat)."""
        if reply.channel == HIDE:
            return False
        if isinstance(error, AmbiguousOutcomeError):
            return True
        definitely_not_sent = isinstance(error, PolicyBlockedError | ConnectionFailedError)
        return isinstance(error, TransientGraphError) and not definitely_not_sent

    def _delay(self, error: GraphError, attempts: int) -> float:
        delay = backoff_delay(max(attempts - 1, 0), base=self.policy.backoff_base, cap=self.policy.backoff_cap)
        return max(delay, float(getattr(error, "retry_after_seconds", 0.0) or 0.0))

    def _retry_later(self, session: Session, reply: Reply, delay: float) -> None:
        if reply.attempts >= self.policy.max_attempts:
            self._mark_failed(session, reply, f"gave up after {reply.attempts} attempts: {reply.error}")
            return
        reply.status, reply.next_attempt_at = ReplyStatus.PENDING, self.clock() + timedelta(seconds=delay)
        self.report.retry.append(reply.id)

    # -- outcomes --

    def _mark_sent(self, session: Session, reply: Reply, graph_id: str | None, *, how: str) -> None:
        now = self.clock()
        reply.status, reply.graph_id, reply.sent_at, reply.error = ReplyStatus.SENT, graph_id, now, None
        ticket = reply.ticket
        learned, self.learned_psid = self.learned_psid, None
        if reply.channel == PRIVATE_REPLY and learned and not ticket.psid:
            ticket.psid = str(learned)  # the citizen's Messenger answers now join this comment's ticket
        detail = {"reply": reply.key, "channel": reply.channel, "graph_id": graph_id, "how": how}
        if reply.kind != "answer":
            audit(session, ticket, "comment_hidden" if reply.channel == HIDE else "reply_sent", actor="bot",
                  detail=detail)
            return
        ticket.answered_at = ticket.answered_at or now
        if ticket.status not in ANSWERABLE or not transition(session, ticket, TicketStatus.ANSWERED, actor="bot",
                                                             action="answered", detail=detail):
            audit(session, ticket, "answer_posted", actor="bot", detail=detail)

    def _mark_failed(self, session: Session, reply: Reply, error: str | None) -> None:
        reply.status, reply.error, reply.next_attempt_at = ReplyStatus.FAILED, error, None
        audit(session, reply.ticket, "reply_failed", actor="bot", detail={"reply": reply.key, "error": error})
        self.report.failed.append(reply.id)
        log.error("reply %s (%s) failed: %s", reply.id, reply.key, error)

    def _mark_undeliverable(self, session: Session, reply: Reply, reason: str | None) -> None:
        reply.status, reply.error, reply.next_attempt_at = ReplyStatus.UNDELIVERABLE, reason, None
        audit(session, reply.ticket, "reply_undeliverable", actor="bot", detail={"reply": reply.key,
                                                                                  "reason": reason})
        self.report.undeliverable.append(reply.id)
        if reply.kind == "answer" and reply.channel == MESSENGER and reply.key.startswith("answer:"):
            answer = session.get(AgencyAnswer, int(reply.key.split(":", 1)[1]))
            if answer is not None:
                _owe_public_answer(session, reply.ticket, answer, f"answer-fallback:{answer.id}")

    def _flag_token(self, session: Session, error: GraphError) -> None:
        if session.get(ServiceFlag, PAGE_TOKEN_FLAG) is None:
            session.add(ServiceFlag(key=PAGE_TOKEN_FLAG, value=str(error)[:1000]))
        log.critical("the Page token was refused (%s): replies are paused until it is replaced", error)
