"""The console's review queue, ticket search, ticket page and every ticket action (assign, not-complaint,
merge, split, reopen, close, note, resend-link, retry-reply) through the browser's forms, on SQLite and
PostgreSQL: what the operator sees, what is stored and audited, and the clear message when an action
cannot be done."""

from __future__ import annotations

import email
import email.policy
import re
from typing import Any

import pytest
from click.testing import CliRunner
from sqlalchemy import func, select

from ntbcare.app import create_app
from ntbcare.cli import cli
from ntbcare.core.models import (
    AuditEntry,
    Event,
    OutboundMail,
    RoutingDecision,
    Ticket,
    TicketMessage,
    TicketNote,
    TicketStatus,
)
from ntbcare.pipeline.runtime import Runtime
from ntbcare.pipeline.ticket_claim import version_of
from tests import test_bot_outbox
from tests.conftest import BASE_ENV, RecordingDispatcher, make_settings
from tests.ops_helpers import csrf_token, login, make_operator
from tests.ops_tickets_seed import PLN, make_ticket, message_ids, seed_agencies_with_contacts, ticket_of
from tests.servers import RecordingHandler, smtp_server

fake = test_bot_outbox.fake


@pytest.fixture
def seeded(db: Any) -> Any:
    seed_agencies_with_contacts(db)
    make_operator(db, "ani", "kata-sandi-ani-1", name="Ani")
    return db


@pytest.fixture
def mailbox(database_url: str, seeded: Any) -> Any:
    """A signed-in operator's client whose app mails through a loopback SMTP server (``.messages``)."""
    handler = RecordingHandler()
    with smtp_server(handler) as port:
        settings = make_settings(DATABASE_URL=database_url, SMTP_URL=f"smtp://127.0.0.1:{port}?starttls=0&timeout=5")
        client = create_app(runtime=Runtime(settings=settings, db=seeded,
                                            dispatcher=RecordingDispatcher())).test_client()
        assert login(client, "ani", "kata-sandi-ani-1").status_code == 303
        client.handler = handler
        yield client


def signed_in(client: Any) -> Any:
    assert login(client, "ani", "kata-sandi-ani-1").status_code == 303
    return client


def act(client: Any, db: Any, number: str, action: str, **fields: str) -> str:
    """Post one action form as the browser does (with the ticket version the page showed); the page it lands on."""
    data = {"csrf_token": csrf_token(client, "/ops/review"), "seen": version_of(ticket_of(db, number)), **fields}
    response = client.post(f"/ops/tickets/{number}/{action}", data=data)
    assert response.status_code == 303, response.status_code
    return client.get(response.headers["Location"]).get_data(as_text=True)


def audit_actions(db: Any, number: str) -> list[tuple[str, str]]:
    with db.session() as session:
        ticket = session.scalars(select(Ticket).where(Ticket.number == number)).one()
        return [(e.action, e.actor) for e in session.scalars(
            select(AuditEntry).where(AuditEntry.ticket_id == ticket.id).order_by(AuditEntry.id))]


def test_the_review_queue_lists_review_tickets_oldest_first_with_why_and_suggestions(client, seeded) -> None:  # type: ignore[no-untyped-def]
    make_ticket(seeded, 1, hours_ago=2, text="Lampu jalan mati di Ampenan")
    make_ticket(seeded, 2, hours_ago=50, text="Air PDAM keruh", reason="no_contacts", candidates=[])
    make_ticket(seeded, 3, status=TicketStatus.FORWARDED, agency="PLN", text="Sudah diteruskan")
    page = signed_in(client).get("/ops/review").get_data(as_text=True)

    assert page.index("NTB-2026-000002") < page.index("NTB-2026-000001")  # oldest first
    assert "NTB-2026-000003" not in page
    assert "Klasifikasi kurang yakin" in page and "Instansi belum punya kontak e-mail" in page
    assert 'data-key="1">1 · PLN UIW NTB (61%)</button>' in page
    assert 'name="agency" value="PUPRPKP"' in page and "Budi Santoso" in page
    assert 'src="/static/ops_review.js"' in page and "<script>" not in page


