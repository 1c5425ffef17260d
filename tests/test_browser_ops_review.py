"""A real browser (Debian's chromium driven by Playwright), at 1280 px and 360 px: an operator signs in, works
the review queue with the keyboard only (j to move, n not a complaint, 1 assign to the first suggestion, m merge
into the suggested duplicate, or into a typed number where none is suggested); the agency answers through the
link it was e-mailed (captured by a loopback SMTP server); the operator's ticket page then shows the answer and
the Facebook reply's state (the Graph API is a stand-in on loopback). Every page passes axe-core with no serious
or critical violation, runs without a CSP or script error, fits the phone without sideways scrolling, and is
screenshotted under artifacts/."""

from __future__ import annotations

import email
import email.policy
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from sqlalchemy import select, update

from bot.client import close_graph_clients
from ntbcare.core.db import Database
from ntbcare.core.migrate import upgrade
from ntbcare.core.models import Ticket, TicketStatus
from ntbcare.pipeline.runtime import Runtime
from tests.conftest import PAGE_ID, RecordingDispatcher, make_settings, service_unavailable
from tests.graph_standin import GraphStandIn
from tests.ops_helpers import make_operator
from tests.ops_tickets_seed import PLN, make_ticket, seed_agencies_with_contacts, ticket_of
from tests.servers import RecordingHandler, serve_wsgi, smtp_server, wsgi_server
from tests.test_agency_page import build_agency_app
from tests.test_browser_agency import ARTIFACTS, CHROMIUM, CHROMIUM_ARGS, PHONE
from tests.test_browser_ops import DESKTOP, check_accessible

PASSWORD = "kata-sandi-ani-1"
COMPLAINT = "Listrik padam sejak pagi di Pagesangan <script>alert('x')</script>, kulkas warung rusak."
ANSWER = "Gangguan trafo di Pagesangan sudah diperbaiki petugas PLN pukul 14.10 WITA. Mohon maaf."
DUPLICATE = "Lampu jalan mati di depan Pasar Kebon Roek sejak minggu lalu, gelap sekali"


@dataclass
class Served:
    url: str
    db: Database
    mail: RecordingHandler
    graph: GraphStandIn


@pytest.fixture
def served(sqlite_url: str) -> Iterator[Served]:
    if not CHROMIUM.exists():
        service_unavailable(f"{CHROMIUM} is missing (apt-get install -y chromium); the browser test needs it")
    db = Database(sqlite_url)
    upgrade(db.engine)
    seed_agencies_with_contacts(db)
    make_operator(db, "ani", PASSWORD, name="Ani Operator")
    make_ticket(db, 1, text=COMPLAINT, hours_ago=9, name="Baiq Nurul")  # assigned with "1"
    make_ticket(db, 2, text="Selamat pagi admin, semangat kerjanya!", hours_ago=8, candidates=[])  # "n"
    make_ticket(db, 3, text=DUPLICATE, hours_ago=7, location="5271")  # merged into 4
    make_ticket(db, 4, text=DUPLICATE + "!", hours_ago=30, location="5271", status=TicketStatus.FORWARDED,
                agency="PLN")
    with db.scope() as session:
        session.execute(update(Ticket).where(Ticket.number == "NTB-2026-000001").values(
            comment_id="555000000000111_600000000001", post_id="104000000000001_555000000000111"))
    handler = RecordingHandler()
    graph = GraphStandIn(PAGE_ID)
    with serve_wsgi(graph) as graph_url, smtp_server(handler) as port, wsgi_server() as app_server:
        settings = make_settings(DATABASE_URL=sqlite_url, PUBLIC_BASE_URL=app_server.url,
                                 GRAPH_API_BASE_URL=graph_url, FB_PAGE_ACCESS_TOKEN="page-token",
                                 SMTP_URL=f"smtp://127.0.0.1:{port}?starttls=0&timeout=5")
        app_server.mount(build_agency_app(Runtime(settings=settings, db=db, dispatcher=RecordingDispatcher())))
        yield Served(app_server.url, db, handler, graph)
    close_graph_clients()
    db.dispose()


def visit(page: Any, label: str, width: int) -> None:
    check_accessible(page, label)
    if width <= PHONE["width"]:
        assert page.evaluate("document.documentElement.scrollWidth") <= width, f"{label} scrolls sideways"
    page.screenshot(path=str(ARTIFACTS / f"ops-{label}-{width}.png"), full_page=True)


def forwarded_link(handler: RecordingHandler) -> str:
    """The answer link of the forward e-mail PLN received."""
    for recipients, content in handler.received:
        if recipients == [PLN]:
            body = email.message_from_bytes(content, policy=email.policy.default).get_body(("plain",))
            match = re.search(r"https?://\S+/a/[A-Za-z0-9._~-]+", body.get_content())
            if match:
                return match.group(0)
    raise AssertionError("no forward e-mail with an answer link reached PLN")


