"""The agency ticket page: what it shows, what it refuses (expired, revoked, tampered, wrong agency, no CSRF
token), that GET changes nothing, that citizen text stays inert, and what each form does (with audits)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from html.parser import HTMLParser
from urllib.parse import parse_qs

import pytest
from flask import Flask
from itsdangerous import URLSafeTimedSerializer
from sqlalchemy import select, update

from ntbcare.core.db import Database
from ntbcare.core.lifecycle import audit
from ntbcare.core.links import LINK_SALT, make_agency_token
from ntbcare.core.models import (
    Agency,
    AgencyAnswer,
    AuditEntry,
    Base,
    Citizen,
    OutboundMail,
    Reply,
    Ticket,
    TicketStatus,
    utcnow,
)
from ntbcare.pipeline.runtime import Runtime
from tests.conftest import BASE_ENV, RecordingDispatcher, make_settings

SECRET = BASE_ENV["SECRET_KEY"]
OPERATOR = "ops@diskominfotik.test"
COMPLAINT = "Listrik padam sejak pagi di Pagesangan, token sudah diisi tetap mati."
XSS_PAYLOADS = [
    '<script>alert("x")</script>',
    '<img src=x onerror=alert(1)>',
    '<svg/onload=alert(1)>',
    '"><a href="javascript:alert(1)">klik</a>',
    "</textarea><script>alert(2)</script>",
    "<iframe src=//evil.test></iframe>",
    "<<script>script>alert(3)<</script>/script>",
    "<style>body{display:none}</style>",
    "<body onload=alert(4)>",
    '<div style="background:url(javascript:alert(5))">x</div>',
]


class PageParser(HTMLParser):
    """Every element and attribute the browser would see, the forms with their fields, and the text."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.forms: dict[str, dict[str, str]] = {}
        self._form: str | None = None
        self.chunks: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        self.tags.append((tag, values))
        if tag == "form":
            self._form = values.get("action") or ""
            self.forms[self._form] = {}
        elif tag == "input" and self._form is not None and values.get("name"):
            self.forms[self._form][values["name"] or ""] = values.get("value") or ""

    def handle_endtag(self, tag: str) -> None:
        if tag == "form":
            self._form = None

    def handle_data(self, data: str) -> None:
        self.chunks.append(data)

    @property
    def text(self) -> str:
        return " ".join(" ".join(self.chunks).split())


def parse(html: bytes | str) -> PageParser:
    parser = PageParser()
    parser.feed(html.decode() if isinstance(html, bytes) else html)
    return parser


def build_agency_app(runtime: Runtime) -> Flask:
    """The real app, as `ntbcare serve` builds it."""
    from ntbcare.app import create_app

    return create_app(runtime=runtime)


def seed(db: Database, *, text: str = COMPLAINT, name: str = "Baiq Nurul Hidayati", channel: str = "comment",
         status: str = TicketStatus.FORWARDED) -> int:
    """Agencies from the registry (PLN with an e-mail) and one ticket forwarded to PLN."""
    from ntbcare.pipeline.bootstrap import seed_agencies
    from routing.registry import load_registry

    now = utcnow()
    with db.scope() as session:
        if session.get(Agency, "PLN") is None:
            seed_agencies(session, load_registry())
            session.execute(update(Agency).where(Agency.code.in_(["PLN", "DIKES"]))
                            .values(emails=["pengaduan@agency.test"]))
        count = len(session.scalars(select(Ticket.id)).all())
        citizen = Citizen(fb_user_id=f"7300000000{count:04d}", display_name=name)
        ticket = Ticket(
            number=f"NTB-2026-{count + 1:06d}", status=status, channel=channel, text=text, agency_code="PLN",
            citizen=citizen, origin_id=f"origin-{count}", post_id="104000000000001_555000000000111",
            comment_id=f"555000000000111_60000000000{count}" if channel == "comment" else None,
            psid="6543210987654321" if channel == "messenger" else None,
            classification={"location_detail": {"kecamatan": {"name": "Sekarbela"},
                                                "kabkota": {"name": "Kota Mataram"}}},
            opened_at=now - timedelta(hours=3), deadline_at=now + timedelta(hours=21, minutes=30),
            forwarded_at=now - timedelta(hours=2), link_version=1,
        )
        session.add(ticket)
        audit(session, ticket, "opened", actor="citizen", to_status=TicketStatus.NEW)
        session.flush()
        return ticket.id


