"""The webhook watchdog: Facebook unsubscribes a page whose webhook kept failing, and says nothing to us.

The only symptom is silence, so silence is what is watched: when no delivery arrived for
``WEBHOOK_SILENCE_MINUTES`` of *daytime*, operators get one e-mail per silence (an outbox row keyed by the
last delivery, so any number of sweepers owe it once), ``/readyz`` says "degraded", ``/metrics`` shows it and
the console banner reads :func:`webhook_silence`.

Daytime is 06:00-22:00 WITA on every day of the week: citizens write in the evening and at weekends, but
hardly at night, so only daytime minutes count towards the threshold (a delivery at 21:50 and none since
makes 10 daytime minutes by 06:00 the next morning, and an alert after ``threshold - 10`` minutes more).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, time, timedelta, timezone

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from ntbcare.core.db import Database
from ntbcare.core.models import Delivery, MailStatus, OutboundMail, utcnow
from ntbcare.core.settings import Settings

log = logging.getLogger(__name__)

WITA = timezone(timedelta(hours=8))
DAY_START, DAY_END = time(6, 0), time(22, 0)
MAX_DAYS_COUNTED = 60  # beyond two months of silence the exact figure no longer matters
WEBHOOK_SOURCE = "webhook"


@dataclass(frozen=True)
class Silence:
    """What the watchdog sees now. ``silent`` is the alert: daytime minutes without a webhook reached the
    threshold. ``last_delivery_at`` is None before the first webhook ever (not an alert: see the README)."""

    silent: bool
    last_delivery_at: datetime | None
    last_delivery_id: int | None
    daytime_minutes: float
    threshold_minutes: int
    daytime_now: bool

    def as_dict(self) -> dict[str, object]:
        return {"silent": self.silent, "last_delivery_at": self.last_delivery_at.isoformat()
                if self.last_delivery_at else None, "daytime_minutes": round(self.daytime_minutes, 1),
                "threshold_minutes": self.threshold_minutes, "daytime_now": self.daytime_now}


def is_daytime(moment: datetime) -> bool:
    local = moment.astimezone(WITA).time()
    return DAY_START <= local < DAY_END


def daytime_minutes_between(start: datetime, end: datetime) -> float:
    """Minutes of 06:00-22:00 WITA between two moments (at most ``MAX_DAYS_COUNTED`` days are counted)."""
    start = max(start, end - timedelta(days=MAX_DAYS_COUNTED))
    if end <= start:
        return 0.0
    total = 0.0
    day = start.astimezone(WITA).date()
    last_day = end.astimezone(WITA).date()
    while day <= last_day:
        window_start = datetime.combine(day, DAY_START, WITA)
        window_end = datetime.combine(day, DAY_END, WITA)
        overlap = min(end, window_end) - max(start, window_start)
        total += max(0.0, overlap.total_seconds() / 60)
        day += timedelta(days=1)
    return total


def newest_delivery(session: Session) -> tuple[int, datetime] | None:
    """Id and arrival of the newest webhook delivery (replays do not count): the console banner's figure."""
    newest_id = session.scalar(select(func.max(Delivery.id)).where(Delivery.source == WEBHOOK_SOURCE))
    if newest_id is None:
        return None
    received = session.scalar(select(Delivery.received_at).where(Delivery.id == newest_id))
    return (newest_id, received) if received is not None else None


def webhook_silence(session: Session, now: datetime, settings: Settings) -> Silence:
    """Whether the webhook has been silent for ``WEBHOOK_SILENCE_MINUTES`` of daytime, and since when."""
    newest = newest_delivery(session)
    threshold = settings.webhook_silence_minutes
    if newest is None:
        return Silence(False, None, None, 0.0, threshold, is_daytime(now))
    delivery_id, received = newest
    minutes = daytime_minutes_between(received, now)
    return Silence(minutes >= threshold, received, delivery_id, minutes, threshold, is_daytime(now))


def owe_silence_alert(db: Database, settings: Settings, now: datetime | None = None) -> int | None:
    """Owe the operators one e-mail for the current silence; the id of a newly owed mail, else None."""
    with db.scope() as session:
        silence = webhook_silence(session, now or utcnow(), settings)
        if not silence.silent or silence.last_delivery_id is None:
            return None
        if not settings.operator_emails:
            log.warning("no webhook for %.0f daytime minutes and no OPERATOR_EMAILS to tell",
                        silence.daytime_minutes)
            return None
        key = f"watchdog:silence:{silence.last_delivery_id}"
        if session.scalar(select(OutboundMail.id).where(OutboundMail.key == key)) is not None:
            return None
        mail = OutboundMail(key=key, kind="watchdog", ticket_id=None, agency_code=None,
                            recipients=list(settings.operator_emails), status=MailStatus.PENDING)
        session.add(mail)
        session.flush()
        log.warning("no webhook for %.0f daytime minutes: operators alerted (mail %s)", silence.daytime_minutes,
                    mail.id)
        return mail.id


class WatchdogCollector(Collector):
    """``ntbcare_webhook_silence`` (1 while silent), ``ntbcare_webhook_last_delivery_timestamp_seconds``."""

    def __init__(self, db: Database, settings: Settings) -> None:
        self.db = db
        self.settings = settings

    def collect(self) -> Iterator[GaugeMetricFamily]:
        with self.db.session() as session:
            silence = webhook_silence(session, utcnow(), self.settings)
        yield GaugeMetricFamily("ntbcare_webhook_silence", "1 while no webhook arrived for "
                                "WEBHOOK_SILENCE_MINUTES of daytime (06:00-22:00 WITA)", value=int(silence.silent))
        yield GaugeMetricFamily("ntbcare_webhook_silence_daytime_minutes",
                                "Daytime minutes since the newest webhook delivery", value=silence.daytime_minutes)
        if silence.last_delivery_at is not None:
            yield GaugeMetricFamily("ntbcare_webhook_last_delivery_timestamp_seconds",
                                    "Unix time of the newest webhook delivery",
                                    value=silence.last_delivery_at.timestamp())
