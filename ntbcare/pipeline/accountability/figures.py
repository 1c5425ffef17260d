"""Each agency's public figures for a period, computed from the audit trail (never a counter that can drift).

An agency *received* a ticket when the audit trail records it being routed to the agency (``routed``, whose
detail names the agency) within the period; a ticket passed on is received by each agency it reached. Its
*first answer* is the agency's earliest ``agency_answer`` or ``agency_done`` entry after that, by an actor
``agency:<code>[:<e-mail>]``. Durations run from when the citizen wrote to that first answer, counted the way the
deadline is counted: office hours on the working calendar (weekends and holidays excluded) for the working-hour
tiers, the wall clock for urgent tickets; *within the deadline* compares the first answer with the ticket's
deadline. A *bounce* is an agency saying "bukan kewenangan kami" (``not_ours``) within the period. The backlog
and how much of it is overdue are the tickets with the agency now, not yet answered. Satisfaction is the share
of ratings in the period that are ``puas``. The province's row sums the agencies' rows (its median and 90th
percentile are over every first answer).

A report is computed with a handful of aggregate queries and cached per period for ``CACHE_SECONDS``.
"""

from __future__ import annotations

import math
import statistics
import threading
import time
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from sqlalchemy import and_, case, exists, func, or_, select
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ColumnElement

from ntbcare.core.db import Database
from ntbcare.core.models import Agency, AuditEntry, Rating, RatingValue, Ticket, TicketMessage, TicketStatus
from ntbcare.pipeline.accountability.periods import WITA, Period
from routing.deadlines import DeadlinePolicy, deadline_for

CACHE_SECONDS = 60.0
TREND_WEEKS = 12
WEEK_SECONDS = 7 * 24 * 3600
ANSWER_ACTIONS = ("agency_answer", "agency_done")
BACKLOG = (TicketStatus.ROUTED, TicketStatus.FORWARDED)
# Never shown in public, only counted: the citizen withdrew it, it asks nothing, or it lives on in another.
WITHHELD_STATUSES = (TicketStatus.WITHDRAWN, TicketStatus.NOT_COMPLAINT, TicketStatus.MERGED)
# Shown in public once an agency has it; new and review tickets have none yet.
PUBLIC_STATUSES = (TicketStatus.ROUTED, TicketStatus.FORWARDED, TicketStatus.ANSWERED, TicketStatus.CLOSED)
PROVINCE = "NTB"


def hidden_for_personal_data() -> ColumnElement[bool]:
    """SQL: the ticket had a comment hidden because it showed personal data (never shown in public)."""
    return or_(
        exists().where(TicketMessage.ticket_id == Ticket.id, TicketMessage.hidden.is_(True)),
        exists().where(AuditEntry.ticket_id == Ticket.id, AuditEntry.action == "comment_hidden"),
    )


def publishable() -> ColumnElement[bool]:
    """SQL: a ticket the public page and Open311 may show (anonymised)."""
    return and_(Ticket.status.in_(PUBLIC_STATUSES), ~hidden_for_personal_data())


@dataclass
class Figures:
    """One row of the public table: an agency's (or the province's) figures for a period."""

    code: str
    name: str
    received: int = 0
    answered: int = 0
    within_deadline: int = 0
    median_hours: float | None = None
    p90_hours: float | None = None
    backlog: int = 0
    overdue: int = 0
    bounces: int = 0
    ratings: int = 0
    satisfied: int = 0
    hours: list[float] = field(default_factory=list, repr=False)

    @property
    def within_share(self) -> float | None:
        return self.within_deadline / self.received if self.received else None

    @property
    def satisfaction(self) -> float | None:
        return self.satisfied / self.ratings if self.ratings else None

    def close(self) -> None:
        """Median and 90th percentile (nearest rank) of the first-answer durations."""
        if self.hours:
            ordered = sorted(self.hours)
            self.median_hours = statistics.median(ordered)
            self.p90_hours = ordered[max(0, math.ceil(0.9 * len(ordered)) - 1)]