def token_for(ticket_id: int, agency: str = "PLN", version: int = 1, secret: str = SECRET) -> str:
    return make_agency_token(secret, ticket_id, agency, version)


def snapshot(db: Database) -> dict[str, list[tuple]]:
    with db.engine.connect() as connection:
        return {table.name: sorted(map(tuple, connection.execute(table.select()).all()), key=repr)
                for table in Base.metadata.sorted_tables}


def csrf_fields(client, path: str) -> dict[str, str]:  # type: ignore[no-untyped-def]
    page = client.get(path)
    assert page.status_code == 200, page.data[:500]
    return parse(page.data).forms


@pytest.fixture
def page_runtime(database_url: str, db: Database) -> Iterator[Runtime]:
    settings = make_settings(DATABASE_URL=database_url, OPERATOR_EMAILS=OPERATOR, FB_PAGE_ACCESS_TOKEN="page-token",
                             GRAPH_API_BASE_URL="http://127.0.0.1:9")  # nothing listens: Facebook is "down"
    runtime = Runtime(settings=settings, db=db, dispatcher=RecordingDispatcher())
    yield runtime
    from bot.client import close_graph_clients

    close_graph_clients()


@pytest.fixture
def web(page_runtime: Runtime):  # type: ignore[no-untyped-def]
    return build_agency_app(page_runtime).test_client()


def test_page_shows_what_the_agency_needs_and_only_a_reduced_identity(web, page_runtime):
    ticket_id = seed(page_runtime.db)
    token = token_for(ticket_id)
    response = web.get(f"/a/{token}")
    assert response.status_code == 200
    page = parse(response.data)
    for expected in ("NTB-2026-000001", "Menunggu jawaban instansi", "PLN UIW NTB", "WITA", "Sisa waktu 21 jam",
                     "Sekarbela, Kota Mataram", COMPLAINT, "Baiq H.", "Komentar di Halaman Facebook",
                     "Laporan diterima dari warga", "tampil PUBLIK"):
        assert expected in page.text, expected
    assert "Nurul" not in page.text and "Hidayati" not in page.text
    assert ("meta", {"name": "viewport", "content": "width=device-width, initial-scale=1"}) in page.tags
    assert set(page.forms) == {f"/a/{token}/{action}" for action in ("answer", "done", "not-ours")}
    assert all(form["csrf_token"] for form in page.forms.values())
    assert response.headers["Referrer-Policy"] == "no-referrer"
    assert response.headers["X-Frame-Options"] == "DENY"
    assert response.headers["Cache-Control"] == "no-store"
    csp = response.headers["Content-Security-Policy"]
    assert "default-src 'none'" in csp and "script-src" not in csp and "frame-ancestors 'none'" in csp


def test_overdue_ticket_says_lewat_batas(web, page_runtime):
    ticket_id = seed(page_runtime.db)
    with page_runtime.db.scope() as session:
        session.execute(update(Ticket).values(deadline_at=utcnow() - timedelta(hours=5, minutes=1)))
    text = parse(web.get(f"/a/{token_for(ticket_id)}").data).text
    assert "Lewat batas 5 jam" in text and "Sisa waktu" not in text


