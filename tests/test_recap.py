"""The monthly recap: `ntbcare report monthly` as HTML, CSV and PDF with the figures of the public page, the
province's trend and the ten oldest open complaints; due on the first working day (after holidays and the
weekend); e-mailed once to OPERATOR_EMAILS and every agency head (HTML body with the chart, CSV and PDF
attached) even when two sweepers race; and none of the personal-data corpus in any of it."""

from __future__ import annotations

import csv
import email
import importlib
import io
import re
import threading
from datetime import datetime
from email.policy import default as default_policy

import pytest
from click.testing import CliRunner
from pypdf import PdfReader
from sqlalchemy import select

from ntbcare.cli import cli
from ntbcare.core.db import Database
from ntbcare.core.models import OutboundMail
from ntbcare.pipeline.accountability import recap
from ntbcare.pipeline.join import Pipeline, deadline_policy_for
from tests.conftest import BASE_ENV, make_settings
from tests.public_seed import CORPUS, NOW, WITA, seed_month
from tests.servers import RecordingHandler, smtp_server

FIRST_WORKING_DAY_JAN = datetime(2027, 1, 4, 7, 30, tzinfo=WITA)  # 1 Jan holiday, 2-3 weekend


def pdf_text(data: bytes) -> str:
    return "\n".join(page.extract_text() for page in PdfReader(io.BytesIO(data)).pages)


def assert_no_personal_data(text: str, where: str) -> None:
    for secret in CORPUS:
        assert secret.lower() not in text.lower(), f"{secret!r} in {where}"


def together(work, items, timeout: float = 60) -> None:  # type: ignore[no-untyped-def]
    """``work(item)`` for every item, each in its own thread, all released at once (a race)."""
    barrier = threading.Barrier(len(items))

    def run(item) -> None:  # type: ignore[no-untyped-def]
        barrier.wait()
        work(item)

    threads = [threading.Thread(target=run, args=(item,)) for item in items]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout)


def test_due_on_the_first_working_day_from_seven() -> None:
    calendar = deadline_policy_for(make_settings()).calendar
    assert recap.recap_due(calendar, FIRST_WORKING_DAY_JAN)
    assert not recap.recap_due(calendar, datetime(2027, 1, 4, 6, 59, tzinfo=WITA))
    assert not recap.recap_due(calendar, datetime(2027, 1, 1, 9, 0, tzinfo=WITA))  # New Year's Day
    assert recap.recap_due(calendar, datetime(2027, 1, 5, 9, 0, tzinfo=WITA))  # later too (owed until recorded)
    assert recap.recap_due(calendar, datetime(2026, 12, 1, 23, 59, tzinfo=WITA))  # a Tuesday


