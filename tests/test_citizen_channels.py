"""Issue 10 rules through the real pipeline (webhook → stored delivery → worker → tickets), on SQLite and
PostgreSQL: both payload forms, mentions, what is kept of attachments, Messenger edits and unsent messages,
duplicate-only deliveries, and a photo that waits for the text that follows it."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from sqlalchemy import select, update

from ntbcare.core.models import (
    AuditEntry,
    Delivery,
    Event,
    Ticket,
    TicketHold,
    TicketMessage,
    TicketStatus,
    utcnow,
)
from routing.deadlines import deadline_for
from tests.conftest import drain, fixture_bytes

PAGE_OWN_OLDER_FORM = ("feed__comment__add__from_page__older_form", "feed__photo__add__from_page__older_form",
                       "feed__video__add__from_page__older_form", "feed__comment__edited__from_page__older_form",
                       "feed__post__add__older_form", "feed__post__edited__older_form",
                       "mention__post__add__from_page__older_form")
PHOTO_URL = "https://scontent.xx.fbcdn.net/v/t1.15752-9/img.jpg?_nc_cat=1"
CITIZEN = "6543210987654321"


def tickets(runtime) -> list[Ticket]:  # type: ignore[no-untyped-def]
    with runtime.db.session() as session:
        return list(session.scalars(select(Ticket).order_by(Ticket.id)).all())


def deliver(post, runtime, *bodies: str | dict, route: bool = False) -> None:  # type: ignore[no-untyped-def]
    for body in bodies:
        assert post(body).status_code == 200
    drain(runtime, route=route)


def messenger(mid: str, text: str | None = None, attachments: list | None = None, ms: int = 0) -> dict:
    message: dict = {"mid": mid}
    if text is not None:
        message["text"] = text
    if attachments:
        message["attachments"] = attachments
    stamp = 1767240000001 + ms
    return {"object": "page", "entry": [{"id": "104000000000001", "time": stamp + 100, "messaging": [
        {"sender": {"id": CITIZEN}, "recipient": {"id": "104000000000001"}, "timestamp": stamp,
         "message": message}]}]}


def test_the_pages_own_actions_in_the_older_form_never_make_tickets(post, runtime):
    deliver(post, runtime, *PAGE_OWN_OLDER_FORM)
    assert tickets(runtime) == []
    with runtime.db.session() as session:
        reasons = set(session.scalars(select(Event.reason)))
    assert reasons == {"written by the page itself: never a ticket"}


def test_a_citizens_comment_in_the_older_form_keeps_the_citizens_name(post, runtime):
    deliver(post, runtime, "feed__comment__add__older_form")
    [ticket] = tickets(runtime)
    with runtime.db.session() as session:
        assert session.get(Ticket, ticket.id).citizen.display_name == "Baiq Nurul"
    assert ticket.channel == "comment" and "Sembalun" in ticket.text


def test_one_comment_in_both_forms_is_one_ticket(post, runtime):
    deliver(post, runtime, "feed__comment__add", "feed__comment__add__older_form")
    assert len(tickets(runtime)) == 1


def test_a_mention_becomes_a_ticket_on_channel_mention_answerable_under_the_comment(post, runtime):
    deliver(post, runtime, "mention__comment__add", "mention__post__add__from")
    comment_ticket, post_ticket = tickets(runtime)
    assert (comment_ticket.channel, post_ticket.channel) == ("mention", "mention")
    assert comment_ticket.comment_id == "600700800900100_700800900100200"
    assert post_ticket.comment_id is None and post_ticket.post_id == "7300000000000205_600700800900103"
    assert "Praya-Keruak" in comment_ticket.text
    deliver(post, runtime, "mention__comment__add")  # redelivered: nothing new
    assert len(tickets(runtime)) == 2


def test_a_shared_location_keeps_coordinates_and_a_map_link_and_links_their_titles(post, runtime):
    deliver(post, runtime, "messaging__message__location")
    [ticket] = tickets(runtime)
    [location] = ticket.attachments
    assert (location["lat"], location["long"]) == (-8.583069, 116.116608)
    assert location["map_url"].startswith("https://www.openstreetmap.org/?mlat=-8.583069&mlon=116.116608")
    deliver(post, runtime, "messaging__message__fallback_older", "messaging__message__files")
    [ticket] = tickets(runtime)  # same citizen, open ticket: joined
    by_type = {a["type"]: a for a in ticket.attachments}
    assert by_type["fallback"]["title"] == "Banjir Bima"
    assert by_type["file"]["url"].startswith("https://cdn.fbsbx.com/") and by_type["audio"]["url"]


def test_a_messenger_edit_updates_the_text_and_keeps_the_history_and_unsent_is_marked(post, runtime):
    deliver(post, runtime, "messaging__message__text", "messaging__message_edit")
    [ticket] = tickets(runtime)
    assert ticket.text == "Saya mau lapor pungli di kantor Desa Lingsar"
    with runtime.db.session() as session:
        [edit] = session.scalars(select(AuditEntry).where(AuditEntry.action == "text_edited")).all()
        assert edit.detail["previous"] == "Saya mau lapor pungli di kantor desa"
    deliver(post, runtime, "messaging__message__unsent")
    with runtime.db.session() as session:
        message = session.scalars(select(TicketMessage).where(TicketMessage.external_id == "m_Q1w2E3r4T5y6")).one()
        assert message.removed
        assert session.scalars(select(AuditEntry.action).where(AuditEntry.action == "message_unsent")).all()
        events = session.scalars(select(Event.reason).where(Event.kind == "message.unsent")).all()
    assert events == ["message unsent by the citizen"]


def test_a_delivery_made_only_of_duplicates_says_which_event_it_repeats(post, runtime):
    deliver(post, runtime, "feed__comment__add")
    payload = json.loads(fixture_bytes("feed__comment__add"))
    payload["entry"][0]["time"] += 30  # Facebook's retry: same event, another body
    deliver(post, runtime, payload)
    with runtime.db.session() as session:
        first_event = session.scalars(select(Event.id)).one()
        notes = session.scalars(select(Delivery.note).order_by(Delivery.id)).all()
    assert notes == [None, f"duplicate of event #{first_event}"]


def test_a_photo_waits_for_the_text_that_follows_and_is_routed_with_it(post, runtime):
    deliver(post, runtime, messenger("m_photo1", attachments=[{"type": "image", "payload": {"url": PHOTO_URL}}]),
            route=True)
    [ticket] = tickets(runtime)
    assert ticket.status == TicketStatus.NEW  # not classified on its empty text
    with runtime.db.session() as session:
        assert session.get(TicketHold, ticket.id) is not None
    text = "Jalan provinsi di Desa Sembalun rusak parah dan berlubang, mohon segera diperbaiki Dinas PUPR"
    deliver(post, runtime, messenger("m_text1", text=text, ms=60_000), route=True)
    [ticket] = tickets(runtime)
    assert ticket.status != TicketStatus.NEW and ticket.status != TicketStatus.NOT_COMPLAINT
    assert ticket.text == text and ticket.attachments[0]["url"] == PHOTO_URL
    with runtime.db.session() as session:
        assert session.get(TicketHold, ticket.id) is None


def test_a_photo_with_no_text_after_the_grace_goes_to_review_never_chatter(post, runtime):
    deliver(post, runtime, messenger("m_photo2", attachments=[{"type": "image", "payload": {"url": PHOTO_URL}}]),
            route=True)
    runtime.pipeline.route(older_than=0)
    assert tickets(runtime)[0].status == TicketStatus.NEW  # still within ATTACHMENT_GRACE_SECONDS
    with runtime.db.scope() as session:
        session.execute(update(TicketHold).values(until=utcnow() - timedelta(seconds=1)))
    runtime.pipeline.route(older_than=0)
    [ticket] = tickets(runtime)
    assert (ticket.status, ticket.review_reason) == (TicketStatus.REVIEW, "no_text")


def test_a_very_short_text_waits_for_the_words_that_follow(post, runtime):
    deliver(post, runtime, messenger("m_short1", text="Min, tolong"), route=True)
    [ticket] = tickets(runtime)
    assert ticket.status == TicketStatus.NEW  # two words: not classified on their own
    with runtime.db.session() as session:
        assert session.get(TicketHold, ticket.id) is not None
    text = "Lampu jalan di Jalan Pejanggik Mataram mati sejak seminggu, gelap dan rawan begal"
    deliver(post, runtime, messenger("m_short2", text=text, ms=40_000), route=True)
    [ticket] = tickets(runtime)
    assert ticket.status not in (TicketStatus.NEW, TicketStatus.NOT_COMPLAINT)
    assert ticket.text.splitlines() == ["Min, tolong", text]
    with runtime.db.session() as session:
        assert session.get(TicketHold, ticket.id) is None


PHOTO_COMMENT = ("feed__comment__add__photo", "feed__comment__add__after_photo")


@pytest.mark.parametrize("form", ["", "__older_form"])
def test_a_photo_comment_and_the_authors_next_comment_on_the_post_are_one_ticket(post, runtime, form):
    photo, words = (name + form for name in PHOTO_COMMENT)
    deliver(post, runtime, photo, route=True)
    [ticket] = tickets(runtime)
    assert ticket.status == TicketStatus.NEW
    deliver(post, runtime, words, route=True)
    [ticket] = tickets(runtime)  # joined the waiting photo, not a second ticket
    assert ticket.status not in (TicketStatus.NEW, TicketStatus.NOT_COMPLAINT)
    assert "Lendang Bajur" in ticket.text and [a["type"] for a in ticket.attachments] == ["photo"]
    with runtime.db.session() as session:
        assert session.get(TicketHold, ticket.id) is None
        kinds = session.scalars(select(TicketMessage.kind).where(TicketMessage.ticket_id == ticket.id)).all()
    assert sorted(kinds) == ["comment", "comment"]


def test_a_photo_comment_and_its_words_in_one_delivery_are_one_ticket(post, runtime):
    photo, words = (json.loads(fixture_bytes(name)) for name in PHOTO_COMMENT)
    photo["entry"][0]["changes"] += words["entry"][0]["changes"]
    deliver(post, runtime, photo, route=True)
    [ticket] = tickets(runtime)
    assert ticket.status not in (TicketStatus.NEW, TicketStatus.NOT_COMPLAINT)
    assert "Lendang Bajur" in ticket.text and len(ticket.attachments) == 1


def test_after_the_window_or_from_someone_else_the_next_comment_is_its_own_ticket(post, runtime):
    deliver(post, runtime, "feed__comment__add__photo", route=True)
    other = json.loads(fixture_bytes("feed__comment__add__after_photo"))
    other["entry"][0]["changes"][0]["value"].update({"from": {"id": "7300000000000099", "name": "Inaq Sumi"},
                                                     "comment_id": "555000000000111_888000000000008"})
    deliver(post, runtime, other, route=True)
    assert len(tickets(runtime)) == 2  # another citizen's comment never joins the photo
    with runtime.db.scope() as session:
        session.execute(update(TicketHold).values(until=utcnow() - timedelta(seconds=1)))
    deliver(post, runtime, "feed__comment__add__after_photo", route=True)
    assert len(tickets(runtime)) == 3  # the wait is over: the words are a ticket of their own
    runtime.pipeline.route(older_than=0)
    assert tickets(runtime)[0].review_reason == "no_text"  # and the photo goes to operators, never chatter


def test_the_deadline_counts_from_receipt_not_from_an_old_payload_clock(post, runtime):
    written = utcnow() - timedelta(days=30)  # a payload whose own clock is a month old (a late retry, a replay)
    body = messenger("m_old1", text="Jalan provinsi di Desa Sembalun rusak parah dan berlubang, mohon segera "
                                    "diperbaiki Dinas PUPR")
    event = body["entry"][0]["messaging"][0]
    event["timestamp"] = body["entry"][0]["time"] = int(written.timestamp() * 1000)
    deliver(post, runtime, body, route=True)
    [ticket] = tickets(runtime)
    with runtime.db.session() as session:
        received = session.scalars(select(Delivery.received_at)).one()
    assert abs((ticket.opened_at - written).total_seconds()) < 1  # the citizen's time, for display
    assert ticket.received_at == received
    assert ticket.deadline_at == deadline_for(ticket.tier, received, runtime.pipeline.deadline_policy)
    assert ticket.deadline_at > utcnow()  # not overdue at birth