def test_get_changes_nothing_whatever_the_link(web, page_runtime):
    ticket_id = seed(page_runtime.db)
    token = token_for(ticket_id)
    before = snapshot(page_runtime.db)
    form_only = "hanya dapat dibuka dari tautan e-mail"
    expected = [
        (f"/a/{token}", 200, "Menunggu jawaban instansi"),
        (f"/a/{token}?ok=answer", 200, "Menunggu jawaban instansi"),
        (f"/a/{token}?ok=done", 200, "Menunggu jawaban instansi"),
        (f"/a/{token}x", 410, "Tautan tidak berlaku"),
        (f"/a/{token_for(ticket_id, version=0)}", 410, "Tautan tidak berlaku"),
        (f"/a/{token_for(ticket_id, agency='DIKES')}", 410, "Tautan tidak berlaku"),
        (f"/a/{token}/answer", 405, form_only),  # a form's address opened in a browser: the shared error page
        (f"/a/{token}/done", 405, form_only),
        (f"/a/{token}/not-ours", 405, form_only),
    ]
    for path, status, says in expected:
        response = web.get(path)
        assert (response.status_code, response.mimetype) == (status, "text/html"), path
        assert says in parse(response.data).text, path
        if status == 405:
            assert "POST" in response.headers["Allow"] and "GET" not in response.headers["Allow"], path
    assert snapshot(page_runtime.db) == before


def test_expired_link_explains_how_to_get_a_new_one_and_acts_on_nothing(web, page_runtime, monkeypatch):
    ticket_id = seed(page_runtime.db)
    token = token_for(ticket_id)
    forms = csrf_fields(web, f"/a/{token}")
    before = snapshot(page_runtime.db)
    later = utcnow() + timedelta(days=14, seconds=5)
    monkeypatch.setattr("ntbcare.web.agency.utcnow", lambda: later)
    response = web.get(f"/a/{token}")
    assert response.status_code == 410
    text = parse(response.data).text
    assert "kedaluwarsa" in text and "tautan baru" in text and OPERATOR in text
    assert "NTB-2026-000001" not in text and "Pagesangan" not in text
    posted = web.post(f"/a/{token}/answer", data={**forms[f"/a/{token}/answer"], "answer": "Sudah diperbaiki."})
    assert posted.status_code == 410
    assert snapshot(page_runtime.db) == before
    monkeypatch.setattr("ntbcare.web.agency.utcnow", lambda: later - timedelta(seconds=10))
    assert web.get(f"/a/{token}").status_code == 200  # just inside the 14 days


def test_revoked_link_says_it_is_no_longer_valid(web, page_runtime):
    ticket_id = seed(page_runtime.db)
    token = token_for(ticket_id)
    forms = csrf_fields(web, f"/a/{token}")
    with page_runtime.db.scope() as session:
        session.execute(update(Ticket).values(link_version=Ticket.link_version + 1))
    before = snapshot(page_runtime.db)
    response = web.get(f"/a/{token}")
    assert response.status_code == 410
    text = parse(response.data).text
    assert "tidak berlaku" in text and OPERATOR in text and "Balas e-mail" in text
    assert COMPLAINT not in text
    done = web.post(f"/a/{token}/done", data={**forms[f"/a/{token}/done"], "note": "selesai"})
    assert done.status_code == 410
    assert snapshot(page_runtime.db) == before
    assert web.get(f"/a/{token_for(ticket_id, version=2)}").status_code == 200


def sha1_token(ticket_id: int, agency: str = "PLN", version: int = 1) -> str:
    """A link as it was signed before links moved to HMAC-SHA256 (itsdangerous' SHA-1 default)."""
    return URLSafeTimedSerializer(SECRET, salt=LINK_SALT).dumps({"t": ticket_id, "a": agency, "v": version})


