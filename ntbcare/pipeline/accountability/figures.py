"""Each agency's public figures for a period, computed from the audit trail (never a counter that can drift).

An agency *received* a ticket when the audit trail records it being routed to the agency (``routed``, whose detail
names the agency) within the period; a ticket passed on is received by each agency it reached. Its *first answer*
is the agency's earliest ``agency_answer`` or ``agency_done`` entry after that, by an actor
``agency:<code>[:<e-mail>]``. Durations run from when the citizen wrote to that first answer, counted the way the
deadline is counted: office hours on the working calendar (weekends and holidays excluded) for the working-hour
tiers, the wall clock for urgent tickets; *within the deadline* compares the first answer with the ticket's
deadline, over the received tickets that were answered or whose deadline has passed (one not yet due is neither
late nor on time; one without a deadline its tier could give counts once answered, as not within). A *bounce* is
an agency saying "bukan kewenangan kami" (``not_ours``) within the period. The backlog and how much of it is
overdue are the tickets with the agency now, not yet answered. Satisfaction is the share of ratings in the period
that are ``puas``. The province's row sums the agencies' rows (its median and 90th percentile are over every first
answer).

A report is computed from two reads of the trail plus a few aggregate queries; ``cache`` keeps and warms them.
"""

from __future__ import annotations

import math
import statistics
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

from sqlalchemy import and_, case, exists, func, or_, select
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ColumnElement

from ntbcare.core.models import Agency, AuditEntry, Rating, RatingValue, Ticket, TicketMessage, TicketStatus
from ntbcare.core.sql import epoch
from ntbcare.pipeline.accountability.periods import WITA, Period
from routing.deadlines import DeadlinePolicy, OfficeClock, deadline_for

CLOCK_LEAD_DAYS = 120  # a ticket may be routed months after the citizen wrote
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
    due: int = 0  # received tickets answered or past their deadline: those the deadline share is over
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
        return self.within_deadline / self.due if self.due else None

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


def _hours(policy: DeadlinePolicy, clock: OfficeClock, tier: str, start: float, end: float) -> float:
    rule = policy.tiers.get(tier)
    if rule is not None and not rule.working_hours:
        return max(0.0, (end - start) / 3600)
    return clock.hours_between(start, end)


def _deadline(policy: DeadlinePolicy, tier: str, opened: float, stored: float | None) -> float | None:
    """The stored deadline, else the one the tier gives; None for a tier the settings no longer know."""
    if stored is not None:
        return stored
    if tier not in policy.tiers:
        return None
    return deadline_for(tier, datetime.fromtimestamp(opened, UTC), policy).timestamp()


def trend_weeks(period: Period, now: datetime) -> list[date]:
    """The Mondays of the ``TREND_WEEKS`` weeks up to the period's end (or now, when that is earlier)."""
    last = min(period.end - timedelta(seconds=1), now).astimezone(WITA).date()
    monday = last - timedelta(days=last.weekday())
    return [monday - timedelta(weeks=n) for n in range(TREND_WEEKS - 1, -1, -1)]


def _first_answers(session: Session, low: datetime) -> dict[tuple[int, str], list[float]]:
    """Every agency answer since ``low`` by (ticket, agency), as POSIX seconds."""
    answers: dict[tuple[int, str], list[float]] = defaultdict(list)
    for ticket_id, actor, at in session.connection().execute(  # Core rows: no ORM bookkeeping per row
            select(AuditEntry.ticket_id, AuditEntry.actor, epoch(AuditEntry.at))
            .where(AuditEntry.action.in_(ANSWER_ACTIONS), AuditEntry.at >= low, AuditEntry.actor.like("agency:%"))):
        code = _agency_of(actor)
        if code and ticket_id is not None:
            answers[(ticket_id, code)].append(at)
    return answers


Routing = tuple[float, str, float, float | None]  # routed at, tier, opened at, stored deadline (POSIX seconds)
_NO_TICKET: Routing = (0.0, "", 0.0, None)