def test_assigning_from_the_queue_forwards_at_once_and_reassigning_revokes_the_old_link(mailbox, seeded) -> None:  # type: ignore[no-untyped-def]
    number = make_ticket(seeded, 1)
    page = act(mailbox, seeded, number, "assign", agency="PLN", next="/ops/review")

    assert "Tiket NTB-2026-000001 diteruskan ke" in page and "Antrean tinjauan kosong" in page
    [(to, _content)] = mailbox.handler.received
    assert to == [PLN]
    ticket = ticket_of(seeded, number)
    assert ticket.agency_code == "PLN" and ticket.status == TicketStatus.FORWARDED and ticket.link_version == 1
    assert ("routed", "operator:ani") in audit_actions(seeded, number)

    act(mailbox, seeded, number, "assign", agency="PUPRPKP")
    again = ticket_of(seeded, number)
    assert again.agency_code == "PUPRPKP" and again.link_version == 2  # the PLN link no longer opens it
    assert len(mailbox.handler.received) == 2
    with seeded.session() as session:
        kinds = list(session.scalars(select(RoutingDecision.kind).order_by(RoutingDecision.id)))
    assert kinds == ["assign", "reassign"]


def test_bad_input_is_a_clear_message_and_changes_nothing(client, seeded) -> None:  # type: ignore[no-untyped-def]
    number = make_ticket(seeded, 1)
    make_ticket(seeded, 2)
    signed_in(client)
    before = version_of(ticket_of(seeded, number))
    assert "Kode instansi &#39;NOPE&#39; tidak dikenal" in act(client, seeded, number, "assign", agency="nope")
    assert "Tiket tujuan &#39;NTB-2026-999999&#39; tidak ditemukan" in act(client, seeded, number, "merge",
                                                                          into="NTB-2026-999999")
    assert "tidak dapat digabung ke dirinya sendiri" in act(client, seeded, number, "merge", into=number)
    assert "Catatan kosong" in act(client, seeded, number, "note", note="   ")
    assert "tidak punya balasan Facebook yang gagal" in act(client, seeded, number, "retry-reply")
    assert "belum diteruskan ke instansi" in act(client, seeded, number, "resend-link")
    assert "masih terbuka" in act(client, seeded, number, "reopen")
    assert version_of(ticket_of(seeded, number)) == before

    act(client, seeded, "NTB-2026-000002", "merge", into=number)
    merged_target = act(client, seeded, number, "merge", into="NTB-2026-000002")
    assert "sudah digabung ke tiket lain" in merged_target
    token = csrf_token(client, "/ops/review")
    assert client.post(f"/ops/tickets/{number}/explode", data={"csrf_token": token}).status_code == 404
    missing = client.post("/ops/tickets/NTB-2026-777777/close", data={"csrf_token": token})
    assert missing.status_code == 303 and missing.headers["Location"] == "/ops/tickets"
    assert "Tiket &#39;NTB-2026-777777&#39; tidak ditemukan" in client.get("/ops/tickets").get_data(as_text=True)


def test_an_action_on_a_missing_ticket_goes_back_to_a_page_that_shows_why(client, seeded) -> None:  # type: ignore[no-untyped-def]
    make_ticket(seeded, 1)
    signed_in(client)
    token = csrf_token(client, "/ops/review")
    for action, fields in (("assign", {"agency": "PLN"}), ("not-complaint", {}), ("merge", {"into": "NTB-2026-000001"}),
                           ("note", {"note": "x"}), ("retry-reply", {})):
        response = client.post(f"/ops/tickets/NTB-2026-888888/{action}",
                               data={"csrf_token": token, "next": "/ops/review", **fields})
        assert response.status_code == 303 and response.headers["Location"] == "/ops/review", action
        page = client.get("/ops/review")
        assert page.status_code == 200
        assert "Tiket &#39;NTB-2026-888888&#39; tidak ditemukan. Periksa nomornya." in page.get_data(as_text=True)
    # A form that asked to come back to the missing ticket's own page lands on the search instead.
    response = client.post("/ops/tickets/NTB-2026-888888/close",
                           data={"csrf_token": token, "next": "/ops/tickets/NTB-2026-888888"}, follow_redirects=True)
    assert response.status_code == 200 and response.request.path == "/ops/tickets"
    assert "tidak ditemukan" in response.get_data(as_text=True)