UNUSABLE_LINKS = {
    "signature": lambda tid: token_for(tid)[:-2] + ("AA" if not token_for(tid).endswith("AA") else "BB"),
    "payload": lambda tid: token_for(tid).replace(".", "x", 1),
    "other-key": lambda tid: token_for(tid, secret="another-key"),
    "sha1-signed": sha1_token,
    "no-such-ticket": lambda tid: token_for(tid + 100),
    "other-agency": lambda tid: token_for(tid, agency="DIKES"),
    "old-version": lambda tid: token_for(tid, version=0),
    "newer-version": lambda tid: token_for(tid, version=2),
    "garbage": lambda tid: "not-a-token",
}


@pytest.mark.parametrize("make_token", list(UNUSABLE_LINKS.values()), ids=list(UNUSABLE_LINKS))
def test_tampered_link_is_refused_without_ticket_data(web, page_runtime, make_token):
    ticket_id = seed(page_runtime.db)
    response = web.get(f"/a/{make_token(ticket_id)}")
    assert response.status_code == 410
    text = parse(response.data).text
    assert "tidak berlaku" in text and COMPLAINT not in text and "NTB-2026" not in text
    assert response.headers["Referrer-Policy"] == "no-referrer"


def test_no_unusable_link_tells_a_wrong_ticket_from_a_wrong_agency_or_an_old_link(web, page_runtime):
    """The attack: probe ticket ids with a link of one's own agency (or an old one) and read the answer. Every
    way a link cannot open the ticket answers alike, for the page and every action."""
    ticket_id = seed(page_runtime.db)
    seed(page_runtime.db)  # a second ticket, so "no such ticket" and "not yours" both exist around the first
    valid = token_for(ticket_id)
    csrf = csrf_fields(web, f"/a/{valid}")[f"/a/{valid}/done"]
    before = snapshot(page_runtime.db)
    answers = {}
    for name, make_token in UNUSABLE_LINKS.items():
        token = make_token(ticket_id)
        responses = [web.get(f"/a/{token}")] + [
            web.post(f"/a/{token}/{action}", data={**csrf, "answer": "Sudah.", "note": "Sudah.", "reason": "Bukan."})
            for action in ("answer", "done", "not-ours")]
        answers[name] = [(r.status_code, r.mimetype, r.data) for r in responses]
    assert len({repr(answer) for answer in answers.values()}) == 1, {k: v[0][:2] for k, v in answers.items()}
    assert answers["no-such-ticket"][0][0] == 410
    assert snapshot(page_runtime.db) == before
    assert web.get(f"/a/{valid}").status_code == 200


def test_link_for_another_agency_does_not_open_the_ticket(web, page_runtime):
    ticket_id = seed(page_runtime.db)
    response = web.get(f"/a/{token_for(ticket_id, agency='DIKES')}")
    assert response.status_code == 410
    assert COMPLAINT not in parse(response.data).text


def test_every_post_outside_the_webhook_needs_a_csrf_token(web, page_runtime):
    ticket_id = seed(page_runtime.db)
    token = token_for(ticket_id)
    web.get(f"/a/{token}")  # a session exists; only the token is missing
    before = snapshot(page_runtime.db)
    app = web.application
    # The webhook (HMAC-signed) and Open311's write API (an api_key, no cookie) are machine endpoints: no
    # browser session authorises them, so they carry no CSRF token; Open311 refuses a POST without a key.
    posts = [rule for rule in app.url_map.iter_rules() if "POST" in (rule.methods or set())
             and not rule.rule.startswith(("/webhook", "/open311/"))]
    keyless = web.post("/open311/v2/requests.json", data={"service_code": "PUPR", "description": "x" * 20})
    assert keyless.status_code in (400, 403) and keyless.is_json
    assert {rule.rule for rule in posts} >= {"/a/<token>/answer", "/a/<token>/done", "/a/<token>/not-ours"}
    for rule in posts:
        path = rule.rule.replace("<token>", token)
        for data in ({"answer": "x", "note": "x", "reason": "x"}, {"csrf_token": "forged", "answer": "x"}):
            response = web.post(path, data=data)
            assert response.status_code == 400, path
            assert "Formulir kedaluwarsa" in parse(response.data).text
    assert snapshot(page_runtime.db) == before


