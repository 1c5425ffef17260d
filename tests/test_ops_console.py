"""The operator console's pages: what needs a person on the dashboard, the overdue board and its reminder,
the banners, the supervisor pages (operators, agency contacts, templates), roles, escaping, and ``/``."""

from __future__ import annotations

import email
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select, update

from bot.outbox import PAGE_TOKEN_FLAG
from ntbcare.app import create_app
from ntbcare.core.models import (
    Agency,
    AuditEntry,
    Delivery,
    DeliveryStatus,
    MailStatus,
    Operator,
    OutboundMail,
    Reply,
    ReplyStatus,
    ReplyTemplate,
    ServiceFlag,
    Ticket,
    TicketStatus,
    utcnow,
)
from ntbcare.pipeline.bootstrap import seed_agencies
from ntbcare.pipeline.runtime import Runtime
from routing.registry import load_registry
from tests.conftest import RecordingDispatcher, make_settings
from tests.ops_helpers import csrf_token, login, make_operator
from tests.servers import RecordingHandler, smtp_server

XSS = '<script>alert("x")</script><img src=x onerror=alert(1)>'
PLN = "pengaduan@pln-ntb.test"


def ticket(session: Any, number: str, *, agency: str | None, status: str, deadline_hours: float | None = None,
           text: str = "Jalan rusak di depan sekolah") -> Ticket:
    now = utcnow()
    row = Ticket(number=number, status=status, channel="comment", text=text, agency_code=agency,
                 origin_id=f"origin-{number}", opened_at=now - timedelta(hours=30),
                 deadline_at=now + timedelta(hours=deadline_hours) if deadline_hours is not None else None)
    session.add(row)
    session.flush()
    return row


@pytest.fixture
def seeded(db: Any) -> Any:
    """The registry, PLN with a contact, two overdue PLN tickets, one on time, one in review."""
    with db.scope() as session:
        seed_agencies(session, load_registry())
        session.execute(update(Agency).where(Agency.code == "PLN").values(emails=[PLN]))
        session.execute(update(Agency).where(Agency.code == "DIKES").values(emails=["dikes@ntbprov.test"]))
        ticket(session, "NTB-2026-000001", agency="PLN", status=TicketStatus.FORWARDED, deadline_hours=-3)
        ticket(session, "NTB-2026-000002", agency="PLN", status=TicketStatus.FORWARDED, deadline_hours=-30)
        ticket(session, "NTB-2026-000003", agency="DIKES", status=TicketStatus.FORWARDED, deadline_hours=5)
        ticket(session, "NTB-2026-000004", agency=None, status=TicketStatus.REVIEW)
    return db


def supervisor(client: Any, db: Any, name: str = "Kepala Bidang") -> None:
    make_operator(db, "kepala", "kata-sandi-kepala", role="supervisor", name=name)
    assert login(client, "kepala", "kata-sandi-kepala").status_code == 303


def operator(client: Any, db: Any) -> None:
    make_operator(db, "ani", "kata-sandi-ani-1")
    assert login(client, "ani", "kata-sandi-ani-1").status_code == 303


