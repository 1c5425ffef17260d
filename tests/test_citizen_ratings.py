"""Ratings and reopening through the real pipeline (webhook → worker → tickets), on SQLite and PostgreSQL:
a rating tap is stored per ticket and agency, "Belum selesai" (tapped or written) reopens the answered ticket
with a fresh link, a restarted deadline and a new forward e-mail owed, and anything else written after a
ticket is closed starts a new ticket."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select, update

from ingest.ratings import says_not_fixed
from ntbcare.core.models import (
    Agency,
    AuditEntry,
    OutboundMail,
    Rating,
    Reply,
    Ticket,
    TicketStatus,
    utcnow,
)
from tests.conftest import drain

CITIZEN = "6543210987654321"
COMPLAINT = "Listrik padam sejak pagi di Kelurahan Pagesangan Mataram, token sudah diisi tetap mati. Tolong PLN"


def message(mid: str, text: str, payload: str | None = None) -> dict:
    stamp = int(utcnow().timestamp() * 1000)
    body: dict = {"mid": mid, "text": text}
    if payload:
        body["quick_reply"] = {"payload": payload}
    return {"object": "page", "entry": [{"id": "104000000000001", "time": stamp, "messaging": [
        {"sender": {"id": CITIZEN}, "recipient": {"id": "104000000000001"}, "timestamp": stamp, "message": body}]}]}


@pytest.fixture
def answered(post, runtime) -> Ticket:  # type: ignore[no-untyped-def]
    """A citizen's Messenger complaint, routed to PLN and answered (as the sender marks it)."""
    with runtime.db.scope() as session:
        from ntbcare.pipeline.bootstrap import seed_agencies
        from routing.registry import load_registry

        seed_agencies(session, load_registry())
        session.execute(update(Agency).where(Agency.code == "PLN").values(emails=["pengaduan@pln-ntb.test"]))
    assert post(message("m_complaint", COMPLAINT)).status_code == 200
    drain(runtime, route=True)
    with runtime.db.scope() as session:
        ticket = session.scalars(select(Ticket)).one()
        assert ticket.agency_code == "PLN"
        ticket.status, ticket.answered_at = TicketStatus.ANSWERED, utcnow()
        ticket.deadline_at = utcnow() - timedelta(hours=1)
        session.flush()
        session.expunge(ticket)
    return ticket


def deliver(post, runtime, body: dict) -> None:  # type: ignore[no-untyped-def]
    assert post(body).status_code == 200
    drain(runtime, route=True)


def test_a_satisfied_tap_is_stored_for_the_ticket_and_agency_and_changes_nothing_else(post, runtime, answered):
    deliver(post, runtime, message("m_rate1", "Puas", f"RATING:puas:{answered.number}"))
    with runtime.db.session() as session:
        [rating] = session.scalars(select(Rating)).all()
        ticket = session.get(Ticket, answered.id)
        assert (rating.ticket_id, rating.agency_code, rating.value) == (answered.id, "PLN", "puas")
        assert ticket.status == TicketStatus.ANSWERED and ticket.text == COMPLAINT
        assert len(session.scalars(select(Ticket)).all()) == 1


@pytest.mark.parametrize(("text", "payload"), [("Belum selesai", "RATING:belum_selesai:{number}"),
                                               ("pak lampunya masih mati sampai sekarang", None)])
def test_not_fixed_reopens_with_a_fresh_link_a_new_deadline_and_a_new_email(post, runtime, answered, text, payload):
    deliver(post, runtime, message("m_rate2", text, payload.format(number=answered.number) if payload else None))
    with runtime.db.session() as session:
        ticket = session.get(Ticket, answered.id)
        assert ticket.status == TicketStatus.ROUTED and ticket.answered_at is None
        assert ticket.link_version == answered.link_version + 1
        assert ticket.deadline_at > utcnow()
        keys = session.scalars(select(OutboundMail.key).where(OutboundMail.kind == "forward")).all()
        assert sorted(keys) == [f"forward:{ticket.id}:PLN:1", f"forward:{ticket.id}:PLN:2"]
        assert session.scalars(select(Rating.value)).all() == ["belum_selesai"]
        assert session.scalars(select(AuditEntry.action).where(AuditEntry.action == "reopened")).all() == ["reopened"]
        notices = session.scalars(select(Reply.key).where(Reply.kind == "reopened")).all()
        assert notices == [f"reopened:{ticket.id}:2"]
        assert len(session.scalars(select(Ticket)).all()) == 1
    deliver(post, runtime, message("m_rate3", text, payload.format(number=answered.number) if payload else None))
    with runtime.db.session() as session:  # the ticket is no longer answered: no second reopening
        assert session.get(Ticket, answered.id).link_version == answered.link_version + 1


