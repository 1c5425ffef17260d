"""The agency inbox behind a password-less sign-in: an agency sees exactly its tickets (tabs, order, search,
pages), opens one without the e-mailed link and acts on it through the same forms; another agency's ticket is a
404 for the page and every action; every action is audited as ``agency:<CODE>:<email>`` and the history says
who; every POST needs its CSRF token; the per-ticket link keeps working as before.

Sign-in mail goes over real SMTP (aiosmtpd on loopback); the link is read from the mail the server received.
"""

from __future__ import annotations

import email
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.policy import default as default_policy
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import select, update

from ntbcare.core.db import Database
from ntbcare.core.models import Agency, AgencyAnswer, AuditEntry, RoutingDecision, Ticket, TicketStatus, utcnow
from ntbcare.pipeline.bootstrap import seed_agencies
from ntbcare.pipeline.runtime import Runtime
from routing.registry import load_registry
from tests.conftest import RecordingDispatcher, make_settings
from tests.servers import RecordingHandler, smtp_server
from tests.test_agency_page import build_agency_app, parse, snapshot, token_for

BASE = "http://ntbcare.test"
PLN = "pengaduan@pln.test"
PLN_HEAD = "gm@pln.test"
DIKES = "dikes@ntbprov.test"
SHARED = "humas@ntbprov.test"  # a contact of DIKES and of DIKPORA
MAILER_KEY = "ntbcare.sign_in_mailer"


@dataclass
class Inbox:
    app: Flask
    db: Database
    mail: RecordingHandler

    def client(self, address: str = "10.0.0.1") -> Any:
        client = self.app.test_client()
        client.environ_base["REMOTE_ADDR"] = address
        return client

    def wait_for_mail(self) -> None:
        mailer = self.app.extensions.get(MAILER_KEY)
        if mailer is not None:
            mailer.wait_idle()

    def mails_to(self, address: str) -> list[email.message.EmailMessage]:
        self.wait_for_mail()
        found = []
        for recipients, raw in self.mail.received:
            if address in recipients:
                found.append(email.message_from_bytes(raw, policy=default_policy))
        return found  # type: ignore[return-value]

    def link_for(self, address: str) -> str:
        """The sign-in link from the newest e-mail to ``address``, as a path on the app."""
        message = self.mails_to(address)[-1]
        body = message.get_body(("plain",)).get_content()  # type: ignore[union-attr]
        found = re.search(r"https?://[^/\s]+(/agency/login/[\w-]+)", body)
        assert found, body
        return found.group(1)


def form_fields(client: Any, path: str) -> dict[str, dict[str, str]]:
    page = client.get(path)
    assert page.status_code == 200, (path, page.status_code)
    return parse(page.data).forms


def ask_for_link(client: Any, address: str) -> Any:
    forms = form_fields(client, "/agency/login")
    return client.post("/agency/login", data={**forms["/agency/login"], "email": address})


def sign_in(inbox: Inbox, client: Any, address: str) -> Any:
    """Ask for a link, read it from the e-mail, open it and press "Masuk"; returns the POST's response."""
    assert ask_for_link(client, address).status_code == 200
    link = inbox.link_for(address)
    forms = form_fields(client, link)
    return client.post(link, data=forms[link])


def make_ticket(session: Any, number: str, agency: str | None, *, status: str = TicketStatus.FORWARDED,
                deadline: datetime | None = None, text: str = "Jalan rusak di depan sekolah", hours_ago: int = 5,
                answered: bool = False) -> Ticket:
    now = utcnow()
    ticket = Ticket(number=number, status=status, channel="comment", text=text, agency_code=agency,
                    origin_id=f"origin-{number}", post_id="104000000000001_555000000000111",
                    comment_id=f"555000000000111_{number[-6:]}", opened_at=now - timedelta(hours=hours_ago),
                    deadline_at=deadline, answered_at=now - timedelta(hours=1) if answered else None,
                    classification={"location_detail": {"kecamatan": {"name": "Ampenan"},
                                                        "kabkota": {"name": "Kota Mataram"}}})
    session.add(ticket)
    return ticket


