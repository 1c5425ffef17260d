"""Kept attachments reach operators and agencies only through signed, expiring links, on SQLite and PostgreSQL:
the console's ticket page and review queue and the agency's ticket page (e-mailed link and inbox) link the
stored file, the link serves its bytes with safe headers; a tampered, expired, foreign or revoked link gets one
same 404; the public pages and Open311 never carry the link; `ntbcare citizens forget` deletes the files, and
`ntbcare media list|retry` show and requeue them. The CDN is the TLS stand-in; the rest is the real service."""

from __future__ import annotations

import hashlib
import json
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from flask import Flask
from itsdangerous import TimestampSigner, URLSafeTimedSerializer
from sqlalchemy import select, update

from ntbcare.app import create_app
from ntbcare.cli import cli
from ntbcare.core.db import Database
from ntbcare.core.links import make_agency_token
from ntbcare.core.media_links import MEDIA_SALT, OPS, make_media_token, media_path
from ntbcare.core.models import MediaFile, MediaStatus, Ticket, TicketStatus
from ntbcare.pipeline import ticket_ops
from ntbcare.pipeline.accountability.cache import clear_cache
from ntbcare.pipeline.forget import forget_citizen
from ntbcare.pipeline.runtime import Runtime
from ntbcare.web.agency_session import SESSION_KEY
from ntbcare.web.open311 import clear_read_cache
from tests.cdn_standin import JPEG, PDF, Answer, RunningCdn, cdn_standin
from tests.conftest import BASE_ENV, RecordingDispatcher, make_settings
from tests.ops_helpers import login, make_operator
from tests.ops_tickets_seed import seed_agencies_with_contacts
from tests.test_media_download import messenger, receive
from tests.test_media_rules import tampered

SECRET = BASE_ENV["SECRET_KEY"]
MEDIA_LINK = re.compile(r'href="(/media/[^"]+)"')


@dataclass
class Service:
    rt: Runtime
    app: Flask
    cdn: RunningCdn
    photo_url: str

    def ops(self) -> Any:
        client = self.app.test_client()
        make_operator(self.rt.db, "ani", "a-long-password-1")
        assert login(client, "ani", "a-long-password-1").status_code == 303
        return client


@pytest.fixture
def service(database_url: str, db: Database, tmp_path: Path) -> Iterator[Service]:
    seed_agencies_with_contacts(db)
    with cdn_standin(tmp_path) as cdn:
        settings = make_settings(DATABASE_URL=database_url, MEDIA_DIR=str(tmp_path / "media"))
        rt = Runtime(settings=settings, db=db, dispatcher=RecordingDispatcher())
        rt.pipeline.media_fetcher = cdn.fetcher()
        url = cdn.app.serve("/v/t39.30808-6/jalan.jpg", Answer(body=JPEG))
        ticket = receive(rt, messenger("m_photo", url + "?stp=dst-jpg"))
        if ticket.agency_code != "PLN":
            ticket_ops.assign(rt.pipeline, ticket.number, "PLN", actor="operator:test")
        clear_cache()
        clear_read_cache()
        yield Service(rt, create_app(runtime=rt), cdn, url + "?stp=dst-jpg")
        clear_read_cache()


def the_ticket(db: Database, n: int = 0) -> Ticket:
    with db.session() as session:
        return list(session.scalars(select(Ticket).order_by(Ticket.id)))[n]


def media_links(html: str) -> list[str]:
    return MEDIA_LINK.findall(html)


def assert_serves(client: Any, link: str, body: bytes, content_type: str, disposition: str) -> None:
    response = client.get(link)
    assert response.status_code == 200 and response.data == body
    assert response.headers["Content-Type"] == content_type
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Content-Disposition"].startswith(disposition)
    assert response.headers["Cache-Control"] == "private, no-store"
    assert "sandbox" in response.headers["Content-Security-Policy"]
    assert response.headers["Content-Security-Policy"].startswith("default-src 'none'")


def test_the_console_ticket_page_links_the_kept_photo_and_the_link_serves_it(service):
    ticket = the_ticket(service.rt.db)
    page = service.ops().get(f"/ops/tickets/{ticket.number}").get_data(as_text=True)
    links = media_links(page)
    assert len(links) == 2  # the summary and the message on the timeline
    assert service.photo_url not in page  # kept: Facebook's expiring link is no longer offered
    anyone = service.app.test_client()  # the signed link is the credential (no session cookie)
    assert_serves(anyone, links[0], JPEG, "image/jpeg", f'inline; filename={ticket.number}-')


def test_the_review_queue_links_kept_files_and_offers_facebooks_link_until_then(service):
    pdf = service.cdn.app.serve("/doc.pdf", Answer(content_type="application/pdf", body=PDF, delay=0))
    waiting = service.cdn.app.serve("/later.jpg", Answer(status=503, content_type="text/plain", body=b"busy"))
    body = json.loads(messenger("m_docs", pdf, waiting, text="Surat keterangan ini ditolak kantor desa",
                                psid="6543210987650001"))
    receive(service.rt, json.dumps(body).encode())
    with service.rt.db.scope() as session:
        session.execute(update(Ticket).where(Ticket.id == the_ticket(service.rt.db, 1).id)
                        .values(status=TicketStatus.REVIEW, review_reason="low_confidence"))
    page = service.ops().get("/ops/review").get_data(as_text=True)
    [link] = media_links(page)
    assert waiting in page and "belum diunduh" in page and "HTTP 503" in page
    assert_serves(service.app.test_client(), link, PDF, "application/pdf", "attachment; filename=")