def test_not_complaint_reopen_close_and_a_note_are_audited_as_the_operator(client, seeded) -> None:  # type: ignore[no-untyped-def]
    number = make_ticket(seeded, 1)
    signed_in(client)
    assert "ditandai bukan pengaduan" in act(client, seeded, number, "not-complaint")
    assert ticket_of(seeded, number).status == TicketStatus.NOT_COMPLAINT
    assert "dibuka kembali" in act(client, seeded, number, "reopen")
    assert ticket_of(seeded, number).status == TicketStatus.REVIEW
    assert "Dibuka kembali oleh operator" in client.get("/ops/review").get_data(as_text=True)
    assert "ditutup" in act(client, seeded, number, "close")
    assert ticket_of(seeded, number).status == TicketStatus.CLOSED
    page = act(client, seeded, number, "note", note="Warga sudah ditelepon, menunggu foto")
    assert "Warga sudah ditelepon, menunggu foto" in page and "Catatan internal" in page
    assert [a for a in audit_actions(seeded, number) if a[1] == "operator:ani"] == [
        ("not_complaint", "operator:ani"), ("reopened", "operator:ani"), ("closed_by_operator", "operator:ani"),
        ("note_added", "operator:ani")]


def test_a_note_never_reaches_the_agency_page(client, seeded, runtime) -> None:  # type: ignore[no-untyped-def]
    from routing.forwarding import answer_link

    number = make_ticket(seeded, 1, status=TicketStatus.FORWARDED, agency="PLN")
    signed_in(client)
    act(client, seeded, number, "note", note="RAHASIA-INTERNAL nomor HP warga 0812")
    with seeded.session() as session:
        link = answer_link(runtime.settings, session.get(Ticket, ticket_of(seeded, number).id), "PLN")
    agency_page = client.get(link.removeprefix(runtime.settings.public_base_url)).get_data(as_text=True)
    assert "NTB-2026-000001" in agency_page and "RAHASIA-INTERNAL" not in agency_page


def test_merge_keeps_every_message_and_the_survivor_and_tickets_show_include_them(client, seeded, database_url) -> None:  # type: ignore[no-untyped-def]
    survivor = make_ticket(seeded, 1, messages=2, text="Jalan berlubang di Jl. Pejanggik")
    merged = make_ticket(seeded, 2, messages=3, text="Lubang besar Jl. Pejanggik depan kantor")
    third = make_ticket(seeded, 3, messages=1, text="Pejanggik rusak")
    signed_in(client)
    act(client, seeded, third, "merge", into=merged)  # merged earlier into the one that is merged next
    assert "digabung ke NTB-2026-000001" in act(client, seeded, merged, "merge", into=survivor)

    gone = ticket_of(seeded, merged)
    assert gone.status == TicketStatus.MERGED and gone.merged_into_id == ticket_of(seeded, survivor).id
    assert ticket_of(seeded, third).merged_into_id == ticket_of(seeded, survivor).id
    assert len(message_ids(seeded, merged)) == 3  # nothing moved, nothing lost
    page = client.get(f"/ops/tickets/{survivor}").get_data(as_text=True)
    for text in ("Lubang besar Jl. Pejanggik depan kantor (tambahan 2)", "Pejanggik rusak",
                 "Jalan berlubang di Jl. Pejanggik (tambahan 1)"):
        assert text in page
    assert "(dari tiket NTB-2026-000002)" in page
    assert "sudah digabung ke" in client.get(f"/ops/tickets/{merged}").get_data(as_text=True)
    assert "sudah digabung" in act(client, seeded, merged, "close")

    shown = CliRunner().invoke(cli, ["tickets", "show", survivor], env={**BASE_ENV, "DATABASE_URL": database_url,
                                                                         "REDIS_URL": ""})
    assert shown.exit_code == 0, shown.output
    assert shown.output.count("[from NTB-2026-000002]") == 3 and "[from NTB-2026-000003]" in shown.output
    assert "merged into this one: NTB-2026-000002, NTB-2026-000003" in shown.output


