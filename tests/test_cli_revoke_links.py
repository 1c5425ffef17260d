"""`ntbcare tickets revoke-links`: a leaked agency link stops working without reassigning the ticket; the
revocation is audited as the operator; a link signed afterwards opens the ticket; a typo changes nothing."""

from __future__ import annotations

from click.testing import CliRunner, Result
from flask.testing import FlaskClient
from sqlalchemy import func, select

from ntbcare.core.db import Database
from ntbcare.core.models import AuditEntry, Ticket
from ntbcare.pipeline.runtime import Runtime
from tests.conftest import BASE_ENV, RecordingDispatcher, make_settings
from tests.test_agency_page import COMPLAINT, build_agency_app, parse, seed, snapshot, token_for


def revoke(database_url: str, *args: str) -> Result:
    from ntbcare.cli import cli

    return CliRunner().invoke(cli, ["tickets", "revoke-links", *args], env={**BASE_ENV, "DATABASE_URL": database_url})


def web_client(database_url: str, db: Database) -> FlaskClient:
    runtime = Runtime(settings=make_settings(DATABASE_URL=database_url), db=db, dispatcher=RecordingDispatcher())
    return build_agency_app(runtime).test_client()


def test_revoked_link_answers_410_and_a_new_one_opens_the_ticket(database_url, db):
    ticket_id = seed(db)
    web = web_client(database_url, db)
    leaked = token_for(ticket_id)
    page = web.get(f"/a/{leaked}")
    assert page.status_code == 200 and COMPLAINT in parse(page.data).text
    forms = parse(page.data).forms

    result = revoke(database_url, "ntb-2026-000001", "--by", "rina")

    assert result.exit_code == 0, result.output
    assert "NTB-2026-000001" in result.stdout and "1 -> 2" in result.stdout and "PLN" in result.stdout
    with db.session() as session:
        ticket = session.get(Ticket, ticket_id)
        assert ticket is not None and (ticket.link_version, ticket.agency_code) == (2, "PLN")
        [entry] = session.scalars(select(AuditEntry).where(AuditEntry.action == "links_revoked")).all()
        assert entry.actor == "operator:rina" and entry.ticket_id == ticket_id
    before = snapshot(db)
    refused = web.get(f"/a/{leaked}")
    assert refused.status_code == 410
    assert "tidak berlaku" in parse(refused.data).text and COMPLAINT not in parse(refused.data).text
    posted = web.post(f"/a/{leaked}/answer", data={**forms[f"/a/{leaked}/answer"], "answer": "Sudah beres."})
    assert posted.status_code == 410
    assert snapshot(db) == before  # the leaked link acts on nothing

    fresh = web.get(f"/a/{token_for(ticket_id, version=2)}")
    assert fresh.status_code == 200 and COMPLAINT in parse(fresh.data).text


def test_unknown_ticket_is_one_line_exit_1_and_changes_nothing(database_url, db):
    ticket_id = seed(db)
    with db.session() as session:
        audits = session.scalar(select(func.count()).select_from(AuditEntry))

    result = revoke(database_url, "NTB-2026-999999")

    assert result.exit_code == 1
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and "NTB-2026-999999" in lines[0] and "Traceback" not in result.output
    with db.session() as session:
        assert session.scalar(select(func.count()).select_from(AuditEntry)) == audits
        ticket = session.get(Ticket, ticket_id)
        assert ticket is not None and ticket.link_version == 1
