"""Signing in to the agency inbox by e-mail: no enumeration (an unknown address gets the same answer and no
mail, and a known one does not wait for the mail server), single-use links valid 15 minutes that only a POST
uses up, session rotation and cookie flags, session expiry after AGENCY_SESSION_HOURS, the choice of an address
that belongs to two agencies, logout, and the rate limits per address and per client (in memory and in Redis).
"""

from __future__ import annotations

import asyncio
import hashlib
import threading
import time
import uuid
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select, update

from ntbcare.core.models import Agency, AgencySignIn, OutboundMail, utcnow
from ntbcare.pipeline.runtime import Runtime
from routing.forwarding import send_due_mails
from tests import test_agency_inbox
from tests.conftest import RecordingDispatcher, make_settings, redis_url
from tests.test_agency_inbox import (
    BASE,
    DIKES,
    MAILER_KEY,
    PLN,
    PLN_HEAD,
    SHARED,
    Inbox,
    ask_for_link,
    form_fields,
    numbers,
    sign_in,
)
from tests.test_agency_page import build_agency_app, parse, snapshot

inbox = test_agency_inbox.inbox  # the fixtures, shared with the inbox tests
pln = test_agency_inbox.pln

CLOCK = "ntbcare.pipeline.agency_access.utcnow"


def later(monkeypatch: pytest.MonkeyPatch, **delta: float) -> None:
    moment = utcnow() + timedelta(**delta)
    monkeypatch.setattr(CLOCK, lambda: moment)


def test_unknown_address_is_answered_exactly_like_a_known_one_and_nothing_is_mailed(inbox):
    client = inbox.client()
    before = snapshot(inbox.db)
    answers = {}
    for address in (PLN, "orang.lain@pln.test", "bukan-kontak@gmail.test"):
        response = ask_for_link(client, address)
        headers = {k: v for k, v in response.headers.items() if k != "Content-Length"}
        answers[address] = (response.status_code, headers, response.data.replace(address.encode(), b"ADDRESS"))
    known = answers.pop(PLN)
    assert known[0] == 200 and "Periksa e-mail Anda" in parse(known[2]).text
    assert all(answer == known for answer in answers.values())
    inbox.wait_for_mail()
    assert [recipients for recipients, _ in inbox.mail.received] == [[PLN]]
    with inbox.db.session() as session:
        assert session.scalars(select(AgencySignIn.email)).all() == [PLN]
        assert session.scalars(select(OutboundMail.recipients)).all() == [[PLN]]
    assert {t: rows for t, rows in snapshot(inbox.db).items() if t not in ("agency_sign_ins", "outbound_mails")} == \
        {t: rows for t, rows in before.items() if t not in ("agency_sign_ins", "outbound_mails")}


class GatedHandler:
    """An SMTP server that holds every message until the test opens the gate (at most 10 s)."""

    def __init__(self, inner: Any) -> None:
        self.inner, self.gate = inner, threading.Event()

    async def handle_RCPT(self, *args: Any) -> str:
        return await self.inner.handle_RCPT(*args)

    async def handle_DATA(self, *args: Any) -> str:
        await asyncio.get_running_loop().run_in_executor(None, self.gate.wait, 10)
        return await self.inner.handle_DATA(*args)


def test_a_known_address_does_not_wait_for_the_mail_server(database_url, db):
    from tests.servers import RecordingHandler, smtp_server
    from tests.test_agency_inbox import seed_inbox

    seed_inbox(db)
    recorded = RecordingHandler()
    gated = GatedHandler(recorded)
    with smtp_server(gated) as port:  # type: ignore[arg-type]
        settings = make_settings(DATABASE_URL=database_url, PUBLIC_BASE_URL=BASE,
                                 SMTP_URL=f"smtp://127.0.0.1:{port}?starttls=0&timeout=15")
        app = build_agency_app(Runtime(settings=settings, db=db, dispatcher=RecordingDispatcher()))
        client = app.test_client()
        try:
            started = time.monotonic()
            response = ask_for_link(client, PLN)
            elapsed = time.monotonic() - started
            assert response.status_code == 200 and elapsed < 3  # the SMTP server is still holding the message
            assert recorded.received == []
            gated.gate.set()
            app.extensions[MAILER_KEY].wait_idle()
            assert [to for to, _ in recorded.received] == [[PLN]]
        finally:
            gated.gate.set()
            if MAILER_KEY in app.extensions:
                app.extensions[MAILER_KEY].close()