def test_the_dashboard_counts_what_needs_a_person_and_links_each_list(client, seeded) -> None:  # type: ignore[no-untyped-def]
    with seeded.scope() as session:
        first = session.scalar(select(Ticket).where(Ticket.number == "NTB-2026-000001"))
        session.add(Reply(key="ack-public:1", ticket_id=first.id, kind="ack", channel="comment_reply",
                          target_id="c1", text="Terima kasih", status=ReplyStatus.FAILED, error="(#10) refused"))
        session.add(Delivery(body=b"{}", body_sha256="0" * 64, status=DeliveryStatus.FAILED, error="bad body"))
        session.add(OutboundMail(key="forward:x", kind="forward", ticket_id=first.id, agency_code="PLN",
                                 recipients=[PLN], status=MailStatus.FAILED, error="550 no such user"))
    operator(client, seeded)
    page = client.get("/ops/").get_data(as_text=True)
    assert '<span class="figure">1</span><span class="label">tiket menunggu tinjauan' in page
    assert '<span class="figure">2</span><span class="label">tiket terlambat di 1 instansi' in page
    assert '<span class="figure">1</span><span class="label">balasan Facebook gagal' in page
    assert '<span class="figure">1</span><span class="label">kiriman webhook gagal' in page
    assert '<span class="figure">1</span><span class="label">e-mail gagal terkirim' in page
    for href in ('href="/ops/review"', 'href="/ops/overdue"', 'href="/ops/attention/replies"',
                 'href="/ops/attention/deliveries"', 'href="/ops/attention/mails"', 'href="/ops/attention/contacts"'):
        assert href in page
    replies = client.get("/ops/attention/replies").get_data(as_text=True)
    assert "NTB-2026-000001" in replies and "(#10) refused" in replies
    assert "550 no such user" in client.get("/ops/attention/mails").get_data(as_text=True)
    assert "bad body" in client.get("/ops/attention/deliveries").get_data(as_text=True)
    contacts = client.get("/ops/attention/contacts").get_data(as_text=True)
    assert "DIKPORA" in contacts and ">PLN<" not in contacts
    assert client.get("/ops/attention/other").status_code == 404


def test_banners_say_what_stops_the_service_and_what_to_do(client, seeded) -> None:  # type: ignore[no-untyped-def]
    operator(client, seeded)
    page = client.get("/ops/").get_data(as_text=True)
    assert "FB_PAGE_ACCESS_TOKEN belum diatur" in page  # the test settings have no Page token
    assert "Tidak ada webhook" not in page
    with seeded.scope() as session:
        session.add(ServiceFlag(key=PAGE_TOKEN_FLAG, value="(#190) token expired"))
        session.add(Delivery(body=b"{}", body_sha256="1" * 64, status=DeliveryStatus.DONE,
                             received_at=utcnow() - timedelta(days=3)))
    for path in ("/ops/", "/ops/overdue", "/ops/attention/mails"):
        page = client.get(path).get_data(as_text=True)
        assert "Token Halaman Facebook ditolak" in page and "ntbcare replies resume" in page, path
        assert "Tidak ada webhook dari Facebook sejak" in page, path
    with seeded.scope() as session:
        session.add(Delivery(body=b"{}", body_sha256="2" * 64, status=DeliveryStatus.DONE))
    assert "Tidak ada webhook" not in client.get("/ops/").get_data(as_text=True)


def test_a_fresh_install_that_never_had_a_webhook_says_how_to_register_it(client, seeded) -> None:  # type: ignore[no-untyped-def]
    operator(client, seeded)
    for path in ("/ops/", "/ops/review", "/ops/tickets"):
        page = client.get(path).get_data(as_text=True)
        assert "Belum ada webhook diterima dari Facebook" in page, path
        assert "http://ntbcare.test/webhook" in page and "FB_VERIFY_TOKEN" in page
        assert "ntbcare facebook check" in page
    with seeded.scope() as session:  # a replayed body is not Facebook reaching us
        session.add(Delivery(body=b"{}", body_sha256="3" * 64, status=DeliveryStatus.DONE, source="replay"))
    assert "Belum ada webhook diterima" in client.get("/ops/").get_data(as_text=True)
    with seeded.scope() as session:
        session.add(Delivery(body=b"{}", body_sha256="4" * 64, status=DeliveryStatus.DONE))
    page = client.get("/ops/").get_data(as_text=True)
    assert "Belum ada webhook diterima" not in page and "Tidak ada webhook" not in page