@dataclass
class Report:
    period: Period
    computed_at: datetime
    province: Figures
    agencies: list[Figures]
    weeks: list[date]  # Mondays (WITA) of the trend weeks
    trend: dict[str, list[tuple[int, int]]]  # code (or PROVINCE) → (received, answered) per week
    withheld: int  # tickets of the period never shown: withdrawn, not a complaint, merged, hidden

    def row(self, code: str) -> Figures | None:
        return next((row for row in self.agencies if row.code == code), None)


def _agency_of(actor: str) -> str | None:
    parts = actor.split(":")
    return parts[1] if len(parts) >= 2 and parts[0] == "agency" and parts[1] else None


def _hours(policy: DeadlinePolicy, tier: str, start: datetime, end: datetime) -> float:
    rule = policy.tiers.get(tier)
    if rule is not None and not rule.working_hours:
        return max(0.0, (end - start).total_seconds() / 3600)
    return policy.calendar.working_hours_between(start, end)


def trend_weeks(period: Period, now: datetime) -> list[date]:
    """The Mondays of the ``TREND_WEEKS`` weeks up to the period's end (or now, when that is earlier)."""
    last = min(period.end - timedelta(seconds=1), now).astimezone(WITA).date()
    monday = last - timedelta(days=last.weekday())
    return [monday - timedelta(weeks=n) for n in range(TREND_WEEKS - 1, -1, -1)]