def test_contacts_and_head_contacts_sign_in_whatever_the_case(inbox):
    for address in (PLN_HEAD, "  PengaDuan@PLN.test "):
        client = inbox.client()
        assert ask_for_link(client, address).status_code == 200
        link = inbox.link_for(address.strip().lower())
        response = client.post(link, data=form_fields(client, link)[link])
        assert (response.status_code, response.headers["Location"]) == (303, "/agency/")
        assert "PLN UIW NTB" in parse(client.get("/agency/").data).text


def test_contact_of_a_switched_off_agency_gets_no_link(inbox):
    with inbox.db.scope() as session:
        session.execute(update(Agency).where(Agency.code == "DIKPORA").values(active=False))
        session.execute(update(Agency).where(Agency.code == "DIKES").values(emails=[DIKES]))
    assert ask_for_link(inbox.client(), SHARED).status_code == 200
    assert inbox.mails_to(SHARED) == []


def test_the_sign_in_mail_is_recorded_but_its_link_is_stored_nowhere(inbox):
    client = inbox.client()
    ask_for_link(client, PLN)
    [message] = inbox.mails_to(PLN)
    link = inbox.link_for(PLN)
    token = link.rsplit("/", 1)[1]
    assert message["Subject"] == "[NTB Care] Tautan masuk kotak laporan instansi"
    assert "PLN UIW NTB" in message.get_body(("plain",)).get_content()
    with inbox.db.session() as session:
        sign_in_row = session.scalars(select(AgencySignIn)).one()
        mail = session.scalars(select(OutboundMail)).one()
    assert sign_in_row.token_hash == hashlib.sha256(token.encode()).hexdigest()
    assert sign_in_row.agency_codes == ["PLN"] and sign_in_row.used_at is None
    assert sign_in_row.expires_at - sign_in_row.created_at == timedelta(minutes=15)
    assert (mail.kind, mail.key, mail.ticket_id, mail.recipients, mail.status) == (
        "sign_in", f"sign-in:{sign_in_row.id}", None, [PLN], "sent")
    assert token not in repr(snapshot(inbox.db))


def test_a_failed_sign_in_mail_is_recorded_and_never_retried(inbox):
    inbox.mail.rcpt_reply = "550 5.1.1 mailbox unavailable"
    ask_for_link(inbox.client(), PLN)
    inbox.wait_for_mail()
    inbox.mail.rcpt_reply = None
    send_due_mails(inbox.db, inbox.app.extensions["ntbcare"].settings)  # what every sweep does
    with inbox.db.session() as session:
        mail = session.scalars(select(OutboundMail)).one()
    assert (mail.kind, mail.status, mail.attempts) == ("sign_in", "failed", 1) and "550" in (mail.error or "")
    assert inbox.mail.received == []


def test_opening_the_link_changes_nothing_and_the_masuk_button_uses_it_once(inbox):
    client = inbox.client()
    ask_for_link(client, PLN)
    link = inbox.link_for(PLN)
    before = snapshot(inbox.db)
    for _ in range(2):  # a mail scanner, then the person
        page = client.get(link)
        assert page.status_code == 200 and "Masuk" in parse(page.data).text
    assert snapshot(inbox.db) == before
    forms = parse(page.data).forms
    response = client.post(link, data=forms[link])
    assert (response.status_code, response.headers["Location"]) == (303, "/agency/")
    other = inbox.client("10.9.9.9")
    token = form_fields(other, "/agency/login")["/agency/login"]["csrf_token"]
    for again in (other.post(link, data={"csrf_token": token}), other.get(link)):
        assert again.status_code == 410
        text = parse(again.data).text
        assert "Tautan masuk tidak berlaku" in text and "Minta tautan masuk baru" in text
    assert inbox.client().get("/agency/login/not-a-real-token").status_code == 410


def test_a_link_works_for_15_minutes_only(inbox, monkeypatch):
    client = inbox.client()
    ask_for_link(client, PLN)
    link = inbox.link_for(PLN)
    forms = form_fields(client, link)
    later(monkeypatch, minutes=16)
    assert client.get(link).status_code == 410
    assert client.post(link, data=forms[link]).status_code == 410
    assert client.get("/agency/").status_code == 303  # not signed in
    monkeypatch.undo()
    ask_for_link(client, PLN)
    fresh = inbox.link_for(PLN)
    later(monkeypatch, minutes=14)
    assert client.post(fresh, data=form_fields(client, fresh)[fresh]).status_code == 303


def session_of(served: Inbox, client: Any) -> dict:
    cookie = client.get_cookie("session")
    serializer = served.app.session_interface.get_signing_serializer(served.app)  # type: ignore[attr-defined]
    return dict(serializer.loads(cookie.value))


