"""A real browser (Debian's chromium driven by Playwright) answers through the agency page on a phone-sized
screen: the page fits 360 px, its controls are large enough to tap, the stylesheet loads under the strict CSP,
and the answer reaches the stand-in Graph API. Screenshots go to artifacts/ (gitignored).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select

from bot.client import close_graph_clients
from ntbcare.core.db import Database
from ntbcare.core.migrate import upgrade
from ntbcare.core.models import Ticket, TicketStatus
from ntbcare.pipeline.runtime import Runtime
from tests.conftest import PAGE_ID, RecordingDispatcher, make_settings, service_unavailable
from tests.graph_standin import GraphStandIn
from tests.servers import serve_wsgi, wsgi_server
from tests.test_agency_page import build_agency_app, seed, token_for

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parent.parent / "artifacts"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
PHONE = {"width": 360, "height": 740}
COMPLAINT = ("Listrik padam sejak pagi di Kelurahan Pagesangan, Mataram. Token sudah diisi tetap mati, "
             "kulkas warung kami rusak. <script>alert('x')</script> Mohon segera ditangani.")
ANSWER = "Gangguan trafo di Pagesangan sudah diperbaiki petugas PLN Rayon Ampenan pukul 14.10 WITA. Mohon maaf."


@pytest.fixture
def served(sqlite_url: str) -> Iterator[tuple[str, int, Database, GraphStandIn]]:
    if not CHROMIUM.exists():
        service_unavailable(f"{CHROMIUM} is missing (apt-get install -y chromium); the browser test needs it")
    db = Database(sqlite_url)
    upgrade(db.engine)
    graph = GraphStandIn(PAGE_ID)
    with serve_wsgi(graph) as graph_url, wsgi_server() as app_server:
        settings = make_settings(DATABASE_URL=sqlite_url, GRAPH_API_BASE_URL=graph_url,
                                 FB_PAGE_ACCESS_TOKEN="page-token", PUBLIC_BASE_URL=app_server.url,
                                 OPERATOR_EMAILS="ops@diskominfotik.test")
        runtime = Runtime(settings=settings, db=db, dispatcher=RecordingDispatcher())
        ticket_id = seed(db, text=COMPLAINT)
        app_server.mount(build_agency_app(runtime))
        yield app_server.url, ticket_id, db, graph
    close_graph_clients()
    db.dispose()


def test_agency_answers_on_a_phone_sized_screen(served):
    from playwright.sync_api import sync_playwright

    base_url, ticket_id, db, graph = served
    ARTIFACTS.mkdir(exist_ok=True)
    problems: list[str] = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            context = browser.new_context(viewport=PHONE, device_scale_factor=2, is_mobile=True, has_touch=True,
                                          locale="id-ID")
            page = context.new_page()
            page.on("console", lambda message: problems.append(message.text)
                    if message.type == "error" and not message.text.startswith("Failed to load resource") else None)
            page.on("pageerror", lambda error: problems.append(str(error)))
            page.on("response", lambda response: problems.append(f"{response.status} {response.url}")
                    if response.status >= 400 and not response.url.endswith("/favicon.ico") else None)
            page.goto(f"{base_url}/a/{token_for(ticket_id)}")

            assert page.title() == "Laporan NTB-2026-000001 · NTB Care"
            assert page.locator("#complaint").inner_text() == COMPLAINT  # the script tag is shown, not run
            assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]  # no sideways scroll
            submit = page.get_by_role("button", name="Kirim jawaban")
            box = submit.bounding_box()
            assert box is not None and box["height"] >= 44 and box["width"] >= 300  # a thumb-sized target
            background = submit.evaluate("button => getComputedStyle(button).backgroundColor")
            assert background == "rgb(11, 79, 138)"  # agency.css loaded under the CSP
            page.screenshot(path=str(ARTIFACTS / "agency-page-form.png"), full_page=True)

            page.get_by_label("Jawaban untuk warga").fill(ANSWER)
            submit.click()
            page.wait_for_url(f"{base_url}/a/**?ok=answer")
            status = page.get_by_role("status")
            assert "Jawaban Anda tersimpan" in status.inner_text()
            assert ANSWER in page.locator(".answer-text").inner_text()
            page.screenshot(path=str(ARTIFACTS / "agency-page.png"), full_page=True)
        finally:
            browser.close()
    assert problems == []
    with db.session() as session:
        ticket = session.scalars(select(Ticket).where(Ticket.id == ticket_id)).one()
        assert ticket.status == TicketStatus.ANSWERED
    [reply] = graph.replies_under(ticket.comment_id)
    assert reply["message"].endswith(ANSWER)
    assert (ARTIFACTS / "agency-page.png").stat().st_size > 10_000