def test_citizen_text_and_name_are_rendered_inert(web, page_runtime):
    payload = "\n".join(XSS_PAYLOADS)
    ticket_id = seed(page_runtime.db, text=f"Jalan rusak {payload}", name='<script>alert("n")</script> Budi')
    clean_id = seed(page_runtime.db)
    dirty = parse(web.get(f"/a/{token_for(ticket_id)}").data)
    clean = parse(web.get(f"/a/{token_for(clean_id)}").data)
    assert [tag for tag, _ in dirty.tags] == [tag for tag, _ in clean.tags]  # no element added by citizen text
    for tag, attrs in dirty.tags:
        assert tag not in {"script", "iframe", "svg", "img", "style", "body"} or tag == "body" and not attrs
        assert not any(name.startswith("on") for name in attrs)
        assert not any("javascript:" in (value or "") for value in attrs.values())
    for needle in XSS_PAYLOADS:
        assert " ".join(needle.split()) in dirty.text


def test_not_ours_without_target_goes_back_to_review_and_revokes_the_link(web, page_runtime):
    ticket_id = seed(page_runtime.db)
    token = token_for(ticket_id)
    forms = csrf_fields(web, f"/a/{token}")
    response = web.post(f"/a/{token}/not-ours", data={**forms[f"/a/{token}/not-ours"],
                                                      "reason": "Jaringan desa dikelola koperasi, bukan PLN"})
    assert response.status_code == 200
    assert "dikembalikan kepada operator" in parse(response.data).text
    with page_runtime.db.session() as session:
        ticket = session.get(Ticket, ticket_id)
        assert (ticket.status, ticket.agency_code, ticket.link_version) == (TicketStatus.REVIEW, None, 2)
        [stored] = session.scalars(select(AgencyAnswer)).all()
        assert (stored.action, stored.agency_code, stored.text) == ("not_ours", "PLN",
                                                                    "Jaringan desa dikelola koperasi, bukan PLN")
        actors = session.scalars(select(AuditEntry.actor).where(AuditEntry.action == "review")).all()
    assert actors == ["agency:PLN"]
    assert web.get(f"/a/{token}").status_code == 410


def test_not_ours_with_a_named_target_routes_it_on(web, page_runtime):
    ticket_id = seed(page_runtime.db)
    token = token_for(ticket_id)
    forms = csrf_fields(web, f"/a/{token}")
    response = web.post(f"/a/{token}/not-ours", data={**forms[f"/a/{token}/not-ours"],
                                                      "reason": "Ini urusan puskesmas", "suggested": "DIKES"})
    assert response.status_code == 200
    with page_runtime.db.session() as session:
        ticket = session.get(Ticket, ticket_id)
        assert (ticket.status, ticket.agency_code) == (TicketStatus.ROUTED, "DIKES")
        [mail] = session.scalars(select(OutboundMail)).all()
        assert (mail.kind, mail.agency_code) == ("forward", "DIKES")


@pytest.mark.parametrize(("fields", "message"), [
    ({"reason": ""}, "Alasan wajib diisi"),
    ({"reason": "bukan kami", "suggested": "NOPE"}, "Pilih instansi tujuan"),
    ({"reason": "bukan kami", "suggested": "PLN"}, "Pilih instansi tujuan"),
])
def test_not_ours_form_errors_change_nothing(web, page_runtime, fields, message):
    ticket_id = seed(page_runtime.db)
    token = token_for(ticket_id)
    forms = csrf_fields(web, f"/a/{token}")
    before = snapshot(page_runtime.db)
    response = web.post(f"/a/{token}/not-ours", data={**forms[f"/a/{token}/not-ours"], **fields})
    assert response.status_code == 422
    assert message in parse(response.data).text
    assert snapshot(page_runtime.db) == before