def test_the_agency_page_and_inbox_link_the_photo_for_that_agency_only(service):
    ticket = the_ticket(service.rt.db)
    client = service.app.test_client()
    page = client.get(f"/a/{make_agency_token(SECRET, ticket.id, 'PLN', ticket.link_version)}")
    [link] = media_links(page.get_data(as_text=True))
    assert_serves(client, link, JPEG, "image/jpeg", "inline")

    inbox = service.app.test_client()
    with inbox.session_transaction() as session:
        session[SESSION_KEY] = {"sid": "s", "email": "pengaduan@pln-ntb.test", "code": "PLN",
                                "agencies": [["PLN", "PLN"]], "at": time.time()}
    [inbox_link] = media_links(inbox.get(f"/agency/tickets/{ticket.number}").get_data(as_text=True))
    assert_serves(inbox, inbox_link, JPEG, "image/jpeg", "inline")

    ticket_ops.assign(service.rt.pipeline, ticket.number, "PUPRPKP", actor="operator:ani")  # reassigned
    assert client.get(link).status_code == 404 and client.get(inbox_link).status_code == 404


def expired_token(payload: dict[str, Any]) -> str:
    class TwoHoursAgo(TimestampSigner):
        def get_timestamp(self) -> int:
            return int(time.time()) - 7200

    return URLSafeTimedSerializer(SECRET, salt=MEDIA_SALT, signer=TwoHoursAgo,
                                  signer_kwargs={"digest_method": hashlib.sha256}).dumps(payload)


def test_every_link_that_cannot_open_its_file_gets_one_same_404(service):
    ticket = the_ticket(service.rt.db)
    other = receive(service.rt, messenger("m_other", service.cdn.app.serve("/o.jpg", Answer(body=JPEG + b"2")),
                                          psid="6543210987650002"))
    with service.rt.db.session() as session:
        mine = session.scalars(select(MediaFile).where(MediaFile.ticket_id == ticket.id)).one()
    good = make_media_token(SECRET, mine.id, ticket.id, OPS)
    client = service.app.test_client()
    assert client.get(media_path(good)).status_code == 200
    agency = make_media_token(SECRET, mine.id, ticket.id, "PLN", ticket.link_version)
    bad = {
        "tampered": tampered(good),
        "expired": expired_token({"m": mine.id, "t": ticket.id, "a": OPS, "v": 0}),
        "another ticket's page": make_media_token(SECRET, mine.id, other.id, OPS),
        "another agency": make_media_token(SECRET, mine.id, ticket.id, "PUPRPKP", ticket.link_version),
        "an old link version": make_media_token(SECRET, mine.id, ticket.id, "PLN", ticket.link_version - 1),
        "another key": make_media_token("another-secret-key-of-32-bytes-or-more", mine.id, ticket.id, OPS),
        "an agency link token": make_agency_token(SECRET, ticket.id, "PLN", ticket.link_version),
        "no such file": make_media_token(SECRET, mine.id + 1000, ticket.id, OPS),
        "garbage": "x" * 40,
    }
    assert client.get(media_path(agency)).status_code == 200
    answers = {why: client.get(media_path(token)) for why, token in bad.items()}
    first = answers["tampered"]
    assert first.status_code == 404 and "Lampiran tidak ditemukan" in first.get_data(as_text=True)
    for why, response in answers.items():
        assert (response.status_code, response.data) == (404, first.data), why
        assert JPEG not in response.data


def test_public_pages_and_open311_never_carry_a_kept_file(service):
    ticket = the_ticket(service.rt.db)
    client = service.app.test_client()
    paths = ["/transparansi", "/transparansi/PLN", "/transparansi.csv", "/open311/v2/requests.json",
             "/open311/v2/requests.xml", f"/open311/v2/requests/{ticket.number}.json",
             f"/open311/v2/requests/{ticket.number}.xml"]
    bodies = {path: client.get(path) for path in paths}
    assert all(response.status_code == 200 for response in bodies.values()), {p: r.status_code for p, r in
                                                                              bodies.items()}
    assert ticket.number in bodies["/transparansi/PLN"].get_data(as_text=True)  # the ticket is published
    for path, response in bodies.items():
        text = response.get_data(as_text=True)
        assert "/media/" not in text and "fbcdn" not in text and "jalan.jpg" not in text, path
    [published] = json.loads(bodies[f"/open311/v2/requests/{ticket.number}.json"].data)
    assert published["media_url"] is None


