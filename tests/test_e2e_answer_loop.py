"""The answer loop end to end on loopback: Facebook webhook → ticket → acknowledgement on the stand-in Graph API
→ e-mail to the agency (real SMTP server) → the agency follows the link, answers in the form like a browser →
the answer appears where the citizen wrote (under the comment, or as a Messenger message), exactly once.

Everything talks real HTTP and SMTP on 127.0.0.1: the NTB Care app on a werkzeug server, tests/graph_standin.py
as the Graph API, aiosmtpd as the agency's mail server.
"""

from __future__ import annotations

import email
import json
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from email.policy import default as default_policy

import pytest
import requests
from sqlalchemy import select, update

from bot.acknowledge import acknowledge_tickets
from bot.client import close_graph_clients
from bot.sender import send_due_replies
from ntbcare.core.db import Database
from ntbcare.core.models import Agency, Reply, Ticket, TicketStatus
from ntbcare.pipeline.runtime import Runtime
from routing.forwarding import send_due_mails
from tests.conftest import PAGE_ID, RecordingDispatcher, drain, make_settings, sign
from tests.graph_standin import GraphStandIn, serve_wsgi
from tests.test_agency_page import build_agency_app, parse
from tests.test_mailer import RecordingHandler, free_port, smtp_server

PLN_TEXT = "Listrik padam sejak pagi di Kelurahan Pagesangan Mataram, token sudah diisi tetap mati. Tolong PLN"
ANSWER = "Gangguan trafo di Pagesangan sudah diperbaiki petugas PLN Rayon Ampenan pukul 14.10 WITA. Mohon maaf."
PSID = "6543210987654321"


@dataclass
class Loop:
    runtime: Runtime
    graph: GraphStandIn
    mail: RecordingHandler
    app_url: str

    def webhook(self, body: dict) -> None:
        raw = json.dumps(body).encode()
        response = requests.post(f"{self.app_url}/webhook", data=raw, timeout=10,
                                 headers={"X-Hub-Signature-256": sign(raw), "Content-Type": "application/json"})
        assert response.status_code == 200, response.text

    def worker_round(self) -> list[Ticket]:
        """What the worker and its sweeper do with stored deliveries: ingest, route, acknowledge, send."""
        drain(self.runtime, route=True)
        db, settings = self.runtime.db, self.runtime.settings
        with db.scope() as session:
            tickets = session.scalars(select(Ticket).order_by(Ticket.id)).all()
            acknowledge_tickets(session, settings, list(tickets))  # owed once per key: safe if already done
        send_due_replies(db, settings)
        send_due_mails(db, settings)
        with db.session() as session:
            return session.scalars(select(Ticket).order_by(Ticket.id)).all()

    def answer_from_email(self, text: str) -> requests.Response:
        """The agency opens the link in its e-mail and submits the answer form, as a browser would."""
        [(recipients, raw)] = self.mail.received
        assert recipients == ["pengaduan@pln-ntb.test"]
        body = email.message_from_bytes(raw, policy=default_policy).get_body(("plain",)).get_content()
        link = re.search(rf"{re.escape(self.app_url)}/a/[\w.-]+", body)
        assert link, body
        browser = requests.Session()
        page = browser.get(link.group(0), timeout=10)
        assert page.status_code == 200
        forms = parse(page.text).forms
        action = next(path for path in forms if path.endswith("/answer"))
        return browser.post(f"{self.app_url}{action}", data={**forms[action], "answer": text}, timeout=30)


def comment_event(text: str) -> dict:
    now = int(time.time())
    value = {"from": {"id": "7300000000000042", "name": "Baiq Nurul Hidayati"}, "message": text,
             "post_id": f"{PAGE_ID}_555000000000111", "comment_id": "555000000000111_600000000000042",
             "parent_id": f"{PAGE_ID}_555000000000111", "created_time": now - 60, "item": "comment", "verb": "add"}
    return {"object": "page", "entry": [{"id": PAGE_ID, "time": now, "changes": [{"field": "feed", "value": value}]}]}


def messenger_event(text: str) -> dict:
    now_ms = int(time.time() * 1000)
    event = {"sender": {"id": PSID}, "recipient": {"id": PAGE_ID}, "timestamp": now_ms - 30_000,
             "message": {"mid": f"m_e2e_{now_ms}", "text": text}}
    return {"object": "page", "entry": [{"id": PAGE_ID, "time": now_ms, "messaging": [event]}]}


