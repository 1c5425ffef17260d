"""Settings that change the deadlines a routed ticket gets: hours per tier and office hours (minutes too)."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from click.testing import CliRunner

from ntbcare.cli import cli
from ntbcare.core.db import Database
from ntbcare.core.models import Agency, Ticket, TicketStatus
from ntbcare.core.settings import ConfigError, Settings
from ntbcare.pipeline.join import Pipeline, deadline_policy_for
from routing.deadlines import deadline_for
from routing.route import apply_verdicts
from routing.verdict import Classification
from tests.conftest import BASE_ENV, make_settings

WITA = ZoneInfo("Asia/Makassar")
CUSTOM_HOURS = {"DEADLINE_URGENT_HOURS": "3", "DEADLINE_IMPORTANT_HOURS": "4", "DEADLINE_NORMAL_HOURS": "6"}


def wita(*args: int) -> datetime:
    return datetime(*args, tzinfo=WITA)


MONDAY_9 = wita(2026, 11, 23, 9, 0)  # an ordinary working Monday, no holiday that week


def test_configured_tier_hours_replace_the_defaults() -> None:
    default = deadline_policy_for(make_settings())
    custom = deadline_policy_for(make_settings(**CUSTOM_HOURS))
    assert deadline_for("urgent", MONDAY_9, default) == MONDAY_9 + timedelta(hours=1)
    assert deadline_for("urgent", MONDAY_9, custom) == MONDAY_9 + timedelta(hours=3)
    # 24 and 48 office hours of 8 h a day: three and six working days later.
    assert deadline_for("important", MONDAY_9, default) == wita(2026, 11, 26, 9, 0)
    assert deadline_for("important", MONDAY_9, custom) == wita(2026, 11, 23, 13, 0)
    assert deadline_for("normal", MONDAY_9, default) == wita(2026, 12, 1, 9, 0)
    assert deadline_for("normal", MONDAY_9, custom) == wita(2026, 11, 23, 15, 0)


def _route_one(settings: Settings, db: Database, number: int, *, urgent: bool) -> datetime | None:
    """Open a ticket that reached us on MONDAY_9, route it to PLN the way Pipeline.route does, return its
    deadline."""
    verdict = Classification(complaint=True, agency="PLN", confidence=0.97,
                             candidates=[{"agency": "PLN", "score": 0.97}], location=None, location_detail=None,
                             urgent=urgent, abstain_reason=None)
    policy = Pipeline(settings=settings, db=db).deadline_policy
    with db.scope() as session:
        if session.get(Agency, "PLN") is None:
            session.add(Agency(code="PLN", name="PLN UID NTB", kind="partner", emails=["pengaduan@pln-ntb.test"]))
        ticket = Ticket(number=f"NTB-2026-{number:06d}", channel="messenger", text="listrik padam sejak pagi",
                        origin_id=f"m_citizen_{number}", psid=f"7000000000{number:05d}",
                        opened_at=MONDAY_9.astimezone(UTC), received_at=MONDAY_9.astimezone(UTC),
                        last_citizen_message_at=MONDAY_9.astimezone(UTC))
        session.add(ticket)
        session.flush()
        result = apply_verdicts(session, [(ticket.id, ticket.text)], [verdict], policy, MONDAY_9.astimezone(UTC))
        assert result.routed == [ticket.id]
        assert ticket.status == TicketStatus.ROUTED
        return ticket.deadline_at


def test_a_routed_ticket_gets_the_configured_deadline(database_url: str, db: Database) -> None:
    default = make_settings(DATABASE_URL=database_url)
    custom = make_settings(DATABASE_URL=database_url, **CUSTOM_HOURS)
    assert _route_one(default, db, 1, urgent=False) == wita(2026, 12, 1, 9, 0)
    assert _route_one(custom, db, 2, urgent=False) == wita(2026, 11, 23, 15, 0)
    assert _route_one(default, db, 3, urgent=True) == wita(2026, 11, 23, 10, 0)
    assert _route_one(custom, db, 4, urgent=True) == wita(2026, 11, 23, 12, 0)


def test_office_hours_minutes_set_when_counting_starts_and_ends() -> None:
    one_hour = deadline_policy_for(make_settings(OFFICE_HOURS="07:30-15:30", DEADLINE_IMPORTANT_HOURS="1"))
    assert (one_hour.calendar.day_start, one_hour.calendar.day_end) == (time(7, 30), time(15, 30))
    # Written before the office opens: counting starts at 07:30, not at 07:00 or 08:00.
    assert deadline_for("important", wita(2026, 11, 23, 6, 0), one_hour) == wita(2026, 11, 23, 8, 30)
    # Written at 15:00: half an hour counts until 15:30, the rest from 07:30 the next working day.
    assert deadline_for("important", wita(2026, 11, 23, 15, 0), one_hour) == wita(2026, 11, 24, 8, 0)
    full_day = deadline_policy_for(make_settings(OFFICE_HOURS="07:30-15:30", DEADLINE_IMPORTANT_HOURS="8"))
    assert deadline_for("important", wita(2026, 11, 23, 6, 0), full_day) == wita(2026, 11, 23, 15, 30)


@pytest.mark.parametrize("value", ["07:75-15:00", "8-16", "16:00-08:00", "08:00-24:30", "pagi-sore"])
def test_malformed_office_hours_are_refused_naming_the_variable(value: str) -> None:
    with pytest.raises(ConfigError, match="OFFICE_HOURS"):
        make_settings(OFFICE_HOURS=value)


def test_malformed_office_hours_stop_start_up(tmp_path) -> None:
    env = {**BASE_ENV, "DATABASE_URL": f"sqlite:///{tmp_path / 'ntbcare.db'}", "OFFICE_HOURS": "07:75-15:00"}
    result = CliRunner().invoke(cli, ["init"], env=env)
    assert result.exit_code != 0
    assert "OFFICE_HOURS" in result.output and "07:75-15:00" in result.output
    assert not (tmp_path / "ntbcare.db").exists(), "nothing starts with a bad setting"
