"""The answer loop end to end on loopback: Facebook webhook → ticket → acknowledgement on the stand-in Graph API
→ e-mail to the agency (real SMTP server) → the agency follows the link, answers in the form like a browser →
the answer appears where the citizen wrote (under the comment, or as a Messenger message), exactly once.

The service runs as `ntbcare run` runs it without Redis: the app built with a "web" runtime, so deliveries go
through the real embedded queue and the real sweeper. Everything talks real HTTP and SMTP on 127.0.0.1: the app
on a werkzeug server, tests/graph_standin.py as the Graph API (the only stand-in), aiosmtpd as the agency's mail
server. The test waits for outcomes with a bounded poll; it never processes anything itself.
"""

from __future__ import annotations

import email
import json
import re
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from email.message import EmailMessage
from email.policy import default as default_policy

import pytest
import requests
from sqlalchemy import select, update

from bot.client import close_graph_clients
from ntbcare.app import create_app
from ntbcare.core.db import Database
from ntbcare.core.models import Agency, Reply, Ticket, TicketStatus, utcnow
from ntbcare.pipeline.bootstrap import seed_agencies
from ntbcare.pipeline.classifier import load_classifier
from ntbcare.pipeline.runtime import Runtime
from routing.registry import load_registry
from tests.conftest import PAGE_ID, make_settings, sign
from tests.graph_standin import GraphStandIn
from tests.servers import RecordingHandler, eventually, serve_wsgi, smtp_server, wsgi_server
from tests.test_agency_page import parse

PLN_TEXT = "Listrik padam sejak pagi di Kelurahan Pagesangan Mataram, token sudah diisi tetap mati. Tolong PLN"
ANSWER = "Gangguan trafo di Pagesangan sudah diperbaiki petugas PLN Rayon Ampenan pukul 14.10 WITA. Mohon maaf."
PSID = "6543210987654321"
PLN_MAIL = "pengaduan@pln-ntb.test"
OPERATOR = "ops@diskominfotik.test"
MAIL_FROM = "NTB Care <care@ntb.test>"  # not the default, so a sender that ignored MAIL_FROM shows


class SweepRounds:
    """Counts the sweeper's rounds: it runs ``tick`` after its own duties, so two ticks after a moment mean one
    whole round (re-dispatch, routing stragglers, follow-up mail, owed replies) ran after that moment."""

    def __init__(self) -> None:
        self.count = 0
        self._lock = threading.Lock()

    def tick(self) -> None:
        with self._lock:
            self.count += 1

    def wait_for_a_whole_round(self) -> None:
        start = self.count
        eventually(lambda: self.count >= start + 2, what="a whole sweeper round")