def test_the_overdue_board_groups_by_agency_and_reminds_by_e_mail_once_an_hour(database_url, seeded) -> None:  # type: ignore[no-untyped-def]
    handler = RecordingHandler()
    with smtp_server(handler) as port:
        settings = make_settings(DATABASE_URL=database_url, SMTP_URL=f"smtp://127.0.0.1:{port}?starttls=0&timeout=5")
        client = create_app(runtime=Runtime(settings=settings, db=seeded,
                                            dispatcher=RecordingDispatcher())).test_client()
        operator(client, seeded)
        board = client.get("/ops/overdue").get_data(as_text=True)
        assert "2 terlambat" in board and "NTB-2026-000001" in board and "NTB-2026-000002" in board
        assert "NTB-2026-000003" not in board  # not yet late
        assert board.index("NTB-2026-000002") < board.index("NTB-2026-000001")  # the most overdue first
        token = csrf_token(client, "/ops/overdue")
        response = client.post("/ops/overdue/remind", data={"csrf_token": token, "agency": "PLN"})
        assert response.status_code == 303
        assert "Pengingat untuk 2 tiket terlambat dikirim" in client.get("/ops/overdue").get_data(as_text=True)
        assert len(handler.received) == 2
        recipients, raw = handler.received[0]
        assert recipients == [PLN]
        assert "Pengingat" in str(email.message_from_bytes(raw)["Subject"])
        again = client.post("/ops/overdue/remind", data={"csrf_token": token, "agency": "PLN"})
        assert again.status_code == 303 and len(handler.received) == 2
        assert "sudah dikirim dalam satu jam" in client.get("/ops/overdue").get_data(as_text=True)
    with seeded.session() as session:
        mails = list(session.scalars(select(OutboundMail).where(OutboundMail.kind == "reminder")))
        actors = set(session.scalars(select(AuditEntry.actor).where(AuditEntry.action == "reminder_requested")))
    assert len(mails) == 2 and all(m.status == MailStatus.SENT for m in mails) and actors == {"operator:ani"}


def test_an_operator_gets_403_on_every_supervisor_page_and_no_menu_for_them(client, seeded) -> None:  # type: ignore[no-untyped-def]
    operator(client, seeded)
    token = csrf_token(client, "/ops/")
    for path in ("/ops/operators", "/ops/contacts", "/ops/contacts/PLN", "/ops/templates"):
        response = client.get(path)
        assert response.status_code == 403 and "hanya untuk supervisor" in response.get_data(as_text=True), path
    posts = {"/ops/operators": {"username": "baru", "password": "kata-sandi-baru-1"},
             "/ops/operators/ani/password": {"password": "kata-sandi-baru-1"},
             "/ops/contacts/PLN": {"emails": "x@y.test", "head_emails": "", "version": ""},
             "/ops/templates/status": {"text": "Status {number}"}}
    for path, data in posts.items():
        assert client.post(path, data={"csrf_token": token, **data}).status_code == 403, path
    page = client.get("/ops/").get_data(as_text=True)
    assert 'href="/ops/operators"' not in page and 'href="/ops/templates"' not in page
    with seeded.session() as session:
        assert session.get(Agency, "PLN").emails == [PLN]
        assert session.get(ReplyTemplate, "status") is None
        assert session.scalar(select(Operator).where(Operator.username == "baru")) is None


