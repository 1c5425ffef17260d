"""Response deadlines on the Indonesian working calendar (WITA office hours, national holidays, cuti bersama).

NTB Care promised an agency's first answer within 1 hour for urgent reports, 24 hours for important ones and
48 hours for normal ones. Urgent reports (a threat to life) run on the wall clock, 24/7; the other tiers are
counted in office hours by default, so a report sent on Friday evening or during Lebaran does not look late
before the office has opened. Everything here is pure: aware datetimes in, aware UTC datetimes out.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import yaml

DEFAULT_HOLIDAYS_PATH = Path(__file__).parent / "data" / "holidays_id.yaml"
HOLIDAY_KINDS = frozenset({"libur_nasional", "cuti_bersama", "libur_daerah"})
DEFAULT_REMINDER_FRACTIONS = (0.5, 0.8)
_MAX_SEARCH_DAYS = 3660


def _require_aware(value: datetime, name: str) -> None:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{name} must be a timezone-aware datetime, got naive {value.isoformat()}")


@dataclass(frozen=True)
class WorkingCalendar:
    """Office days and hours of the agencies; defaults: Monday-Friday 08:00-16:00 WITA, no holidays."""

    tz: str = "Asia/Makassar"
    holidays: frozenset[date] = frozenset()
    workdays: frozenset[int] = frozenset({0, 1, 2, 3, 4})
    day_start: time = time(8, 0)
    day_end: time = time(16, 0)
    zone: ZoneInfo = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "holidays", frozenset(self.holidays))
        object.__setattr__(self, "workdays", frozenset(self.workdays))
        object.__setattr__(self, "zone", ZoneInfo(self.tz))
        if not self.workdays or not self.workdays <= set(range(7)):
            raise ValueError(f"workdays must be weekday numbers 0 (Monday) to 6, got {sorted(self.workdays)}")
        if self.day_start >= self.day_end:
            raise ValueError(f"day_start {self.day_start} must be before day_end {self.day_end}")

    def is_working_day(self, day: date) -> bool:
        """True on an office day that is neither a weekend nor a holiday."""
        return day.weekday() in self.workdays and day not in self.holidays

    def next_open(self, moment: datetime) -> datetime:
        """``moment`` itself if the office is open then, else the next opening time (UTC)."""
        _require_aware(moment, "moment")
        cursor = moment.astimezone(self.zone)
        for _ in range(_MAX_SEARCH_DAYS):
            opens, closes = self._office_hours(cursor.date())
            if self.is_working_day(cursor.date()) and cursor < closes:
                return max(cursor, opens).astimezone(UTC)
            cursor = self._office_hours(cursor.date() + timedelta(days=1))[0]
        raise ValueError(f"no working day found within {_MAX_SEARCH_DAYS} days of {moment.isoformat()}")

    def add_working_hours(self, start: datetime, hours: float) -> datetime:
        """The moment ``hours`` of office time after ``start``; a span that fills a day ends at day_end."""
        _require_aware(start, "start")
        if hours < 0:
            raise ValueError(f"hours must not be negative, got {hours}")
        remaining = timedelta(hours=hours)
        if not remaining:
            return start.astimezone(UTC)
        cursor = self.next_open(start).astimezone(self.zone)
        while True:
            closes = self._office_hours(cursor.date())[1]
            if remaining <= closes - cursor:
                return (cursor + remaining).astimezone(UTC)
            remaining -= closes - cursor
            cursor = self.next_open(closes).astimezone(self.zone)

    def working_hours_between(self, start: datetime, end: datetime) -> float:
        """Office hours from ``start`` to ``end`` (0 when end is not later); used for SLA statistics."""
        _require_aware(start, "start")
        _require_aware(end, "end")
        first, last = start.astimezone(self.zone), end.astimezone(self.zone)
        total = timedelta()
        day = first.date()
        while day <= last.date():
            if self.is_working_day(day):
                opens, closes = self._office_hours(day)
                overlap = min(closes, last) - max(opens, first)
                total += max(overlap, timedelta())
            day += timedelta(days=1)
        return total.total_seconds() / 3600

    def _office_hours(self, day: date) -> tuple[datetime, datetime]:
        return (datetime.combine(day, self.day_start, tzinfo=self.zone),
                datetime.combine(day, self.day_end, tzinfo=self.zone))


class OfficeClock:
    """Office seconds on ``calendar`` as a running total from ``first`` to ``last`` (WITA dates), so the time
    between two moments (POSIX seconds) is one subtraction instead of a walk over the days between them.

    The public figures measure thousands of first answers per period; ``working_hours_between`` walks day by
    day (~40 µs each), this looks up two totals (~2 µs). Outside the prepared days it falls back to the walk.
    """

    def __init__(self, calendar: WorkingCalendar, first: date, last: date) -> None:
        self.calendar = calendar
        self._opens: list[float] = []
        self._closes: list[float] = []
        self._before: list[float] = []  # office seconds of the prepared days before each one
        total = 0.0
        day = first
        while day <= last:
            if calendar.is_working_day(day):
                opens, closes = (moment.timestamp() for moment in calendar._office_hours(day))
                self._opens.append(opens)
                self._closes.append(closes)
                self._before.append(total)
                total += closes - opens
            day += timedelta(days=1)
        zone = calendar.zone
        self._low = datetime.combine(first, time(0), tzinfo=zone).timestamp()
        self._high = datetime.combine(last + timedelta(days=1), time(0), tzinfo=zone).timestamp()

    def _total(self, moment: float) -> float:
        index = bisect_right(self._opens, moment) - 1
        if index < 0:
            return 0.0
        return self._before[index] + min(moment, self._closes[index]) - self._opens[index]

    def hours_between(self, start: float, end: float) -> float:
        """Office hours from ``start`` to ``end`` (POSIX seconds; 0 when end is not later)."""
        if end <= start:
            return 0.0
        if self._low <= start and end <= self._high:
            return (self._total(end) - self._total(start)) / 3600
        return self.calendar.working_hours_between(datetime.fromtimestamp(start, UTC),
                                                   datetime.fromtimestamp(end, UTC))


@dataclass(frozen=True)
class TierRule:
    """How long an agency has for a first answer in one urgency tier, and on which clock."""

    hours: float
    working_hours: bool

    def __post_init__(self) -> None:
        if self.hours <= 0:
            raise ValueError(f"a tier's hours must be positive, got {self.hours}")


def _default_tiers() -> dict[str, TierRule]:
    return {
        "urgent": TierRule(hours=1, working_hours=False),
        "important": TierRule(hours=24, working_hours=True),
        "normal": TierRule(hours=48, working_hours=True),
    }


@dataclass(frozen=True)
class DeadlinePolicy:
    """The deadline rule per urgency tier plus the calendar that working-hour tiers are counted on."""

    calendar: WorkingCalendar = field(default_factory=WorkingCalendar)
    tiers: Mapping[str, TierRule] = field(default_factory=_default_tiers)
    reminder_fractions: tuple[float, ...] = DEFAULT_REMINDER_FRACTIONS

    def __post_init__(self) -> None:
        for fraction in self.reminder_fractions:
            if not 0 < fraction < 1:
                raise ValueError(f"reminder fractions must lie strictly between 0 and 1, got {fraction}")

    @classmethod
    def from_hours(cls, calendar: WorkingCalendar, *, urgent: float = 1, important: float = 24,
                   normal: float = 48, working_hours_tiers: Iterable[str] = ("important", "normal"),
                   reminder_fractions: Sequence[float] = DEFAULT_REMINDER_FRACTIONS) -> DeadlinePolicy:
        """Build a policy from plain settings values (hours per tier, which tiers count office hours)."""
        counted = set(working_hours_tiers)
        unknown = counted - {"urgent", "important", "normal"}
        if unknown:
            raise ValueError(f"unknown tiers in working_hours_tiers: {sorted(unknown)}")
        hours = {"urgent": urgent, "important": important, "normal": normal}
        tiers = {tier: TierRule(hours=value, working_hours=tier in counted) for tier, value in hours.items()}
        return cls(calendar=calendar, tiers=tiers, reminder_fractions=tuple(reminder_fractions))


def deadline_for(tier: str, start: datetime, policy: DeadlinePolicy) -> datetime:
    """When the agency's first answer is due for a ticket of ``tier`` forwarded at ``start`` (UTC)."""
    _require_aware(start, "start")
    try:
        rule = policy.tiers[tier]
    except KeyError:
        raise ValueError(f"unknown urgency tier {tier!r}; known tiers: {sorted(policy.tiers)}") from None
    if rule.working_hours:
        return policy.calendar.add_working_hours(start, rule.hours)
    return (start + timedelta(hours=rule.hours)).astimezone(UTC)


