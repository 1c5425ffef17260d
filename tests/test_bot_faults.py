"""Fault test: the Graph API answers 5xx, transient codes, timeouts (some after the write happened) and
rate-limit errors for a while, then recovers; every reply is delivered exactly once, and no reply is posted a
second time without a read-back in between."""

from __future__ import annotations

import itertools
from collections import Counter
from datetime import timedelta

from sqlalchemy import select

from bot.acknowledge import acknowledge_tickets
from bot.outbox import marker
from bot.pacing import SenderPolicy
from bot.sender import send_due_replies
from ntbcare.core.models import Channel, Reply, ReplyStatus, Ticket, TicketStatus, utcnow
from tests import test_bot_outbox as outbox_tests
from tests.test_bot_outbox import answer, make_ticket, store_echo

clock, fake, graph_client = outbox_tests.clock, outbox_tests.fake, outbox_tests.graph_client

FAULTS = ["500", "ratelimit", "500-after", "timeout", "code2-after", "timeout-after", "refused", "500-plain"]
OUTAGE_PASSES = 4
PASS_STEP = timedelta(minutes=15)


def open_replies(db) -> int:  # type: ignore[no-untyped-def]
    with db.session() as session:
        return len(session.scalars(select(Reply.id).where(Reply.status.in_(ReplyStatus.OPEN))).all())


def deliver_echoes(db, fake, echoed: set[str]) -> None:  # type: ignore[no-untyped-def]
    """What the webhook does for every message the page sent: store the echo with our metadata."""
    for message in fake.messages:
        metadata = message["message"].get("metadata")
        if metadata and message["mid"] not in echoed:
            store_echo(db, metadata, message["mid"])
            echoed.add(message["mid"])


def test_outage_then_recovery_delivers_every_reply_exactly_once(db, settings, fake, graph_client, clock) -> None:  # type: ignore[no-untyped-def]
    comment_ids = [make_ticket(db, n, channel=Channel.COMMENT) for n in range(1, 7)]
    messenger_ids = [make_ticket(db, n, channel=Channel.MESSENGER) for n in range(7, 11)]
    with db.scope() as session:
        acknowledge_tickets(session, settings, [session.get(Ticket, i) for i in comment_ids + messenger_ids])
    for ticket_id in comment_ids + messenger_ids:
        answer(db, ticket_id, f"Tanggapan untuk tiket {ticket_id}: petugas sudah turun ke lokasi.")
    with db.session() as session:
        rows = session.scalars(select(Reply)).all()
    assert len(rows) == 6 * 3 + 4 * 2

    policy = SenderPolicy(reconcile_after=timedelta(minutes=1))
    faults = itertools.cycle(FAULTS)
    start, echoed, passes, faults_played = utcnow(), set(), 0, 0
    while open_replies(db) and passes < 40:
        outage = passes < OUTAGE_PASSES
        fake.post_faults = [next(faults) for _ in range(100)] if outage else []
        fake.get_faults = ["500", "ok"] * 50 if outage else []
        send_due_replies(db, settings, graph_client, policy=policy, now=start + passes * PASS_STEP)
        faults_played += 100 - len(fake.post_faults) if outage else 0
        deliver_echoes(db, fake, echoed)
        clock.now += PASS_STEP.total_seconds()
        passes += 1

    assert open_replies(db) == 0, f"still open after {passes} passes"
    with db.session() as session:
        rows = session.scalars(select(Reply)).all()
        statuses = Counter(r.status for r in rows)
        expected_comments = {(r.target_id, r.text) for r in rows if r.channel == "comment_reply"}
        expected_markers = {marker(r.key) for r in rows if r.channel != "comment_reply"}
        answered = [session.get(Ticket, i).status for i in comment_ids + messenger_ids]
    assert statuses == {ReplyStatus.SENT: len(rows)}
    assert answered == [TicketStatus.ANSWERED] * 10

    posted = Counter((target, c["message"]) for target, comments in fake.comments.items() for c in comments)
    assert set(posted) == expected_comments and set(posted.values()) == {1}
    delivered = Counter(m["message"]["metadata"] for m in fake.messages)
    assert set(delivered) == expected_markers and set(delivered.values()) == {1}

    assert faults_played >= len(FAULTS), "every kind of fault must really have hit the sender"
    # O2: after an ambiguous outcome a comment reply is never POSTed again without a read-back (GET) of that
    # comment in between; only definitely-not-sent failures (refused connection, throttling) are retried blindly.
    by_reply: dict[tuple[str, str], list[tuple[int, str]]] = {}
    for index, target, text, fault in fake.post_log:
        by_reply.setdefault((target, text), []).append((index, fault))
    checked = 0
    for (target, text), attempts in by_reply.items():
        is_comment_reply = not text.startswith("ntbcare:")  # Messenger sends are read back from their echo
        for (earlier, fault), (later_index, _) in itertools.pairwise(attempts):
            if is_comment_reply and fault not in ("refused", "ratelimit"):
                assert ("GET", f"{target}/comments") in fake.calls[earlier + 1 : later_index]
                checked += 1
    assert checked >= 2


def test_rate_limited_outage_makes_no_calls_until_the_block_ends(db, settings, fake, graph_client, clock) -> None:  # type: ignore[no-untyped-def]
    for n in range(1, 6):
        answer(db, make_ticket(db, n))
    fake.post_faults = ["ratelimit"]
    start = utcnow()
    send_due_replies(db, settings, graph_client, now=start)
    for minute in range(1, 5):  # the block (300 s default) is still running
        clock.now += 60
        send_due_replies(db, settings, graph_client, now=start + timedelta(minutes=minute))
    assert len(fake.calls) == 1
    clock.now += 61
    report = send_due_replies(db, settings, graph_client, now=start + timedelta(minutes=6))
    assert len(report.sent) == 5 and len(fake.calls) == 6


def test_concurrent_senders_never_post_a_reply_twice(db, settings, fake, graph_client) -> None:  # type: ignore[no-untyped-def]
    import threading

    ticket_ids = [make_ticket(db, n) for n in range(1, 25)]
    for ticket_id in ticket_ids:
        answer(db, ticket_id)
    errors: list[BaseException] = []

    def sender() -> None:
        try:
            for _ in range(20):
                if not open_replies(db):
                    return
                send_due_replies(db, settings, graph_client, limit=3)
        except BaseException as exc:  # surfaced by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=sender) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert errors == [] and open_replies(db) == 0
    posted = Counter(target for target, comments in fake.comments.items() for _ in comments)
    assert len(posted) == 24 and set(posted.values()) == {1}
    assert len(fake.posts("/comments")) == 24