@dataclass
class Loop:
    runtime: Runtime
    graph: GraphStandIn
    mail: RecordingHandler
    app_url: str
    rounds: SweepRounds

    def webhook(self, body: dict) -> None:
        raw = json.dumps(body).encode()
        response = requests.post(f"{self.app_url}/webhook", data=raw, timeout=10,
                                 headers={"X-Hub-Signature-256": sign(raw), "Content-Type": "application/json"})
        assert response.status_code == 200, response.text

    def tickets(self) -> list[Ticket]:
        with self.runtime.db.session() as session:
            return list(session.scalars(select(Ticket).order_by(Ticket.id)))

    def forwarded_ticket(self, *, acknowledged: int) -> Ticket:
        """Wait until the one ticket is forwarded, its e-mail arrived and ``acknowledged`` acks reached Graph."""

        def settled() -> Ticket | None:
            tickets = self.tickets()
            if len(tickets) != 1 or tickets[0].status != TicketStatus.FORWARDED or not self.mail.received:
                return None
            sent = sum(len(replies) for replies in self.graph.comments.values()) + len(self.graph.messages)
            return tickets[0] if sent >= acknowledged else None

        return eventually(settled, what="the ticket forwarded, e-mailed and acknowledged")

    def emails(self) -> list[tuple[list[str], EmailMessage]]:
        return [(to, email.message_from_bytes(raw, policy=default_policy)) for to, raw in self.mail.received]  # type: ignore[misc]

    def answer_from_email(self, text: str) -> requests.Response:
        """The agency opens the link in its e-mail and submits the answer form, as a browser would."""
        [(recipients, message)] = self.emails()
        assert recipients == [PLN_MAIL]
        body = message.get_body(("plain",)).get_content()
        link = re.search(rf"{re.escape(self.app_url)}/a/[\w.-]+", body)
        assert link, body
        browser = requests.Session()
        page = browser.get(link.group(0), timeout=10)
        assert page.status_code == 200
        forms = parse(page.text).forms
        action = next(path for path in forms if path.endswith("/answer"))
        return browser.post(f"{self.app_url}{action}", data={**forms[action], "answer": text}, timeout=30)

    def ticket_status(self, ticket_id: int) -> str:
        with self.runtime.db.session() as session:
            return session.get(Ticket, ticket_id).status


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
    with serve_wsgi(graph) as graph_url, smtp_server(mail) as smtp_port, wsgi_server() as app_server:
        settings = make_settings(
            DATABASE_URL=database_url, SMTP_URL=f"smtp://127.0.0.1:{smtp_port}?starttls=0&timeout=5",
            GRAPH_API_BASE_URL=graph_url, FB_PAGE_ACCESS_TOKEN="page-token", PUBLIC_BASE_URL=app_server.url,
            OPERATOR_EMAILS=OPERATOR, MAIL_FROM=MAIL_FROM, SWEEP_INTERVAL="0.2")
        with db.scope() as session:
            seed_agencies(session, load_registry())
            pln = session.get(Agency, "PLN")
            # No weekly digest: on a Monday it would add a mail to the exact counts below (test_routing_digest.py).
            pln.emails, pln.data = [PLN_MAIL], {**(pln.data or {}), "digest": False}
        load_classifier(settings.routing_model_path, settings.secret_key)  # trained on first use, not in the waits
        runtime = Runtime.build(settings, mode="web", db=db)  # no REDIS_URL: embedded queue and sweeper
        assert runtime.sweeper is not None
        rounds = SweepRounds()
        runtime.sweeper.tasks.append(rounds.tick)
        app_server.mount(create_app(runtime=runtime))
        try:
            yield Loop(runtime, graph, mail, app_server.url, rounds)
        finally:
            runtime.close()
            eventually(lambda: not runtime.sweeper.is_alive() and not runtime.dispatcher.healthy(),
                       what="the sweeper and the embedded workers to stop")
    close_graph_clients()


def test_comment_is_acknowledged_forwarded_and_answered_under_the_same_comment(loop):
    loop.webhook(comment_event(PLN_TEXT))
    ticket = loop.forwarded_ticket(acknowledged=2)
    assert (ticket.agency_code, ticket.status) == ("PLN", TicketStatus.FORWARDED)
    [ack] = loop.graph.replies_under(ticket.comment_id)
    assert ticket.number in ack["message"]
    [private] = loop.graph.messages
    assert private["recipient"] == {"comment_id": ticket.comment_id} and ticket.number in private["message"]["text"]

    response = loop.answer_from_email(ANSWER)
    assert response.status_code == 200 and "Jawaban Anda tersimpan" in parse(response.text).text

    # Posted right after the commit, by the request or by a sweeper round that claimed it first.
    ack_again, answer = eventually(lambda: len(loop.graph.replies_under(ticket.comment_id)) == 2
                                   and loop.graph.replies_under(ticket.comment_id), what="the answer under the comment")
    assert ack_again == ack
    assert answer["message"] == f"Tanggapan PLN UIW NTB atas laporan {ticket.number}:\n{ANSWER}"
    assert "Baiq" not in answer["message"]
    loop.rounds.wait_for_a_whole_round()  # a later sweep sends nothing again
    assert len(loop.graph.replies_under(ticket.comment_id)) == 2
    assert len(loop.graph.calls_to("POST", f"{ticket.comment_id}/comments")) == 2
    with loop.runtime.db.session() as session:
        stored = session.get(Ticket, ticket.id)
        assert stored.status == TicketStatus.ANSWERED and stored.answered_at is not None
        graph_ids = session.scalars(select(Reply.graph_id).where(Reply.kind == "answer")).all()
    assert graph_ids == [answer["id"]]


