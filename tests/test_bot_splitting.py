"""Messenger texts over 2,000 characters: split where a reader expects a break, sent as several messages in order,
each tracked on its own and never sent twice; the rating prompt follows the last part."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import select

from bot.outbox import owe_reply, retry_replies
from bot.sender import send_due_replies
from bot.splitting import MESSENGER_LIMIT, shorten, split_message
from ntbcare.core.models import Channel, Reply, ReplyStatus, Ticket, TicketStatus
from tests import test_bot_outbox as outbox_tests
from tests.test_bot_outbox import FAST, answer, make_ticket

clock, fake, graph_client = outbox_tests.clock, outbox_tests.fake, outbox_tests.graph_client

SENTENCE = "Tim kami sudah meninjau saluran di Jalan Pejanggik dan pengerukan dijadwalkan pekan depan. "


def test_a_short_text_is_one_part() -> None:
    assert split_message("Laporan NTB-2026-000001 sudah ditanggapi.") == ["Laporan NTB-2026-000001 sudah ditanggapi."]


def test_a_long_text_is_cut_after_a_sentence_within_the_limit() -> None:
    text = SENTENCE * 50  # ~4,700 characters
    parts = split_message(text)
    assert len(parts) == 3 and all(len(p) <= MESSENGER_LIMIT for p in parts)
    assert all(p.endswith("pekan depan.") for p in parts[:-1])  # whole sentences, none cut in the middle
    assert " ".join(parts) == text.strip()


def test_a_paragraph_break_is_preferred_to_a_sentence() -> None:
    first = SENTENCE * 12  # ~1,100 characters
    parts = split_message(first + "\n\n" + SENTENCE * 12)
    assert parts[0] == first.strip()


def test_without_sentences_it_cuts_between_words_and_a_giant_word_is_cut_hard() -> None:
    words = split_message("kata " * 1000)
    assert all(not p.startswith(" ") and not p.endswith(" ") and len(p) <= MESSENGER_LIMIT for p in words)
    assert all(set(p.split()) == {"kata"} for p in words)
    assert [len(p) for p in split_message("x" * 4500)] == [2000, 2000, 500]


@given(st.text(alphabet=st.sampled_from("ab .!?\n"), max_size=3000), st.integers(min_value=2, max_value=500))
def test_parts_fit_the_limit_and_keep_every_character_but_whitespace_at_cuts(text: str, limit: int) -> None:
    parts = split_message(text, limit)
    assert all(len(p) <= limit for p in parts)
    assert re.sub(r"\s", "", "".join(parts)) == re.sub(r"\s", "", text)


def test_shorten_ends_at_a_word_with_an_ellipsis() -> None:
    short = shorten("lampu jalan mati " * 200, 100)
    assert len(short) <= 100 and short.endswith("…") and not short[:-1].endswith(" ")
    assert shorten("pendek", 100) == "pendek"


def test_a_long_messenger_answer_goes_out_in_parts_in_order_each_once(db, settings, fake, graph_client) -> None:  # type: ignore[no-untyped-def]
    ticket_id = make_ticket(db, channel=Channel.MESSENGER)
    [first_id] = answer(db, ticket_id, text=SENTENCE * 50)
    with db.session() as session:
        rows = session.scalars(select(Reply).where(Reply.kind == "answer").order_by(Reply.id)).all()
        assert [r.key for r in rows] == [rows[0].key, f"{rows[0].key}#2", f"{rows[0].key}#3"]
        assert [r.follows_id for r in rows] == [None, rows[0].id, rows[1].id] and rows[0].id == first_id
    send_due_replies(db, settings, graph_client, ids=[first_id], policy=FAST)  # what the agency page does
    send_due_replies(db, settings, graph_client, policy=FAST)
    texts = [m["message"]["text"] for m in fake.messages]
    answer_parts = [t for t in texts if "Pejanggik" in t]
    assert len(answer_parts) == 3 and all(len(t) <= MESSENGER_LIMIT for t in answer_parts)
    assert texts.index(answer_parts[2]) < len(texts) - 1 and "Apakah tanggapan" in texts[-1]  # the prompt last
    assert [m["message"]["metadata"] for m in fake.messages[:3]] == [
        f"ntbcare:{rows[0].key}", f"ntbcare:{rows[0].key}#2", f"ntbcare:{rows[0].key}#3"]
    send_due_replies(db, settings, graph_client, policy=FAST)
    assert len(fake.messages) == 4  # nothing sent twice
    with db.session() as session:
        assert session.get(Ticket, ticket_id).status == TicketStatus.ANSWERED


def test_a_part_that_fails_holds_back_the_rest_and_a_retry_sends_only_what_is_missing(db, settings, fake,
                                                                                      graph_client) -> None:  # type: ignore[no-untyped-def]
    ticket_id = make_ticket(db, channel=Channel.MESSENGER)
    answer(db, ticket_id, text=SENTENCE * 50)
    fake.post_faults = ["ok", "permission"]  # part 1 goes, part 2 is refused for good
    send_due_replies(db, settings, graph_client, policy=FAST)
    with db.session() as session:
        states = [(r.key.rsplit("#", 1)[-1], r.status) for r in
                  session.scalars(select(Reply).where(Reply.kind == "answer").order_by(Reply.id))]
    assert [s for _, s in states] == [ReplyStatus.SENT, ReplyStatus.FAILED, ReplyStatus.FAILED]
    assert len(fake.messages) == 1  # neither part 3 nor the rating prompt went ahead of part 2
    with db.session() as session:
        second = session.scalars(select(Reply).where(Reply.key.like("%#2"))).one()
    assert sorted(retry_replies(db, [second.id])) == sorted([second.id, second.id + 1])
    send_due_replies(db, settings, graph_client, policy=FAST)
    parts = [m["message"]["text"] for m in fake.messages if "Pejanggik" in m["message"]["text"]]
    assert len(parts) == 3 and len(set(parts)) == 3


def test_the_one_private_reply_is_shortened_not_split(db, settings) -> None:  # type: ignore[no-untyped-def]
    ticket_id = make_ticket(db)
    with db.scope() as session:
        reply = owe_reply(session, session.get(Ticket, ticket_id), key="ack-private:x", kind="ack",
                          channel="private_reply", target_id="555000000000111_600000000001", text=SENTENCE * 50)
        assert len(reply.text) <= MESSENGER_LIMIT and reply.text.endswith("…")
        assert session.scalars(select(Reply).where(Reply.follows_id == reply.id)).first() is None


@pytest.mark.parametrize("channel", ["messenger"])
def test_owing_a_long_text_twice_writes_its_parts_once(db, channel) -> None:  # type: ignore[no-untyped-def]
    ticket_id = make_ticket(db, channel=Channel.MESSENGER)
    for _ in range(2):
        with db.scope() as session:
            owe_reply(session, session.get(Ticket, ticket_id), key="status:m_1", kind="status", channel=channel,
                      target_id="700000000000001", text=SENTENCE * 50)
    with db.session() as session:
        assert len(session.scalars(select(Reply)).all()) == 3
