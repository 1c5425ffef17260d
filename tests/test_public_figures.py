"""The public figures against a hand-computed December (tests/public_seed.py): received, answered, share
within the deadline, median and 90th percentile of working hours to the first answer (across a weekend, the
24-25 December days off and an urgent ticket on the wall clock), backlog, overdue, bounces, satisfaction, the
province's totals, the weekly trend, the withheld count, periods and the cache."""

from __future__ import annotations

import time
from datetime import date, timedelta

import pytest

from ntbcare.core.db import Database
from ntbcare.core.models import AuditEntry
from ntbcare.pipeline.accountability.cache import cached_report, clear_cache
from ntbcare.pipeline.accountability.export import report_csv, sorted_rows
from ntbcare.pipeline.accountability.figures import PROVINCE, compute
from ntbcare.pipeline.accountability.periods import Period, PeriodError, month_of, parse_period
from ntbcare.pipeline.join import deadline_policy_for
from tests.public_seed import NOW, at, seed_month


@pytest.fixture
def december(db: Database, settings):  # type: ignore[no-untyped-def]
    seed_month(db, settings)
    clear_cache()
    with db.session() as session:
        yield compute(session, deadline_policy_for(settings), month_of(2026, 12), NOW)
    clear_cache()


def test_agency_figures_match_the_hand_computed_month(december) -> None:  # type: ignore[no-untyped-def]
    dinkes = december.row("DINKES")
    assert (dinkes.received, dinkes.answered, dinkes.within_deadline) == (6, 5, 3)  # T1..T6; T7 is November's
    assert dinkes.within_share == pytest.approx(0.5)
    # First answers: 2.5 (weekend), 4 (23 Dec → 28 Dec over the holidays), 80 (ten days), 2.5 (urgent), 8 (T6).
    assert sorted(dinkes.hours) == pytest.approx([2.5, 2.5, 4.0, 8.0, 80.0])
    assert dinkes.median_hours == pytest.approx(4.0)
    assert dinkes.p90_hours == pytest.approx(80.0)
    assert (dinkes.backlog, dinkes.overdue, dinkes.bounces) == (1, 1, 0)
    assert (dinkes.ratings, dinkes.satisfied) == (3, 2)
    assert dinkes.satisfaction == pytest.approx(2 / 3)

    pupr = december.row("PUPR")
    assert (pupr.received, pupr.answered, pupr.within_deadline, pupr.within_share) == (3, 0, 0, 0.0)
    assert (pupr.median_hours, pupr.p90_hours, pupr.satisfaction) == (None, None, None)
    assert (pupr.backlog, pupr.overdue, pupr.bounces) == (1, 1, 1)

    dishub = december.row("DISHUB")
    assert (dishub.received, dishub.within_share, dishub.backlog) == (0, None, 0)


def test_province_totals_and_withheld_tickets(december) -> None:  # type: ignore[no-untyped-def]
    province = december.province
    assert province.code == PROVINCE
    assert (province.received, province.answered, province.within_deadline) == (9, 5, 3)
    assert province.within_share == pytest.approx(3 / 9)
    assert (province.median_hours, province.p90_hours) == (pytest.approx(4.0), pytest.approx(80.0))
    assert (province.backlog, province.overdue, province.bounces, province.ratings) == (2, 2, 1, 3)
    assert december.withheld == 3  # withdrawn T8, not-a-complaint T9, hidden T10


def test_weekly_trend_counts_received_and_answered_per_week(december) -> None:  # type: ignore[no-untyped-def]
    assert len(december.weeks) == 12 and december.weeks[-1] == date(2026, 12, 28)
    assert all(b - a == timedelta(weeks=1) for a, b in zip(december.weeks, december.weeks[1:], strict=False))
    by_week = dict(zip(december.weeks, december.trend["DINKES"], strict=True))
    assert by_week[date(2026, 11, 30)] == (3, 3)  # T3, T4, T1 (all answered)
    assert by_week[date(2026, 12, 7)] == (2, 1)  # T5 (open), T6 (answered)
    assert by_week[date(2026, 12, 21)] == (1, 1)  # T2
    assert by_week[date(2026, 11, 16)] == (1, 1)  # T7, November
    assert dict(zip(december.weeks, december.trend[PROVINCE], strict=True))[date(2026, 12, 7)] == (4, 1)


def test_csv_has_a_header_the_province_first_then_agencies_by_received(december) -> None:  # type: ignore[no-untyped-def]
    lines = report_csv(december).splitlines()
    assert lines[0].startswith("kode,instansi,diterima,dijawab,dijawab_tepat_waktu,persen_tepat_waktu")
    assert lines[1].startswith("NTB,Provinsi NTB (semua instansi),9,5,3,33.3,4.0,80.0,2,2,1,3,66.7")
    assert lines[2] == "DINKES,Dinas Kesehatan,6,5,3,50.0,4.0,80.0,1,1,0,3,66.7,6"  # all six answered or past due
    assert lines[3].startswith("PUPR,") and lines[4].startswith("DISHUB,")
    assert [r.code for r in sorted_rows(december, "tepat_waktu", descending=False)] == ["PUPR", "DINKES", "DISHUB"]


def test_figures_come_from_the_audit_trail_and_are_cached(db: Database, settings) -> None:  # type: ignore[no-untyped-def]
    seed_month(db, settings)
    clear_cache()
    policy = deadline_policy_for(settings)
    first = cached_report(db, policy, month_of(2026, 12), NOW)
    with db.scope() as s:  # one more routing, recorded in the trail only
        s.add(AuditEntry(ticket_id=1, at=at(29, 9), actor="system", action="routed", detail={"agency": "DISHUB"}))
    assert cached_report(db, policy, month_of(2026, 12), NOW) is first  # within the cache's minute
    clear_cache()
    fresh = cached_report(db, policy, month_of(2026, 12), NOW)
    assert fresh.row("DISHUB").received == 1 and fresh.province.received == 10
    clear_cache()


