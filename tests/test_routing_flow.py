"""New ticket → classifier → agency e-mail (real SMTP server), review, not-a-complaint, reminders, escalation,
and operator decisions, on SQLite and PostgreSQL."""

from __future__ import annotations

import email
import json
import re
from datetime import timedelta
from email.policy import default as default_policy

import pytest
from sqlalchemy import select, update

from ntbcare.core.links import read_agency_token
from ntbcare.core.models import Agency, AuditEntry, OutboundMail, RoutingDecision, Ticket, TicketStatus, utcnow
from ntbcare.pipeline.runtime import Runtime
from routing.decisions import agency_not_ours, assign, mark_not_complaint, training_examples
from routing.forwarding import schedule_followups, send_due_mails
from tests.conftest import BASE_ENV, RecordingDispatcher, drain, make_settings
from tests.test_mailer import RecordingHandler, free_port, smtp_server


def comment(n: int, text: str) -> dict:
    value = {"from": {"id": f"73{n:014d}", "name": "Baiq Nurul Hidayati"}, "message": text,
             "post_id": "104000000000001_555000000000111", "comment_id": f"555000000000111_{600000000000 + n}",
             "parent_id": "104000000000001_555000000000111", "created_time": 1767225598 + n, "item": "comment",
             "verb": "add"}
    return {"object": "page", "entry": [{"id": "104000000000001", "time": 1767225600,
                                         "changes": [{"field": "feed", "value": value}]}]}


PLN_TEXT = "Listrik padam sejak pagi di Kelurahan Pagesangan Mataram, token sudah diisi tetap mati. Tolong PLN"
CHATTER = "Terima kasih pak gubernur, semoga sehat selalu, aamiin 🙏"


@pytest.fixture
def smtp():  # type: ignore[no-untyped-def]
    handler = RecordingHandler()
    with smtp_server(handler) as port:
        yield handler, port


@pytest.fixture
def routed_runtime(database_url, db, smtp):  # type: ignore[no-untyped-def]
    _, port = smtp
    settings = make_settings(DATABASE_URL=database_url, SMTP_URL=f"smtp://127.0.0.1:{port}?starttls=0&timeout=5",
                             OPERATOR_EMAILS="ops@diskominfotik.test", MAIL_FROM="NTB Care <care@ntb.test>")
    from ntbcare.pipeline.bootstrap import seed_agencies
    from routing.registry import load_registry

    with db.scope() as session:
        seed_agencies(session, load_registry())
        session.execute(update(Agency).where(Agency.code == "PLN").values(emails=["pengaduan@pln-ntb.test"]))
    return Runtime(settings=settings, db=db, dispatcher=RecordingDispatcher())


def ingest(runtime, post_factory, *bodies: dict) -> list[Ticket]:  # type: ignore[no-untyped-def]
    from ntbcare.app import create_app

    client = create_app(runtime=runtime).test_client()
    from tests.conftest import Poster

    poster = Poster(client)
    for body in bodies:
        assert poster(body).status_code == 200
    drain(runtime, route=True)
    with runtime.db.session() as session:
        return session.scalars(select(Ticket).order_by(Ticket.id)).all()


def test_clear_complaint_is_forwarded_by_email_with_a_signed_link(routed_runtime, smtp):
    handler, _ = smtp
    [ticket] = ingest(routed_runtime, None, comment(1, PLN_TEXT))
    assert ticket.agency_code == "PLN"
    assert ticket.status == TicketStatus.FORWARDED and ticket.forwarded_at is not None
    assert ticket.deadline_at is not None and ticket.deadline_at > ticket.opened_at
    assert ticket.location_code == "52.71"
    [(rcpt, raw)] = handler.received
    assert rcpt == ["pengaduan@pln-ntb.test"]
    message = email.message_from_bytes(raw, policy=default_policy)
    assert ticket.number in message["Subject"]
    text = message.get_body(("plain",)).get_content()
    assert "Pagesangan" in text
    link = re.search(r"http://ntbcare\.test/a/([\w.-]+)", text)
    assert link, text
    claims = read_agency_token(BASE_ENV["SECRET_KEY"], link.group(1), max_age_seconds=3600)
    assert (claims.ticket_id, claims.agency_code, claims.link_version) == (ticket.id, "PLN", 1)
    with routed_runtime.db.session() as session:
        [mail] = session.scalars(select(OutboundMail)).all()
        assert mail.status == "sent" and mail.kind == "forward"
        actions = session.scalars(select(AuditEntry.action).where(AuditEntry.ticket_id == ticket.id)).all()
    assert actions[:3] == ["opened", "routed", "forwarded"]