def test_sign_in_starts_a_new_session(inbox):
    client = inbox.client()
    old_token = form_fields(client, "/agency/login")["/agency/login"]["csrf_token"]
    old = session_of(inbox, client)
    sign_in(inbox, client, PLN)
    first = session_of(inbox, client)
    assert "csrf_token" in old and "csrf_token" not in first  # nothing of the old session survives
    assert first["agency_inbox"]["email"] == PLN and len(first["agency_inbox"]["sid"]) >= 32
    refused = client.post("/agency/logout", data={"csrf_token": old_token})
    assert refused.status_code == 400 and client.get("/agency/").status_code == 200
    ask_for_link(inbox.client(), PLN)  # signed in, the login page leads to the inbox: ask from elsewhere
    link = inbox.link_for(PLN)
    assert client.post(link, data=form_fields(client, link)[link]).status_code == 303
    assert session_of(inbox, client)["agency_inbox"]["sid"] != first["agency_inbox"]["sid"]


def test_session_cookie_is_httponly_lax_and_secure_over_https(database_url, db):
    from tests.servers import RecordingHandler, smtp_server
    from tests.test_agency_inbox import seed_inbox

    seed_inbox(db)
    mail = RecordingHandler()
    with smtp_server(mail) as port:
        settings = make_settings(DATABASE_URL=database_url, PUBLIC_BASE_URL="https://care.ntbprov.go.id",
                                 SMTP_URL=f"smtp://127.0.0.1:{port}?starttls=0")
        app = build_agency_app(Runtime(settings=settings, db=db, dispatcher=RecordingDispatcher()))
        client = app.test_client()
        base = "https://care.ntbprov.go.id"
        page = client.get(f"{base}/agency/login")
        forms = parse(page.data).forms
        client.post(f"{base}/agency/login", data={**forms["/agency/login"], "email": PLN})
        link = Inbox(app, db, mail).link_for(PLN)
        app.extensions[MAILER_KEY].close()
        link_forms = parse(client.get(f"{base}{link}").data).forms
        response = client.post(f"{base}{link}", data=link_forms[link])
    assert response.status_code == 303
    cookie = response.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Secure" in cookie


def test_every_inbox_page_sends_a_visitor_without_a_session_to_the_login(inbox):
    client = inbox.client()
    for path in ("/agency/", "/agency/?tab=closed", "/agency/choose", "/agency/tickets/NTB-2026-000001"):
        response = client.get(path)
        assert (response.status_code, response.headers["Location"]) == (303, "/agency/login"), path
    assert client.get("/agency/login").status_code == 200


@pytest.mark.parametrize("hours", [None, "2"])
def test_a_session_ends_after_agency_session_hours(database_url, db, monkeypatch, hours):
    from tests.servers import RecordingHandler, smtp_server
    from tests.test_agency_inbox import seed_inbox

    seed_inbox(db)
    limit = int(hours or 12)
    mail = RecordingHandler()
    with smtp_server(mail) as port:
        extra = {"AGENCY_SESSION_HOURS": hours} if hours else {}
        settings = make_settings(DATABASE_URL=database_url, PUBLIC_BASE_URL=BASE,
                                 SMTP_URL=f"smtp://127.0.0.1:{port}?starttls=0", **extra)
        app = build_agency_app(Runtime(settings=settings, db=db, dispatcher=RecordingDispatcher()))
        client = app.test_client()
        try:
            sign_in(Inbox(app, db, mail), client, PLN)
        finally:
            app.extensions[MAILER_KEY].close()
    later(monkeypatch, hours=limit, minutes=-1)
    assert client.get("/agency/").status_code == 200
    later(monkeypatch, hours=limit, seconds=1)
    response = client.get("/agency/tickets/NTB-2026-000001")
    assert (response.status_code, response.headers["Location"]) == (303, "/agency/login?m=expired")
    assert "Sesi Anda sudah berakhir" in parse(client.get(response.headers["Location"]).data).text
    monkeypatch.undo()
    assert client.get("/agency/").status_code == 303  # the expired session was dropped, not just refused


def test_an_address_of_two_agencies_chooses_one(inbox):
    client = inbox.client()
    response = sign_in(inbox, client, SHARED)
    assert (response.status_code, response.headers["Location"]) == (303, "/agency/choose")
    assert client.get("/agency/").headers["Location"] == "/agency/choose"
    page = parse(client.get("/agency/choose").data)
    assert "Dinas Kesehatan" in page.text and "Dinas Pendidikan, Pemuda dan Olahraga" in page.text
    token = page.forms["/agency/choose"]["csrf_token"]
    chosen = client.post("/agency/choose", data={"csrf_token": token, "code": "DIKPORA"})
    assert (chosen.status_code, chosen.headers["Location"]) == (303, "/agency/")
    assert numbers(client.get("/agency/").data) == ["NTB-2026-000007"]
    assert client.get("/agency/tickets/NTB-2026-000006").status_code == 404  # DIKES's, not DIKPORA's
    assert client.post("/agency/choose", data={"csrf_token": token, "code": "PLN"}).status_code == 404
    assert numbers(client.get("/agency/").data) == ["NTB-2026-000007"]
    client.post("/agency/choose", data={"csrf_token": token, "code": "DIKES"})
    assert numbers(client.get("/agency/").data) == ["NTB-2026-000006"]
    assert "Ganti instansi" in parse(client.get("/agency/").data).text