def compute(session: Session, policy: DeadlinePolicy, period: Period, now: datetime) -> Report:
    """The period's figures per agency and for the province, with the weekly trend."""
    weeks = trend_weeks(period, now)
    trend_start = datetime.combine(weeks[0], datetime.min.time(), tzinfo=WITA)
    trend_end = trend_start + timedelta(weeks=TREND_WEEKS)
    low, high = min(period.start, trend_start), max(period.end, trend_end)
    agencies = {a.code: Figures(a.code, a.name) for a in session.scalars(select(Agency).order_by(Agency.code))
                if a.active}
    agency_expr = AuditEntry.detail["agency"].as_string()
    routed = session.execute(
        select(AuditEntry.ticket_id, AuditEntry.at, agency_expr, Ticket.tier, Ticket.opened_at, Ticket.deadline_at)
        .join(Ticket, Ticket.id == AuditEntry.ticket_id)
        .where(AuditEntry.action == "routed", AuditEntry.at >= low, AuditEntry.at < high)
        .order_by(AuditEntry.at)
    ).all()
    answers: dict[tuple[int | None, str], list[datetime]] = defaultdict(list)
    for ticket_id, at, actor in session.execute(
            select(AuditEntry.ticket_id, AuditEntry.at, AuditEntry.actor)
            .where(AuditEntry.action.in_(ANSWER_ACTIONS), AuditEntry.at >= low, AuditEntry.actor.like("agency:%"))):
        code = _agency_of(actor)
        if code:
            answers[(ticket_id, code)].append(at)
    trend: dict[str, list[list[int]]] = defaultdict(lambda: [[0, 0] for _ in weeks])
    seen: set[tuple[int, str]] = set()
    province = Figures(PROVINCE, "Provinsi NTB (semua instansi)")
    for ticket_id, at, code, tier, opened_at, deadline_at in routed:
        if not code or (ticket_id, code) in seen:
            continue
        seen.add((ticket_id, code))
        first = min((moment for moment in answers.get((ticket_id, code), ()) if moment >= at), default=None)
        n = int((at - trend_start).total_seconds() // WEEK_SECONDS)  # weeks start on Monday 00:00 WITA
        if 0 <= n < TREND_WEEKS:
            for key in (code, PROVINCE):
                trend[key][n][0] += 1
                trend[key][n][1] += first is not None
        if not period.start <= at < period.end:
            continue
        row = agencies.setdefault(code, Figures(code, code))
        row.received += 1
        if first is None:
            continue
        row.answered += 1
        row.hours.append(_hours(policy, tier, opened_at, first))
        deadline = deadline_at or deadline_for(tier, opened_at, policy)
        row.within_deadline += first <= deadline
    _bounces(session, period, agencies)
    _backlog(session, now, agencies)
    _ratings(session, period, agencies)
    for row in agencies.values():
        row.close()
        for name in ("received", "answered", "within_deadline", "backlog", "overdue", "bounces", "ratings",
                     "satisfied"):
            setattr(province, name, getattr(province, name) + getattr(row, name))
        province.hours.extend(row.hours)
    province.close()
    withheld = session.scalar(select(func.count(Ticket.id)).where(
        Ticket.opened_at >= period.start, Ticket.opened_at < period.end,
        or_(Ticket.status.in_(WITHHELD_STATUSES), hidden_for_personal_data()))) or 0
    return Report(period=period, computed_at=now, province=province, agencies=list(agencies.values()),
                  weeks=weeks, trend={key: [(a, b) for a, b in points] for key, points in trend.items()},
                  withheld=withheld)


def _bounces(session: Session, period: Period, agencies: dict[str, Figures]) -> None:
    rows = session.execute(select(AuditEntry.actor, AuditEntry.action, AuditEntry.detail).where(
        AuditEntry.action.in_(("not_ours", "review")), AuditEntry.at >= period.start, AuditEntry.at < period.end,
        AuditEntry.actor.like("agency:%")))
    for actor, action, detail in rows:
        code = _agency_of(actor)
        if code in agencies and (action == "not_ours" or (detail or {}).get("reason") == "not_ours"):
            agencies[code].bounces += 1


def _backlog(session: Session, now: datetime, agencies: dict[str, Figures]) -> None:
    overdue = func.sum(case((Ticket.deadline_at < now, 1), else_=0))
    for code, count, late in session.execute(
            select(Ticket.agency_code, func.count(Ticket.id), overdue)
            .where(Ticket.status.in_(BACKLOG), Ticket.agency_code.is_not(None)).group_by(Ticket.agency_code)):
        row = agencies.setdefault(str(code), Figures(str(code), str(code)))
        row.backlog, row.overdue = int(count), int(late or 0)


def _ratings(session: Session, period: Period, agencies: dict[str, Figures]) -> None:
    for code, value, count in session.execute(
            select(Rating.agency_code, Rating.value, func.count(Rating.id))
            .where(Rating.created_at >= period.start, Rating.created_at < period.end,
                   Rating.agency_code.is_not(None))
            .group_by(Rating.agency_code, Rating.value)):
        row = agencies.setdefault(str(code), Figures(str(code), str(code)))
        row.ratings += int(count)
        if value == RatingValue.SATISFIED:
            row.satisfied += int(count)


_cache: dict[tuple[str, str], tuple[float, Report]] = {}
_refreshing: set[tuple[str, str]] = set()
_lock = threading.Lock()


def _refresh(db: Database, policy: DeadlinePolicy, period: Period, now: datetime, key: tuple[str, str]) -> Report:
    try:
        with db.session() as session:
            report = compute(session, policy, period, now)
        with _lock:
            _cache[key] = (time.monotonic() + CACHE_SECONDS, report)
        return report
    finally:
        with _lock:
            _refreshing.discard(key)


def cached_report(db: Database, policy: DeadlinePolicy, period: Period, now: datetime) -> Report:
    """The period's report, recomputed at most every ``CACHE_SECONDS`` per database and period.

    Only the first request of a period computes while it waits; once the minute is up, the next request still
    gets the previous report at once while one background thread computes the new one (stale while
    revalidating), so visitors never wait on the aggregation after the first.
    """
    key = (str(db.engine.url), period.key)
    with _lock:
        hit = _cache.get(key)
        stale = hit is not None and hit[0] <= time.monotonic()
        start_refresh = stale and key not in _refreshing
        if start_refresh:
            _refreshing.add(key)
    if hit is None:
        return _refresh(db, policy, period, now, key)
    if start_refresh:
        threading.Thread(target=_refresh, args=(db, policy, period, now, key), daemon=True,
                         name="ntbcare-public-figures").start()
    return hit[1]


def clear_cache() -> None:
    """Forget every cached report (tests; a deployment never needs it)."""
    with _lock:
        _cache.clear()
        _refreshing.clear()