def _first_routings(session: Session, low: datetime, high: datetime, period: Period) -> dict[tuple[int, str], Routing]:
    """The first routing of each (ticket, agency) from ``low`` to ``high``; the ticket's tier, opening and
    deadline only for those in the period (the trend weeks before it need the count alone)."""
    routed = (AuditEntry.ticket_id, AuditEntry.detail["agency"].as_string(), epoch(AuditEntry.at))
    found: dict[tuple[int, str], Routing] = {}
    connection = session.connection()  # Core rows: no ORM bookkeeping per row
    for span_start, span_end in ((low, min(period.start, high)), (max(period.end, low), high)):
        if span_start < span_end:
            for ticket_id, code, at in connection.execute(select(*routed).where(
                    AuditEntry.action == "routed", AuditEntry.at >= span_start, AuditEntry.at < span_end)):
                known = found.get((ticket_id, code))
                if code and (known is None or at < known[0]):
                    found[(ticket_id, code)] = (at, *_NO_TICKET[1:])
    for ticket_id, code, at, tier, opened, deadline in connection.execute(
            select(*routed, Ticket.tier, epoch(Ticket.opened_at), epoch(Ticket.deadline_at))
            .join(Ticket, Ticket.id == AuditEntry.ticket_id)
            .where(AuditEntry.action == "routed", AuditEntry.at >= period.start, AuditEntry.at < period.end)):
        known = found.get((ticket_id, code))
        if code and (known is None or at < known[0]):
            found[(ticket_id, code)] = (at, tier, opened, deadline)
    return found


def compute(session: Session, policy: DeadlinePolicy, period: Period, now: datetime) -> Report:
    """The period's figures per agency and for the province, with the weekly trend.

    Two reads of the audit trail (routings, answers) as plain numbers, joined here: a correlated look-up per
    routing would be planned on the (action, at) index by SQLite and take minutes.
    """
    weeks = trend_weeks(period, now)
    trend_start = datetime.combine(weeks[0], datetime.min.time(), tzinfo=WITA)
    low = min(period.start, trend_start)
    high = max(period.end, trend_start + timedelta(weeks=TREND_WEEKS))
    agencies = {a.code: Figures(a.code, a.name) for a in session.scalars(select(Agency).order_by(Agency.code))
                if a.active}
    first_routed = _first_routings(session, low, high, period)
    answers = _first_answers(session, low)
    clock = OfficeClock(policy.calendar, (low - timedelta(days=CLOCK_LEAD_DAYS)).astimezone(WITA).date(),
                        max(high, now).astimezone(WITA).date())
    trend: dict[str, list[list[int]]] = defaultdict(lambda: [[0, 0] for _ in weeks])
    province = Figures(PROVINCE, "Provinsi NTB (semua instansi)")
    origin, start, end, moment = trend_start.timestamp(), period.start.timestamp(), period.end.timestamp(), \
        now.timestamp()
    for (ticket_id, code), (at, tier, opened, stored_deadline) in first_routed.items():
        first = min((t for t in answers.get((ticket_id, code), ()) if t >= at), default=None)
        n = int((at - origin) // WEEK_SECONDS)  # weeks start on Monday 00:00 WITA
        if 0 <= n < TREND_WEEKS:
            for key in (code, PROVINCE):
                trend[key][n][0] += 1
                trend[key][n][1] += first is not None
        if not start <= at < end:
            continue
        row = agencies.setdefault(code, Figures(code, code))
        row.received += 1
        deadline = _deadline(policy, tier, opened, stored_deadline)
        if first is None:
            row.due += deadline is not None and deadline <= moment
            continue
        row.answered += 1
        row.due += 1
        row.hours.append(_hours(policy, clock, tier, opened, first))
        row.within_deadline += deadline is not None and first <= deadline
    _bounces(session, period, agencies)
    _backlog(session, now, agencies)
    _ratings(session, period, agencies)
    for row in agencies.values():
        row.close()
        for name in ("received", "answered", "due", "within_deadline", "backlog", "overdue", "bounces", "ratings",
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