def seed_inbox(db: Database) -> None:
    """PLN: two open (one overdue), one answered, one closed, one it declined; DIKES and DIKPORA one each."""
    now = utcnow()
    with db.scope() as session:
        seed_agencies(session, load_registry())
        session.execute(update(Agency).where(Agency.code == "PLN").values(emails=[PLN]))
        pln = session.get(Agency, "PLN")
        pln.data = {**(pln.data or {}), "head_emails": [PLN_HEAD]}
        session.execute(update(Agency).where(Agency.code == "DIKES").values(emails=[DIKES, SHARED]))
        session.execute(update(Agency).where(Agency.code == "DIKPORA").values(emails=[SHARED]))
        make_ticket(session, "NTB-2026-000001", "PLN", deadline=now + timedelta(hours=20, minutes=30),
                    text="Listrik padam di Ampenan sejak pagi, token sudah diisi")
        make_ticket(session, "NTB-2026-000002", "PLN", deadline=now - timedelta(hours=3),
                    text="Tiang listrik miring hampir roboh di Jalan Saleh Sungkar")
        make_ticket(session, "NTB-2026-000003", "PLN", status=TicketStatus.ANSWERED, answered=True,
                    deadline=now + timedelta(hours=4), text="Tagihan listrik naik dua kali lipat")
        make_ticket(session, "NTB-2026-000004", "PLN", status=TicketStatus.CLOSED, text="Kabel putus sudah diganti")
        declined = make_ticket(session, "NTB-2026-000005", None, status=TicketStatus.REVIEW,
                               text="Lampu jalan desa mati, dikelola desa")
        make_ticket(session, "NTB-2026-000006", "DIKES", deadline=now + timedelta(hours=30),
                    text="Puskesmas Ampenan tutup pada jam pelayanan")
        make_ticket(session, "NTB-2026-000007", "DIKPORA", deadline=now + timedelta(hours=30),
                    text="Atap kelas SDN 3 Mataram bocor")
        session.flush()
        session.add(AgencyAnswer(ticket_id=declined.id, agency_code="PLN", action="not_ours",
                                 text="Lampu jalan desa bukan aset PLN", link_version=1))


@pytest.fixture
def inbox(database_url: str, db: Database) -> Iterator[Inbox]:
    mail = RecordingHandler()
    with smtp_server(mail) as port:
        settings = make_settings(DATABASE_URL=database_url, SMTP_URL=f"smtp://127.0.0.1:{port}?starttls=0&timeout=5",
                                 FB_PAGE_ACCESS_TOKEN="page-token", GRAPH_API_BASE_URL="http://127.0.0.1:9",
                                 PUBLIC_BASE_URL=BASE, OPERATOR_EMAILS="ops@diskominfotik.test")
        seed_inbox(db)
        app = build_agency_app(Runtime(settings=settings, db=db, dispatcher=RecordingDispatcher()))
        try:
            yield Inbox(app, db, mail)
        finally:
            mailer = app.extensions.get(MAILER_KEY)
            if mailer is not None:
                mailer.close()
    from bot.client import close_graph_clients

    close_graph_clients()


@pytest.fixture
def pln(inbox: Inbox) -> Any:
    """A browser signed in as PLN's contact."""
    client = inbox.client()
    response = sign_in(inbox, client, PLN)
    assert (response.status_code, response.headers["Location"]) == (303, "/agency/")
    return client


def numbers(html: bytes) -> list[str]:
    return re.findall(r"NTB-2026-\d{6}", parse(html).text)


def test_inbox_lists_exactly_the_agencys_open_tickets_overdue_first(inbox, pln):
    response = pln.get("/agency/")
    assert response.status_code == 200
    page = parse(response.data)
    assert numbers(response.data) == ["NTB-2026-000002", "NTB-2026-000001"]  # overdue first, then by deadline
    for expected in ("PLN UIW NTB", PLN, "Lewat batas 3 jam", "Sisa 20 jam", "Ampenan, Kota Mataram",
                     "Komentar di Halaman Facebook", "Tiang listrik miring hampir roboh", "Terbuka 2", "Dijawab 1",
                     "Selesai 1", "Dikembalikan 1"):
        assert expected in page.text, expected
    links = [attrs.get("href") for tag, attrs in page.tags if tag == "a"]
    assert "/agency/tickets/NTB-2026-000002" in links and "/agency/tickets/NTB-2026-000006" not in links
    assert "NTB-2026-000006" not in page.text and "Puskesmas" not in page.text  # DIKES's ticket