def test_chatter_is_not_a_complaint_and_sends_nothing(routed_runtime, smtp):
    handler, _ = smtp
    [ticket] = ingest(routed_runtime, None, comment(2, CHATTER))
    assert ticket.status == TicketStatus.NOT_COMPLAINT
    assert handler.received == []


def test_agency_without_contacts_goes_to_review_with_that_reason(routed_runtime, smtp):
    handler, _ = smtp
    [ticket] = ingest(routed_runtime, None, comment(3, "Samsat Selong antri lama sekali, pajak motor sy blm bisa "
                                                      "dibayar krn sistem error terus, tolong Bapenda"))
    assert ticket.status == TicketStatus.REVIEW
    assert ticket.review_reason == "no_contacts"
    assert ticket.agency_code == "BAPENDA"
    assert handler.received == []


def test_smtp_outage_is_retried_and_the_mail_is_never_lost(database_url, db):
    port = free_port()
    settings = make_settings(DATABASE_URL=database_url, SMTP_URL=f"smtp://127.0.0.1:{port}?starttls=0&timeout=3")
    from ntbcare.pipeline.bootstrap import seed_agencies
    from routing.registry import load_registry

    with db.scope() as session:
        seed_agencies(session, load_registry())
        session.execute(update(Agency).where(Agency.code == "PLN").values(emails=["pln@pln.test"]))
    runtime = Runtime(settings=settings, db=db, dispatcher=RecordingDispatcher())
    [ticket] = ingest(runtime, None, comment(4, PLN_TEXT))  # nothing listens on the port: outage
    assert ticket.status == TicketStatus.ROUTED
    with db.session() as session:
        [mail] = session.scalars(select(OutboundMail)).all()
    assert mail.status == "pending" and mail.attempts == 1 and "MailTemporaryError" in mail.error
    assert mail.next_attempt_at is not None
    assert send_due_mails(db, settings).sent == []  # not due yet: backoff

    handler = RecordingHandler()
    with smtp_server(handler, port=port):
        with db.scope() as session:  # time passes
            session.execute(update(OutboundMail).values(next_attempt_at=utcnow() - timedelta(seconds=1)))
        assert send_due_mails(db, settings).sent == [mail.id]
        assert send_due_mails(db, settings).sent == []  # sent exactly once
    assert len(handler.received) == 1
    with db.session() as session:
        assert session.get(Ticket, ticket.id).status == TicketStatus.FORWARDED
        assert session.get(OutboundMail, mail.id).attempts == 2


def test_permanent_rejection_puts_the_ticket_back_in_review(database_url, db):
    handler = RecordingHandler(rcpt_reply="550 5.1.1 mailbox unknown")
    with smtp_server(handler) as port:
        settings = make_settings(DATABASE_URL=database_url, SMTP_URL=f"smtp://127.0.0.1:{port}?starttls=0")
        from ntbcare.pipeline.bootstrap import seed_agencies
        from routing.registry import load_registry

        with db.scope() as session:
            seed_agencies(session, load_registry())
            session.execute(update(Agency).where(Agency.code == "PLN").values(emails=["gone@pln.test"]))
        runtime = Runtime(settings=settings, db=db, dispatcher=RecordingDispatcher())
        [ticket] = ingest(runtime, None, comment(5, PLN_TEXT))
    assert ticket.status == TicketStatus.REVIEW and ticket.review_reason == "forward_failed"
    with db.session() as session:
        assert session.scalar(select(OutboundMail.status)) == "failed"


def test_reminders_before_and_escalation_after_the_deadline_once_each(routed_runtime, smtp):
    handler, _ = smtp
    [ticket] = ingest(routed_runtime, None, comment(6, PLN_TEXT))
    handler.received.clear()
    db, settings = routed_runtime.db, routed_runtime.settings
    now = utcnow()
    with db.scope() as session:  # forwarded 10 hours ago with an urgent 12-hour clock: reminders are due
        session.execute(update(Ticket).values(tier="urgent", forwarded_at=now - timedelta(hours=10),
                                              deadline_at=now + timedelta(hours=2)))
    created = schedule_followups(db, settings, routed_runtime.pipeline.deadline_policy)
    assert len(created) == 2
    assert schedule_followups(db, settings, routed_runtime.pipeline.deadline_policy) == []
    send_due_mails(db, settings)
    subjects = [email.message_from_bytes(raw, policy=default_policy)["Subject"] for _, raw in handler.received]
    assert len(subjects) == 2 and all("Pengingat" in s and ticket.number in s for s in subjects)

    with db.scope() as session:
        session.execute(update(Ticket).values(deadline_at=now - timedelta(minutes=1)))
        pln = session.get(Agency, "PLN")
        pln.data = {**pln.data, "head_emails": ["gm@pln-ntb.test"]}
    [escalation] = schedule_followups(db, settings, routed_runtime.pipeline.deadline_policy)
    assert schedule_followups(db, settings, routed_runtime.pipeline.deadline_policy) == []
    send_due_mails(db, settings)
    rcpt, raw = handler.received[-1]
    assert rcpt == ["ops@diskominfotik.test", "gm@pln-ntb.test"]
    assert "Eskalasi" in email.message_from_bytes(raw, policy=default_policy)["Subject"]
    with db.session() as session:
        assert session.scalar(select(AuditEntry.id).where(AuditEntry.action == "overdue")) is not None
        assert session.get(OutboundMail, escalation).status == "sent"


