"""The joins of the pipeline: stored delivery → tickets → route → forward → acknowledge, and the sweeper's rounds.

Ingest records, routing decides, the bot speaks; none of them imports another. This module calls them in
turn, and downloads the attachments of complaint tickets (:mod:`ntbcare.pipeline.media`). A decision and
everything it owes (forward e-mails, acknowledgements) are written in one transaction, so a crash between them
cannot leave a routed ticket without its acknowledgement; sending happens after the commit, and whatever a
send leaves undone is picked up by the sweeper's next round.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, time
from typing import TYPE_CHECKING

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from bot.acknowledge import acknowledge_tickets, hide_changed_comments
from bot.outcomes import ReplyReport
from bot.rating import owe_reopen_notice
from bot.sender import send_due_replies
from bot.status import owe_status_reply
from ingest.apply import ApplyResult
from ingest.grace import hold_new_tickets
from ingest.processing import BatchResult, process_batch
from ingest.status_requests import StatusRequest
from ntbcare.core.cdn import CdnFetcher
from ntbcare.core.db import Database
from ntbcare.core.metrics import deliveries_failed, routing_confidences
from ntbcare.core.models import Reply, Ticket, TicketMessage, utcnow
from ntbcare.core.operator_mail import build_silence_email
from ntbcare.core.settings import Settings
from ntbcare.pipeline.accountability.recap import build_recap_mail, owe_monthly_recap
from ntbcare.pipeline.classifier import load_classifier
from ntbcare.pipeline.housekeeping import housekeeping_tasks
from ntbcare.pipeline.media import MediaReport, download_due
from ntbcare.pipeline.retraining import retrain_soon
from routing.deadlines import DeadlinePolicy, WorkingCalendar, load_holidays
from routing.digest import owe_weekly_digests
from routing.forwarding import SendResult, schedule_followups, send_due_mails
from routing.reopen import reopen_not_fixed
from routing.route import RouteResult, apply_verdicts, tickets_to_route

if TYPE_CHECKING:
    from routing.classify import Classifier

log = logging.getLogger(__name__)

RouteQueue = Callable[[list[int]], None]


def deadline_policy_for(settings: Settings) -> DeadlinePolicy:
    """Deadlines from the configured office hours (WITA) and tiers, with national holidays."""
    (start_h, start_m), (end_h, end_m) = settings.office_hours
    day_end = time(23, 59, 59) if (end_h, end_m) == (24, 0) else time(end_h, end_m)
    calendar = WorkingCalendar(holidays=load_holidays(), day_start=time(start_h, start_m), day_end=day_end)
    return DeadlinePolicy.from_hours(calendar, urgent=settings.deadline_urgent_hours,
                                     important=settings.deadline_important_hours,
                                     normal=settings.deadline_normal_hours)


@dataclass
class Pipeline:
    """One process's view of the pipeline. ``route_queue`` hands new tickets to a routing job of their own
    (RQ workers); without it they are routed right after they are opened (embedded queue, CLI, tests).
    ``clock`` is the pipeline's now: the photo's wait is set, checked and joined by it (a test drives it)."""

    settings: Settings
    db: Database
    route_queue: RouteQueue | None = None
    media_fetcher: CdnFetcher | None = None  # None: Facebook's CDN as the service reaches it (tests: a stand-in)
    clock: Callable[[], datetime] = utcnow
    _policy: DeadlinePolicy | None = field(default=None, init=False, repr=False)

    @property
    def classifier(self) -> Classifier:
        return load_classifier(self.settings.routing_model_path, self.settings.secret_key)

    @property
    def deadline_policy(self) -> DeadlinePolicy:
        if self._policy is None:
            self._policy = deadline_policy_for(self.settings)
        return self._policy

    def ingest(self, delivery_ids: list[int]) -> BatchResult:
        """Stored deliveries → events and tickets; new tickets go on to routing, status requests get answers."""
        result = process_batch(self.db, delivery_ids, page_id=self.settings.fb_page_id,
                               max_attempts=self.settings.max_delivery_attempts, owe=self.owe_for_ingested,
                               now=self.clock, grace_seconds=self.settings.attachment_grace_seconds)
        deliveries_failed(len(result.failed))
        log.info("deliveries: %d done, %d failed, %d retry later, %d skipped; %d tickets opened",
                 len(result.done), len(result.failed), len(result.retry_later), len(result.skipped),
                 len(result.opened_ticket_ids))
        if result.opened_ticket_ids:
            try:
                if self.route_queue is not None:
                    self.route_queue(result.opened_ticket_ids)
                else:
                    self.route(result.opened_ticket_ids)
            except Exception:  # the tickets stay "new"; the sweeper routes them on its next round
                log.exception("routing %d new tickets failed; the sweeper retries", len(result.opened_ticket_ids))
        if result.reply_ids:  # owed with the deliveries' commit; whatever this leaves, the sweeper sends
            self.send_replies_soon(result.reply_ids)
        return result

    def owe_for_ingested(self, session: Session, applied: ApplyResult) -> list[int]:
        """Inside the transaction that stores the events: owe the answers to status questions and the hiding
        of changed public comments that show personal data, so a crash after that commit loses neither."""
        owed = [owe_status_reply(session, self.settings, r.psid, r.number, r.mid) for r in applied.status_requests]
        opened = {t.id for t in applied.new_tickets}
        comments = [(m.ticket, m.external_id, m.text or "") for m in applied.changed_comments
                    if m.ticket.id not in opened and not m.removed]
        owed.extend(hide_changed_comments(session, self.settings, comments))
        self.hold_for_text(session, applied)
        owed.extend(reply for reply in self.reopen_not_fixed(session, applied) if reply is not None)
        session.flush()
        return [reply.id for reply in owed]

    def hold_for_text(self, session: Session, applied: ApplyResult) -> list[int]:
        """New tickets opened by a photo or fewer than four words wait ATTACHMENT_GRACE_SECONDS for their text."""
        session.flush()  # the new tickets' ids
        return hold_new_tickets(session, applied.new_tickets, self.clock(), self.settings.attachment_grace_seconds)

    def reopen_not_fixed(self, session: Session, applied: ApplyResult) -> list[Reply | None]:
        """Tickets the citizen says are not fixed go back to their agency (fresh link, deadline from now); the
        forward e-mail is sent by the next mail round, the citizen is told in Messenger."""
        now = self.clock()
        notices = []
        for ticket in dict.fromkeys(applied.reopened):
            reopen_not_fixed(session, ticket, self.deadline_policy, now)
            notices.append(owe_reopen_notice(session, ticket))
        return notices

    def recheck_comments(self, changed: list[tuple[int, str]]) -> list[int]:
        """Hide public comments that showed personal data only after their ticket opened (an edit, a reply)."""
        with self.db.scope() as session:
            comments = []
            for ticket_id, comment_id in changed:
                message = session.scalars(select(TicketMessage).where(TicketMessage.external_id == comment_id)).first()
                ticket = session.get(Ticket, ticket_id)
                if message is not None and ticket is not None and not message.removed:
                    comments.append((ticket, comment_id, message.text or ""))
            owed = hide_changed_comments(session, self.settings, comments)
            session.flush()
            reply_ids = [reply.id for reply in owed]
        self.send_replies(reply_ids)
        return reply_ids

    def route(self, ticket_ids: list[int] | None = None, *, older_than: float = 0.0) -> RouteResult:
        """Classify tickets still ``new``, then in one transaction apply the verdicts and owe the forward
        e-mails and the acknowledgements of the complaints; send both after the commit."""
        now = self.clock()
        rows = tickets_to_route(self.db, ticket_ids, older_than=older_than, now=now)
        if not rows:
            return RouteResult()
        verdicts = self.classifier.classify_many([text for _, text in rows])
        routing_confidences([verdict.confidence for verdict in verdicts])
        with self.db.scope() as session:
            result = apply_verdicts(session, rows, verdicts, self.deadline_policy, now)
            complaints = sorted(result.routed + result.review)
            tickets = list(session.scalars(select(Ticket).where(Ticket.id.in_(complaints)).order_by(Ticket.id)
                                           .options(selectinload(Ticket.citizen))))
            owed = acknowledge_tickets(session, self.settings, tickets)
            session.flush()
            reply_ids = [reply.id for reply in owed]
        if result.mail_ids:
            self.send_mails(result.mail_ids)
        self.send_replies(reply_ids)
        if complaints:  # their photos and files, while Facebook's links still work; the sweeper does the rest
            self.download_media_soon(complaints)
        return result

    def answer_status_requests(self, requests: list[StatusRequest]) -> list[int]:
        """Reply in Messenger to citizens who asked how their ticket is doing."""
        with self.db.scope() as session:
            owed = [owe_status_reply(session, self.settings, r.psid, r.number, r.mid) for r in requests]
            session.flush()
            reply_ids = [reply.id for reply in owed]
        self.send_replies(reply_ids)
        return reply_ids

    def send_replies(self, reply_ids: list[int] | None = None, *, limit: int = 50) -> ReplyReport:
        """Send owed Facebook replies now (these ids, or up to ``limit`` due ones); failures wait for the next
        round."""
        if reply_ids is not None and not reply_ids:
            return ReplyReport()
        return send_due_replies(self.db, self.settings, ids=reply_ids, limit=limit)

    def send_replies_soon(self, reply_ids: list[int]) -> None:
        """Best effort right after a person acted: a failure leaves the rows for the sweeper, never an error."""
        try:
            self.send_replies(reply_ids)
        except Exception:
            log.exception("sending replies %s failed; the sweeper retries", reply_ids)

    def download_media(self, ticket_ids: list[int] | None = None, *, limit: int = 20) -> MediaReport:
        """Download the due attachments of complaint tickets (these, or any) into MEDIA_DIR."""
        return download_due(self.db, self.settings, self.media_fetcher, ticket_ids=ticket_ids, limit=limit)

    def download_media_soon(self, ticket_ids: list[int]) -> None:
        """Best effort right after routing, a few files: whatever this leaves, the sweeper downloads."""
        try:
            self.download_media(ticket_ids, limit=5)
        except Exception:
            log.exception("downloading attachments of tickets %s failed; the sweeper retries", ticket_ids)

    def send_mails(self, mail_ids: list[int] | None = None) -> SendResult:
        """Send owed e-mails now (these ids, or every due one); temporary failures are retried later."""
        policy = self.deadline_policy
        return send_due_mails(self.db, self.settings, ids=mail_ids, builders={
            "recap": lambda session, settings, mail, now: build_recap_mail(session, settings, mail, now, policy),
            "watchdog": build_silence_email})

    def follow_up(self) -> None:
        """Owe reminders, escalations and this week's digests that fell due, then send every due e-mail."""
        schedule_followups(self.db, self.settings, self.deadline_policy)
        owe_weekly_digests(self.db)
        owe_monthly_recap(self.db, self.settings, self.deadline_policy)  # on the first working day, once
        self.send_mails()

    def periodic_tasks(self) -> list[Callable[[], None]]:
        """What the sweeper runs besides re-dispatching deliveries: nothing waits on a lost job."""

        def route_stragglers() -> None:  # tickets whose routing was interrupted (crash, restart)
            self.route(older_than=max(30.0, self.settings.sweep_interval))

        def follow_up() -> None:
            self.follow_up()

        def send_replies() -> None:  # retries, reconciliation of ambiguous sends, replies owed by agencies
            self.send_replies()

        def retrain() -> None:  # after every RETRAIN_AFTER_DECISIONS decisions and nightly, gated
            retrain_soon(self.db, self.settings)

        def download_media() -> None:  # attachments owed at ingest, once their ticket is a complaint; retries
            self.download_media()

        return [route_stragglers, follow_up, send_replies, download_media, retrain,
                *housekeeping_tasks(self.db, self.settings, self.send_mails)]  # watchdog, retention