@pytest.mark.browser
@pytest.mark.parametrize("viewport", [DESKTOP, PHONE], ids=["1280px", "360px"])
def test_an_operator_works_the_review_queue_and_sees_the_agency_answer(served, viewport) -> None:  # type: ignore[no-untyped-def]
    from playwright.sync_api import sync_playwright

    base, width = served.url, viewport["width"]
    ARTIFACTS.mkdir(exist_ok=True)
    problems: list[str] = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_context(viewport=viewport, locale="id-ID").new_page()
            page.on("pageerror", lambda error: problems.append(str(error)))
            page.on("console", lambda message: problems.append(message.text)
                    if message.type == "error" and not message.text.startswith("Failed to load resource") else None)
            page.on("response", lambda response: problems.append(f"{response.status} {response.url}")
                    if response.status >= 400 and not response.url.endswith("/favicon.ico") else None)

            page.goto(f"{base}/ops/login")
            page.get_by_label("Nama pengguna").fill("ani")
            page.get_by_label("Kata sandi").fill(PASSWORD)
            page.get_by_role("button", name="Masuk").click()
            page.wait_for_url(f"{base}/ops/")
            page.get_by_role("link", name="Antrean tinjauan").click()
            page.wait_for_url(f"{base}/ops/review")
            assert page.locator(".review-item").count() == 3
            assert "<script>alert('x')</script>" in page.locator(".citizen-text").first.inner_text()
            assert "Gabung ke NTB-2026-000004" in page.locator("#t-NTB-2026-000003").inner_text()
            assert "m gabungkan ke" in page.locator("#keys-help").inner_text()
            visit(page, "review", width)

            first_id = page.locator("#t-NTB-2026-000001 input[name=into]").get_attribute("id")
            page.keyboard.press("m")  # no duplicate suggested for the first ticket: the cursor goes to its merge field
            assert page.evaluate("document.activeElement.id") == first_id
            assert page.locator(f"#{first_id}").input_value() == ""  # the key was not typed into the field
            page.keyboard.press("Escape")  # back to the ticket, so the keys work again
            assert page.evaluate("document.activeElement.dataset.number") == "NTB-2026-000001"
            page.keyboard.press("j")  # to the second ticket, the greeting
            assert page.locator(".review-item.current").get_attribute("data-number") == "NTB-2026-000002"
            with page.expect_navigation():
                page.keyboard.press("n")
            assert "NTB-2026-000002 ditandai bukan pengaduan" in page.locator(".notice").inner_text()
            assert page.locator(".review-item.current").get_attribute("data-number") == "NTB-2026-000001"
            with page.expect_navigation():
                page.keyboard.press("1")  # the first suggestion: PLN
            assert "NTB-2026-000001 diteruskan ke PLN UIW NTB" in page.locator(".notice").inner_text()
            assert page.locator(".review-item.current").get_attribute("data-number") == "NTB-2026-000003"
            with page.expect_navigation():
                page.keyboard.press("m")  # into the first suggested duplicate
            assert "NTB-2026-000003 digabung ke NTB-2026-000004" in page.locator(".notice").inner_text()
            assert "Antrean tinjauan kosong" in page.content()

            page.goto(forwarded_link(served.mail))  # the agency, from its e-mail
            page.get_by_label("Jawaban untuk warga").fill(ANSWER)
            page.get_by_role("button", name="Kirim jawaban").click()
            page.wait_for_url("**?ok=answer")

            page.goto(f"{base}/ops/tickets/NTB-2026-000001")
            timeline = page.locator(".timeline").inner_text()
            assert ANSWER in timeline and "tampil di Facebook" in timeline
            assert "E-mail laporan ke instansi" in timeline and "terkirim" in timeline
            visit(page, "ticket", width)
            page.goto(f"{base}/ops/tickets/NTB-2026-000004")
            assert "(dari tiket NTB-2026-000003)" in page.locator(".timeline").inner_text()
            visit(page, "ticket-merged", width)
            page.goto(f"{base}/ops/tickets")
            page.get_by_label("Cari (nomor, isi, nama warga)").fill("Pagesangan")
            page.get_by_role("button", name="Cari").click()
            page.wait_for_url(f"{base}/ops/tickets?**")
            assert page.locator("tbody tr").count() == 1
            visit(page, "tickets", width)
        finally:
            browser.close()
    assert problems == []
    assert [ticket_of(served.db, f"NTB-2026-00000{n}").status for n in (1, 2, 3)] == [
        TicketStatus.ANSWERED, TicketStatus.NOT_COMPLAINT, TicketStatus.MERGED]
    [reply] = served.graph.replies_under("555000000000111_600000000001")
    assert reply["message"].endswith(ANSWER)
    with served.db.session() as session:
        assert session.scalar(select(Ticket.agency_code).where(Ticket.number == "NTB-2026-000001")) == "PLN"