def test_periods_month_quarter_year_range_and_errors() -> None:
    assert parse_period({}, NOW) == Period("bulan", date(2026, 12, 1), date(2026, 12, 31))
    assert parse_period({"bulan": "2026-02"}, NOW).last == date(2026, 2, 28)
    assert parse_period({"kuartal": "2026-Q4"}, NOW) == Period("kuartal", date(2026, 10, 1), date(2026, 12, 31))
    assert parse_period({"tahun": "2025"}, NOW).label == "Tahun 2025"
    span = parse_period({"dari": "2026-12-01", "sampai": "2026-12-10"}, NOW)
    assert (span.kind, span.end.isoformat()) == ("rentang", "2026-12-11T00:00:00+08:00")
    for bad in ({"bulan": "2026-13"}, {"kuartal": "2026-Q5"}, {"tahun": "26"}, {"dari": "2026-12-10"},
                {"dari": "2026-12-10", "sampai": "2026-12-01"}, {"dari": "2020-01-01", "sampai": "2026-01-01"}):
        with pytest.raises(PeriodError):
            parse_period(bad, NOW)


def test_an_expired_report_is_served_while_one_thread_recomputes_it(db: Database, settings, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from ntbcare.pipeline.accountability import cache

    seed_month(db, settings)
    clear_cache()
    monkeypatch.setattr(cache, "CACHE_SECONDS", 0.0)  # every report is stale as soon as it is made
    policy = deadline_policy_for(settings)
    first = cached_report(db, policy, month_of(2026, 12), NOW)
    with db.scope() as s:
        s.add(AuditEntry(ticket_id=1, at=at(29, 9), actor="system", action="routed", detail={"agency": "DISHUB"}))
    assert cached_report(db, policy, month_of(2026, 12), NOW) is first  # no wait: the stale one, refreshed behind
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        latest = cached_report(db, policy, month_of(2026, 12), NOW)
        if latest is not first:
            break
        time.sleep(0.05)
    assert latest.row("DISHUB").received == 1
    while cache.computing() and time.monotonic() < deadline:  # let the last refresh finish before teardown
        time.sleep(0.05)
    clear_cache()



def seed_kominfo(db: Database, rows: dict) -> None:  # type: ignore[type-arg]
    """DISKOMINFO's December tickets: label → (tier, opened, stored deadline, first answer or None)."""
    from ntbcare.core.models import Agency, Ticket

    with db.scope() as s:
        s.add(Agency(code="DISKOMINFO", name="Dinas Kominfotik", kind="opd", emails=["kominfo@ntbprov.test"]))
        s.flush()
        for n, (label, (tier, opened, deadline, answered)) in enumerate(rows.items(), start=1):
            ticket = Ticket(number=f"NTB-2026-{900 + n:06d}", status="answered" if answered else "forwarded",
                            channel="comment", text=f"Pengaduan {label}", agency_code="DISKOMINFO",
                            origin_id=f"k-{n}", tier=tier, opened_at=opened, deadline_at=deadline)
            s.add(ticket)
            s.flush()
            s.add(AuditEntry(ticket_id=ticket.id, at=opened + timedelta(minutes=1), actor="system", action="routed",
                             detail={"agency": "DISKOMINFO"}))
            if answered:
                s.add(AuditEntry(ticket_id=ticket.id, at=answered, actor="agency:DISKOMINFO", action="agency_answer",
                                 detail={}))


def test_the_deadline_share_counts_only_answered_tickets_and_those_past_their_deadline(db: Database, settings) -> None:  # type: ignore[no-untyped-def]
    """Hand-computed, as of 30 Dec 12:00 WITA: K1 answered before its deadline (on time), K2 answered after it
    (late), K3 unanswered and past it (late), K4 unanswered and due tomorrow (neither yet: not counted).
    Counted 3, within 1: a third (over all four received it would read a quarter)."""
    seed_kominfo(db, {"K1": ("normal", at(1, 9), at(3, 9), at(2, 9)), "K2": ("normal", at(7, 9), at(9, 9), at(10, 9)),
                      "K3": ("normal", at(14, 9), at(16, 9), None), "K4": ("normal", at(29, 9), at(31, 9), None)})
    with db.session() as session:
        report = compute(session, deadline_policy_for(settings), month_of(2026, 12), NOW)
    row = report.row("DISKOMINFO")
    assert (row.received, row.answered, row.due, row.within_deadline) == (4, 2, 3, 1)
    assert row.within_share == pytest.approx(1 / 3)
    assert (report.province.due, report.province.within_share) == (3, pytest.approx(1 / 3))
    assert "dinilai_tenggat" in report_csv(report).splitlines()[0]


def test_a_ticket_without_a_deadline_in_a_tier_the_settings_lost_is_not_within(db: Database, settings) -> None:  # type: ignore[no-untyped-def]
    """K5 was answered, has no stored deadline and a tier ("kilat") the deadline settings no longer know: no
    deadline can be given, so it counts as answered but not within; K6, the same unanswered, is not counted."""
    seed_kominfo(db, {"K5": ("kilat", at(21, 9), None, at(21, 10)), "K6": ("kilat", at(22, 9), None, None)})
    with db.session() as session:
        report = compute(session, deadline_policy_for(settings), month_of(2026, 12), NOW)
    row = report.row("DISKOMINFO")
    assert (row.received, row.answered, row.due, row.within_deadline, row.within_share) == (2, 1, 1, 0, 0.0)
    assert row.hours == [pytest.approx(1.0)]  # measured on the office clock