@pytest.mark.parametrize(("tab", "expected"), [
    ("answered", ["NTB-2026-000003"]),
    ("closed", ["NTB-2026-000004"]),
    ("returned", ["NTB-2026-000005"]),
])
def test_each_tab_lists_its_tickets(inbox, pln, tab, expected):
    response = pln.get(f"/agency/?tab={tab}")
    assert numbers(response.data) == expected
    if tab == "returned":  # declined: listed, but no longer this agency's to open
        page = parse(response.data)
        assert "Ditinjau operator" in page.text
        assert "/agency/tickets/NTB-2026-000005" not in [a.get("href") for t, a in page.tags if t == "a"]
        assert pln.get("/agency/tickets/NTB-2026-000005").status_code == 404


def test_search_by_number_or_words_and_pages(inbox, pln):
    assert numbers(pln.get("/agency/?q=000001").data) == ["NTB-2026-000001"]
    assert numbers(pln.get("/agency/?q=tiang+ROBOH").data) == ["NTB-2026-000002"]
    assert numbers(pln.get("/agency/?q=Puskesmas").data) == []  # DIKES's words find nothing here
    assert numbers(pln.get("/agency/?q=100%25").data) == []  # a LIKE wildcard is a character, not a pattern
    now = utcnow()
    with inbox.db.scope() as session:
        for n in range(10, 35):
            make_ticket(session, f"NTB-2026-0000{n}", "PLN", deadline=now + timedelta(hours=n))
    first, second = pln.get("/agency/").data, pln.get("/agency/?page=2").data
    assert len(numbers(first)) == 20 and "halaman 1 dari 2" in parse(first).text
    assert numbers(second)[-1] == "NTB-2026-000034" and len(numbers(second)) == 7
    assert set(numbers(first)).isdisjoint(numbers(second))


def test_ticket_opens_from_the_inbox_with_the_same_three_forms(inbox, pln):
    response = pln.get("/agency/tickets/NTB-2026-000001")
    assert response.status_code == 200
    page = parse(response.data)
    assert "Listrik padam di Ampenan" in page.text and "Menunggu jawaban instansi" in page.text
    assert set(page.forms) == {f"/agency/tickets/NTB-2026-000001/{a}" for a in ("answer", "done", "not-ours")}
    assert all(form["csrf_token"] for form in page.forms.values())


def test_another_agencys_ticket_is_404_for_the_page_and_every_action(inbox, pln):
    own = form_fields(pln, "/agency/tickets/NTB-2026-000001")
    before = snapshot(inbox.db)
    assert pln.get("/agency/tickets/NTB-2026-000006").status_code == 404
    assert pln.get("/agency/tickets/NTB-2026-999999").status_code == 404
    for action, data in (("answer", {"answer": "Sudah kami tangani"}), ("done", {"note": "beres"}),
                         ("not-ours", {"reason": "bukan kami"})):
        token = own[f"/agency/tickets/NTB-2026-000001/{action}"]["csrf_token"]
        response = pln.post(f"/agency/tickets/NTB-2026-000006/{action}", data={"csrf_token": token, **data})
        assert response.status_code == 404, action
        assert "Puskesmas" not in parse(response.data).text
    assert snapshot(inbox.db) == before


def test_answer_from_the_inbox_is_audited_with_the_address_and_shown_in_the_history(inbox, pln):
    forms = form_fields(pln, "/agency/tickets/NTB-2026-000001")
    action = "/agency/tickets/NTB-2026-000001/answer"
    response = pln.post(action, data={**forms[action], "answer": "Petugas sudah menuju lokasi."})
    assert (response.status_code, response.headers["Location"]) == (303, "/agency/tickets/NTB-2026-000001?ok=answer")
    page = parse(pln.get(response.headers["Location"]).data)
    assert "Jawaban Anda tersimpan" in page.text and "Petugas sudah menuju lokasi." in page.text
    assert f"Instansi PLN ({PLN})" in page.text  # the history says who
    with inbox.db.session() as session:
        [entry] = session.scalars(select(AuditEntry).where(AuditEntry.action == "agency_answer")).all()
        [stored] = session.scalars(select(AgencyAnswer).where(AgencyAnswer.action == "answer")).all()
    assert entry.actor == f"agency:PLN:{PLN}"
    assert (stored.agency_code, stored.text) == ("PLN", "Petugas sudah menuju lokasi.")


