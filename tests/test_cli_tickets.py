"""An operator's decisions from the command line: `tickets assign` forwards the ticket by e-mail and teaches the
model, `tickets not-complaint` dismisses it; a typo changes nothing and says so in one line."""

from __future__ import annotations

import email
import json
from collections.abc import Iterator
from email.policy import default as default_policy
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from sqlalchemy import func, select, update

from ntbcare.cli import cli
from ntbcare.core.db import Database
from ntbcare.core.models import Agency, AuditEntry, OutboundMail, RoutingDecision
from tests.conftest import BASE_ENV
from tests.test_mailer import RecordingHandler, smtp_server

ROADS = "PUPRPKP"
ROADS_DESK = "pengaduan@pupr.ntb.test"


def comment_file(directory: Path, n: int, text: str) -> str:
    """A recorded webhook body with one new comment, written where `ntbcare replay` can read it."""
    value = {"from": {"id": f"75{n:014d}", "name": f"Warga {n}"}, "message": text,
             "post_id": "104000000000001_555000000000111", "comment_id": f"555000000000111_{900000000000 + n}",
             "parent_id": "104000000000001_555000000000111", "created_time": 1767225598 + n, "item": "comment",
             "verb": "add"}
    body = {"object": "page", "entry": [{"id": "104000000000001", "time": 1767225600,
                                         "changes": [{"field": "feed", "value": value}]}]}
    path = directory / f"comment-{n}.json"
    path.write_text(json.dumps(body), encoding="utf-8")
    return str(path)


@pytest.fixture
def smtp() -> Iterator[tuple[RecordingHandler, int]]:
    handler = RecordingHandler()
    with smtp_server(handler) as port:
        yield handler, port


@pytest.fixture
def env(database_url: str, smtp: tuple[RecordingHandler, int]) -> dict[str, str]:
    _, port = smtp
    return {**BASE_ENV, "DATABASE_URL": database_url, "REDIS_URL": "",
            "SMTP_URL": f"smtp://127.0.0.1:{port}?starttls=0&timeout=5", "MAIL_FROM": "NTB Care <care@ntb.test>"}


@pytest.fixture
def database(env: dict[str, str]) -> Iterator[Database]:
    """The migrated database the commands use (after `ntbcare init`)."""
    assert invoke(env, "init").exit_code == 0
    db = Database(env["DATABASE_URL"])
    yield db
    db.dispose()


def invoke(env: dict[str, str], *args: str) -> Result:
    return CliRunner().invoke(cli, list(args), env=env)


def ok(env: dict[str, str], *args: str) -> Result:
    result = invoke(env, *args)
    assert result.exit_code == 0, result.output
    return result


def shown(env: dict[str, str], number: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(ok(env, "tickets", "show", number, "--json").stdout)
    return data


def one_ticket(env: dict[str, str], tmp_path: Path, text: str) -> str:
    ok(env, "replay", comment_file(tmp_path, 1, text))
    [ticket] = json.loads(ok(env, "tickets", "list", "--json").stdout)
    return str(ticket["number"])


def state(db: Database) -> tuple[int, int, int]:
    """Audit entries, routing decisions and e-mails owed: a refused command changes none of them."""
    with db.session() as session:
        return (session.scalar(select(func.count()).select_from(AuditEntry)) or 0,
                session.scalar(select(func.count()).select_from(RoutingDecision)) or 0,
                session.scalar(select(func.count()).select_from(OutboundMail)) or 0)


def test_assign_forwards_the_ticket_by_email_and_records_the_operators_decision(env, database, smtp, tmp_path):
    handler, _ = smtp
    number = one_ticket(env, tmp_path, "Jalan provinsi di Desa Sembalun rusak parah, berlubang besar")
    with database.scope() as session:
        session.execute(update(Agency).where(Agency.code == ROADS).values(emails=[ROADS_DESK]))
    handler.received.clear()  # whatever the classifier did, only the operator's forward counts here

    result = ok(env, "tickets", "assign", number, ROADS.lower(), "--by", "rina")

    assert number in result.stdout and ROADS in result.stdout
    [(recipients, raw)] = handler.received
    assert recipients == [ROADS_DESK]
    assert number in email.message_from_bytes(raw, policy=default_policy)["Subject"]
    ticket = shown(env, number)
    assert (ticket["status"], ticket["agency"]) == ("forwarded", ROADS)
    routed = [h for h in ticket["history"] if h["action"] == "routed"][-1]
    assert routed["actor"] == "operator:rina" and routed["to"] == "routed"
    with database.session() as session:
        decision = session.scalars(select(RoutingDecision).order_by(RoutingDecision.id.desc())).first()
    assert decision is not None
    assert (decision.kind, decision.agency_code, decision.complaint, decision.actor) == (
        "assign", ROADS, True, "operator:rina")


@pytest.mark.parametrize("command", [["assign", "{number}", "NO-SUCH-AGENCY"], ["assign", "NTB-2026-999999", ROADS],
                                     ["not-complaint", "NTB-2026-999999"]])
def test_a_typo_is_one_line_on_stderr_exit_1_and_changes_nothing(env, database, smtp, tmp_path, command):
    handler, _ = smtp
    number = one_ticket(env, tmp_path, "Jalan provinsi di Desa Sembalun rusak parah, berlubang besar")
    with database.scope() as session:
        session.execute(update(Agency).where(Agency.code == ROADS).values(emails=[ROADS_DESK]))
    before, status_before, mails_before = state(database), shown(env, number)["status"], len(handler.received)

    result = invoke(env, "tickets", *[part.format(number=number) for part in command], "--by", "rina")

    assert result.exit_code == 1
    assert result.stdout == ""
    [line] = result.stderr.strip().splitlines()
    assert "NO-SUCH-AGENCY" in line or "NTB-2026-999999" in line
    assert state(database) == before
    assert shown(env, number)["status"] == status_before
    assert len(handler.received) == mails_before


def test_not_complaint_dismisses_the_ticket_and_records_the_decision(env, database, smtp, tmp_path):
    handler, _ = smtp
    number = one_ticket(env, tmp_path, "Jalan provinsi di Desa Sembalun rusak parah, berlubang besar")
    mails_before = len(handler.received)

    result = ok(env, "tickets", "not-complaint", number, "--by", "rina")

    assert number in result.stdout and "not_complaint" in result.stdout
    ticket = shown(env, number)
    assert ticket["status"] == "not_complaint"
    assert ticket["history"][-1]["actor"] == "operator:rina" and ticket["history"][-1]["to"] == "not_complaint"
    with database.session() as session:
        decision = session.scalars(select(RoutingDecision).order_by(RoutingDecision.id.desc())).first()
    assert decision is not None
    assert (decision.kind, decision.complaint, decision.agency_code, decision.actor) == (
        "not_complaint", False, None, "operator:rina")
    assert len(handler.received) == mails_before  # nobody is e-mailed about chatter


def test_list_limit_gives_exactly_that_many_newest_tickets(env, database, tmp_path):
    files = [comment_file(tmp_path, n, f"Lampu jalan mati di gang {n}, mohon diperbaiki") for n in range(1, 6)]
    ok(env, "replay", *files)
    everything = json.loads(ok(env, "tickets", "list", "--json").stdout)
    assert len(everything) == 5

    newest = json.loads(ok(env, "tickets", "list", "--limit", "3", "--json").stdout)

    assert [t["number"] for t in newest] == sorted((t["number"] for t in everything), reverse=True)[:3]
    assert len(ok(env, "tickets", "list", "--limit", "2").stdout.strip().splitlines()) == 1 + 2  # header + 2
