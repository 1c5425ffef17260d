"""A real browser (Debian's chromium driven by Playwright), on a 1280 px desktop and a 360 px phone: a
supervisor signs in to the operator console, reads the dashboard and each list behind its counts
(/ops/attention/*), sends a reminder from the overdue board, opens the monthly recaps, edits an agency's
contacts and opens every supervisor page, then logs out; an operator who is no supervisor then gets the 403
page. Every page passes axe-core with no serious or critical violation, runs without a CSP or script error,
and fits the phone without sideways scrolling. Screenshots go to artifacts/ (gitignored)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from sqlalchemy import select

from ntbcare.core.db import Database
from ntbcare.core.migrate import upgrade
from ntbcare.core.models import (
    Agency,
    Delivery,
    DeliveryStatus,
    MailStatus,
    OutboundMail,
    Reply,
    ReplyStatus,
    Ticket,
    utcnow,
)
from ntbcare.pipeline.runtime import Runtime
from tests.conftest import RecordingDispatcher, make_settings, service_unavailable
from tests.ops_helpers import make_operator
from tests.servers import wsgi_server
from tests.test_agency_page import build_agency_app
from tests.test_browser_agency import ARTIFACTS, CHROMIUM, CHROMIUM_ARGS, PHONE
from tests.test_ops_console import seeded as seed_console

DESKTOP = {"width": 1280, "height": 800}
PASSWORD = "kata-sandi-kepala"
OPERATOR_PASSWORD = "kata-sandi-wayan"
# Error statuses the walk through the console asks for on purpose.
EXPECTED = {(401, "/ops/login"), (403, "/ops/operators")}


@dataclass
class Served:
    url: str
    db: Database


@pytest.fixture
def served(sqlite_url: str) -> Iterator[Served]:
    if not CHROMIUM.exists():
        service_unavailable(f"{CHROMIUM} is missing (apt-get install -y chromium); the browser test needs it")
    db = Database(sqlite_url)
    upgrade(db.engine)
    seed_console.__wrapped__(db)  # type: ignore[attr-defined]
    make_operator(db, "kepala", PASSWORD, role="supervisor", name="Kepala Bidang Pengaduan")
    make_operator(db, "wayan", OPERATOR_PASSWORD, name="Wayan Operator")
    with db.scope() as session:  # something on every list behind the dashboard's counts, and a recap
        first = session.scalar(select(Ticket).where(Ticket.number == "NTB-2026-000001"))
        session.add(Reply(key="ack-public:1", ticket_id=first.id, kind="ack", channel="comment_reply",
                          target_id="c1", text="Terima kasih", status=ReplyStatus.FAILED, error="(#10) refused"))
        session.add(Delivery(body=b"{}", body_sha256="0" * 64, status=DeliveryStatus.FAILED,
                             error="JSONDecodeError: Expecting value"))
        session.add(OutboundMail(key="forward:x", kind="forward", ticket_id=first.id, agency_code="PLN",
                                 recipients=["pengaduan@pln-ntb.test"], status=MailStatus.FAILED,
                                 error="MailPermanentError: SMTP server answered 550"))
        session.add(OutboundMail(key="forward:y", kind="forward", ticket_id=first.id, agency_code="PLN",
                                 recipients=["lama@pln-ntb.test"], status=MailStatus.BOUNCED, sent_at=utcnow(),
                                 bounced_at=utcnow(), bounced_to=["lama@pln-ntb.test"],
                                 error="bounced: lama@pln-ntb.test: 5.1.1: smtp; 550 5.1.1 User unknown"))
        session.add(OutboundMail(key="recap:2026-11", kind="recap", recipients=["ops@ntbprov.test"],
                                 status=MailStatus.SENT, attempts=1, sent_at=utcnow()))
    with wsgi_server() as app_server:
        settings = make_settings(DATABASE_URL=sqlite_url, PUBLIC_BASE_URL=app_server.url,
                                 FB_PAGE_ACCESS_TOKEN="page-token")
        app_server.mount(build_agency_app(Runtime(settings=settings, db=db, dispatcher=RecordingDispatcher())))
        yield Served(app_server.url, db)
    db.dispose()


def check_accessible(page: Any, name: str) -> None:
    from axe_playwright_python.sync_playwright import Axe

    violations = Axe().run(page).response["violations"]
    serious = [(v["id"], v["impact"], [n["target"] for n in v["nodes"]][:3]) for v in violations
               if v["impact"] in ("serious", "critical")]
    assert not serious, f"{name}: {serious}"


def visit(page: Any, label: str, width: int) -> None:
    """Every page: accessible, and on the phone no wider than the screen; a screenshot of each."""
    check_accessible(page, label)
    if width <= PHONE["width"]:
        assert page.evaluate("document.documentElement.scrollWidth") <= width, f"{label} scrolls sideways"
    page.screenshot(path=str(ARTIFACTS / f"ops-{label}-{width}.png"), full_page=True)


@pytest.mark.browser
@pytest.mark.parametrize("viewport", [DESKTOP, PHONE], ids=["1280px", "360px"])
def test_a_supervisor_works_the_console_in_a_browser(served, viewport) -> None:  # type: ignore[no-untyped-def]
    from playwright.sync_api import sync_playwright

    base, width = served.url, viewport["width"]
    ARTIFACTS.mkdir(exist_ok=True)
    problems: list[str] = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            context = browser.new_context(viewport=viewport, locale="id-ID")
            page = context.new_page()
            page.on("pageerror", lambda error: problems.append(str(error)))
            page.on("console", lambda message: problems.append(message.text)  # a CSP refusal, a script error
                    if message.type == "error" and not message.text.startswith("Failed to load resource") else None)
            page.on("response", lambda response: problems.append(f"{response.status} {response.url}")
                    if response.status >= 400 and not response.url.endswith("/favicon.ico")
                    and (response.status, response.url.removeprefix(base)) not in EXPECTED else None)

            page.goto(f"{base}/")
            visit(page, "landing", width)
            page.get_by_role("link", name="Masuk konsol operator").click()
            page.wait_for_url(f"{base}/ops/login")
            page.get_by_label("Nama pengguna").fill("kepala")
            page.get_by_label("Kata sandi").fill("bukan-sandinya")
            page.get_by_role("button", name="Masuk").click()
            assert "Nama pengguna atau kata sandi salah" in page.locator(".error").inner_text()
            visit(page, "login", width)
            page.get_by_label("Kata sandi").fill(PASSWORD)
            page.get_by_role("button", name="Masuk").click()
            page.wait_for_url(f"{base}/ops/")
            assert "Kepala Bidang Pengaduan" in page.locator(".ops-who").inner_text()
            assert page.locator(".count .figure").first.inner_text() == "1"  # one ticket in review
            visit(page, "dashboard", width)

            page.get_by_role("link", name="tiket terlambat").click()
            page.wait_for_url(f"{base}/ops/overdue")
            assert page.locator("h2").first.inner_text().startswith("PLN")
            visit(page, "overdue", width)
            page.locator("form button.primary").first.click()
            page.wait_for_url(f"{base}/ops/overdue")
            assert "Pengingat untuk 2 tiket terlambat dikirim" in page.locator(".notice").inner_text()

            for kind, shows in (("replies", "(#10) refused"), ("deliveries", "JSONDecodeError"),
                                ("mails", "550 5.1.1 User unknown"), ("contacts", "DIKPORA")):
                page.goto(f"{base}/ops/")
                page.locator(f'a[href="/ops/attention/{kind}"]').click()
                page.wait_for_url(f"{base}/ops/attention/{kind}")
                assert shows in page.locator("main").inner_text()
                visit(page, f"attention-{kind}", width)
            assert "terpental" in page.goto(f"{base}/ops/attention/mails").text()
            page.get_by_role("link", name="Rekap bulanan").click()
            page.wait_for_url(f"{base}/ops/reports")
            assert "November 2026" in page.locator("main").inner_text()
            visit(page, "reports", width)

            page.goto(f"{base}/ops/operators")
            visit(page, "operators", width)
            page.goto(f"{base}/ops/templates")
            visit(page, "templates", width)
            page.goto(f"{base}/ops/contacts")
            visit(page, "contacts", width)
            page.goto(f"{base}/ops/contacts/DIKPORA")
            page.get_by_label("Alamat kontak (menerima laporan dan pengingat)").fill("humas@dikpora.ntbprov.test")
            visit(page, "contact", width)
            page.get_by_role("button", name="Simpan kontak").click()
            page.wait_for_url(f"{base}/ops/contacts")
            assert "humas@dikpora.ntbprov.test" in page.content()

            page.get_by_role("button", name="Keluar").click()
            page.wait_for_url(f"{base}/ops/login?m=out")
            page.goto(f"{base}/ops/")
            assert page.url == f"{base}/ops/login"

            page.get_by_label("Nama pengguna").fill("wayan")  # an operator, not a supervisor
            page.get_by_label("Kata sandi").fill(OPERATOR_PASSWORD)
            page.get_by_role("button", name="Masuk").click()
            page.wait_for_url(f"{base}/ops/")
            assert page.goto(f"{base}/ops/operators").status == 403
            assert "Halaman ini hanya untuk supervisor." in page.locator("main").inner_text()
            visit(page, "forbidden", width)
            page.get_by_role("link", name="Kembali ke beranda konsol").click()  # not a dead end
            page.wait_for_url(f"{base}/ops/")
        finally:
            browser.close()
    assert problems == []
    with served.db.session() as session:
        assert session.get(Agency, "DIKPORA").emails == ["humas@dikpora.ntbprov.test"]
        assert len(list(session.scalars(select(OutboundMail).where(OutboundMail.kind == "reminder")))) == 2
    assert (ARTIFACTS / f"ops-dashboard-{width}.png").stat().st_size > 10_000