def test_writing_again_after_close_starts_a_new_ticket_unless_it_is_a_rating(post, runtime, answered):
    with runtime.db.scope() as session:
        session.execute(update(Ticket).values(status=TicketStatus.CLOSED))
    deliver(post, runtime, message("m_new", "Jalan di depan SDN 3 Cakranegara berlubang besar, mohon diperbaiki"))
    deliver(post, runtime, message("m_rate4", "Kurang puas", f"RATING:kurang_puas:{answered.number}"))
    with runtime.db.session() as session:
        old, new = session.scalars(select(Ticket).order_by(Ticket.id)).all()
        assert old.status == TicketStatus.CLOSED and "Cakranegara" in new.text and "Kurang" not in new.text
        assert session.scalars(select(Rating.value)).all() == ["kurang_puas"]


@pytest.mark.parametrize(("text", "expected"), [
    ("Belum selesai", True), ("blm diperbaiki pak", True), ("tidak ada perbaikan sama sekali", True),
    ("jalannya masih rusak", True), ("Sudah selesai, terima kasih", False),
    ("Lampu jalan di Gerung belum menyala sejak minggu lalu, padahal sudah lapor ke desa tapi belum ditangani "
     "juga sampai hari ini", False),
])
def test_what_counts_as_saying_it_is_not_fixed(text: str, expected: bool) -> None:
    assert says_not_fixed(text) is expected


PAGE_ANSWER = "555000000000111_888000000000050"  # the page's public answer under the citizen's comment
COMMENT = "555000000000111_888000000000001"  # the citizen's comment that opened the ticket
POST = "104000000000001_555000000000111"


def comment_reply(n: int, text: str, parent: str = COMMENT, author: str = "7300000000000042") -> dict:
    """A citizen's comment on the page's post; ``parent`` is what Facebook names: a reply under the page's answer
    arrives flattened under the citizen's own comment (``COMMENT``), a reply to the answer itself is rarer."""
    stamp = int(utcnow().timestamp())
    value = {"from": {"id": author, "name": "Baiq Nurul"}, "message": text, "item": "comment",
             "verb": "add", "post_id": POST, "parent_id": parent,
             "comment_id": COMMENT if parent == POST else f"555000000000111_88800000000006{n}",
             "created_time": stamp}
    return {"object": "page", "entry": [{"id": "104000000000001", "time": stamp,
                                         "changes": [{"field": "feed", "value": value}]}]}


@pytest.fixture
def answered_comment(post, runtime) -> Ticket:  # type: ignore[no-untyped-def]
    """A citizen's comment ticket for PLN whose answer the page posted publicly under the comment."""
    with runtime.db.scope() as session:
        from ntbcare.pipeline.bootstrap import seed_agencies
        from routing.registry import load_registry

        seed_agencies(session, load_registry())
        session.execute(update(Agency).where(Agency.code == "PLN").values(emails=["pengaduan@pln-ntb.test"]))
    deliver(post, runtime, comment_reply(0, COMPLAINT, parent=POST))
    with runtime.db.scope() as session:
        ticket = session.scalars(select(Ticket)).one()
        assert ticket.comment_id == COMMENT
        ticket.status, ticket.answered_at = TicketStatus.ANSWERED, utcnow()
        session.add(Reply(key="answer:1", ticket=ticket, kind="answer", channel="comment_reply",
                          target_id=ticket.comment_id, text="Tanggapan PLN", status="sent", attempts=1,
                          graph_id=PAGE_ANSWER))
        session.flush()
        session.expunge(ticket)
    return ticket


def close(runtime, ticket: Ticket) -> None:  # type: ignore[no-untyped-def]
    with runtime.db.scope() as session:
        session.execute(update(Ticket).where(Ticket.id == ticket.id).values(status=TicketStatus.CLOSED))