def test_forgetting_the_citizen_deletes_their_files_and_keeps_anothers_identical_one(service, database_url):
    ticket = the_ticket(service.rt.db)
    same = service.cdn.app.serve("/same.jpg", Answer(body=JPEG))  # identical bytes from someone else: one file
    receive(service.rt, messenger("m_same", same, text="Listrik padam juga di rumah saya di Ampenan",
                                  psid="6543210987650003"))
    with service.rt.db.session() as session:
        [kept] = {m.stored_path for m in session.scalars(select(MediaFile))}
    file = Path(service.rt.settings.media_dir) / kept
    env = {**BASE_ENV, "DATABASE_URL": database_url, "MEDIA_DIR": service.rt.settings.media_dir}
    result = CliRunner().invoke(cli, ["citizens", "forget", ticket.number, "--by", "siti", "--json"], env=env)
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert (report["media"], report["media_files_deleted"]) == (1, 0) and file.exists()  # still the other's
    result = CliRunner().invoke(cli, ["citizens", "forget", "6543210987650003", "--by", "siti", "--json"], env=env)
    assert json.loads(result.output)["media_files_deleted"] == 1 and not file.exists()
    with service.rt.db.session() as session:
        assert session.scalars(select(MediaFile)).all() == []
    assert forget_citizen(service.rt.db, ticket.number, actor="operator:siti", media_dir=str(file.parent)).media == 0


def test_media_list_and_retry_on_the_command_line(service, database_url):
    broken = service.cdn.app.serve("/broken.jpg", Answer(status=403, content_type="text/plain", body=b"expired"))
    receive(service.rt, messenger("m_broken", broken, psid="6543210987650004"))
    env = {**BASE_ENV, "DATABASE_URL": database_url, "MEDIA_DIR": service.rt.settings.media_dir}
    listed = json.loads(CliRunner().invoke(cli, ["media", "list", "--json"], env=env).output)
    assert listed["counts"] == {MediaStatus.STORED: 1, MediaStatus.REFUSED: 1}
    refused = [row for row in listed["media"] if row["status"] == MediaStatus.REFUSED]
    assert len(refused) == 1 and "HTTP 403" in refused[0]["reason"]
    table = CliRunner().invoke(cli, ["media", "list", "--status", "stored"], env=env).output
    assert "image/jpeg" in table and "stored" in table and "refused" not in table.splitlines()[1]
    none = CliRunner().invoke(cli, ["media", "retry", "--all-failed"], env=env)
    assert none.exit_code == 0 and "0 attachment(s) queued again" in none.output
    again = CliRunner().invoke(cli, ["media", "retry", str(refused[0]["id"])], env=env)
    assert again.exit_code == 0 and "1 attachment(s) queued again" in again.output
    with service.rt.db.session() as session:
        row = session.get_one(MediaFile, refused[0]["id"])
        assert (row.status, row.attempts, row.reason) == (MediaStatus.PENDING, 0, None)
    # The command's own fetcher is the service's: in tests no real name resolves, so it is a retry for later.
    downloaded = CliRunner().invoke(cli, ["media", "download"], env=env)
    assert downloaded.exit_code == 0 and "stored 0, refused 0, retry later 1, failed 0" in downloaded.output
    assert CliRunner().invoke(cli, ["media", "retry"], env=env).exit_code != 0


def test_a_download_that_gave_up_is_counted_on_the_dashboard_with_its_reason(service):
    down = service.cdn.app.serve("/down.jpg", Answer(status=502, content_type="text/plain", body=b"bad gateway"))
    receive(service.rt, messenger("m_down", down, psid="6543210987650005"))
    with service.rt.db.scope() as session:
        session.execute(update(MediaFile).where(MediaFile.status == MediaStatus.PENDING)
                        .values(status=MediaStatus.FAILED, reason="gave up after 5 attempts: HTTP 502"))
    client = service.ops()
    page = client.get("/ops/").get_data(as_text=True)
    assert '<span class="figure">1</span><span class="label">lampiran warga gagal diunduh' in page
    listed = client.get("/ops/attention/media").get_data(as_text=True)
    assert "gave up after 5 attempts: HTTP 502" in listed and "ntbcare media retry --all-failed" in listed


def test_an_agency_can_click_kept_files_and_facebooks_links_but_never_another_url_from_the_payload(service):
    ticket = the_ticket(service.rt.db)
    pending = service.cdn.app.serve("/slow.jpg", Answer(status=503, content_type="text/plain", body=b"busy"))
    with service.rt.db.scope() as session:
        stored = session.get_one(Ticket, ticket.id)
        stored.attachments = [*stored.attachments, {"type": "image", "url": pending},
                              {"type": "fallback", "url": "https://phish.example.com/login", "title": "Berita"}]
    page = service.app.test_client().get(f"/a/{make_agency_token(SECRET, ticket.id, 'PLN', ticket.link_version)}")
    html = page.get_data(as_text=True)
    assert len(media_links(html)) == 1 and f'href="{pending}"' in html  # kept file, and the CDN's own link
    assert 'href="https://phish.example.com' not in html and "hxxps[://]phish[.]example[.]com/login" in html
