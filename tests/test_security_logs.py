"""No log line carries a working agency link or a citizen's personal data, whatever fails."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.orm import object_session

from ntbcare.core.db import make_engine
from ntbcare.core.models import Ticket
from ntbcare.core.security import install_log_redaction, redact_tokens
from tests.test_agency_page import csrf_fields, page_runtime, seed, token_for, web  # noqa: F401

NIK = "5201011234567890"
COMPLAINT_WITH_NIK = f"Nama saya Baiq, NIK {NIK}, listrik padam di Pagesangan sejak pagi."


def test_a_500_on_an_agency_route_and_a_database_error_log_neither_token_nor_nik(
    web, page_runtime, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture  # noqa: F811
) -> None:
    ticket_id = seed(page_runtime.db, text=COMPLAINT_WITH_NIK)
    token = token_for(ticket_id)

    def failing_query(ticket: Ticket) -> None:
        """A database error inside the page, with the complaint text as its SQL parameter."""
        session = object_session(ticket)
        assert session is not None
        session.execute(text("SELECT no_such_column FROM tickets WHERE text = :t"),
                        {"t": ticket.text})

    monkeypatch.setattr("ntbcare.web.presentation.facebook_url", failing_query)
    with caplog.at_level(logging.DEBUG):
        page = web.get(f"/a/{token}")
        logging.getLogger("ntbcare.test").warning("retry %s after %s", f"/agency/login/{token}", "x")
    assert page.status_code == 500
    assert token not in page.get_data(as_text=True) and NIK not in page.get_data(as_text=True)
    lines = [record.getMessage() for record in caplog.records] + caplog.text.splitlines()
    assert any("Exception on /a/" in line for line in lines), "the failure is still logged"
    assert any("no_such_column" in line for line in caplog.text.splitlines()), "with the database's reason"
    for line in lines:
        assert token not in line, line
        assert NIK not in line, line


def test_every_engine_hides_sql_parameters(tmp_path: Path) -> None:
    for url in (f"sqlite:///{tmp_path / 'x.db'}", "postgresql://u:p@127.0.0.1:9/x"):
        assert make_engine(url).hide_parameters, url


def test_tokens_are_redacted_in_any_log_line(caplog: pytest.LogCaptureFixture) -> None:
    install_log_redaction()
    with caplog.at_level(logging.INFO):
        logging.getLogger("gunicorn.access").info('"GET /a/abc.DEF-123_x/answer HTTP/1.1" 200')
        logging.getLogger("x").info("sign-in %s", "http://h/agency/login/tok.en?next=1")
        try:
            raise RuntimeError("bad link /a/secret-token")
        except RuntimeError:
            logging.getLogger("x").exception("failed")
    assert "abc.DEF-123_x" not in caplog.text and "tok.en" not in caplog.text and "secret-token" not in caplog.text
    assert "/a/[disembunyikan]/answer" in caplog.text
    assert redact_tokens("/agency/login") == "/agency/login", "the sign-in form itself is no token"


def test_answer_loses_control_characters(web, page_runtime) -> None:  # noqa: F811
    from sqlalchemy import select

    from ntbcare.core.models import AgencyAnswer

    ticket_id = seed(page_runtime.db)
    token = token_for(ticket_id)
    forms: dict[str, Any] = csrf_fields(web, f"/a/{token}")
    answer = "Sudah\u202e diperbaiki\x00\x1b[31m petugas\r\nbaris\tdua"
    posted = web.post(f"/a/{token}/answer", data={**forms[f"/a/{token}/answer"], "answer": answer})
    assert posted.status_code in (200, 303), posted.data[:500]
    with page_runtime.db.session() as session:
        [stored] = session.scalars(select(AgencyAnswer)).all()
    assert stored.text == "Sudah diperbaiki[31m petugas\nbaris\tdua"