def test_operator_decisions_change_the_ticket_and_become_examples(routed_runtime, smtp):
    handler, _ = smtp
    [chatter, pln] = ingest(routed_runtime, None, comment(7, CHATTER), comment(8, PLN_TEXT))
    db = routed_runtime.db
    with db.scope() as session:
        ticket = session.get(Ticket, chatter.id)
        session.execute(update(Agency).where(Agency.code == "DISKOMINFOTIK").values(emails=["it@ntb.test"]))
        assign(session, ticket, "DISKOMINFOTIK", actor="operator:rina")
    send_due_mails(db, routed_runtime.settings)
    with db.scope() as session:
        ticket = session.get(Ticket, pln.id)
        assign(session, ticket, "DISKOMINFOTIK", actor="operator:rina")  # a reassignment revokes PLN's link
        assert ticket.link_version == 2
        mark_not_complaint(session, session.get(Ticket, chatter.id), actor="operator:rina")
    with db.session() as session:
        assert session.get(Ticket, chatter.id).status == TicketStatus.NOT_COMPLAINT
        kinds = session.scalars(select(RoutingDecision.kind).order_by(RoutingDecision.id)).all()
        examples = training_examples(session)
    assert kinds == ["assign", "reassign", "not_complaint"]
    labels = {e.text: (e.complaint, e.agency) for e in examples}
    assert labels[CHATTER] == (False, None)
    assert labels[PLN_TEXT] == (True, "DISKOMINFOTIK")


def test_agency_not_ours_goes_back_to_review_or_on_to_the_named_target(routed_runtime, smtp):
    [ticket] = ingest(routed_runtime, None, comment(9, PLN_TEXT))
    db = routed_runtime.db
    with db.scope() as session:
        t = session.get(Ticket, ticket.id)
        agency_not_ours(session, t, reason="ini jaringan distribusi desa, bukan kami")
        assert t.status == TicketStatus.REVIEW and t.review_reason == "not_ours" and t.agency_code is None
        assert t.link_version == 2
    with db.session() as session:
        [decision] = session.scalars(select(RoutingDecision)).all()
    assert decision.rejected_code == "PLN" and decision.kind == "not_ours"


def test_routing_is_idempotent(routed_runtime, smtp):
    handler, _ = smtp
    [ticket] = ingest(routed_runtime, None, comment(10, PLN_TEXT))
    routed_runtime.pipeline.route([ticket.id])
    routed_runtime.pipeline.route(older_than=0)
    assert len(handler.received) == 1


def test_cli_classify_prints_the_documented_fields(tmp_path):
    from click.testing import CliRunner

    from ntbcare.cli import cli
    from tests.conftest import BASE_ENV

    runner = CliRunner()
    one = runner.invoke(cli, ["classify", PLN_TEXT], env=BASE_ENV)
    assert one.exit_code == 0, one.output
    verdict = json.loads(one.output)
    for key in ("complaint", "agency", "confidence", "candidates", "location", "urgent"):
        assert key in verdict
    assert verdict["agency"] == "PLN" and verdict["location"] == "52.71" and 0 <= verdict["confidence"] <= 1
    assert all(set(c) == {"agency", "score"} for c in verdict["candidates"])
    lines = "\n".join(json.dumps({"text": t}) for t in (CHATTER, PLN_TEXT, "")) + "\n"
    many = runner.invoke(cli, ["classify", "--jsonl"], input=lines, env=BASE_ENV)
    assert many.exit_code == 0, many.output
    rows = [json.loads(line) for line in many.output.strip().splitlines()]
    assert [r["complaint"] for r in rows[:2]] == [False, True] and rows[1]["agency"] == "PLN"
    assert len(rows) == 3
    bad = runner.invoke(cli, ["classify", "--jsonl"], input="not json\n", env=BASE_ENV)
    assert bad.exit_code != 0 and "line 1" in bad.output