def test_done_needs_an_answer_or_a_note_and_then_closes_the_ticket(web, page_runtime):
    ticket_id = seed(page_runtime.db)
    token = token_for(ticket_id)
    forms = csrf_fields(web, f"/a/{token}")
    refused = web.post(f"/a/{token}/done", data={**forms[f"/a/{token}/done"], "note": "  "})
    assert refused.status_code == 422 and "Belum ada jawaban" in parse(refused.data).text
    closed = web.post(f"/a/{token}/done", data={**forms[f"/a/{token}/done"],
                                                "note": "Petugas sudah memperbaiki trafo pukul 14.00"})
    assert closed.status_code == 303
    page = parse(web.get(closed.headers["Location"]).data)
    assert "Laporan ditandai selesai" in page.text and "Selesai" in page.text
    assert page.forms == {}  # nothing left to do on a closed ticket
    with page_runtime.db.session() as session:
        assert session.get(Ticket, ticket_id).status == TicketStatus.CLOSED
        [entry] = session.scalars(select(AuditEntry).where(AuditEntry.action == "agency_done")).all()
        assert (entry.actor, entry.from_status, entry.to_status) == ("agency:PLN", "forwarded", "closed")
        assert session.scalar(select(AgencyAnswer.action)) == "done"
    late = web.post(f"/a/{token}/answer", data={**forms[f"/a/{token}/answer"], "answer": "Sudah beres"})
    assert late.status_code == 409


def post_answer(web, token: str, text: str):  # type: ignore[no-untyped-def]
    forms = csrf_fields(web, f"/a/{token}")
    return web.post(f"/a/{token}/answer", data={**forms[f"/a/{token}/answer"], "answer": text})


def test_answer_is_stored_with_its_reply_even_while_facebook_is_down(web, page_runtime):
    ticket_id = seed(page_runtime.db)
    token = token_for(ticket_id)
    answer = "Petugas PLN Rayon Ampenan sudah menuju lokasi. Mohon maaf atas gangguannya."
    response = post_answer(web, token, answer)
    assert response.status_code == 303
    page = parse(web.get(response.headers["Location"]).data)
    assert "Jawaban Anda tersimpan" in page.text and answer in page.text
    assert "Sedang dikirim ke Facebook" in page.text
    assert post_answer(web, token, answer).status_code == 303  # a double tap
    with page_runtime.db.session() as session:
        ticket = session.get(Ticket, ticket_id)
        assert ticket.status == TicketStatus.FORWARDED  # "answered" only once Facebook accepts the reply
        [stored] = session.scalars(select(AgencyAnswer)).all()
        assert (stored.action, stored.agency_code, stored.text, stored.link_version) == ("answer", "PLN", answer, 1)
        [reply] = session.scalars(select(Reply)).all()
        assert (reply.kind, reply.target_id, reply.status) == ("answer", ticket.comment_id, "pending")
        assert answer in reply.text and ticket.number in reply.text
        [entry] = session.scalars(select(AuditEntry).where(AuditEntry.action == "agency_answer")).all()
        assert entry.actor == "agency:PLN" and entry.detail["answer_id"] == stored.id


def test_accepted_answer_makes_the_ticket_answered_at_once(web, page_runtime):
    import responses

    ticket_id = seed(page_runtime.db)
    with page_runtime.db.session() as session:
        comment_id = session.get(Ticket, ticket_id).comment_id
    with responses.RequestsMock() as graph:
        graph.post(f"http://127.0.0.1:9/v25.0/{comment_id}/comments", json={"id": f"{comment_id}_reply1"})
        response = post_answer(web, token_for(ticket_id), "Gangguan sudah diperbaiki pukul 13.10 WITA.")
        assert response.status_code == 303
        assert len(graph.calls) == 1
        message = parse_qs(graph.calls[0].request.body)["message"][0]
        assert message == ("Tanggapan PLN UIW NTB atas laporan NTB-2026-000001:\n"
                           "Gangguan sudah diperbaiki pukul 13.10 WITA.")
    with page_runtime.db.session() as session:
        ticket = session.get(Ticket, ticket_id)
        assert ticket.status == TicketStatus.ANSWERED and ticket.answered_at is not None
        assert session.scalar(select(Reply.graph_id)) == f"{comment_id}_reply1"
    page = parse(web.get(response.headers["Location"]).data)
    assert "Sudah dijawab" in page.text and "Sudah tampil di Facebook" in page.text
    assert "Dijawab" in page.text and "Sisa waktu" not in page.text