def test_done_and_not_ours_from_the_inbox_are_audited_with_the_address(inbox, pln):
    forms = form_fields(pln, "/agency/tickets/NTB-2026-000001")
    done = pln.post("/agency/tickets/NTB-2026-000001/done",
                    data={**forms["/agency/tickets/NTB-2026-000001/done"], "note": "Trafo sudah diganti"})
    assert done.status_code == 303
    forms = form_fields(pln, "/agency/tickets/NTB-2026-000002")
    declined = pln.post("/agency/tickets/NTB-2026-000002/not-ours",
                        data={**forms["/agency/tickets/NTB-2026-000002/not-ours"], "reason": "Tiang milik Telkom"})
    assert declined.status_code == 200 and "Dikembalikan" in parse(declined.data).text
    actor = f"agency:PLN:{PLN}"
    with inbox.db.session() as session:
        closed = session.scalars(select(AuditEntry).where(AuditEntry.action == "agency_done")).one()
        ticket = session.scalars(select(Ticket).where(Ticket.number == "NTB-2026-000002")).one()
        trail = session.scalars(select(AuditEntry.actor).where(AuditEntry.ticket_id == ticket.id)).all()
        decision = session.scalars(select(RoutingDecision).where(RoutingDecision.ticket_id == ticket.id)).one()
    assert closed.actor == actor and (closed.from_status, closed.to_status) == ("forwarded", "closed")
    assert (ticket.status, ticket.agency_code) == (TicketStatus.REVIEW, None)
    assert actor in trail and "agency:PLN" not in trail
    assert (decision.kind, decision.actor, decision.rejected_code) == ("not_ours", actor, "PLN")
    assert numbers(pln.get("/agency/?tab=returned").data) == ["NTB-2026-000002", "NTB-2026-000005"]  # newest first
    assert pln.get("/agency/tickets/NTB-2026-000002").status_code == 404  # no longer PLN's


def test_every_post_under_agency_needs_a_csrf_token(inbox, pln):
    link_client = inbox.client("10.0.0.2")
    ask_for_link(link_client, DIKES)
    link = inbox.link_for(DIKES)
    sent_before = len(inbox.mail.received)
    before = snapshot(inbox.db)
    posts = [rule.rule for rule in inbox.app.url_map.iter_rules()
             if "POST" in (rule.methods or set()) and rule.rule.startswith("/agency")]
    assert set(posts) == {"/agency/login", "/agency/login/<token>", "/agency/choose", "/agency/logout",
                          "/agency/tickets/<number>/answer", "/agency/tickets/<number>/not-ours",
                          "/agency/tickets/<number>/done"}
    for rule in posts:
        path = rule.replace("<token>", link.rsplit("/", 1)[1]).replace("<number>", "NTB-2026-000001")
        for data in ({"email": PLN, "answer": "x", "note": "x", "reason": "x", "code": "PLN"},
                     {"csrf_token": "forged", "email": PLN, "answer": "x"}):
            response = pln.post(path, data=data)
            assert response.status_code == 400, path
            assert "Formulir kedaluwarsa" in parse(response.data).text, path
    inbox.wait_for_mail()
    assert len(inbox.mail.received) == sent_before and snapshot(inbox.db) == before
    assert pln.get("/agency/").status_code == 200  # logout without a token did not sign out
    assert link_client.get(link).status_code == 200  # the link was not used up


def test_the_per_ticket_link_still_works_and_audits_the_agency_code(inbox, pln):
    with inbox.db.session() as session:
        ticket = session.scalars(select(Ticket).where(Ticket.number == "NTB-2026-000001")).one()
    token = token_for(ticket.id)
    page = pln.get(f"/a/{token}")  # the same browser, signed in to the inbox
    assert page.status_code == 200
    forms = parse(page.data).forms
    assert set(forms) == {f"/a/{token}/{a}" for a in ("answer", "done", "not-ours")}
    response = pln.post(f"/a/{token}/answer", data={**forms[f"/a/{token}/answer"], "answer": "Sudah diperbaiki."})
    assert (response.status_code, response.headers["Location"]) == (303, f"/a/{token}?ok=answer")
    with inbox.db.session() as session:
        entry = session.scalars(select(AuditEntry).where(AuditEntry.action == "agency_answer")).one()
    assert entry.actor == "agency:PLN"
    assert "Instansi PLN" in parse(pln.get(f"/a/{token}").data).text
