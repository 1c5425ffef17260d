"""Acknowledgements: a public reply plus the one private reply for comments and visitor posts, a message for
Messenger tickets, switchable per channel, worded from operator-editable Indonesian templates."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from bot.acknowledge import acknowledge_tickets
from bot.sender import send_due_replies
from bot.texts import DEFAULT_TEMPLATES, render
from ntbcare.core.models import AuditEntry, Channel, Reply, ReplyStatus, ReplyTemplate, Ticket, TicketStatus
from tests import test_bot_outbox as outbox_tests
from tests.conftest import make_settings
from tests.test_bot_outbox import FAST, make_ticket

clock, fake, graph_client = outbox_tests.clock, outbox_tests.fake, outbox_tests.graph_client


def ack(db, settings, *ticket_ids: int) -> list[str]:  # type: ignore[no-untyped-def]
    with db.scope() as session:
        tickets = [session.get(Ticket, i) for i in ticket_ids]
        return sorted(r.key for r in acknowledge_tickets(session, settings, tickets))


def test_comment_gets_a_public_reply_and_one_private_reply_with_the_number(db, settings, fake, graph_client) -> None:  # type: ignore[no-untyped-def]
    ticket_id = make_ticket(db)
    assert ack(db, settings, ticket_id) == [f"ack-private:{ticket_id}", f"ack-public:{ticket_id}"]
    report = send_due_replies(db, settings, graph_client, policy=FAST)
    assert len(report.sent) == 2
    [public] = fake.comments["555000000000111_600000000001"]
    assert "NTB-2026-000001" in public["message"] and public["from"]["id"] == graph_client.page_id
    [private] = fake.messages
    assert private["recipient"] == {"comment_id": "555000000000111_600000000001"}
    assert private["messaging_type"] == "RESPONSE" and "NTB-2026-000001" in private["message"]["text"]
    assert private["message"]["metadata"] == f"ntbcare:ack-private:{ticket_id}"
    with db.session() as session:
        assert session.get(Ticket, ticket_id).status == TicketStatus.FORWARDED  # an ack is not an answer
        sent = session.scalars(select(AuditEntry).where(AuditEntry.action == "reply_sent")).all()
    assert len(sent) == 2


def test_visitor_post_is_acknowledged_under_the_post_and_privately_by_post_id(db, settings, fake,
                                                                              graph_client) -> None:  # type: ignore[no-untyped-def]
    ticket_id = make_ticket(db, channel=Channel.POST)
    ack(db, settings, ticket_id)
    send_due_replies(db, settings, graph_client, policy=FAST)
    assert list(fake.comments) == ["555000000000111_600000000001"]
    assert fake.messages[0]["recipient"] == {"post_id": "555000000000111_600000000001"}


def test_messenger_ticket_gets_a_message(db, settings, fake, graph_client) -> None:  # type: ignore[no-untyped-def]
    ticket_id = make_ticket(db, channel=Channel.MESSENGER)
    assert ack(db, settings, ticket_id) == [f"ack-messenger:{ticket_id}"]
    send_due_replies(db, settings, graph_client, policy=FAST)
    [message] = fake.messages
    assert message["recipient"] == {"id": "700000000000001"} and message["messaging_type"] == "RESPONSE"
    assert "NTB-2026-000001" in message["message"]["text"] and fake.comments == {}


def test_acknowledging_twice_owes_nothing_new(db, settings, fake, graph_client) -> None:  # type: ignore[no-untyped-def]
    ticket_id = make_ticket(db)
    ack(db, settings, ticket_id)
    send_due_replies(db, settings, graph_client, policy=FAST)
    ack(db, settings, ticket_id)
    send_due_replies(db, settings, graph_client, policy=FAST)
    assert len(fake.posts()) == 2
    with db.session() as session:
        assert len(session.scalars(select(Reply)).all()) == 2


@pytest.mark.parametrize(("switch", "channel"), [("ACK_COMMENT", Channel.COMMENT), ("ACK_POST", Channel.POST),
                                                 ("ACK_MESSENGER", Channel.MESSENGER)])
def test_acknowledgements_can_be_switched_off_per_channel(database_url, db, switch, channel) -> None:  # type: ignore[no-untyped-def]
    settings = make_settings(DATABASE_URL=database_url, **{switch: "false"})
    switched_off = make_ticket(db, 1, channel=channel)
    other_channel = Channel.MESSENGER if channel != Channel.MESSENGER else Channel.COMMENT
    still_on = make_ticket(db, 2, channel=other_channel)
    assert ack(db, settings, switched_off) == []
    assert ack(db, settings, still_on) != []


def test_operator_edited_template_is_used(db, settings, fake, graph_client) -> None:  # type: ignore[no-untyped-def]
    with db.scope() as session:
        session.add(ReplyTemplate(key="ack_public", text="Laporan {number} diterima. Salam, Diskominfotik NTB.",
                                  updated_by="operator:rina"))
    ack(db, settings, make_ticket(db))
    send_due_replies(db, settings, graph_client, policy=FAST)
    [public] = fake.comments["555000000000111_600000000001"]
    assert public["message"] == "Laporan NTB-2026-000001 diterima. Salam, Diskominfotik NTB."


@pytest.mark.parametrize("broken", ["Laporan {nomor} diterima", "Laporan {number diterima", "{0} diterima", "  "])
def test_a_broken_operator_template_falls_back_to_the_default(db, broken) -> None:  # type: ignore[no-untyped-def]
    with db.scope() as session:
        session.add(ReplyTemplate(key="ack_public", text=broken))
    with db.session() as session:
        text = render(session, "ack_public", number="NTB-2026-000009")
    assert text == DEFAULT_TEMPLATES["ack_public"].format(number="NTB-2026-000009")


def test_failed_acknowledgement_is_visible_and_does_not_block_the_other(db, settings, fake, graph_client) -> None:  # type: ignore[no-untyped-def]
    ticket_id = make_ticket(db)
    ack(db, settings, ticket_id)
    fake.post_faults = ["permission"]
    report = send_due_replies(db, settings, graph_client, policy=FAST)
    assert len(report.failed) == 1 and len(report.sent) == 1
    with db.session() as session:
        statuses = sorted(r.status for r in session.scalars(select(Reply)))
        failed = session.scalars(select(AuditEntry).where(AuditEntry.action == "reply_failed")).one()
    assert statuses == [ReplyStatus.FAILED, ReplyStatus.SENT] and failed.ticket_id == ticket_id


def test_private_reply_links_the_commenters_psid_so_their_messages_join_the_ticket(db, settings, fake,
                                                                                   graph_client) -> None:  # type: ignore[no-untyped-def]
    from datetime import timedelta

    from ingest.apply import apply_batch
    from ingest.events import NormalizedEvent

    ticket_id = make_ticket(db)
    ack(db, settings, ticket_id)
    send_due_replies(db, settings, graph_client, policy=FAST)
    with db.session() as session:
        ticket = session.get(Ticket, ticket_id)
        assert ticket.psid == "7199000000000001"  # the recipient_id Facebook returned for the private reply
        when = ticket.opened_at + timedelta(minutes=5)
    answer = NormalizedEvent(source="messenger", kind="message", dedup_key="messenger:message:m_join",
                             external_id="m_join", page_id="104000000000001", occurred_at=when,
                             author_id="7199000000000001",
                             text="Lokasinya di depan SDN 3, pak")
    from ntbcare.core.delivery_store import insert_delivery

    delivery_id = insert_delivery(db, b"{}", source="test")
    with db.scope() as session:
        result = apply_batch(session, [(delivery_id, [answer])], page_id="104000000000001")
    assert result.new_tickets == []
    with db.session() as session:
        assert "depan SDN 3" in session.get(Ticket, ticket_id).text


def test_a_mention_in_a_comment_is_acknowledged_under_that_comment_and_privately(db, settings, fake,
                                                                                graph_client) -> None:  # type: ignore[no-untyped-def]
    ticket_id = make_ticket(db, channel=Channel.MENTION, comment_id="555000000000111_600000000001")
    assert ack(db, settings, ticket_id) == [f"ack-private:{ticket_id}", f"ack-public:{ticket_id}"]
    send_due_replies(db, settings, graph_client, policy=FAST)
    [public] = fake.comments["555000000000111_600000000001"]
    assert "NTB-2026-000001" in public["message"]
    assert fake.messages[0]["recipient"] == {"comment_id": "555000000000111_600000000001"}


def test_a_mention_in_a_post_elsewhere_is_acknowledged_under_the_post_and_privately_by_post_id(
        db, settings, fake, graph_client) -> None:  # type: ignore[no-untyped-def]
    ticket_id = make_ticket(db, channel=Channel.MENTION)  # no comment: the page was tagged in the post itself
    with db.scope() as session:
        session.get(Ticket, ticket_id).post_id = "7300000000000205_600700800900103"
    ack(db, settings, ticket_id)
    report = send_due_replies(db, settings, graph_client, policy=FAST)
    assert len(report.sent) == 2
    assert list(fake.comments) == ["7300000000000205_600700800900103"]
    assert fake.messages[0]["recipient"] == {"post_id": "7300000000000205_600700800900103"}


def test_acknowledging_mentions_can_be_switched_off(database_url, db) -> None:  # type: ignore[no-untyped-def]
    ticket_id = make_ticket(db, channel=Channel.MENTION, comment_id="555000000000111_600000000001")
    assert ack(db, make_settings(DATABASE_URL=database_url, ACK_MENTION="false"), ticket_id) == []


def test_an_answer_the_post_elsewhere_refuses_reaches_the_citizen_in_messenger(db, settings, fake,
                                                                              graph_client) -> None:  # type: ignore[no-untyped-def]
    ticket_id = make_ticket(db, channel=Channel.MENTION)
    with db.scope() as session:
        session.get(Ticket, ticket_id).post_id = "7300000000000205_600700800900103"
    ack(db, settings, ticket_id)
    fake.post_faults = ["permission"]  # the public acknowledgement: the post does not take the page's comments
    send_due_replies(db, settings, graph_client, policy=FAST)
    assert fake.comments == {} and len(fake.messages) == 1  # the private acknowledgement went out
    outbox_tests.answer(db, ticket_id)
    fake.post_faults = ["permission"]  # the public answer is refused the same way
    send_due_replies(db, settings, graph_client, policy=FAST)
    send_due_replies(db, settings, graph_client, policy=FAST)  # the fallback owed by the refusal
    with db.session() as session:
        rows = {r.key: (r.status, r.channel) for r in session.scalars(select(Reply))}
        ticket = session.get(Ticket, ticket_id)
        assert ticket.status == TicketStatus.ANSWERED
    answer_rows = {k: v for k, v in rows.items() if k.startswith("answer")}
    assert sorted(answer_rows.values()) == [(ReplyStatus.SENT, "messenger"), (ReplyStatus.UNDELIVERABLE,
                                                                            "comment_reply")]
    [answered] = [m for m in fake.messages if m["recipient"] == {"id": "7199000000000001"}]
    assert "Perbaikan jalan dijadwalkan" in answered["message"]["text"]
