"""The monthly recaps in the console: an operator sees each month's recap (recipients, sent, waiting or failed,
when sent) and downloads it as HTML, CSV or PDF; nobody signed out sees or downloads anything; looking changes
nothing in the outbox; and the downloads hold none of the personal-data corpus."""

from __future__ import annotations

import io
from datetime import timedelta
from typing import Any

from pypdf import PdfReader
from sqlalchemy import select, update

from ntbcare.core.models import AuditEntry, MailStatus, OutboundMail
from ntbcare.pipeline.accountability import recap
from ntbcare.pipeline.join import deadline_policy_for
from tests.conftest import make_settings
from tests.ops_helpers import login, make_operator
from tests.public_seed import CORPUS, seed_month
from tests.test_recap import FIRST_WORKING_DAY_JAN


def owed(db: Any, database_url: str) -> None:
    """December's recap owed by the sweeper on 4 January, sent; November's failed; October's still waiting."""
    settings = make_settings(DATABASE_URL=database_url, OPERATOR_EMAILS="ops1@ntbprov.test,ops2@ntbprov.test")
    seed_month(db, settings)
    [mail_id] = recap.owe_monthly_recap(db, settings, deadline_policy_for(settings), now=FIRST_WORKING_DAY_JAN)
    sent_at = FIRST_WORKING_DAY_JAN + timedelta(minutes=1)
    with db.scope() as session:
        session.execute(update(OutboundMail).where(OutboundMail.id == mail_id)
                        .values(status=MailStatus.SENT, attempts=1, sent_at=sent_at))
        session.add(OutboundMail(key="recap:2026-11", kind="recap", recipients=["ops1@ntbprov.test"],
                                 status=MailStatus.FAILED, attempts=8, error="SMTP 550 mailbox unavailable"))
        session.add(OutboundMail(key="recap:2026-10", kind="recap", recipients=["ops1@ntbprov.test"],
                                 status=MailStatus.PENDING))
        session.add(OutboundMail(key="digest:PUPR:2026-W50", kind="digest", recipients=["pupr@ntbprov.test"]))


def outbox(db: Any) -> list[tuple]:
    with db.session() as session:
        return [tuple(row) for row in session.execute(
            select(OutboundMail.key, OutboundMail.status, OutboundMail.attempts, OutboundMail.sent_at,
                   OutboundMail.claimed_until, OutboundMail.next_attempt_at).order_by(OutboundMail.key))]


def audit_count(db: Any) -> int:
    with db.session() as session:
        return len(session.scalars(select(AuditEntry.id)).all())


def test_signed_out_nobody_sees_or_downloads_a_recap(client, db, database_url) -> None:  # type: ignore[no-untyped-def]
    owed(db, database_url)
    for path in ("/ops/reports", "/ops/reports/2026-12.csv", "/ops/reports/2026-12.pdf"):
        response = client.get(path)
        assert response.status_code == 303 and "/ops/login" in response.headers["Location"], path


def test_an_operator_sees_each_months_recap_and_looking_changes_nothing(client, db, database_url) -> None:  # type: ignore[no-untyped-def]
    owed(db, database_url)
    make_operator(db, "wayan", "kata-sandi-wayan")  # a plain operator, not a supervisor
    assert login(client, "wayan", "kata-sandi-wayan").status_code == 303
    before, audits = outbox(db), audit_count(db)
    dashboard = client.get("/ops/").get_data(as_text=True)
    assert 'href="/ops/reports"' in dashboard and "Rekap bulanan" in dashboard
    response = client.get("/ops/reports")
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    rows = html.split("<tbody>", 1)[1].split("</tbody>", 1)[0].split("<tr>")[1:]
    assert [row.split("</th>", 1)[0].rsplit(">", 1)[1] for row in rows] == [
        "Desember 2026", "November 2026", "Oktober 2026"]
    december, november, october = rows
    # Two operators and DINKES's head; sent on 4 January at 07:31 WITA.
    assert "<td>3</td>" in december and "terkirim" in december and "4 Jan 2027 07.31 WITA" in december
    assert "/ops/reports/2026-12.html" in december and "/ops/reports/2026-12.pdf" in december
    assert "gagal" in november and "8 percobaan" in november and "SMTP 550" in november and "<td>-</td>" in november
    assert "menunggu" in october
    assert "digest" not in html and "PUPR:2026-W50" not in html
    assert outbox(db) == before and audit_count(db) == audits


def test_downloads_are_the_months_recap_without_personal_data(client, db, database_url) -> None:  # type: ignore[no-untyped-def]
    owed(db, database_url)
    make_operator(db, "wayan", "kata-sandi-wayan")
    login(client, "wayan", "kata-sandi-wayan")
    before = outbox(db)
    bodies = {}
    for fmt, media in (("html", "text/html"), ("csv", "text/csv"), ("pdf", "application/pdf")):
        response = client.get(f"/ops/reports/2026-12.{fmt}")
        assert response.status_code == 200, fmt
        assert response.headers["Content-Type"].startswith(media)
        assert response.headers["Content-Disposition"] == f'attachment; filename="rekap-ntbcare-2026-12.{fmt}"'
        bodies[fmt] = response.data
    csv_text = bodies["csv"].decode("utf-8")
    assert csv_text.splitlines()[0].startswith("kode,instansi,diterima,dijawab,")
    assert "DINKES" in csv_text and "PUPR" in csv_text
    assert "Desember 2026" in bodies["html"].decode("utf-8")
    pdf = "\n".join(page.extract_text() for page in PdfReader(io.BytesIO(bodies["pdf"])).pages)
    assert "Desember 2026" in pdf
    for fmt, text in (("html", bodies["html"].decode("utf-8")), ("csv", csv_text), ("pdf", pdf)):
        for secret in CORPUS:
            assert secret.lower() not in text.lower(), (secret, fmt)
    assert outbox(db) == before


def test_an_unknown_month_or_format_is_not_found(client, db, database_url) -> None:  # type: ignore[no-untyped-def]
    owed(db, database_url)
    make_operator(db, "wayan", "kata-sandi-wayan")
    login(client, "wayan", "kata-sandi-wayan")
    for path in ("/ops/reports/2026-13.csv", "/ops/reports/desember.csv", "/ops/reports/2026-12.docx"):
        assert client.get(path).status_code == 404, path


def test_no_recap_yet_says_so(client, db) -> None:  # type: ignore[no-untyped-def]
    make_operator(db, "wayan", "kata-sandi-wayan")
    login(client, "wayan", "kata-sandi-wayan")
    assert "Belum ada rekap bulanan" in client.get("/ops/reports").get_data(as_text=True)