def test_split_moves_one_message_to_a_new_ticket_in_review(client, seeded) -> None:  # type: ignore[no-untyped-def]
    number = make_ticket(seeded, 1, messages=3, text="Lampu jalan mati")
    signed_in(client)
    with seeded.session() as session:
        second = session.scalars(select(TicketMessage).where(TicketMessage.external_id == "c-1-1")).one()
        opening = session.scalars(select(TicketMessage).where(TicketMessage.external_id == "c-1-0")).one()
    assert "Pesan pembuka tidak dapat dipisah" in act(client, seeded, number, "split", message=str(opening.id))
    page = act(client, seeded, number, "split", message=str(second.id))

    new_number = re.search(r"menjadi tiket baru (NTB-\d{4}-\d{6})", page).group(1)
    assert message_ids(seeded, number) == ["c-1-0", "c-1-2"] and message_ids(seeded, new_number) == ["c-1-1"]
    new = ticket_of(seeded, new_number)
    assert new.status == TicketStatus.REVIEW and new.text == "Lampu jalan mati (tambahan 1)"
    assert "Dipisah dari tiket lain" in client.get("/ops/review").get_data(as_text=True)
    assert "bukan bagian dari tiket" in act(client, seeded, number, "split", message=str(second.id))


def test_resend_link_mails_the_agency_again(mailbox, seeded) -> None:  # type: ignore[no-untyped-def]
    number = make_ticket(seeded, 1, status=TicketStatus.FORWARDED, agency="PLN")
    assert "dikirim ulang ke" in act(mailbox, seeded, number, "resend-link")
    assert "dikirim ulang ke" in act(mailbox, seeded, number, "resend-link")
    assert len(mailbox.handler.received) == 2
    body = email.message_from_bytes(mailbox.handler.received[0][1], policy=email.policy.default)
    assert "/a/" in body.get_body(("plain",)).get_content()
    with seeded.session() as session:
        assert session.scalar(select(func.count()).select_from(OutboundMail).where(
            OutboundMail.status == "sent")) == 2
    page = mailbox.get(f"/ops/tickets/{number}").get_data(as_text=True)
    assert page.count("E-mail laporan ke instansi") == 2 and "terkirim" in page


def test_a_stale_form_is_refused_with_a_message_and_nothing_changes(client, seeded) -> None:  # type: ignore[no-untyped-def]
    number = make_ticket(seeded, 1)
    signed_in(client)
    stale = version_of(ticket_of(seeded, number))
    act(client, seeded, number, "not-complaint")  # a colleague decided first
    response = client.post(f"/ops/tickets/{number}/assign", data={
        "csrf_token": csrf_token(client, "/ops/review"), "seen": stale, "agency": "PLN"}, follow_redirects=True)
    assert response.status_code == 200
    assert "baru saja diubah orang lain" in response.get_data(as_text=True)
    ticket = ticket_of(seeded, number)
    assert ticket.status == TicketStatus.NOT_COMPLAINT and ticket.agency_code is None


def test_forms_need_the_csrf_token_and_get_changes_nothing(client, seeded) -> None:  # type: ignore[no-untyped-def]
    number = make_ticket(seeded, 1)
    signed_in(client)
    before = version_of(ticket_of(seeded, number))
    for action in ("assign", "not-complaint", "merge", "split", "reopen", "close", "note", "resend-link",
                   "revoke-links", "retry-reply"):
        assert client.post(f"/ops/tickets/{number}/{action}", data={"agency": "PLN", "note": "x"}).status_code == 400
        assert client.post(f"/ops/tickets/{number}/{action}", data={"csrf_token": "forged", "agency": "PLN",
                                                                    "note": "x"}).status_code == 400
        assert client.get(f"/ops/tickets/{number}/{action}").status_code in (404, 405)
    assert client.post("/ops/review/bulk", data={"action": "not-complaint", "numbers": number}).status_code == 400
    for path in ("/ops/review", "/ops/tickets", f"/ops/tickets/{number}", f"/ops/tickets?q={number}"):
        assert client.get(path).status_code == 200
    assert version_of(ticket_of(seeded, number)) == before
    with seeded.session() as session:
        assert session.scalar(select(func.count()).select_from(TicketNote)) == 0


def test_pages_need_a_session(client, seeded) -> None:  # type: ignore[no-untyped-def]
    number = make_ticket(seeded, 1)
    for path in ("/ops/review", "/ops/tickets", f"/ops/tickets/{number}"):
        response = client.get(path)
        assert response.status_code == 303 and "/ops/login" in response.headers["Location"]


