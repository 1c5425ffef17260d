"""A real browser (Debian's chromium driven by Playwright) on the public page and an agency's page, at 360 px
and 1280 px, with the hand-computed December: the figures are there, the trend chart is drawn and visible with
its text alternative, nothing scrolls sideways on a phone, the CSP blocks nothing, and axe-core finds no
serious or critical violation. Screenshots go to artifacts/ (gitignored)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from ntbcare.core.db import Database
from ntbcare.core.migrate import upgrade
from ntbcare.pipeline.accountability.cache import clear_cache
from ntbcare.pipeline.runtime import Runtime
from tests.conftest import RecordingDispatcher, make_settings, service_unavailable
from tests.public_seed import CORPUS, NOW, seed_month
from tests.servers import wsgi_server

pytestmark = pytest.mark.browser

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parent.parent / "artifacts"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
SIZES = {"phone": {"width": 360, "height": 740}, "desktop": {"width": 1280, "height": 900}}


@pytest.fixture
def served(sqlite_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    monkeypatch.setattr("ntbcare.web.transparency.utcnow", lambda: NOW)  # figures as of the fixture's moment
    if not CHROMIUM.exists():
        service_unavailable(f"{CHROMIUM} is missing (apt-get install -y chromium); the browser test needs it")
    from ntbcare.app import create_app

    db = Database(sqlite_url)
    upgrade(db.engine)
    with wsgi_server() as server:
        settings = make_settings(DATABASE_URL=sqlite_url, PUBLIC_BASE_URL=server.url)
        seed_month(db, settings)
        clear_cache()
        server.mount(create_app(runtime=Runtime(settings=settings, db=db, dispatcher=RecordingDispatcher())))
        yield server.url
    clear_cache()
    db.dispose()


def serious_violations(page) -> list[str]:  # type: ignore[no-untyped-def]
    from axe_playwright_python.sync_playwright import Axe

    violations = Axe().run(page).response["violations"]
    return [f"{v['id']}: {v['help']} {[n['html'][:120] for n in v['nodes']]}" for v in violations
            if v.get("impact") in ("serious", "critical")]


@pytest.mark.parametrize("size", ["phone", "desktop"])
def test_public_pages_in_a_browser(served: str, size: str) -> None:
    from playwright.sync_api import sync_playwright

    ARTIFACTS.mkdir(exist_ok=True)
    viewport = SIZES[size]
    problems: list[str] = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            context = browser.new_context(viewport=viewport, locale="id-ID", is_mobile=size == "phone",
                                          has_touch=size == "phone")
            page = context.new_page()
            page.on("console", lambda m: problems.append(m.text)
                    if m.type == "error" and not m.text.startswith("Failed to load resource") else None)
            page.on("response", lambda r: problems.append(f"{r.status} {r.url}")
                    if r.status >= 400 and not r.url.endswith("/favicon.ico") else None)
            page.goto(f"{served}/transparansi?bulan=2026-12")
            assert page.title() == "Transparansi pengaduan Desember 2026 · NTB Care"
            totals = page.locator(".totals").first.inner_text()
            assert "Diterima\n9" in totals and "33.3%" in totals
            names = page.locator("table.sortable tbody th[scope=row]").all_inner_texts()
            assert names == ["Dinas Kesehatan", "Dinas Pekerjaan Umum dan Penataan Ruang", "Dinas Perhubungan"]
            chart = page.locator("svg.trend").first
            chart.scroll_into_view_if_needed()
            box = chart.bounding_box()
            assert chart.is_visible() and box is not None and box["width"] > 250 and box["height"] > 90
            assert chart.locator("rect").count() >= 12
            assert page.locator("svg.trend desc").first.text_content().startswith("12 minggu terakhir")
            page.get_by_text("Tabel angka grafik (teks alternatif)").first.click()
            assert page.locator("details.chart-table table").first.is_visible()
            assert page.evaluate("document.documentElement.scrollWidth") <= viewport["width"]
            background = page.evaluate("getComputedStyle(document.querySelector('.totals div')).backgroundColor")
            assert background == "rgb(243, 246, 249)"  # public.css loaded under the CSP
            page.screenshot(path=str(ARTIFACTS / f"transparansi-{size}.png"), full_page=True)
            assert serious_violations(page) == []
            assert all(secret.lower() not in page.content().lower() for secret in CORPUS)

            page.get_by_role("link", name="Tepat waktu (%)").click()
            assert "urut=tepat_waktu" in page.url
            assert page.locator("table.sortable tbody th[scope=row]").first.inner_text() == "Dinas Kesehatan"

            page.get_by_role("link", name="Dinas Kesehatan").click()
            assert page.title().startswith("Dinas Kesehatan: transparansi Desember 2026")
            assert page.locator("svg.trend").first.is_visible()
            assert page.locator("article.public-ticket").count() == 7
            first = page.locator("article.public-ticket", has_text="NTB-2026-000001").inner_text()
            assert "[nama disamarkan]" in first and "[disamarkan]" in first
            assert page.evaluate("document.documentElement.scrollWidth") <= viewport["width"]
            page.screenshot(path=str(ARTIFACTS / f"transparansi-dinkes-{size}.png"), full_page=True)
            assert serious_violations(page) == []
            assert all(secret.lower() not in page.content().lower() for secret in CORPUS)
        finally:
            browser.close()
    assert problems == []
