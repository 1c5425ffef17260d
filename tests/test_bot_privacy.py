"""Privacy: personal data detected and masked, PII comments hidden with the conversation continued privately,
public replies free of personal data, and ticket status shown only to the ticket's own citizen."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from bot.acknowledge import acknowledge_tickets
from bot.privacy import MASK, contains_personal_data, personal_data_kinds, scrub
from bot.sender import send_due_replies
from bot.status import owe_status_reply
from ntbcare.core.models import AuditEntry, Channel, Reply, ReplyStatus, Ticket, TicketStatus
from tests import test_bot_outbox as outbox_tests
from tests.conftest import make_settings
from tests.test_bot_outbox import FAST, answer, later, make_ticket

clock, fake, graph_client = outbox_tests.clock, outbox_tests.fake, outbox_tests.graph_client

NIK_TEXT = "Saya warga Praya, NIK 5202014512870003, bantuan sosial belum cair"
PII_TEXTS = {
    "nik": [NIK_TEXT, "nik 520201 451287 0003 mohon dicek"],
    "phone": ["hubungi 0812-3456-7890", "WA +62 812 3456 7890", "no 6281234567890", "kantor +62 370 631234",
              "telp 081234567890."],
    "email": ["kirim ke baiq.nurul@gmail.com ya", "Email: lalu_ahmad+ntb@yahoo.co.id"],
}
CLEAN_TEXTS = ["Jalan rusak di KM 12 sejak 2026", "Laporan NTB-2026-000123 belum dijawab", "Harga Rp 1.500.000",
               "RT 03 RW 05 Kelurahan Pagesangan", "jam 08.30 sampai 12.00", "@pemprov_ntb tolong"]


@pytest.mark.parametrize(("kind", "text"), [(k, t) for k, texts in PII_TEXTS.items() for t in texts])
def test_personal_data_is_found_and_masked(kind, text) -> None:  # type: ignore[no-untyped-def]
    assert kind in personal_data_kinds(text)
    masked = scrub(text)
    assert MASK in masked and not contains_personal_data(masked)


@pytest.mark.parametrize("text", CLEAN_TEXTS)
def test_ordinary_numbers_are_not_personal_data(text) -> None:  # type: ignore[no-untyped-def]
    assert not contains_personal_data(text) and scrub(text) == text


def test_comment_with_a_nik_is_hidden_and_acknowledged_only_privately(db, settings, fake, graph_client) -> None:  # type: ignore[no-untyped-def]
    ticket_id = make_ticket(db, text=NIK_TEXT)
    with db.scope() as session:
        keys = sorted(r.key for r in acknowledge_tickets(session, settings, [session.get(Ticket, ticket_id)]))
    assert keys == [f"ack-private:{ticket_id}", f"hide:{ticket_id}"]
    send_due_replies(db, settings, graph_client, policy=FAST)
    assert fake.hidden == ["555000000000111_600000000001"] and fake.comments == {}
    [private] = fake.messages
    assert "data pribadi" in private["message"]["text"]
    with db.session() as session:
        assert session.get(Ticket, ticket_id).text == NIK_TEXT  # the ticket keeps the full text
        assert session.scalars(select(AuditEntry.action).where(AuditEntry.action == "comment_hidden")).all()


def test_hiding_can_be_switched_off(database_url, db, fake, graph_client) -> None:  # type: ignore[no-untyped-def]
    settings = make_settings(DATABASE_URL=database_url, HIDE_PII_COMMENTS="false")
    ticket_id = make_ticket(db, text=NIK_TEXT)
    with db.scope() as session:
        acknowledge_tickets(session, settings, [session.get(Ticket, ticket_id)])
    send_due_replies(db, settings, graph_client, policy=FAST)
    assert fake.hidden == []
    [public] = fake.comments["555000000000111_600000000001"]
    assert "5202014512870003" not in public["message"]


def test_hiding_happens_even_with_acknowledgements_off(database_url, db, fake, graph_client) -> None:  # type: ignore[no-untyped-def]
    settings = make_settings(DATABASE_URL=database_url, ACK_COMMENT="false")
    ticket_id = make_ticket(db, text="hp saya 081234567890 jalan rusak")
    with db.scope() as session:
        acknowledge_tickets(session, settings, [session.get(Ticket, ticket_id)])
    send_due_replies(db, settings, graph_client, policy=FAST)
    assert fake.hidden == ["555000000000111_600000000001"] and fake.messages == [] and fake.comments == {}


def test_a_failed_hide_call_is_simply_repeated(db, settings, fake, graph_client) -> None:  # type: ignore[no-untyped-def]
    ticket_id = make_ticket(db, text=NIK_TEXT)
    with db.scope() as session:
        acknowledge_tickets(session, settings, [session.get(Ticket, ticket_id)])
    fake.post_faults = ["timeout"]  # the hide call is first
    send_due_replies(db, settings, graph_client, policy=FAST)
    send_due_replies(db, settings, graph_client, policy=FAST, now=later(15))
    assert fake.hidden == ["555000000000111_600000000001"]
    assert [m for m, _ in fake.calls] == ["POST", "POST", "POST"]  # hide, private ack, hide again: no read-back


def test_public_answer_never_repeats_personal_data(db, settings, fake, graph_client) -> None:  # type: ignore[no-untyped-def]
    ticket_id = make_ticket(db, text=NIK_TEXT)
    answer(db, ticket_id, "Data NIK 5202014512870003 sudah dicek; hubungi 0370-631234 atau dinsos@ntbprov.go.id")
    send_due_replies(db, settings, graph_client, policy=FAST)
    [public] = fake.comments["555000000000111_600000000001"]
    assert "5202014512870003" not in public["message"] and "dinsos@ntbprov.go.id" not in public["message"]
    assert not contains_personal_data(public["message"])


# -- status replies ------------------------------------------------------------------------------------------


def status(db, settings, psid: str, number: str | None, mid: str = "m_q1") -> str | None:  # type: ignore[no-untyped-def]
    with db.scope() as session:
        reply = owe_status_reply(session, settings, psid, number, mid)
        return None if reply is None else reply.text


def test_status_shows_the_latest_agency_answer_to_the_tickets_own_citizen(db, settings, fake, graph_client) -> None:  # type: ignore[no-untyped-def]
    ticket_id = make_ticket(db, channel=Channel.MESSENGER)
    answer(db, ticket_id, "Jawaban pertama.")
    answer(db, ticket_id, "Perbaikan selesai hari Kamis.")
    send_due_replies(db, settings, graph_client, policy=FAST)
    text = status(db, settings, "700000000000001", "NTB-2026-000001")
    assert "NTB-2026-000001" in text and "sudah ditanggapi" in text and "Perbaikan selesai hari Kamis." in text
    assert "Jawaban pertama." not in text
    report = send_due_replies(db, settings, graph_client, policy=FAST)
    assert len(report.sent) == 2  # the status, after the one rating prompt the answers owed (issue 10)
    assert sum(1 for m in fake.messages if "quick_replies" in m["message"]) == 1
    assert fake.messages[-1]["recipient"] == {"id": "700000000000001"}
    assert fake.messages[-1]["message"]["text"] == text


def test_status_of_someone_elses_ticket_reads_like_an_unknown_number(db, settings) -> None:  # type: ignore[no-untyped-def]
    make_ticket(db, 1, channel=Channel.MESSENGER, text="Rahasia: jalan rusak depan rumah saya")
    make_ticket(db, 2, channel=Channel.MESSENGER)
    foreign = status(db, settings, "700000000000002", "NTB-2026-000001", mid="m_a")
    unknown = status(db, settings, "700000000000002", "NTB-2026-999999", mid="m_b")
    assert "tidak ditemukan" in foreign and "tidak ditemukan" in unknown
    assert foreign.replace("000001", "X") == unknown.replace("999999", "X")


def test_status_without_a_number_reports_the_latest_own_ticket(db, settings) -> None:  # type: ignore[no-untyped-def]
    make_ticket(db, 3, channel=Channel.MESSENGER, status=TicketStatus.REVIEW)
    assert "NTB-2026-000003" in status(db, settings, "700000000000003", None)


def test_status_question_is_answered_once_per_message(db, settings) -> None:  # type: ignore[no-untyped-def]
    make_ticket(db, channel=Channel.MESSENGER)
    status(db, settings, "700000000000001", "NTB-2026-000001", mid="m_same")
    status(db, settings, "700000000000001", "NTB-2026-000001", mid="m_same")
    with db.session() as session:
        rows = session.scalars(select(Reply).where(Reply.kind == "status")).all()
    assert len(rows) == 1 and rows[0].status == ReplyStatus.PENDING and rows[0].key == "status:m_same"


def test_someone_without_tickets_asking_about_a_number_hears_it_is_not_found(db, settings, fake,
                                                                             graph_client) -> None:  # type: ignore[no-untyped-def]
    make_ticket(db, channel=Channel.MESSENGER, text="Rahasia: jalan rusak depan rumah saya")
    foreign = status(db, settings, "799999999999999", "NTB-2026-000001", mid="m_x")
    unknown = status(db, settings, "799999999999999", "NTB-2026-999999", mid="m_y")
    assert "tidak ditemukan" in foreign and foreign.replace("000001", "X") == unknown.replace("999999", "X")
    report = send_due_replies(db, settings, graph_client, policy=FAST)
    assert len(report.sent) == 2
    assert [m["recipient"] for m in fake.messages] == [{"id": "799999999999999"}] * 2
    assert "Rahasia" not in "".join(m["message"]["text"] for m in fake.messages)
    with db.session() as session:
        rows = session.scalars(select(Reply).where(Reply.kind == "status")).all()
    assert [(r.ticket_id, r.status) for r in rows] == [(None, ReplyStatus.SENT)] * 2


def test_someone_without_tickets_tapping_status_is_told_they_have_none(db, settings, fake, graph_client) -> None:  # type: ignore[no-untyped-def]
    text = status(db, settings, "799999999999999", None)
    assert "Belum ada laporan" in text
    send_due_replies(db, settings, graph_client, policy=FAST)
    assert fake.messages[0]["message"]["text"] == text