def test_bulk_actions_decide_every_selected_ticket_and_report_the_rest(client, seeded) -> None:  # type: ignore[no-untyped-def]
    numbers = [make_ticket(seeded, n) for n in (1, 2, 3)]
    signed_in(client)
    act(client, seeded, numbers[2], "close")
    response = client.post("/ops/review/bulk", data={"csrf_token": csrf_token(client, "/ops/review"),
                                                     "action": "not-complaint", "numbers": numbers},
                           follow_redirects=True)
    page = response.get_data(as_text=True)
    assert "2 tiket diproses: NTB-2026-000001, NTB-2026-000002." in page
    assert "Tiket NTB-2026-000003 sudah tidak di antrean tinjauan" in page
    assert [ticket_of(seeded, n).status for n in numbers] == [TicketStatus.NOT_COMPLAINT] * 2 + [TicketStatus.CLOSED]
    nothing = client.post("/ops/review/bulk", data={"csrf_token": csrf_token(client, "/ops/review"),
                                                    "action": "assign", "agency": "PLN"}, follow_redirects=True)
    assert "Belum ada tiket yang dipilih" in nothing.get_data(as_text=True)


def test_suggested_duplicates_sit_beside_the_ticket_with_a_merge_button(client, seeded) -> None:  # type: ignore[no-untyped-def]
    make_ticket(seeded, 1, location="5271", text="Lampu jalan mati di depan Pasar Kebon Roek sejak minggu lalu")
    make_ticket(seeded, 2, location="5271", status=TicketStatus.FORWARDED, agency="PLN", hours_ago=30,
                text="Lampu jalan di depan Pasar Kebon Roek mati sejak minggu lalu")
    make_ticket(seeded, 3, location="5271", status=TicketStatus.FORWARDED, agency="PLN", hours_ago=24 * 20,
                text="Lampu jalan di depan Pasar Kebon Roek mati sejak minggu lalu")  # older than 14 days
    make_ticket(seeded, 4, location="5201", status=TicketStatus.FORWARDED, agency="PLN",
                text="Lampu jalan di depan Pasar Kebon Roek mati sejak minggu lalu")  # another place
    page = signed_in(client).get("/ops/review").get_data(as_text=True)
    item = page[page.index('id="t-NTB-2026-000001"'):]
    assert "Gabung ke NTB-2026-000002" in item
    assert "Gabung ke NTB-2026-000003" not in page and "Gabung ke NTB-2026-000004" not in page
    act(client, seeded, "NTB-2026-000001", "merge", into="NTB-2026-000002")
    assert ticket_of(seeded, "NTB-2026-000001").status == TicketStatus.MERGED


def test_ticket_search_filters_and_pages(client, seeded) -> None:  # type: ignore[no-untyped-def]
    make_ticket(seeded, 1, text="Jembatan putus di Lombok Utara", name="Siti Aminah", hours_ago=3)
    make_ticket(seeded, 2, text="Listrik padam 100% seharian", status=TicketStatus.FORWARDED, agency="PLN",
                channel="messenger", hours_ago=20)
    overdue = make_ticket(seeded, 3, text="Tiang listrik miring", status=TicketStatus.FORWARDED, agency="PLN",
                          hours_ago=100)
    for n in range(4, 60):
        make_ticket(seeded, n, text=f"Keluhan umum nomor {n}", hours_ago=200 + n)
    signed_in(client)

    def numbers(query: str) -> list[str]:
        return re.findall(r'<td data-label="Nomor"><a [^>]*>(NTB-\d{4}-\d{6})</a>',
                          client.get(f"/ops/tickets?{query}").get_data(as_text=True))

    assert numbers("q=NTB-2026-000002") == ["NTB-2026-000002"]
    assert numbers("q=jembatan") == ["NTB-2026-000001"]
    assert numbers("q=aminah") == ["NTB-2026-000001"]
    assert numbers("q=100%25") == ["NTB-2026-000002"]  # % is a character, not a wildcard
    assert numbers("agency=PLN&status=forwarded") == ["NTB-2026-000002", overdue]
    assert numbers("channel=messenger") == ["NTB-2026-000002"]
    assert numbers("overdue=1") == [overdue]
    assert numbers("q=listrik&overdue=1") == [overdue]
    today = ticket_of(seeded, "NTB-2026-000001").opened_at
    from ntbcare.core.lifecycle import WITA
    day = today.astimezone(WITA).date().isoformat()
    assert "NTB-2026-000001" in numbers(f"from={day}&to={day}") and overdue not in numbers(f"from={day}&to={day}")
    first, second = numbers(""), numbers("page=2")
    assert len(first) == 50 and len(second) == 9 and not set(first) & set(second)
    assert first[0] == "NTB-2026-000001"  # newest first
    page = client.get("/ops/tickets?status=bogus&from=not-a-date&page=x")
    assert page.status_code == 200