@pytest.mark.parametrize(("text", "message"), [
    ("", "Jawaban wajib diisi"),
    ("x" * 2001, "paling banyak 2000 karakter"),
    ("Data pelapor NIK 5271012345670001 sudah kami cek", "hapus NIK"),
    ("Silakan hubungi pelapor di 0812-3456-7890", "hapus nomor telepon"),
    ("Kirim foto ke budi.warga@gmail.com", "hapus alamat e-mail"),
])
def test_answer_form_errors_change_nothing(web, page_runtime, text, message):
    ticket_id = seed(page_runtime.db)
    token = token_for(ticket_id)
    forms = csrf_fields(web, f"/a/{token}")
    before = snapshot(page_runtime.db)
    response = web.post(f"/a/{token}/answer", data={**forms[f"/a/{token}/answer"], "answer": text})
    assert response.status_code == 422
    page = parse(response.data)
    assert message in page.text
    assert snapshot(page_runtime.db) == before


def test_messenger_answer_is_private_so_a_contact_number_is_allowed(web, page_runtime):
    ticket_id = seed(page_runtime.db, channel="messenger")
    token = token_for(ticket_id)
    assert "pesan Facebook Messenger" in parse(web.get(f"/a/{token}").data).text
    assert post_answer(web, token, "Silakan hubungi posko kami di 0812-3456-7890").status_code == 303
    with page_runtime.db.session() as session:
        [reply] = session.scalars(select(Reply)).all()
    assert (reply.channel, reply.target_id) == ("messenger", "6543210987654321")
    assert "0812-3456-7890" in reply.text


@pytest.mark.parametrize(("hours_ago", "warned"), [(23, False), (25, True)])
def test_messenger_answer_outside_the_24_hour_window_is_announced(web, page_runtime, hours_ago, warned):
    ticket_id = seed(page_runtime.db, channel="messenger")
    with page_runtime.db.scope() as session:
        session.execute(update(Ticket).values(last_citizen_message_at=utcnow() - timedelta(hours=hours_ago)))
    text = parse(web.get(f"/a/{token_for(ticket_id)}").data).text
    assert ("di luar batas waktu Messenger" in text) is warned


def test_forms_work_over_https_without_a_referer_and_the_cookie_is_locked_down(database_url, db):
    settings = make_settings(DATABASE_URL=database_url, PUBLIC_BASE_URL="https://care.ntbprov.go.id")
    web = build_agency_app(Runtime(settings=settings, db=db, dispatcher=RecordingDispatcher())).test_client()
    ticket_id = seed(db)
    token = token_for(ticket_id)
    page = web.get(f"https://care.ntbprov.go.id/a/{token}")
    cookie = page.headers["Set-Cookie"]
    assert "Secure" in cookie and "HttpOnly" in cookie and "SameSite=Lax" in cookie
    forms = parse(page.data).forms
    response = web.post(f"https://care.ntbprov.go.id/a/{token}/done",  # no Referer: the page forbids sending it
                        data={**forms[f"/a/{token}/done"], "note": "Sudah ditangani di lapangan"})
    assert response.status_code == 303


def test_the_signed_webhook_still_needs_no_csrf_token(web, page_runtime):
    from tests.conftest import Poster

    assert Poster(web)("feed__comment__add").status_code == 200
