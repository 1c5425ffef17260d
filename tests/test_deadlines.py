"""Deadlines agencies see: office hours in WITA, weekends, national holidays and cuti bersama."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from routing.deadlines import (
    DeadlinePolicy,
    OfficeClock,
    TierRule,
    WorkingCalendar,
    deadline_for,
    holiday_years,
    load_holidays,
    reminder_times,
)

WITA = ZoneInfo("Asia/Makassar")
NATIONAL_CALENDAR = WorkingCalendar(holidays=load_holidays())


def wita(*args: int) -> datetime:
    return datetime(*args, tzinfo=WITA)


@pytest.fixture(scope="module")
def calendar() -> WorkingCalendar:
    return WorkingCalendar(holidays=load_holidays())


@pytest.fixture(scope="module")
def policy(calendar: WorkingCalendar) -> DeadlinePolicy:
    return DeadlinePolicy(calendar=calendar)


def test_friday_afternoon_important_ticket_skips_the_weekend(policy: DeadlinePolicy) -> None:
    # Fri 14:00 -> 2 h Friday, 8 h Monday, 8 h Tuesday, 6 h Wednesday.
    due = deadline_for("important", wita(2026, 11, 27, 14, 0), policy)
    assert due == wita(2026, 12, 2, 14, 0)
    assert due.tzinfo == UTC


def test_utc_input_gives_the_same_deadline_as_wita_input(policy: DeadlinePolicy) -> None:
    from_utc = deadline_for("important", datetime(2026, 11, 27, 6, 0, tzinfo=UTC), policy)
    assert from_utc == deadline_for("important", wita(2026, 11, 27, 14, 0), policy)


def test_idul_fitri_2026_and_cuti_bersama_do_not_count(policy: DeadlinePolicy) -> None:
    # Tue 17 Mar 15:00: 18-24 Mar are Nyepi, Idulfitri and cuti bersama; work resumes Wed 25 Mar.
    due = deadline_for("important", wita(2026, 3, 17, 15, 0), policy)
    assert due == wita(2026, 3, 27, 15, 0)


def test_ticket_created_on_a_cuti_bersama_day_starts_counting_when_offices_reopen(
        policy: DeadlinePolicy) -> None:
    due = deadline_for("important", wita(2026, 3, 23, 10, 0), policy)
    assert due == wita(2026, 3, 27, 16, 0)


def test_without_holidays_the_same_ticket_would_be_due_before_lebaran_ends() -> None:
    plain = DeadlinePolicy(calendar=WorkingCalendar())
    assert deadline_for("important", wita(2026, 3, 17, 15, 0), plain) == wita(2026, 3, 20, 15, 0)


def test_ticket_at_night_counts_from_next_morning_and_can_end_at_closing_time(
        policy: DeadlinePolicy) -> None:
    # Wed 22:00 -> six full office days Thu..Thu (weekend skipped), ending at 16:00, not next morning.
    due = deadline_for("normal", wita(2026, 11, 25, 22, 0), policy)
    assert due == wita(2026, 12, 3, 16, 0)


def test_urgent_ticket_at_two_am_on_sunday_is_due_within_the_hour(policy: DeadlinePolicy) -> None:
    due = deadline_for("urgent", wita(2026, 11, 29, 2, 0), policy)
    assert due == datetime(2026, 11, 28, 19, 0, tzinfo=UTC)
    assert due.astimezone(WITA).time() == time(3, 0)


def test_tiers_are_configurable(calendar: WorkingCalendar) -> None:
    policy = DeadlinePolicy.from_hours(calendar, urgent=2, important=8, normal=16)
    assert deadline_for("important", wita(2026, 11, 27, 14, 0), policy) == wita(2026, 11, 30, 14, 0)
    assert deadline_for("urgent", wita(2026, 11, 29, 2, 0), policy) == wita(2026, 11, 29, 4, 0)
    wall_clock = DeadlinePolicy(calendar=calendar, tiers={"normal": TierRule(hours=48, working_hours=False)})
    assert deadline_for("normal", wita(2026, 11, 27, 14, 0), wall_clock) == wita(2026, 11, 29, 14, 0)


def test_office_hours_and_workdays_are_configurable() -> None:
    saturday_office = WorkingCalendar(workdays={0, 1, 2, 3, 4, 5}, day_start=time(7, 30), day_end=time(15, 0))
    assert saturday_office.add_working_hours(wita(2026, 11, 27, 14, 0), 2) == wita(2026, 11, 28, 8, 30)


def test_unknown_tier_and_naive_datetimes_are_refused(policy: DeadlinePolicy) -> None:
    with pytest.raises(ValueError, match="unknown urgency tier"):
        deadline_for("sedang", wita(2026, 11, 27, 14, 0), policy)
    with pytest.raises(ValueError, match="timezone-aware"):
        deadline_for("normal", datetime(2026, 11, 27, 14, 0), policy)


def test_reminders_fall_before_the_deadline_inside_office_hours(
        calendar: WorkingCalendar, policy: DeadlinePolicy) -> None:
    created = wita(2026, 11, 25, 22, 0)
    due = deadline_for("normal", created, policy)
    reminders = reminder_times(created, due, calendar=calendar)
    # 50 % of 48 office hours ends at Monday's closing time, so that reminder waits for Tuesday morning.
    assert reminders == [wita(2026, 12, 1, 8, 0), wita(2026, 12, 2, 14, 24)]
    for moment in reminders:
        local = moment.astimezone(WITA)
        assert created < moment < due
        assert calendar.is_working_day(local.date()) and time(8) <= local.time() < time(16)


def test_urgent_reminders_use_the_wall_clock(policy: DeadlinePolicy) -> None:
    created = wita(2026, 11, 29, 2, 0)
    due = deadline_for("urgent", created, policy)
    assert reminder_times(created, due) == [wita(2026, 11, 29, 2, 30), wita(2026, 11, 29, 2, 48)]
    assert reminder_times(created, due, fractions=(0.75,)) == [wita(2026, 11, 29, 2, 45)]


def test_working_hours_between_matches_add_working_hours(calendar: WorkingCalendar) -> None:
    start = wita(2026, 3, 17, 15, 0)
    assert calendar.working_hours_between(start, calendar.add_working_hours(start, 24)) == pytest.approx(24)
    assert calendar.working_hours_between(start, start - timedelta(hours=1)) == 0


def test_bundled_holiday_list_covers_2025_to_2027() -> None:
    days = load_holidays()
    assert {date(2025, 3, 31), date(2025, 8, 18), date(2026, 3, 21), date(2026, 12, 24), date(2027, 1, 1)} <= days
    assert date(2026, 3, 23) not in load_holidays(include_cuti_bersama=False)
    assert holiday_years() == {2025: "official", 2026: "official", 2027: "provisional"}


def test_a_malformed_holiday_file_is_refused(tmp_path) -> None:
    bad = tmp_path / "holidays.yaml"
    bad.write_text("years:\n  2026:\n    days:\n      - {date: 2025-12-31, kind: libur_nasional, name: x}\n")
    with pytest.raises(ValueError, match="not a date of that year"):
        load_holidays(bad)


@settings(max_examples=300, deadline=None)
@given(start=st.datetimes(min_value=datetime(2025, 1, 1), max_value=datetime(2027, 11, 30), timezones=st.just(UTC)),
       hours=st.floats(min_value=0.01, max_value=120, allow_nan=False))
def test_any_working_hour_deadline_lands_inside_office_hours_after_exactly_that_much_office_time(
        start: datetime, hours: float) -> None:
    due = NATIONAL_CALENDAR.add_working_hours(start, hours)
    local = due.astimezone(WITA)
    assert due > start
    assert NATIONAL_CALENDAR.is_working_day(local.date())
    assert time(8) < local.time() <= time(16)
    assert NATIONAL_CALENDAR.working_hours_between(start, due) == pytest.approx(hours, abs=1e-6)


OFFICE_CLOCK = OfficeClock(NATIONAL_CALENDAR, date(2025, 1, 1), date(2027, 12, 31))


@settings(max_examples=300, deadline=None)
@given(start=st.datetimes(min_value=datetime(2024, 12, 1), max_value=datetime(2028, 1, 31), timezones=st.just(UTC)),
       span=st.timedeltas(min_value=timedelta(0), max_value=timedelta(days=40)))
def test_the_office_clock_measures_what_the_day_by_day_walk_measures(start: datetime, span: timedelta) -> None:
    end = start + span  # also across the prepared range's edges, where the clock falls back to the walk
    assert OFFICE_CLOCK.hours_between(start.timestamp(), end.timestamp()) == pytest.approx(
        NATIONAL_CALENDAR.working_hours_between(start, end), abs=1e-6)


def test_the_office_clock_across_a_weekend_and_the_christmas_days_off() -> None:
    # Wed 23 Dec 2026 14:00 → Mon 28 Dec 10:00: 2 h, then 24 (cuti bersama), 25 (Christmas), the weekend, 2 h.
    assert OFFICE_CLOCK.hours_between(wita(2026, 12, 23, 14).timestamp(), wita(2026, 12, 28, 10).timestamp()) == 4
    assert OFFICE_CLOCK.hours_between(wita(2026, 12, 28, 10).timestamp(), wita(2026, 12, 23, 14).timestamp()) == 0
