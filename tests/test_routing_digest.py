"""The weekly digest: Monday from 07:00 WITA, once per agency and week however many sweepers run, overdue
tickets first, none for an agency with ``digest: false`` or without open tickets; mailed over real SMTP."""

from __future__ import annotations

import email
import threading
from datetime import UTC, datetime, timedelta
from email.policy import default as default_policy

import pytest
from sqlalchemy import func, select, update

from ntbcare.core.models import Agency, OutboundMail, Ticket, TicketStatus, utcnow
from ntbcare.pipeline.bootstrap import seed_agencies
from routing.digest import digest_week, owe_weekly_digests
from routing.forwarding import send_due_mails
from routing.registry import load_registry
from tests.conftest import make_settings
from tests.servers import RecordingHandler, smtp_server

MONDAY_0700_WITA = datetime(2026, 12, 6, 23, 0, tzinfo=UTC)  # Monday 7 December 2026, 07:00 in Makassar


def make_ticket(session, number: str, agency: str, *, status: str = TicketStatus.FORWARDED,  # type: ignore[no-untyped-def]
                deadline: datetime | None = None, text: str = "Jalan rusak parah di depan sekolah") -> Ticket:
    at = MONDAY_0700_WITA - timedelta(days=3)
    ticket = Ticket(number=number, status=status, channel="comment", text=text, agency_code=agency,
                    origin_id=f"555_{number[-6:]}",
                    opened_at=at, created_at=at, deadline_at=deadline)
    session.add(ticket)
    return ticket


@pytest.fixture
def agencies(db):  # type: ignore[no-untyped-def]
    with db.scope() as session:
        seed_agencies(session, load_registry())
        session.execute(update(Agency).where(Agency.code == "PLN").values(emails=["pengaduan@pln-ntb.test"]))
        session.execute(update(Agency).where(Agency.code == "DIKES").values(emails=["dikes@ntbprov.test"]))
        session.execute(update(Agency).where(Agency.code == "BAPENDA").values(emails=["bapenda@ntbprov.test"]))
        quiet = session.get(Agency, "BAPENDA")
        quiet.data = {**(quiet.data or {}), "digest": False}
        make_ticket(session, "NTB-2026-000001", "PLN", deadline=utcnow() + timedelta(days=2))
        make_ticket(session, "NTB-2026-000002", "PLN", deadline=utcnow() - timedelta(days=1),
                    text="Listrik padam tiga hari di Ampenan, mohon segera")
        make_ticket(session, "NTB-2026-000003", "PLN", status=TicketStatus.CLOSED)
        make_ticket(session, "NTB-2026-000004", "BAPENDA")
        make_ticket(session, "NTB-2026-000005", "DIKES", status=TicketStatus.ANSWERED)
    return db


def digests(db) -> list[tuple[str, list[str]]]:  # type: ignore[no-untyped-def]
    with db.session() as session:
        return [(m.key, m.recipients) for m in session.scalars(
            select(OutboundMail).where(OutboundMail.kind == "digest").order_by(OutboundMail.key))]


def test_weeks_start_on_monday_at_seven_in_makassar() -> None:
    assert digest_week(MONDAY_0700_WITA) == "2026-W50"
    assert digest_week(MONDAY_0700_WITA - timedelta(seconds=1)) == "2026-W49"
    assert digest_week(MONDAY_0700_WITA + timedelta(days=6, hours=23)) == "2026-W50"


def test_nothing_is_owed_outside_monday_from_seven(agencies) -> None:  # type: ignore[no-untyped-def]
    for moment in (MONDAY_0700_WITA - timedelta(minutes=1),  # Monday 06:59 WITA
                   MONDAY_0700_WITA - timedelta(days=3),  # Friday: a deployment started mid-week
                   MONDAY_0700_WITA + timedelta(hours=17)):  # Tuesday 00:00 WITA
        assert owe_weekly_digests(agencies, moment) == []
    assert digests(agencies) == []
    owe_weekly_digests(agencies, MONDAY_0700_WITA + timedelta(hours=16, minutes=59))  # Monday 23:59: catch-up
    assert digests(agencies) == [("digest:PLN:2026-W50", ["pengaduan@pln-ntb.test"])]


def test_only_agencies_with_open_tickets_that_want_it_get_one(agencies) -> None:  # type: ignore[no-untyped-def]
    owe_weekly_digests(agencies, MONDAY_0700_WITA)
    assert digests(agencies) == [("digest:PLN:2026-W50", ["pengaduan@pln-ntb.test"])]


def test_two_sweepers_racing_owe_each_digest_once(agencies) -> None:  # type: ignore[no-untyped-def]
    barrier = threading.Barrier(2)

    def sweeper() -> None:
        barrier.wait()
        owe_weekly_digests(agencies, MONDAY_0700_WITA + timedelta(hours=1))

    threads = [threading.Thread(target=sweeper) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    owe_weekly_digests(agencies, MONDAY_0700_WITA + timedelta(hours=12))  # later that Monday
    with agencies.session() as session:
        assert session.scalar(select(func.count()).select_from(OutboundMail)) == 1


def test_the_digest_lists_open_tickets_overdue_first_with_the_sign_in_page(database_url, agencies) -> None:  # type: ignore[no-untyped-def]
    handler = RecordingHandler()
    with smtp_server(handler) as port:
        settings = make_settings(DATABASE_URL=database_url, SMTP_URL=f"smtp://127.0.0.1:{port}?starttls=0",
                                 PUBLIC_BASE_URL="https://care.ntbprov.test")
        owe_weekly_digests(agencies, MONDAY_0700_WITA)
        result = send_due_mails(agencies, settings)
    assert len(result.sent) == 1
    [(recipients, content)] = handler.received
    assert recipients == ["pengaduan@pln-ntb.test"]
    message = email.message_from_bytes(content, policy=default_policy)
    assert message["To"] == "pengaduan@pln-ntb.test"
    assert "2 laporan terbuka" in message["Subject"] and "1 lewat batas" in message["Subject"]
    body = message.get_body(("plain",)).get_content()
    assert body.index("NTB-2026-000002") < body.index("NTB-2026-000001")  # overdue first
    assert "NTB-2026-000003" not in body  # closed
    assert "https://care.ntbprov.test/agency/login" in body
    html = message.get_body(("html",)).get_content()
    assert 'href="https://care.ntbprov.test/agency/login"' in html
    with agencies.session() as session:
        assert session.scalars(select(OutboundMail.status)).one() == "sent"
        assert session.scalar(select(func.count()).select_from(Ticket)) == 5


def test_digest_false_in_the_registry_is_imported_and_kept_by_init(tmp_path, db) -> None:  # type: ignore[no-untyped-def]
    import yaml

    rows = [record.to_dict() for record in load_registry()]
    for row in rows:
        if row["code"] == "DIKES":
            row["digest"] = False
    edited = tmp_path / "agencies.yaml"
    edited.write_text(yaml.safe_dump(rows, allow_unicode=True), encoding="utf-8")
    with db.scope() as session:
        seed_agencies(session, load_registry(edited), contacts_from_records=True)  # `agencies import`
    with db.scope() as session:
        seed_agencies(session, load_registry())  # a later `ntbcare init` with the bundled registry
    with db.session() as session:
        assert session.get(Agency, "DIKES").data["digest"] is False
        assert "digest" not in session.get(Agency, "PLN").data
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump([{**rows[0], "digest": "tidak"}], allow_unicode=True), encoding="utf-8")
    with pytest.raises(ValueError, match="digest must be true or false"):
        load_registry(bad)
