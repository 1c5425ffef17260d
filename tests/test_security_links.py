"""URLs that came from Facebook or a citizen: never a script link on a page, never a clickable link in mail."""

from __future__ import annotations

import os
import stat
from dataclasses import replace
from pathlib import Path

from sqlalchemy import update

from ntbcare.core.db import Database
from ntbcare.core.models import Ticket
from ntbcare.core.security import defang_text, http_url
from tests.test_agency_page import page_runtime, parse, seed, token_for, web  # noqa: F401
from tests.test_mailer import AGENCY, MAIL_FROM, ticket

CITIZEN_URL = "https://bit.ly/promo-pln"


def test_javascript_permalink_is_no_link_on_the_agency_page(web, page_runtime) -> None:  # noqa: F811
    ticket_id = seed(page_runtime.db)
    with page_runtime.db.scope() as session:
        session.execute(update(Ticket).where(Ticket.id == ticket_id).values(permalink="javascript:alert(1)"))
    page = web.get(f"/a/{token_for(ticket_id)}")
    assert page.status_code == 200
    hrefs = [attrs.get("href") or "" for tag, attrs in parse(page.data).tags if tag == "a"]
    assert not any(href.strip().lower().startswith("javascript:") for href in hrefs), hrefs
    assert "javascript:" not in page.get_data(as_text=True)
    facebook = [href for href in hrefs if "facebook.com" in href]
    assert facebook and all(href.startswith("https://www.facebook.com/") for href in facebook), hrefs


def test_only_absolute_http_urls_pass() -> None:
    for bad in ("javascript:alert(1)", " javascript:alert(1)", "JaVaScRiPt:alert(1)", "data:text/html,x",
                "//evil.test/x", "https://", "http://exa mple.test", "vbscript:x", "https://a.test/\nx"):
        assert http_url(bad) is None, bad
    assert http_url("https://www.facebook.com/1_2") == "https://www.facebook.com/1_2"


def test_forward_mail_defangs_citizen_urls_and_keeps_our_answer_link() -> None:
    from ntbcare.core.agency_mail import build_forward_email

    content = replace(ticket(), text=f"Ada yang jual token murah di {CITIZEN_URL} dan www.token-pln.test ya",
                      facebook_url="https://evil.test/permalink")
    message = build_forward_email(content, mail_from=MAIL_FROM, to=AGENCY)
    for kind in ("plain", "html"):
        part = message.get_body((kind,))
        assert part is not None
        body = part.get_content()
        assert CITIZEN_URL not in body and "https://evil.test" not in body and "www.token-pln.test" not in body
        assert "hxxps[://]bit[.]ly/promo-pln" in body and "hxxps[://]evil[.]test/permalink" in body
        assert content.answer_url in body, "our own answer link stays clickable"
        if kind == "plain":
            assert "www[.]token-pln[.]test" in body


def test_defang_leaves_text_without_urls_alone() -> None:
    assert defang_text("Jalan rusak di Jl. Pejanggik no. 3, Mataram.") == "Jalan rusak di Jl. Pejanggik no. 3, Mataram."


def test_sqlite_file_is_created_private(tmp_path: Path) -> None:
    old = os.umask(0o022)
    try:
        folder = tmp_path / "data"
        database = Database(f"sqlite:///{folder / 'ntbcare.db'}")
        with database.engine.connect() as connection:
            connection.exec_driver_sql("CREATE TABLE t (x)")
            connection.exec_driver_sql("INSERT INTO t VALUES (1)")
        database.dispose()
    finally:
        os.umask(old)
    assert stat.S_IMODE((folder / "ntbcare.db").stat().st_mode) == 0o600
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    for sidecar in folder.iterdir():
        assert stat.S_IMODE(sidecar.stat().st_mode) & 0o077 == 0, sidecar