@pytest.mark.parametrize("parent", [COMMENT, PAGE_ANSWER], ids=["flattened", "under_the_answer"])
def test_a_reply_under_the_pages_answer_saying_not_fixed_reopens_the_ticket(post, runtime, answered_comment, parent):
    deliver(post, runtime, comment_reply(1, "belum diperbaiki pak, masih gelap", parent=parent))
    with runtime.db.session() as session:
        [ticket] = session.scalars(select(Ticket)).all()  # joined, not a new ticket
        assert ticket.status == TicketStatus.ROUTED and ticket.link_version == answered_comment.link_version + 1
        assert "belum diperbaiki" in ticket.text
        assert session.scalars(select(Rating.value)).all() == ["belum_selesai"]


@pytest.mark.parametrize("name", ["feed__comment__reply__under_answer",
                                  "feed__comment__reply__under_answer__older_form"])
def test_the_flattened_reply_facebook_delivers_reopens_the_answered_ticket(post, runtime, answered_comment, name):
    deliver(post, runtime, name)
    with runtime.db.session() as session:
        [ticket] = session.scalars(select(Ticket)).all()
        assert ticket.status == TicketStatus.ROUTED and "masih gelap" in ticket.text
        assert session.scalars(select(Rating.value)).all() == ["belum_selesai"]
        keys = session.scalars(select(OutboundMail.key).where(OutboundMail.kind == "forward")).all()
        assert sorted(keys) == [f"forward:{ticket.id}:PLN:1", f"forward:{ticket.id}:PLN:2"]  # a fresh link


@pytest.mark.parametrize("parent", [COMMENT, PAGE_ANSWER], ids=["flattened", "under_the_answer"])
def test_an_unclear_reply_under_the_pages_answer_goes_to_operators_to_confirm(post, runtime, answered_comment, parent):
    deliver(post, runtime, comment_reply(2, "Kok masih begini ya, saya sudah menunggu dari bulan lalu, kapan "
                                            "petugasnya datang lagi ke dusun kami?", parent=parent))
    with runtime.db.session() as session:
        [ticket] = session.scalars(select(Ticket)).all()
        assert (ticket.status, ticket.review_reason) == (TicketStatus.REVIEW, "maybe_not_fixed")
        assert session.scalars(select(Rating)).all() == []


def test_a_reply_saying_not_fixed_under_a_closed_comment_ticket_reopens_it(post, runtime, answered_comment):
    close(runtime, answered_comment)
    deliver(post, runtime, comment_reply(3, "masih rusak pak", parent=COMMENT))
    with runtime.db.session() as session:
        [ticket] = session.scalars(select(Ticket)).all()
        assert ticket.status == TicketStatus.ROUTED and ticket.link_version == answered_comment.link_version + 1
        assert session.scalars(select(Rating.value)).all() == ["belum_selesai"]


NEW_PROBLEM = "Sekarang lampu jalan di depan SDN 3 Cakranegara yang mati, sudah seminggu gelap gulita"


@pytest.mark.parametrize("parent", [COMMENT, PAGE_ANSWER], ids=["flattened", "under_the_answer"])
def test_writing_again_under_a_closed_comment_ticket_starts_a_new_ticket(post, runtime, answered_comment, parent):
    close(runtime, answered_comment)
    deliver(post, runtime, comment_reply(4, NEW_PROBLEM, parent=parent))
    deliver(post, runtime, comment_reply(5, "Tepatnya di Jalan Pejanggik, dekat pertigaan", parent=parent))
    with runtime.db.session() as session:
        old, new = session.scalars(select(Ticket).order_by(Ticket.id)).all()
        assert old.status == TicketStatus.CLOSED and old.text == COMPLAINT
        assert (new.channel, new.comment_id, new.post_id) == ("comment", "555000000000111_888000000000064", POST)
        # the same citizen's next reply in that thread joins the new ticket, as Messenger joins the open one
        assert new.text.splitlines() == [NEW_PROBLEM, "Tepatnya di Jalan Pejanggik, dekat pertigaan"]
        assert new.citizen_id == old.citizen_id
        assert session.scalars(select(Rating)).all() == []


def test_a_reply_under_an_answered_comment_ticket_that_says_nothing_of_the_answer_joins_it(
        post, runtime, answered_comment):
    deliver(post, runtime, comment_reply(6, "Terima kasih banyak atas tanggapannya, PLN", parent=COMMENT))
    with runtime.db.session() as session:
        [ticket] = session.scalars(select(Ticket)).all()
        assert ticket.status == TicketStatus.ANSWERED and "Terima kasih" in ticket.text