def test_logout_ends_the_session(inbox, pln):
    token = form_fields(pln, "/agency/")["/agency/logout"]["csrf_token"]
    response = pln.post("/agency/logout", data={"csrf_token": token})
    assert (response.status_code, response.headers["Location"]) == (303, "/agency/login?m=out")
    assert "Anda sudah keluar" in parse(pln.get(response.headers["Location"]).data).text
    assert pln.get("/agency/").status_code == 303


def test_an_address_removed_from_the_registry_loses_access_at_once(inbox, pln):
    with inbox.db.scope() as session:
        session.execute(update(Agency).where(Agency.code == "PLN").values(emails=["baru@pln.test"]))
    response = pln.get("/agency/tickets/NTB-2026-000001")
    assert (response.status_code, response.headers["Location"]) == (303, "/agency/login?m=expired")


def refused_properly(response: Any) -> None:
    assert response.status_code == 429
    assert 1 <= int(response.headers["Retry-After"]) <= 900
    text = parse(response.data).text
    assert "Terlalu banyak permintaan tautan masuk" in text and "Coba lagi dalam 15 menit" in text


def test_rate_limit_per_address(inbox):
    client = inbox.client("10.1.1.1")
    assert [ask_for_link(client, PLN).status_code for _ in range(5)] == [200] * 5
    refused_properly(ask_for_link(client, PLN))
    refused_properly(ask_for_link(inbox.client("10.1.1.2"), PLN))  # the address is limited, whoever asks
    assert ask_for_link(client, DIKES).status_code == 200  # another address from the same client is not
    assert len(inbox.mails_to(PLN)) == 5


def test_rate_limit_per_client(inbox):
    client = inbox.client("10.2.2.2")
    assert {ask_for_link(client, f"orang{n}@contoh.test").status_code for n in range(20)} == {200}
    refused_properly(ask_for_link(client, PLN))
    assert inbox.mails_to(PLN) == []
    assert ask_for_link(inbox.client("10.2.2.3"), PLN).status_code == 200  # another client is not limited
    assert len(inbox.mails_to(PLN)) == 1


def test_only_a_local_proxy_names_the_client(inbox):
    proxied = inbox.client("127.0.0.1")
    for n in range(20):
        headers = {"X-Forwarded-For": f"203.0.113.{n}"}  # twenty people behind the local reverse proxy
        assert proxied.post("/agency/login", headers=headers, data={
            **form_fields(proxied, "/agency/login")["/agency/login"], "email": f"x{n}@contoh.test"}).status_code == 200
    forger = inbox.client("198.51.100.7")  # a remote caller cannot pretend to be someone else
    for n in range(20):
        forms = form_fields(forger, "/agency/login")
        forger.post("/agency/login", headers={"X-Forwarded-For": f"203.0.113.{100 + n}"},
                    data={**forms["/agency/login"], "email": f"y{n}@contoh.test"})
    refused_properly(ask_for_link(forger, "z@contoh.test"))


@pytest.mark.redis
def test_rate_limits_are_shared_through_redis(database_url, db):
    import redis

    url = redis_url()
    settings = make_settings(DATABASE_URL=database_url, PUBLIC_BASE_URL=BASE, REDIS_URL=url)
    apps = [build_agency_app(Runtime(settings=settings, db=db, dispatcher=RecordingDispatcher())) for _ in range(2)]
    address = f"{uuid.uuid4().hex[:12]}@contoh.test"  # unknown: nothing is mailed (and no SMTP is configured)
    statuses = []
    try:
        for n in range(6):  # two web processes, one Redis; a new client each time, so only the address counts
            client = apps[n % 2].test_client()
            client.environ_base["REMOTE_ADDR"] = f"10.{uuid.uuid4().int % 250}.{n}.{uuid.uuid4().int % 250}"
            statuses.append(ask_for_link(client, address).status_code)
    finally:
        for app in apps:
            if MAILER_KEY in app.extensions:
                app.extensions[MAILER_KEY].close()
        connection = redis.Redis.from_url(url)
        keys = [key for key in connection.scan_iter("ntbcare-sign-in*")
                if address.encode() in key or b"client/10." in key]
        if keys:
            connection.delete(*keys)
    assert statuses == [200] * 5 + [429]