def test_a_supervisor_adds_resets_and_disables_operators(client, seeded) -> None:  # type: ignore[no-untyped-def]
    supervisor(client, seeded)
    token = csrf_token(client, "/ops/operators")
    short = client.post("/ops/operators", data={"csrf_token": token, "username": "dewi", "password": "pendek",
                                                "name": "Dewi", "role": "operator"})
    assert short.status_code == 422 and "minimal 10 karakter" in short.get_data(as_text=True)
    same = client.post("/ops/operators", data={"csrf_token": token, "username": "dewi.sari", "password": "DEWI.SARI",
                                               "role": "operator"})
    assert same.status_code == 422
    added = client.post("/ops/operators", data={"csrf_token": token, "username": "dewi", "name": "Dewi Sari",
                                                "password": "kata-sandi-dewi", "role": "operator"})
    assert added.status_code == 303
    dewi = create_app(runtime=Runtime(settings=client.application.extensions["ntbcare"].settings, db=seeded,
                                      dispatcher=RecordingDispatcher())).test_client()
    assert login(dewi, "dewi", "kata-sandi-dewi").status_code == 303
    assert client.post("/ops/operators/dewi/password",
                       data={"csrf_token": token, "password": "sandi-baru-dewi"}).status_code == 303
    assert dewi.get("/ops/").status_code == 303  # a reset ends the old sessions
    assert login(dewi, "dewi", "sandi-baru-dewi").status_code == 303
    assert client.post("/ops/operators/dewi/disable", data={"csrf_token": token}).status_code == 303
    assert dewi.get("/ops/").status_code == 303
    own = client.post("/ops/operators/kepala/disable", data={"csrf_token": token})
    assert own.status_code == 422 and "akun Anda sendiri" in own.get_data(as_text=True)
    assert client.post("/ops/operators/nobody/disable", data={"csrf_token": token}).status_code == 404
    with seeded.session() as session:
        actions = list(session.scalars(select(AuditEntry.action).where(AuditEntry.actor == "operator:kepala")))
    assert {"operator_added", "operator_password_set", "operator_disabled"} <= set(actions)


def test_a_supervisor_edits_agency_contacts_and_a_stale_form_is_refused(client, seeded) -> None:  # type: ignore[no-untyped-def]
    supervisor(client, seeded)
    form = client.get("/ops/contacts/PLN").get_data(as_text=True)
    token = csrf_token(client, "/ops/contacts/PLN")
    version = form.split('name="version" value="')[1].split('"')[0]
    bad = client.post("/ops/contacts/PLN", data={"csrf_token": token, "version": version,
                                                 "emails": "bukan-alamat", "head_emails": ""})
    assert bad.status_code == 422 and "Alamat e-mail tidak sah: bukan-alamat" in bad.get_data(as_text=True)
    saved = client.post("/ops/contacts/PLN", data={
        "csrf_token": token, "version": version, "emails": "Humas@PLN-ntb.test\nhumas@pln-ntb.test, cs@pln-ntb.test",
        "head_emails": "gm@pln-ntb.test"})
    assert saved.status_code == 303
    with seeded.session() as session:
        pln = session.get(Agency, "PLN")
        assert pln.emails == ["humas@pln-ntb.test", "cs@pln-ntb.test"]
        assert pln.data["head_emails"] == ["gm@pln-ntb.test"]
    stale = client.post("/ops/contacts/PLN", data={"csrf_token": token, "version": version,
                                                   "emails": "lain@pln-ntb.test", "head_emails": ""})
    assert stale.status_code == 409 and "baru saja diubah" in stale.get_data(as_text=True)
    with seeded.session() as session:
        assert session.get(Agency, "PLN").emails == ["humas@pln-ntb.test", "cs@pln-ntb.test"]
    listing = client.get("/ops/contacts").get_data(as_text=True)
    assert "humas@pln-ntb.test, cs@pln-ntb.test" in listing and "gm@pln-ntb.test" in listing
    assert client.get("/ops/contacts/NOPE").status_code == 404