def reminder_times(created: datetime, deadline: datetime, *, calendar: WorkingCalendar | None = None,
                   fractions: Sequence[float] = DEFAULT_REMINDER_FRACTIONS) -> list[datetime]:
    """Moments to remind the agency, at ``fractions`` of the span from ``created`` to ``deadline`` (UTC).

    With a ``calendar`` the span is measured in office hours, so reminders arrive while the office is open;
    without one (urgent tickets) it is wall-clock time. Reminders are strictly before the deadline.
    """
    _require_aware(created, "created")
    _require_aware(deadline, "deadline")
    if deadline <= created:
        return []
    moments: list[datetime] = []
    for fraction in sorted(fractions):
        if not 0 < fraction < 1:
            raise ValueError(f"reminder fractions must lie strictly between 0 and 1, got {fraction}")
        if calendar is None:
            moment = (created + (deadline - created) * fraction).astimezone(UTC)
        else:
            span = calendar.working_hours_between(created, deadline)
            moment = calendar.next_open(calendar.add_working_hours(created, span * fraction))
        if created < moment < deadline and moment not in moments:
            moments.append(moment)
    return moments


def _read_holiday_file(path: Path | str | None) -> dict[int, dict]:
    source = Path(path) if path is not None else DEFAULT_HOLIDAYS_PATH
    # libyaml's safe loader when present: each routing job reads this file, and the pure-Python parser took
    # 0.1-0.6 s of it (bench/surge.py); both build plain data only.
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    document = yaml.load(source.read_text(encoding="utf-8"), Loader=loader) or {}
    years = document.get("years")
    if not isinstance(years, dict):
        raise ValueError(f"{source}: expected a top-level 'years' mapping")
    for year, entry in years.items():
        for day in entry.get("days") or []:
            when, kind = day.get("date"), day.get("kind")
            if not isinstance(when, date) or when.year != year:
                raise ValueError(f"{source}: {when!r} under year {year} is not a date of that year")
            if kind not in HOLIDAY_KINDS:
                raise ValueError(f"{source}: {when} has unknown kind {kind!r}")
    return years


def load_holidays(path: Path | str | None = None, *, include_cuti_bersama: bool = True) -> frozenset[date]:
    """Days off from the holiday file (the bundled Indonesian list by default) for a WorkingCalendar."""
    years = _read_holiday_file(path)
    return frozenset(
        day["date"]
        for entry in years.values()
        for day in entry.get("days") or []
        if include_cuti_bersama or day["kind"] != "cuti_bersama"
    )


def holiday_years(path: Path | str | None = None) -> dict[int, str]:
    """Status per covered year ("official"/"provisional"), so a health check can warn before data runs out."""
    return {year: str(entry.get("status", "provisional")) for year, entry in _read_holiday_file(path).items()}