def test_retry_reply_sends_a_failed_reply_again_once_through_the_outbox(database_url, seeded, fake) -> None:  # type: ignore[no-untyped-def]
    from bot.client import close_graph_clients
    from ntbcare.core.models import Reply, ReplyStatus
    from tests import test_bot_outbox as outbox

    ticket_id = outbox.make_ticket(seeded, 7)
    [reply_id] = outbox.answer(seeded, ticket_id, "Tiang listrik sudah diganti.")
    with seeded.scope() as session:
        reply = session.get(Reply, reply_id)
        reply.status, reply.attempts, reply.error = ReplyStatus.FAILED, 5, "(#2) Service temporarily unavailable"
    settings = make_settings(DATABASE_URL=database_url, FB_PAGE_ACCESS_TOKEN=outbox.TOKEN,
                             GRAPH_API_BASE_URL=outbox.BASE, GRAPH_API_VERSION=outbox.VERSION)
    client = create_app(runtime=Runtime(settings=settings, db=seeded, dispatcher=RecordingDispatcher())).test_client()
    signed_in(client)
    try:
        page = client.get("/ops/tickets/NTB-2026-000007").get_data(as_text=True)
        assert "Kirim ulang balasan ini" in page and "(#2) Service temporarily unavailable" in page
        assert "1 balasan Facebook tiket NTB-2026-000007 dikirim ulang" in act(client, seeded, "NTB-2026-000007",
                                                                             "retry-reply", reply=str(reply_id))
        assert "tidak punya balasan Facebook yang gagal" in act(client, seeded, "NTB-2026-000007", "retry-reply")
    finally:
        close_graph_clients()
    [posted] = fake.comments["555000000000111_600000000007"]
    assert "Tiang listrik sudah diganti." in posted["message"]
    with seeded.session() as session:
        assert session.get(Reply, reply_id).status == ReplyStatus.SENT
    assert "tampil di Facebook" in client.get("/ops/tickets/NTB-2026-000007").get_data(as_text=True)
    assert ("reply_retry", "operator:ani") in audit_actions(seeded, "NTB-2026-000007")


def test_the_timeline_shows_webhook_events_and_audit_entries(client, seeded, runtime) -> None:  # type: ignore[no-untyped-def]
    """A comment arrives through the signed webhook, is edited, and an operator acts: the ticket page shows each
    webhook event with its outcome and each audit entry with who did it."""
    from tests.conftest import Poster, drain

    post = Poster(client)
    assert post("feed__comment__add").status_code == 200
    drain(runtime)
    assert post("feed__comment__edited").status_code == 200  # the citizen edits the comment
    drain(runtime)
    with seeded.session() as session:
        ticket = session.scalars(select(Ticket)).one()
        kinds = [e.kind for e in session.scalars(select(Event).where(Event.ticket_id == ticket.id).order_by(Event.id))]
    assert len(kinds) == 2
    signed_in(client)
    act(client, seeded, ticket.number, "not-complaint")
    page = client.get(f"/ops/tickets/{ticket.number}").get_data(as_text=True)
    timeline = page[page.index('class="timeline"'):]
    for kind in kinds:
        assert f"<strong>Kejadian Facebook: {kind}</strong>" in timeline
    assert '<span class="badge">applied</span>' in timeline
    assert "Riwayat: not_complaint (" in timeline and "· operator:ani" in timeline
    assert re.search(r"Riwayat: \w+ \(- → new\)", timeline)  # the ticket's opening, by the system
