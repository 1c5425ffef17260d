"""Metrics the database knows, read when Prometheus scrapes: right however many machines run workers.

Each is one indexed aggregate (a handful of queries per scrape, every 15-60 s), never a scan per ticket.
Deliveries are never deleted (purging empties their body only), so the count of processed deliveries is a
counter in the Prometheus sense.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import datetime

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from ntbcare.core.db import Database
from ntbcare.core.metrics import acknowledged
from ntbcare.core.models import (
    Delivery,
    DeliveryStatus,
    Event,
    MailStatus,
    OutboundMail,
    Reply,
    ReplyStatus,
    Ticket,
    TicketStatus,
    utcnow,
)

AGENCY_OPEN = (TicketStatus.ROUTED, TicketStatus.FORWARDED)  # the agency owes a first answer
MAIL_STATES = (MailStatus.PENDING, MailStatus.SENDING, MailStatus.SENT, MailStatus.FAILED)
REPLY_STATES = (ReplyStatus.PENDING, ReplyStatus.SENDING, ReplyStatus.SENT, ReplyStatus.UNKNOWN, ReplyStatus.FAILED,
                ReplyStatus.UNDELIVERABLE)


class DatabaseCollector(Collector):
    """Deliveries by status, the queue's depth and oldest pending age, tickets by status, e-mails and replies
    by state, overdue tickets per agency."""

    def __init__(self, db: Database, clock: Callable[[], datetime] = utcnow) -> None:
        self.db = db
        self.clock = clock

    def collect(self) -> Iterator[CounterMetricFamily | GaugeMetricFamily]:
        now = self.clock()
        with self.db.session() as session:
            deliveries = dict(session.execute(
                select(Delivery.status, func.count()).group_by(Delivery.status)).all())
            oldest = session.scalar(select(func.min(Delivery.received_at))
                                    .where(Delivery.status == DeliveryStatus.PENDING))
            tickets = dict(session.execute(select(Ticket.status, func.count()).group_by(Ticket.status)).all())
            mails = dict(session.execute(
                select(OutboundMail.status, func.count()).group_by(OutboundMail.status)).all())
            replies = dict(session.execute(select(Reply.status, func.count()).group_by(Reply.status)).all())
            overdue = session.execute(
                select(Ticket.agency_code, func.count())
                .where(Ticket.status.in_(AGENCY_OPEN), Ticket.answered_at.is_(None), Ticket.deadline_at < now)
                .group_by(Ticket.agency_code)).all()

        yield CounterMetricFamily("ntbcare_deliveries_processed", "Deliveries processed (stored events and "
                                  "tickets), all time, from the database", value=deliveries.get(DeliveryStatus.DONE, 0))
        by_status = GaugeMetricFamily("ntbcare_deliveries", "Stored deliveries by status", labels=["status"])
        for status in DeliveryStatus.ALL:
            by_status.add_metric([status], deliveries.get(status, 0))
        yield by_status
        yield GaugeMetricFamily("ntbcare_queue_depth", "Deliveries waiting to be processed (pending)",
                                value=deliveries.get(DeliveryStatus.PENDING, 0))
        age = max(0.0, (now - oldest).total_seconds()) if oldest is not None else 0.0
        yield GaugeMetricFamily("ntbcare_queue_oldest_pending_age_seconds",
                                "Age of the oldest pending delivery (0 when none waits)", value=age)
        yield _by_label("ntbcare_tickets", "Tickets by status", "status", TicketStatus.ALL, tickets)
        yield _by_label("ntbcare_emails", "Owed e-mails by state", "state", MAIL_STATES, mails)
        yield _by_label("ntbcare_replies", "Replies owed to citizens on Facebook by status", "status",
                        REPLY_STATES, replies)
        family = GaugeMetricFamily("ntbcare_tickets_overdue", "Routed or forwarded tickets past their "
                                   "first-answer deadline, per agency", labels=["agency"])
        for agency, count in overdue:
            family.add_metric([agency or "none"], count)
        yield family


def _by_label(name: str, documentation: str, label: str, known: tuple[str, ...],
              counts: dict[str, int]) -> GaugeMetricFamily:
    family = GaugeMetricFamily(name, documentation, labels=[label])
    for value in dict.fromkeys([*known, *counts]):
        family.add_metric([value], counts.get(value, 0))
    return family


def observe_acknowledgement(session: Session, ticket: Ticket, now: datetime, channel: str) -> None:
    """Time from the arrival of the delivery that opened ``ticket`` to an acknowledgement Facebook accepted."""
    arrived = session.scalar(select(func.min(Delivery.received_at)).join(Event, Event.delivery_id == Delivery.id)
                             .where(Event.ticket_id == ticket.id))
    start = arrived or ticket.created_at
    if start is not None:
        acknowledged((now - start).total_seconds(), channel)
