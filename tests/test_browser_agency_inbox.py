"""A real browser (Debian's chromium driven by Playwright) on a 360×740 phone screen signs an agency in to its
inbox by e-mail and answers from it: the contact asks for a link, the link is read from the e-mail the SMTP
server received, opened and confirmed with "Masuk"; the inbox lists exactly that agency's tickets (not another
agency's); the answer typed on the ticket page reaches Facebook (the Graph API stand-in); the used link no
longer works. Screenshots go to artifacts/ (gitignored).
"""

from __future__ import annotations

import email
import re
from collections.abc import Iterator
from dataclasses import dataclass
from email.policy import default as default_policy

import pytest
from sqlalchemy import select

from bot.client import close_graph_clients
from ntbcare.core.db import Database
from ntbcare.core.migrate import upgrade
from ntbcare.core.models import Ticket, TicketStatus
from ntbcare.pipeline.runtime import Runtime
from tests.conftest import PAGE_ID, RecordingDispatcher, make_settings, service_unavailable
from tests.graph_standin import GraphStandIn
from tests.servers import RecordingHandler, eventually, serve_wsgi, smtp_server, wsgi_server
from tests.test_agency_inbox import PLN, seed_inbox
from tests.test_agency_page import build_agency_app
from tests.test_browser_agency import ARTIFACTS, CHROMIUM, CHROMIUM_ARGS, PHONE

ANSWER = "Petugas PLN Rayon Ampenan sudah memperbaiki jaringan pukul 14.10 WITA. Mohon maaf atas gangguannya."


@dataclass
class Served:
    url: str
    db: Database
    graph: GraphStandIn
    mail: RecordingHandler

    def sign_in_link(self) -> str:
        def link() -> str | None:
            for recipients, raw in self.mail.received:
                message = email.message_from_bytes(raw, policy=default_policy)
                body = message.get_body(("plain",)).get_content()  # type: ignore[union-attr]
                found = re.search(rf"{re.escape(self.url)}/agency/login/[\w-]+", body)
                if recipients == [PLN] and found:
                    return found.group(0)
            return None

        return str(eventually(link, what="the sign-in e-mail"))


@pytest.fixture
def served(sqlite_url: str) -> Iterator[Served]:
    if not CHROMIUM.exists():
        service_unavailable(f"{CHROMIUM} is missing (apt-get install -y chromium); the browser test needs it")
    db = Database(sqlite_url)
    upgrade(db.engine)
    seed_inbox(db)
    graph, mail = GraphStandIn(PAGE_ID), RecordingHandler()
    with serve_wsgi(graph) as graph_url, smtp_server(mail) as smtp_port, wsgi_server() as app_server:
        settings = make_settings(DATABASE_URL=sqlite_url, GRAPH_API_BASE_URL=graph_url,
                                 FB_PAGE_ACCESS_TOKEN="page-token", PUBLIC_BASE_URL=app_server.url,
                                 SMTP_URL=f"smtp://127.0.0.1:{smtp_port}?starttls=0&timeout=5")
        app = build_agency_app(Runtime(settings=settings, db=db, dispatcher=RecordingDispatcher()))
        app_server.mount(app)
        try:
            yield Served(app_server.url, db, graph, mail)
        finally:
            mailer = app.extensions.get("ntbcare.sign_in_mailer")
            if mailer is not None:
                mailer.close()
    close_graph_clients()
    db.dispose()


def fits_the_phone(page) -> None:  # type: ignore[no-untyped-def]
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]  # no sideways scroll