@pytest.fixture
def loop(database_url: str, db: Database) -> Iterator[Loop]:
    graph = GraphStandIn(PAGE_ID)
    mail = RecordingHandler()
    app_port = free_port()
    with serve_wsgi(graph) as graph_url, smtp_server(mail) as smtp_port:
        settings = make_settings(
            DATABASE_URL=database_url, SMTP_URL=f"smtp://127.0.0.1:{smtp_port}?starttls=0&timeout=5",
            GRAPH_API_BASE_URL=graph_url, FB_PAGE_ACCESS_TOKEN="page-token", PUBLIC_BASE_URL=f"http://127.0.0.1:{app_port}",
            OPERATOR_EMAILS="ops@diskominfotik.test", MAIL_FROM="NTB Care <care@ntb.test>")
        from ntbcare.pipeline.bootstrap import seed_agencies
        from routing.registry import load_registry

        with db.scope() as session:
            seed_agencies(session, load_registry())
            session.execute(update(Agency).where(Agency.code == "PLN").values(emails=["pengaduan@pln-ntb.test"]))
        runtime = Runtime(settings=settings, db=db, dispatcher=RecordingDispatcher())
        with serve_wsgi(build_agency_app(runtime), port=app_port) as app_url:
            yield Loop(runtime, graph, mail, app_url)
    close_graph_clients()


def test_comment_is_acknowledged_forwarded_and_answered_under_the_same_comment(loop):
    loop.webhook(comment_event(PLN_TEXT))
    [ticket] = loop.worker_round()
    assert (ticket.agency_code, ticket.status) == ("PLN", TicketStatus.FORWARDED)
    [ack] = loop.graph.replies_under(ticket.comment_id)
    assert ticket.number in ack["message"]
    [private] = loop.graph.messages
    assert private["recipient"] == {"comment_id": ticket.comment_id} and ticket.number in private["message"]["text"]

    response = loop.answer_from_email(ANSWER)
    assert response.status_code == 200 and "Jawaban Anda tersimpan" in parse(response.text).text

    ack_again, answer = loop.graph.replies_under(ticket.comment_id)
    assert ack_again == ack
    assert answer["message"] == f"Tanggapan PLN UIW NTB atas laporan {ticket.number}:\n{ANSWER}"
    assert "Baiq" not in answer["message"]
    loop.worker_round()  # a later sweep sends nothing again
    assert len(loop.graph.replies_under(ticket.comment_id)) == 2
    assert len(loop.graph.calls_to("POST", f"{ticket.comment_id}/comments")) == 2
    with loop.runtime.db.session() as session:
        stored = session.get(Ticket, ticket.id)
        assert stored.status == TicketStatus.ANSWERED and stored.answered_at is not None
        graph_ids = session.scalars(select(Reply.graph_id).where(Reply.kind == "answer")).all()
    assert graph_ids == [answer["id"]]


def test_messenger_ticket_gets_the_answer_as_a_message_to_the_psid(loop):
    loop.webhook(messenger_event(PLN_TEXT))
    [ticket] = loop.worker_round()
    assert (ticket.channel, ticket.agency_code, ticket.status) == ("messenger", "PLN", TicketStatus.FORWARDED)
    [ack] = loop.graph.messages
    assert ack["recipient"] == {"id": PSID} and ticket.number in ack["message"]["text"]

    response = loop.answer_from_email(ANSWER)
    assert response.status_code == 200 and "Jawaban Anda tersimpan" in parse(response.text).text

    _, answer = loop.graph.messages
    assert answer["recipient"] == {"id": PSID} and answer["messaging_type"] == "RESPONSE"
    assert answer["message"]["text"] == f"Tanggapan PLN UIW NTB atas laporan Anda {ticket.number}:\n{ANSWER}"
    assert loop.graph.comments == {}  # nothing public for a private conversation
    loop.worker_round()
    assert len(loop.graph.messages) == 2
    with loop.runtime.db.session() as session:
        assert session.get(Ticket, ticket.id).status == TicketStatus.ANSWERED
        assert session.scalar(select(Reply.graph_id).where(Reply.kind == "answer")) == answer["message_id"]


def test_answer_survives_a_graph_outage_and_is_posted_once_when_it_recovers(loop):
    loop.webhook(comment_event(PLN_TEXT))
    [ticket] = loop.worker_round()
    loop.graph.fail(2, status=503, code=1, message="An unknown error occurred", path_contains="/comments")
    response = loop.answer_from_email(ANSWER)
    assert response.status_code == 200  # the agency is told it is stored; sending continues in the background
    assert len(loop.graph.replies_under(ticket.comment_id)) == 1  # only the acknowledgement so far
    with loop.runtime.db.scope() as session:  # time passes: the reply's backoff and read-back delay are over
        session.execute(update(Reply).values(next_attempt_at=None))
    for _ in range(3):
        send_due_replies(loop.runtime.db, loop.runtime.settings)
        with loop.runtime.db.scope() as session:
            session.execute(update(Reply).where(Reply.status.in_(["pending", "unknown"]))
                            .values(next_attempt_at=None))
    answers = [r for r in loop.graph.replies_under(ticket.comment_id) if ANSWER in r["message"]]
    assert len(answers) == 1
    with loop.runtime.db.session() as session:
        assert session.get(Ticket, ticket.id).status == TicketStatus.ANSWERED