def test_messenger_ticket_gets_the_answer_as_a_message_to_the_psid(loop):
    loop.webhook(messenger_event(PLN_TEXT))
    ticket = loop.forwarded_ticket(acknowledged=1)
    assert (ticket.channel, ticket.agency_code, ticket.status) == ("messenger", "PLN", TicketStatus.FORWARDED)
    [ack] = loop.graph.messages
    assert ack["recipient"] == {"id": PSID} and ticket.number in ack["message"]["text"]

    response = loop.answer_from_email(ANSWER)
    assert response.status_code == 200 and "Jawaban Anda tersimpan" in parse(response.text).text

    answer = eventually(lambda: len(loop.graph.messages) >= 2 and loop.graph.messages[1],
                        what="the answer in Messenger")
    assert answer["recipient"] == {"id": PSID} and answer["messaging_type"] == "RESPONSE"
    assert answer["message"]["text"] == f"Tanggapan PLN UIW NTB atas laporan Anda {ticket.number}:\n{ANSWER}"
    assert loop.graph.comments == {}  # nothing public for a private conversation
    loop.rounds.wait_for_a_whole_round()
    # then, once, the rating prompt (issue 10): "Puas", "Kurang puas", "Belum selesai"
    assert len(loop.graph.messages) == 3 and len(loop.graph.messages[2]["message"]["quick_replies"]) == 3
    with loop.runtime.db.session() as session:
        assert session.get(Ticket, ticket.id).status == TicketStatus.ANSWERED
        assert session.scalar(select(Reply.graph_id).where(Reply.kind == "answer")) == answer["message_id"]


def test_answer_survives_a_graph_outage_and_is_posted_once_when_it_recovers(loop):
    loop.webhook(comment_event(PLN_TEXT))
    ticket = loop.forwarded_ticket(acknowledged=2)
    loop.graph.fail(2, status=503, code=1, message="An unknown error occurred", path_contains="/comments")
    response = loop.answer_from_email(ANSWER)
    assert response.status_code == 200  # the agency is told it is stored; sending continues in the background
    assert len(loop.graph.replies_under(ticket.comment_id)) == 1  # only the acknowledgement so far

    def answered_after_time_passes() -> bool:
        with loop.runtime.db.scope() as session:  # the reply's backoff and read-back delay are over
            session.execute(update(Reply).where(Reply.status.in_(["pending", "unknown"]))
                            .values(next_attempt_at=None))
        return loop.ticket_status(ticket.id) == TicketStatus.ANSWERED

    eventually(answered_after_time_passes, interval=0.2, what="the sweeper to post the answer")
    loop.rounds.wait_for_a_whole_round()
    answers = [r for r in loop.graph.replies_under(ticket.comment_id) if ANSWER in r["message"]]
    assert len(answers) == 1
    assert loop.ticket_status(ticket.id) == TicketStatus.ANSWERED


def test_every_agency_email_comes_from_mail_from(loop):
    """The forward, the reminders before the deadline and the escalation after it, all from MAIL_FROM."""
    loop.webhook(comment_event(PLN_TEXT))
    ticket = loop.forwarded_ticket(acknowledged=2)
    now = utcnow()
    with loop.runtime.db.scope() as session:  # two hours of a clock-timed deadline have passed, 30 minutes left
        session.execute(update(Ticket).where(Ticket.id == ticket.id).values(
            tier="urgent", forwarded_at=now - timedelta(hours=2), deadline_at=now + timedelta(minutes=30)))
    eventually(lambda: len(loop.mail.received) == 3, what="the forward and two reminders")
    with loop.runtime.db.scope() as session:  # the deadline has passed
        session.execute(update(Ticket).where(Ticket.id == ticket.id).values(deadline_at=now - timedelta(minutes=1)))
    eventually(lambda: len(loop.mail.received) == 4, what="the escalation")

    sent = loop.emails()
    assert [to for to, _ in sent] == [[PLN_MAIL], [PLN_MAIL], [PLN_MAIL], [OPERATOR]]
    assert [message["From"] for _, message in sent] == [MAIL_FROM] * 4
    assert "Eskalasi" in sent[-1][1]["Subject"] and ticket.number in sent[-1][1]["Subject"]