def test_a_supervisor_edits_templates_with_the_cli_placeholder_check(client, seeded) -> None:  # type: ignore[no-untyped-def]
    supervisor(client, seeded)
    token = csrf_token(client, "/ops/templates")
    unknown = client.post("/ops/templates/status", data={"csrf_token": token, "text": "Laporan {nomor}: {status}"})
    assert unknown.status_code == 422 and "Penanda tidak dikenal: {nomor}" in unknown.get_data(as_text=True)
    broken = client.post("/ops/templates/status", data={"csrf_token": token, "text": "Laporan {number"})
    assert broken.status_code == 422
    saved = client.post("/ops/templates/status", data={"csrf_token": token,
                                                       "text": "Laporan {number} sekarang: {status}."})
    assert saved.status_code == 303
    with seeded.session() as session:
        row = session.get(ReplyTemplate, "status")
        assert row.text == "Laporan {number} sekarang: {status}." and row.updated_by == "operator:kepala"
    assert "diubah oleh operator:kepala" in client.get("/ops/templates").get_data(as_text=True)
    assert client.post("/ops/templates/status/reset", data={"csrf_token": token}).status_code == 303
    with seeded.session() as session:
        assert session.get(ReplyTemplate, "status") is None
    assert client.post("/ops/templates/nope", data={"csrf_token": token, "text": "x"}).status_code == 422


def test_operator_and_agency_names_are_escaped_on_every_console_page(client, seeded) -> None:  # type: ignore[no-untyped-def]
    with seeded.scope() as session:
        session.execute(update(Agency).where(Agency.code == "PLN").values(name=f"PLN {XSS}"))
        session.execute(update(Agency).where(Agency.code == "DIKPORA").values(name=f"Dikpora {XSS}"))
    supervisor(client, seeded, name=f"Kepala {XSS}")
    make_operator(seeded, "dewi", "kata-sandi-dewi", name=f"Dewi {XSS}")
    for path in ("/ops/", "/ops/overdue", "/ops/operators", "/ops/contacts", "/ops/contacts/PLN", "/ops/templates",
                 "/ops/attention/contacts"):
        page = client.get(path).get_data(as_text=True)
        assert "<script>alert" not in page and "<img src=x" not in page, path
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in client.get("/ops/overdue").get_data(as_text=True)
    assert "Dewi &lt;script&gt;" in client.get("/ops/operators").get_data(as_text=True)


def test_the_front_page_leads_to_the_public_page_and_the_console(client) -> None:  # type: ignore[no-untyped-def]
    response = client.get("/")
    page = response.get_data(as_text=True)
    assert response.status_code == 200 and response.mimetype == "text/html" and 'lang="id"' in page
    assert 'href="/transparansi"' in page and 'href="/ops/login"' in page
    assert client.get("/no-such-page").is_json  # the machine endpoints keep their JSON errors
    assert "Masuk konsol operator" in client.get("/ops/login").get_data(as_text=True)


def test_a_reminder_after_the_deadline_says_how_long_it_is_overdue() -> None:
    from datetime import UTC, datetime

    from ntbcare.core.agency_mail import ForwardContent, build_reminder_email

    deadline = datetime(2026, 12, 3, 8, 0, tzinfo=UTC)
    content = ForwardContent(
        number="NTB-2026-000002", agency_code="PLN", agency_name="PLN UIW NTB", text="Tiang listrik miring",
        citizen_label="Warga", channel="comment", location_label="Ampenan", facebook_url=None,
        created_at=deadline - timedelta(days=2), deadline=deadline, urgent=False,
        answer_url="https://ntbcare.test/a/token", answer_link_expires_at=None)
    late = build_reminder_email(content, mail_from="NTB Care <ntbcare@ntbprov.test>", to=[PLN],
                                now=deadline + timedelta(hours=27))
    assert late["Subject"] == ("[NTB Care] Pengingat NTB-2026-000002: batas jawab 3 Des 2026 16.00 WITA "
                               "sudah lewat 1 hari 3 jam")
    for kind in ("plain", "html"):
        body = late.get_body((kind,)).get_content()  # type: ignore[union-attr]
        assert "sudah lewat 1 hari 3 jam" in body and "sisa waktu" not in body
    early = build_reminder_email(content, mail_from="NTB Care <ntbcare@ntbprov.test>", to=[PLN],
                                 now=deadline - timedelta(hours=5))
    assert "sisa waktu 5 jam" in early.get_body(("plain",)).get_content()  # type: ignore[union-attr]
