"""Facebook's windows: Messenger RESPONSE inside 24 h, HUMAN_AGENT up to 7 days when allowed, one private reply
within 7 days; checked at 23 h, 25 h, 6 days and 8 days, both as pure rules and through the sender."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from bot.acknowledge import acknowledge_tickets
from bot.sender import send_due_replies
from bot.windows import HUMAN_AGENT, RESPONSE, messenger_route, private_reply_allowed
from ntbcare.core.models import Channel, Reply, ReplyStatus, Ticket, TicketStatus
from tests import test_bot_outbox as outbox_tests
from tests.conftest import make_settings
from tests.test_bot_outbox import FAST, answer, make_ticket, reply_row, ticket_row

# The stand-in Graph API fixtures of the outbox tests.
clock, fake, graph_client = outbox_tests.clock, outbox_tests.fake, outbox_tests.graph_client

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
H23, H25, D6, D8 = timedelta(hours=23), timedelta(hours=25), timedelta(days=6), timedelta(days=8)


@pytest.mark.parametrize(
    ("age", "human_agent", "expected"),
    [
        (H23, False, RESPONSE),
        (H23, True, RESPONSE),
        (H25, False, None),
        (H25, True, HUMAN_AGENT),
        (D6, True, HUMAN_AGENT),
        (D6, False, None),
        (D8, True, None),
        (timedelta(hours=24), False, None),
        (timedelta(hours=24) - timedelta(seconds=1), False, RESPONSE),
        (timedelta(days=7), True, None),
        (timedelta(minutes=-5), False, RESPONSE),  # a clock a little ahead of ours
    ],
)
def test_messenger_route_by_age_of_the_citizens_last_message(age, human_agent, expected) -> None:  # type: ignore[no-untyped-def]
    assert messenger_route(NOW - age, NOW, human_agent_allowed=human_agent) == expected


def test_without_any_citizen_message_nothing_private_may_be_sent() -> None:
    assert messenger_route(None, NOW, human_agent_allowed=True) is None


@pytest.mark.parametrize(("age", "allowed"), [(H23, True), (D6, True), (timedelta(days=7, minutes=-1), True),
                                              (timedelta(days=7, minutes=1), False), (D8, False)])
def test_private_reply_only_within_seven_days_of_the_comment(age, allowed) -> None:  # type: ignore[no-untyped-def]
    assert private_reply_allowed(NOW - age, NOW) is allowed


def test_private_reply_only_once() -> None:
    assert private_reply_allowed(NOW - H23, NOW, already_used=True) is False


@pytest.mark.parametrize(
    ("age", "human_agent", "messaging_type", "tag"),
    [(H23, "false", "RESPONSE", None), (H25, "true", "MESSAGE_TAG", "HUMAN_AGENT"),
     (D6, "true", "MESSAGE_TAG", "HUMAN_AGENT")],
)
def test_messenger_answer_goes_out_the_way_the_window_allows(database_url, db, fake, graph_client, age, human_agent,
                                                             messaging_type, tag) -> None:  # type: ignore[no-untyped-def]
    settings = make_settings(DATABASE_URL=database_url, HUMAN_AGENT_TAG=human_agent)
    ticket_id = make_ticket(db, channel=Channel.MESSENGER, age=age)
    [reply_id] = answer(db, ticket_id)
    assert send_due_replies(db, settings, graph_client, policy=FAST).sent == [reply_id]
    [sent] = fake.messages
    assert sent["messaging_type"] == messaging_type and sent.get("tag") == tag
    assert sent["recipient"] == {"id": "700000000000001"}
    assert "Perbaikan jalan" in sent["message"]["text"]
    assert ticket_row(db, ticket_id).status == TicketStatus.ANSWERED


@pytest.mark.parametrize(("age", "human_agent"), [(H25, "false"), (D8, "true"), (D8, "false")])
def test_messenger_answer_outside_the_window_is_not_attempted(database_url, db, fake, graph_client, age,
                                                              human_agent) -> None:  # type: ignore[no-untyped-def]
    settings = make_settings(DATABASE_URL=database_url, HUMAN_AGENT_TAG=human_agent)
    ticket_id = make_ticket(db, channel=Channel.MESSENGER, age=age)
    [reply_id] = answer(db, ticket_id)
    report = send_due_replies(db, settings, graph_client, policy=FAST)
    assert report.undeliverable == [reply_id] and fake.calls == []
    row = reply_row(db, reply_id)
    assert row.status == ReplyStatus.UNDELIVERABLE and "window" in row.error
    assert ticket_row(db, ticket_id).status == TicketStatus.FORWARDED


def test_acknowledgement_never_uses_the_human_agent_tag(database_url, db, fake, graph_client) -> None:  # type: ignore[no-untyped-def]
    settings = make_settings(DATABASE_URL=database_url, HUMAN_AGENT_TAG="true")
    ticket_id = make_ticket(db, channel=Channel.MESSENGER, age=H25)
    with db.scope() as session:
        [ack] = acknowledge_tickets(session, settings, [session.get(Ticket, ticket_id)])
        ack_id = ack.id
    send_due_replies(db, settings, graph_client, policy=FAST)
    assert reply_row(db, ack_id).status == ReplyStatus.UNDELIVERABLE and fake.calls == []


@pytest.mark.parametrize(("age", "private_owed"), [(H23, True), (D6, True), (D8, False)])
def test_comment_acknowledgement_private_reply_by_comment_age(database_url, db, fake, graph_client, age,
                                                              private_owed) -> None:  # type: ignore[no-untyped-def]
    settings = make_settings(DATABASE_URL=database_url)
    ticket_id = make_ticket(db, age=age)
    with db.scope() as session:
        keys = sorted(r.key for r in acknowledge_tickets(session, settings, [session.get(Ticket, ticket_id)]))
    expected = [f"ack-private:{ticket_id}", f"ack-public:{ticket_id}"] if private_owed else [f"ack-public:{ticket_id}"]
    assert keys == expected
    send_due_replies(db, settings, graph_client, policy=FAST)
    assert len(fake.messages) == (1 if private_owed else 0)
    if private_owed:
        assert fake.messages[0]["recipient"] == {"comment_id": "555000000000111_600000000001"}


def test_private_reply_owed_in_time_but_sent_after_seven_days_is_not_attempted(database_url, db, fake,
                                                                               graph_client) -> None:  # type: ignore[no-untyped-def]
    settings = make_settings(DATABASE_URL=database_url, ACK_COMMENT="true")
    ticket_id = make_ticket(db, age=D6)
    with db.scope() as session:
        acknowledge_tickets(session, settings, [session.get(Ticket, ticket_id)])
    send_due_replies(db, settings, graph_client, policy=FAST, now=datetime.now(UTC) + timedelta(days=2))
    with db.session() as session:
        private = session.query(Reply).filter(Reply.key == f"ack-private:{ticket_id}").one()
    assert private.status == ReplyStatus.UNDELIVERABLE and fake.messages == []
    assert len(fake.posts("/comments")) == 1  # the public acknowledgement still went out