def test_cli_agencies_export_import_round_trip(tmp_path, database_url):
    from click.testing import CliRunner

    from ntbcare.cli import cli
    from tests.conftest import BASE_ENV

    env = {**BASE_ENV, "DATABASE_URL": database_url}
    runner = CliRunner()
    assert runner.invoke(cli, ["init"], env=env).exit_code == 0
    exported = tmp_path / "agencies.yaml"
    result = runner.invoke(cli, ["agencies", "export", str(exported)], env=env)
    assert result.exit_code == 0, result.output
    assert exported.stat().st_mode & 0o777 == 0o600  # contacts' addresses: readable by the deployer only
    text = exported.read_text(encoding="utf-8")
    assert "code: PUPRPKP" in text
    import yaml

    rows = yaml.safe_load(exported.read_text(encoding="utf-8"))
    for row in rows:
        if row["code"] == "PLN":
            row["emails"] = ["gangguan@pln.test"]
            row["head_emails"] = ["gm@pln.test"]
    exported.write_text(yaml.safe_dump(rows, allow_unicode=True, sort_keys=False), encoding="utf-8")
    imported = runner.invoke(cli, ["agencies", "import", str(exported)], env=env)
    assert imported.exit_code == 0, imported.output
    listing = json.loads(runner.invoke(cli, ["agencies", "list", "--json"], env=env).output)
    pln = next(a for a in listing if a["code"] == "PLN")
    assert pln["emails"] == ["gangguan@pln.test"]
    assert len(listing) >= 60
    assert runner.invoke(cli, ["init"], env=env).exit_code == 0  # a redeploy keeps the deployer's contacts
    again = yaml.safe_load(runner.invoke(cli, ["agencies", "export"], env=env).output)
    pln_row = next(r for r in again if r["code"] == "PLN")
    assert pln_row["emails"] == ["gangguan@pln.test"] and pln_row["head_emails"] == ["gm@pln.test"]
    broken = tmp_path / "broken.yaml"
    broken.write_text("- code: lowercase\n  name: x\n  kind: opd\n", encoding="utf-8")
    failed = runner.invoke(cli, ["agencies", "import", str(broken)], env=env)
    assert failed.exit_code != 0 and "lowercase" in failed.output


def test_cli_routing_train_learns_from_decisions_and_evaluate_reports(tmp_path, database_url, routed_runtime, smtp):
    from click.testing import CliRunner

    from ntbcare.cli import cli
    from tests.conftest import BASE_ENV

    [ticket] = ingest(routed_runtime, None, comment(11, CHATTER))
    with routed_runtime.db.scope() as session:
        assign(session, session.get(Ticket, ticket.id), "PLN", actor="operator:rina")
    model = tmp_path / "retrained.pkl"
    env = {**BASE_ENV, "DATABASE_URL": database_url, "ROUTING_MODEL_PATH": str(model)}
    runner = CliRunner()
    trained = runner.invoke(cli, ["routing", "train"], env=env)
    assert trained.exit_code == 0, trained.output
    assert "and 1 decisions" in trained.output and model.is_file()

    data = tmp_path / "labelled.jsonl"
    data.write_text("\n".join(json.dumps(row) for row in [
        {"text": PLN_TEXT, "complaint": True, "agency": "PLN", "location": "52.71", "family": "a"},
        {"text": CHATTER, "complaint": False, "agency": None, "family": "b"},
        {"text": "Jalan provinsi ke Sembalun berlubang besar, mohon Dinas PUPR perbaiki", "complaint": True,
         "agency": "PUPRPKP", "family": "c"},
    ]) + "\n", encoding="utf-8")
    report = runner.invoke(cli, ["routing", "evaluate", "--data", str(data), "--json"], env=env)
    assert report.exit_code == 0, report.output
    figures = json.loads(report.output)
    assert figures["examples"] == 3
    assert {"PLN", "PUPRPKP"} <= set(figures["per_target"])
    for key in ("macro_f1", "routed_precision", "routed_coverage", "threshold", "confusions", "complaint_f1"):
        assert key in figures
    assert figures["complaint_f1"] == 1.0  # clear chatter and clear complaints
    text = runner.invoke(cli, ["routing", "evaluate", "--data", str(data)], env=env).output
    assert "PLN" in text
    bad = tmp_path / "bad.jsonl"
    bad.write_text("{not json\n", encoding="utf-8")
    refused = runner.invoke(cli, ["routing", "evaluate", "--data", str(bad)], env=env)
    assert refused.exit_code != 0 and "bad.jsonl:1" in refused.output
