"""One process's wiring: settings, database, dispatcher, delivery writer and sweeper.

The web app, the worker and the CLI each build one :class:`Runtime` and pass it explicitly, so nothing
is created at import time and tests can swap any part.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from datetime import time
from pathlib import Path
from typing import Any

from ntbcare.db import Database
from ntbcare.dispatch import Dispatcher, EmbeddedDispatcher, InlineDispatcher, RQDispatcher, Sweeper
from ntbcare.inbox import DeliveryWriter
from ntbcare.settings import Settings

log = logging.getLogger(__name__)

# Loaded once per process and inherited by RQ's forked work-horses, so a job never reloads the model.
_classifiers: dict[str, Any] = {}
_classifier_lock = threading.Lock()


def load_classifier(path: str) -> Any:
    """The routing classifier saved at ``path`` (trained from the bundled seed and saved if missing).

    Reloaded when the file changes, so `ntbcare routing train` reaches running workers without a restart.
    """
    file = Path(path).resolve()
    key = str(file)
    with _classifier_lock:
        stamp = file.stat().st_mtime_ns if file.exists() else None
        cached = _classifiers.get(key)
        if cached is None or (stamp is not None and cached[0] != stamp):
            from routing.classify import Classifier

            classifier = Classifier.load(file)
            _classifiers[key] = (file.stat().st_mtime_ns if file.exists() else None, classifier)
        return _classifiers[key][1]


@dataclass
class Runtime:
    settings: Settings
    db: Database
    dispatcher: Dispatcher
    sweeper: Sweeper | None = None
    writer: DeliveryWriter = field(init=False)
    _policy: Any = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        # Late-bound so a dispatcher swapped after construction still receives the committed ids.
        self.writer = DeliveryWriter(self.db, on_committed=lambda ids: self.dispatcher.dispatch(ids))

    @classmethod
    def build(cls, settings: Settings, *, mode: str = "inline", db: Database | None = None) -> Runtime:
        """``mode``: "web" (enqueue to RQ, or run the embedded worker when there is no Redis),
        "worker" (RQ worker process), or "inline" (process in the calling thread: CLI and tests)."""
        database = db or Database(settings.database_url)
        runtime = cls(settings=settings, db=database, dispatcher=InlineDispatcher(lambda ids: None))
        runtime.dispatcher = runtime._make_dispatcher(mode)
        if mode == "web" and not settings.uses_redis:
            runtime.start_sweeper()
        return runtime

    def _make_dispatcher(self, mode: str) -> Dispatcher:
        size = self.settings.ingest_batch_size
        if mode in {"web", "worker"} and self.settings.uses_redis:
            return RQDispatcher(self.settings.redis_url, batch_size=size)
        if mode == "web":
            return EmbeddedDispatcher(self.process, threads=self.settings.embedded_worker_threads, batch_size=size)
        return InlineDispatcher(self.process, batch_size=size)

    def process(self, ids: list[int]) -> object:
        from worker import handle_batch

        return handle_batch(self, ids)

    @property
    def classifier(self) -> Any:
        return load_classifier(self.settings.routing_model_path)

    @property
    def deadline_policy(self) -> Any:
        if self._policy is None:
            from routing.deadlines import DeadlinePolicy, WorkingCalendar, load_holidays

            start, end = self.settings.office_hours
            calendar = WorkingCalendar(holidays=load_holidays(), day_start=time(start),
                                       day_end=time(23, 59, 59) if end == 24 else time(end))
            self._policy = DeadlinePolicy.from_hours(
                calendar, urgent=self.settings.deadline_urgent_hours,
                important=self.settings.deadline_important_hours, normal=self.settings.deadline_normal_hours)
        return self._policy

    def route(self, ticket_ids: list[int] | None = None, *, older_than: float = 0.0) -> Any:
        """Classify and route new tickets, acknowledge the complaints on Facebook, send the forward e-mails."""
        from routing.forwarding import send_due_mails
        from routing.route import route_new_tickets

        result = route_new_tickets(self.db, self.classifier, self.deadline_policy, ticket_ids,
                                   older_than=older_than)
        if result.mail_ids:
            send_due_mails(self.db, self.settings, ids=result.mail_ids)
        complaints = result.routed + result.review
        if complaints:
            try:
                self.acknowledge(complaints)
            except Exception:  # never holds up forwarding; owed replies are retried by the sweeper
                log.exception("acknowledging %d tickets failed", len(complaints))
        return result

    def acknowledge(self, ticket_ids: list[int]) -> list[int]:
        """Owe and send the acknowledgements of these complaint tickets (chatter gets none)."""
        from sqlalchemy import select

        from bot.acknowledge import acknowledge_tickets
        from ntbcare.models import Ticket

        with self.db.scope() as session:
            tickets = list(session.scalars(select(Ticket).where(Ticket.id.in_(ticket_ids)).order_by(Ticket.id)))
            owed = acknowledge_tickets(session, self.settings, tickets)
            session.flush()
            reply_ids = [reply.id for reply in owed]
        self.send_replies(reply_ids)
        return reply_ids

    def answer_status_requests(self, requests: list[Any]) -> list[int]:
        """Reply in Messenger to citizens who asked how their ticket is doing."""
        from bot.status import owe_status_reply

        with self.db.scope() as session:
            owed = [owe_status_reply(session, self.settings, r.psid, r.number, r.mid) for r in requests]
            session.flush()
            reply_ids = [reply.id for reply in owed if reply is not None]
        self.send_replies(reply_ids)
        return reply_ids

    def send_replies(self, reply_ids: list[int] | None = None) -> Any:
        """Send owed Facebook replies now (these ids, or every due one); failures wait for the next round."""
        from bot.outbox import send_due_replies

        if reply_ids is not None and not reply_ids:
            return None
        return send_due_replies(self.db, self.settings, ids=reply_ids)

    def periodic_tasks(self) -> list[Any]:
        """What the sweeper runs besides re-dispatching deliveries: nothing waits on a lost job."""
        from routing.forwarding import schedule_followups, send_due_mails

        def route_stragglers() -> None:  # tickets whose routing was interrupted (crash, restart)
            self.route(older_than=max(30.0, self.settings.sweep_interval))

        def follow_up() -> None:
            schedule_followups(self.db, self.settings, self.deadline_policy)
            send_due_mails(self.db, self.settings)

        def send_replies() -> None:  # retries, reconciliation of ambiguous sends, replies owed by agencies
            self.send_replies()

        return [route_stragglers, follow_up, send_replies]

    def start_sweeper(self, dispatch=None) -> Sweeper:  # type: ignore[no-untyped-def]
        self.sweeper = Sweeper(
            self.db,
            dispatch or self.dispatcher.dispatch,
            interval=self.settings.sweep_interval,
            redispatch_after=self.settings.redispatch_after,
            batch_size=self.settings.ingest_batch_size,
            tasks=self.periodic_tasks(),
        ).start()
        return self.sweeper

    def close(self) -> None:
        if self.sweeper is not None:
            self.sweeper.stop()
        self.dispatcher.close()
        self.db.dispose()