def test_report_command_writes_html_csv_and_pdf(db: Database, database_url: str, tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    # As of the fixture's moment (30 Dec 12:00); ntbcare.cli.report is also the name of the click group.
    monkeypatch.setattr(importlib.import_module("ntbcare.cli.report"), "utcnow", lambda: NOW)
    seed_month(db, make_settings(DATABASE_URL=database_url))
    env = {**BASE_ENV, "DATABASE_URL": database_url, "REDIS_URL": ""}
    outputs = {}
    for fmt in ("html", "csv", "pdf"):
        out = tmp_path / f"recap.{fmt}"
        result = CliRunner().invoke(cli, ["report", "monthly", "--month", "2026-12", "--format", fmt, "--out",
                                          str(out)], env=env)
        assert result.exit_code == 0, result.output
        outputs[fmt] = out.read_bytes()
    html = outputs["html"].decode("utf-8")
    assert "Rekap bulanan NTB Care: Desember 2026" in html and "<svg" in html
    assert "Sepuluh pengaduan terbuka paling lama" in html and "NTB-2026-000005" in html  # T5, the only one
    rows = list(csv.DictReader(io.StringIO(outputs["csv"].decode("utf-8"))))
    assert [(r["kode"], r["diterima"], r["persen_tepat_waktu"]) for r in rows[:2]] == [("NTB", "9", "33.3"),
                                                                                     ("DINKES", "6", "50.0")]
    assert outputs["pdf"].startswith(b"%PDF")
    text = pdf_text(outputs["pdf"])
    assert "Desember 2026" in text and "Dinas Kesehatan" in text
    for fmt, data in outputs.items():
        assert_no_personal_data(pdf_text(data) if fmt == "pdf" else data.decode("utf-8"), fmt)
    bad = CliRunner().invoke(cli, ["report", "monthly", "--month", "12-2026"], env=env)
    assert bad.exit_code == 1 and "--month" in bad.output


def test_a_sweeper_down_all_the_first_working_day_still_owes_the_recap_once(db: Database, database_url: str) -> None:
    settings = make_settings(DATABASE_URL=database_url, OPERATOR_EMAILS="ops@diskominfotik.test")
    seed_month(db, settings)
    policy = deadline_policy_for(settings)
    assert recap.owe_monthly_recap(db, settings, policy, datetime(2027, 1, 4, 6, 59, tzinfo=WITA)) == []  # not yet
    back = datetime(2027, 1, 12, 10, 0, tzinfo=WITA)  # down from before 4 January until the 12th
    [mail_id] = recap.owe_monthly_recap(db, settings, policy, back)
    assert recap.owe_monthly_recap(db, settings, policy, back) == []
    assert recap.owe_monthly_recap(db, settings, policy, datetime(2027, 1, 20, 9, 0, tzinfo=WITA)) == []
    with db.session() as s:
        rows = s.scalars(select(OutboundMail).where(OutboundMail.kind == "recap")).all()
        assert [(r.id, r.key) for r in rows] == [(mail_id, "recap:2026-12")]


def test_two_sweepers_racing_late_in_the_month_owe_one_recap(db: Database, database_url: str) -> None:
    settings = make_settings(DATABASE_URL=database_url, OPERATOR_EMAILS="ops@diskominfotik.test")
    seed_month(db, settings)
    policy = deadline_policy_for(settings)
    racers = [Database(database_url) for _ in range(2)]
    owed: list[list[int]] = []
    together(lambda other: owed.append(recap.owe_monthly_recap(other, settings, policy,
                                                               datetime(2027, 1, 27, 15, 0, tzinfo=WITA))), racers)
    for other in racers:
        other.dispose()
    assert sorted(len(ids) for ids in owed) == [0, 1]
    with db.session() as s:
        assert len(s.scalars(select(OutboundMail).where(OutboundMail.key == "recap:2026-12")).all()) == 1


@pytest.mark.parametrize("racers", [2])
def test_recap_is_mailed_once_when_two_sweepers_race(db: Database, database_url: str, monkeypatch,  # type: ignore[no-untyped-def]
                                                     racers: int) -> None:
    handler = RecordingHandler()
    with smtp_server(handler) as port:
        settings = make_settings(DATABASE_URL=database_url, SMTP_URL=f"smtp://127.0.0.1:{port}?starttls=0&timeout=5",
                                 OPERATOR_EMAILS="ops@diskominfotik.test", MAIL_FROM="NTB Care <care@ntb.test>")
        seed_month(db, settings)
        monkeypatch.setattr(recap, "utcnow", lambda: FIRST_WORKING_DAY_JAN)
        sweepers = [Pipeline(settings, Database(database_url)) for _ in range(racers)]
        errors: list[BaseException] = []

        def sweep(pipeline: Pipeline) -> None:
            try:
                pipeline.follow_up()
                pipeline.follow_up()  # a second round of the same sweeper owes nothing new
            except BaseException as exc:
                errors.append(exc)

        together(sweep, sweepers, timeout=120)
        for pipeline in sweepers:
            pipeline.db.dispose()
        assert not errors, errors
    recaps = [(to, data) for to, data in handler.received if b"Rekap bulanan" in data]
    assert len(recaps) == 1
    to, data = recaps[0]
    assert sorted(to) == ["kadis@dinkes.test", "ops@diskominfotik.test"]
    with db.session() as s:
        [row] = s.scalars(select(OutboundMail).where(OutboundMail.kind == "recap")).all()
        assert row.key == "recap:2026-12" and row.status == "sent"
    message = email.message_from_bytes(data, policy=default_policy)
    assert message["Subject"] == "[NTB Care] Rekap bulanan pengaduan: Desember 2026"
    body = message.get_body(preferencelist=("html",))
    assert body is not None
    html = body.get_content()
    # Mail clients (Gmail, Outlook) show no inline SVG: the chart is a PNG part of the same multipart/related,
    # named by the <img>'s Content-ID; the table of the same numbers stays as its text alternative.
    assert "<svg" not in html and "Dinas Kesehatan" in html
    [cid] = re.findall(r'<img src="cid:([^"]+)" alt="Tren mingguan Provinsi NTB, Desember 2026\. 12 minggu', html)
    related = next(part for part in message.walk() if part.get_content_type() == "multipart/related")
    [image] = [part for part in related.iter_parts() if part.get("Content-ID") == f"<{cid}>"]
    assert image.get_content_type() == "image/png" and image.get_content().startswith(b"\x89PNG\r\n\x1a\n")
    assert "<td>Diterima</td>" in html and "<td>Dijawab</td>" in html
    attachments = {part.get_filename(): part.get_content() for part in message.iter_attachments()}
    assert set(attachments) == {"rekap-ntbcare-2026-12.csv", "rekap-ntbcare-2026-12.pdf"}
    assert attachments["rekap-ntbcare-2026-12.pdf"].startswith(b"%PDF")
    plain = message.get_body(preferencelist=("plain",))
    assert plain is not None
    for where, text in (("html", html), ("plain", plain.get_content()),
                        ("csv", attachments["rekap-ntbcare-2026-12.csv"].decode("utf-8")
                         if isinstance(attachments["rekap-ntbcare-2026-12.csv"], bytes)
                         else attachments["rekap-ntbcare-2026-12.csv"]),
                        ("pdf", pdf_text(attachments["rekap-ntbcare-2026-12.pdf"]))):
        assert_no_personal_data(text, where)


def test_a_new_installation_owes_no_recap_of_a_month_before_its_first_complaint(db: Database,
                                                                                 database_url: str) -> None:
    settings = make_settings(DATABASE_URL=database_url, OPERATOR_EMAILS="ops@diskominfotik.test")
    policy = deadline_policy_for(settings)
    seed_month(db, settings)  # its first complaint was written on 20 November 2026
    assert recap.owe_monthly_recap(db, settings, policy, datetime(2026, 11, 10, 9, 0, tzinfo=WITA)) == []  # October
    with db.session() as s:
        assert s.scalars(select(OutboundMail).where(OutboundMail.kind == "recap")).all() == []
    assert len(recap.owe_monthly_recap(db, settings, policy, datetime(2026, 12, 1, 9, 0, tzinfo=WITA))) == 1