@pytest.mark.browser
def test_agency_signs_in_by_email_and_answers_from_its_inbox(served):
    from playwright.sync_api import sync_playwright

    base = served.url
    ARTIFACTS.mkdir(exist_ok=True)
    problems: list[str] = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            context = browser.new_context(viewport=PHONE, device_scale_factor=2, is_mobile=True, has_touch=True,
                                          locale="id-ID")
            page = context.new_page()
            page.on("pageerror", lambda error: problems.append(str(error)))
            page.on("response", lambda response: problems.append(f"{response.status} {response.url}")
                    if response.status >= 400 and not response.url.endswith("/favicon.ico")
                    and "/agency/login/" not in response.url and "/NTB-2026-000006" not in response.url else None)

            page.goto(f"{base}/agency/")  # no session yet: the login form
            assert page.url == f"{base}/agency/login"
            page.get_by_label("Alamat e-mail instansi").fill(PLN)
            fits_the_phone(page)
            page.screenshot(path=str(ARTIFACTS / "agency-inbox-login.png"), full_page=True)
            page.get_by_role("button", name="Kirim tautan masuk").click()
            page.wait_for_load_state()
            assert "Periksa e-mail Anda" in page.locator("h1").inner_text()

            link = served.sign_in_link()
            page.goto(link)
            masuk = page.get_by_role("button", name="Masuk")
            box = masuk.bounding_box()
            assert box is not None and box["height"] >= 44 and box["width"] >= 300  # a thumb-sized target
            page.screenshot(path=str(ARTIFACTS / "agency-inbox-link.png"), full_page=True)
            masuk.click()
            page.wait_for_url(f"{base}/agency/")

            rows = page.locator(".ticket-row .number").all_inner_texts()
            assert rows == ["NTB-2026-000002", "NTB-2026-000001"]  # PLN's open tickets, overdue first
            assert "NTB-2026-000006" not in page.content() and "Puskesmas" not in page.content()  # DIKES's
            assert "Lewat batas" in page.locator(".ticket-row.overdue").inner_text()
            fits_the_phone(page)
            page.screenshot(path=str(ARTIFACTS / "agency-inbox-list.png"), full_page=True)

            page.goto(f"{base}/agency/tickets/NTB-2026-000006")  # another agency's ticket
            assert "tidak ditemukan" in page.locator("main").inner_text()
            page.goto(f"{base}/agency/")

            page.get_by_role("link", name="NTB-2026-000001").click()
            page.wait_for_url(f"{base}/agency/tickets/NTB-2026-000001")
            page.get_by_label("Jawaban untuk warga").fill(ANSWER)
            fits_the_phone(page)
            page.get_by_role("button", name="Kirim jawaban").click()
            page.wait_for_url(f"{base}/agency/tickets/NTB-2026-000001?ok=answer")
            assert "Jawaban Anda tersimpan" in page.get_by_role("status").inner_text()
            assert ANSWER in page.locator(".answer-text").inner_text()
            assert f"Instansi PLN ({PLN})" in page.locator(".history").inner_text()
            page.screenshot(path=str(ARTIFACTS / "agency-inbox-answered.png"), full_page=True)

            used = context.new_page().goto(link)  # the link has been used: it no longer signs anyone in
            assert used is not None and used.status == 410
            fresh = browser.new_context(viewport=PHONE, is_mobile=True, locale="id-ID").new_page()
            fresh.goto(link)
            assert "Tautan masuk tidak berlaku" in fresh.locator("h1").inner_text()
            assert fresh.get_by_role("button", name="Masuk").count() == 0
            fresh.screenshot(path=str(ARTIFACTS / "agency-inbox-link-used.png"), full_page=True)
        finally:
            browser.close()
    assert problems == []
    with served.db.session() as session:
        ticket = session.scalars(select(Ticket).where(Ticket.number == "NTB-2026-000001")).one()
    assert ticket.status == TicketStatus.ANSWERED  # Facebook accepted the reply
    [reply] = served.graph.replies_under(ticket.comment_id)
    assert reply["message"] == f"Tanggapan PLN UIW NTB atas laporan NTB-2026-000001:\n{ANSWER}"
    assert (ARTIFACTS / "agency-inbox-list.png").stat().st_size > 10_000
