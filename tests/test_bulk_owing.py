"""Owing a routing pass's replies and mails in bulk (one lookup, one savepoint) keeps the outbox promises of
owing them one by one: a key already owed returns that row, a key owed by another worker while this one was
deciding is not owed twice (the batch falls back to one by one), a long Messenger text still becomes its parts."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from sqlalchemy import event, func, insert, select
from sqlalchemy.orm import Session

from bot.outbox import COMMENT_REPLY, MESSENGER, OwedReply, owe_replies, owe_reply
from ntbcare.core.db import Database
from ntbcare.core.models import Channel, OutboundMail, Reply, Ticket
from routing.route import OwedMail, add_mails
from tests.test_bot_outbox import make_ticket


def count(db: Database, model: Any, *where: Any) -> int:
    with db.session() as session:
        return int(session.scalar(select(func.count()).select_from(model).where(*where)) or 0)


@contextmanager
def another_worker_inserts_first(db: Database, session: Session, table: Any, row: dict[str, Any]) -> Iterator[None]:
    """Before ``session``'s next flush, another connection commits ``row``: the race a unique key settles."""

    done: list[bool] = []

    def race(flushing: Session, *_: Any) -> None:
        if done:
            return
        done.append(True)
        with db.engine.begin() as other:
            other.execute(insert(table).values(**row))

    event.listen(session, "before_flush", race)
    try:
        yield
    finally:
        event.remove(session, "before_flush", race)
    assert done, "the other worker never got its turn"


def test_owed_in_bulk_as_one_by_one(db: Database) -> None:
    comment, chat = make_ticket(db, 1), make_ticket(db, 2, channel=Channel.MESSENGER)
    with db.scope() as session:
        ticket = session.get(Ticket, comment)
        before = owe_reply(session, ticket, key=f"ack-public:{comment}", kind="ack", channel=COMMENT_REPLY,
                           target_id="c1", text="sudah diterima")
        before_id = before.id
    with db.scope() as session:
        ticket, messenger = session.get(Ticket, comment), session.get(Ticket, chat)
        owed = [OwedReply(ticket, f"ack-public:{comment}", "ack", COMMENT_REPLY, "c1", "lain kali"),
                OwedReply(ticket, f"ack-private:{comment}", "ack", "private_reply", "c1", "terima kasih"),
                OwedReply(messenger, f"long:{chat}", "answer", MESSENGER, "psid-2", "kata " * 1000)]
        first = owe_replies(session, owed)
        ids = [r.id for r in first]
        again = [r.id for r in owe_replies(session, owed)]
    assert ids[0] == before_id and again == ids
    assert count(db, Reply) == 1 + 1 + 3  # the earlier row, the private reply, a 5,000-character text in 3 parts
    with db.session() as session:
        kept = session.get(Reply, before_id)
        assert kept is not None and kept.text == "sudah diterima"  # owed before: unchanged
        parts = session.scalars(select(Reply).where(Reply.key.like(f"long:{chat}%")).order_by(Reply.id)).all()
        assert [p.key for p in parts] == [f"long:{chat}", f"long:{chat}#2", f"long:{chat}#3"]
        assert parts[1].follows_id == parts[0].id and parts[2].follows_id == parts[1].id


@pytest.mark.postgres
def test_a_reply_another_worker_owed_meanwhile_is_not_owed_twice(pg_db: Database) -> None:
    """PostgreSQL (SQLite holds one writer at a time, so no other worker can owe it meanwhile there)."""
    db = pg_db
    ids = [make_ticket(db, n) for n in (1, 2, 3)]
    with db.scope() as session:
        tickets = [session.get(Ticket, i) for i in ids]
        owed = [OwedReply(t, f"ack-public:{t.id}", "ack", COMMENT_REPLY, f"c{t.id}", "diterima") for t in tickets]
        with another_worker_inserts_first(db, session, Reply.__table__, {
                "key": f"ack-public:{ids[1]}", "ticket_id": ids[1], "kind": "ack", "channel": COMMENT_REPLY,
                "target_id": f"c{ids[1]}", "text": "dari pekerja lain", "status": "pending", "attempts": 0}):
            rows = owe_replies(session, owed)
        texts = [r.text for r in rows]
    assert texts == ["diterima", "dari pekerja lain", "diterima"]
    assert count(db, Reply) == 3


@pytest.mark.postgres
def test_mails_owed_in_bulk_once_per_key_also_in_a_race(pg_db: Database) -> None:
    db = pg_db
    ids = [make_ticket(db, n) for n in (1, 2, 3)]
    with db.scope() as session:
        tickets = [session.get(Ticket, i) for i in ids]
        owed = [OwedMail(f"forward:{t.id}:PUPR:1", "forward", t, "PUPR", ["pupr@ntbprov.test"]) for t in tickets]
        assert len(add_mails(session, owed[:1])) == 1
        with another_worker_inserts_first(db, session, OutboundMail.__table__, {
                "key": owed[2].key, "kind": "forward", "ticket_id": ids[2], "agency_code": "PUPR",
                "recipients": ["pupr@ntbprov.test"], "status": "pending", "attempts": 0}):
            added = add_mails(session, owed)
        added_keys = [m.key for m in added]
    assert added_keys == [owed[1].key]  # the first was owed already, the third by the other worker
    assert count(db, OutboundMail) == 3
