"""Webhook → stored delivery → worker → tickets, on SQLite and PostgreSQL, through the public entry point."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import func, select

from ntbcare.core.models import AuditEntry, Delivery, Event, Ticket, TicketMessage, TicketStatus
from tests.conftest import BASE_ENV, drain, fixture_bytes


def tickets(runtime):  # type: ignore[no-untyped-def]
    with runtime.db.session() as session:
        return session.scalars(select(Ticket).order_by(Ticket.id)).all()


def count(runtime, model) -> int:  # type: ignore[no-untyped-def]
    with runtime.db.session() as session:
        return session.scalar(select(func.count()).select_from(model))


def deliver(post, runtime, *names: str) -> None:  # type: ignore[no-untyped-def]
    for name in names:
        assert post(name).status_code == 200
    drain(runtime)


def test_comment_becomes_one_ticket_with_a_reference_number(post, runtime):
    deliver(post, runtime, "feed__comment__add")
    [ticket] = tickets(runtime)
    assert ticket.number.startswith("NTB-2026-") and len(ticket.number) == len("NTB-2026-000001")
    assert ticket.status == TicketStatus.NEW
    assert ticket.channel == "comment"
    assert "Sembalun" in ticket.text
    assert ticket.comment_id == "555000000000111_888000000000001"
    assert ticket.post_id == "104000000000001_555000000000111"
    assert ticket.permalink == "https://www.facebook.com/ntbcare/posts/pfbid0abc"
    with runtime.db.session() as session:
        assert session.get(Ticket, ticket.id).citizen.display_name == "Baiq Nurul"
        [opened] = session.scalars(select(AuditEntry).where(AuditEntry.ticket_id == ticket.id)).all()
        assert opened.action == "opened" and opened.to_status == "new"


def test_numbers_are_sequential(post, runtime):
    deliver(post, runtime, "feed__comment__add", "feed__status__add", "messaging__message__text")
    numbers = [t.number for t in tickets(runtime)]
    assert [int(n.rsplit("-", 1)[1]) for n in numbers] == [1, 2, 3]


def test_same_delivery_three_times_gives_one_ticket(post, runtime):
    for _ in range(3):
        assert post("feed__comment__add").status_code == 200
    drain(runtime)
    # and once more after processing, as a late Facebook retry
    deliver(post, runtime, "feed__comment__add")
    # An identical signed body is stored once (the security review's replay finding: rows no longer pile up);
    # the same event inside a different body (batched with another time) is a new delivery and no new ticket.
    assert count(runtime, Delivery) == 1
    rebatched = json.loads(fixture_bytes("feed__comment__add"))
    rebatched["entry"][0]["time"] += 60
    assert post(rebatched).status_code == 200
    drain(runtime)
    assert count(runtime, Delivery) == 2
    assert len(tickets(runtime)) == 1
    assert count(runtime, Event) == 1
    with runtime.db.session() as session:
        statuses = session.scalars(select(Delivery.status)).all()
    assert statuses == ["done"] * 2


def test_the_pages_own_comment_and_messenger_echo_never_open_tickets(post, runtime):
    deliver(post, runtime, "feed__comment__add__from_page", "messaging__message__echo")
    assert tickets(runtime) == []
    with runtime.db.session() as session:
        outcomes = session.execute(select(Event.kind, Event.outcome, Event.reason)).all()
    assert {(k, o) for k, o, _ in outcomes} == {("comment.add", "recorded"), ("echo", "recorded")}
    assert all(reason for _, _, reason in outcomes)


def test_reply_under_a_comment_joins_that_comments_ticket(post, runtime):
    deliver(post, runtime, "feed__comment__add", "feed__comment__reply")
    [ticket] = tickets(runtime)
    assert "Sembalun" in ticket.text and "3 bulan" in ticket.text
    with runtime.db.session() as session:
        kinds = session.scalars(select(TicketMessage.kind).where(TicketMessage.ticket_id == ticket.id)).all()
    assert sorted(kinds) == ["comment", "reply"]


def test_reply_whose_parent_we_never_saw_opens_its_own_ticket(post, runtime):
    deliver(post, runtime, "feed__comment__reply")
    [ticket] = tickets(runtime)
    assert ticket.comment_id == "555000000000111_888000000000002"


def test_messenger_messages_join_the_citizens_open_ticket(post, runtime):
    body = json.loads(fixture_bytes("messaging__message__text"))
    deliver(post, runtime, "messaging__message__text")
    follow_up = json.loads(json.dumps(body))
    event = follow_up["entry"][0]["messaging"][0]
    event["message"] = {"mid": "m_follow_up_1", "text": "Di Desa Kuripan, Lombok Barat"}
    event["timestamp"] += 60_000
    assert post(follow_up).status_code == 200
    drain(runtime)
    [ticket] = tickets(runtime)
    assert ticket.channel == "messenger" and ticket.psid == "6543210987654321"
    assert ticket.text.splitlines() == ["Saya mau lapor pungli di kantor desa", "Di Desa Kuripan, Lombok Barat"]

    # once the ticket is closed, the next message opens a new one
    with runtime.db.scope() as session:
        session.get(Ticket, ticket.id).status = TicketStatus.CLOSED
    event["message"] = {"mid": "m_new_topic", "text": "Lapor lagi, lampu jalan mati"}
    event["timestamp"] += 60_000
    assert post(follow_up).status_code == 200
    drain(runtime)
    assert [t.text for t in tickets(runtime)][1] == "Lapor lagi, lampu jalan mati"


def test_edited_comment_updates_text_and_keeps_the_previous_in_history(post, runtime):
    deliver(post, runtime, "feed__comment__add", "feed__comment__edited")
    [ticket] = tickets(runtime)
    assert ticket.text == "Jalan di Desa Sembalun (dekat SDN 2) rusak parah"
    with runtime.db.session() as session:
        [edit] = session.scalars(select(AuditEntry).where(AuditEntry.action == "text_edited")).all()
    assert edit.detail["previous"].startswith("Jalan di Desa Sembalun rusak parah")
    assert edit.detail["new"] == ticket.text


def test_removed_comment_withdraws_the_ticket_but_keeps_it(post, runtime):
    deliver(post, runtime, "feed__comment__add", "feed__comment__remove")
    [ticket] = tickets(runtime)
    assert ticket.status == TicketStatus.WITHDRAWN
    assert "Sembalun" in ticket.text
    with runtime.db.session() as session:
        [change] = session.scalars(select(AuditEntry).where(AuditEntry.to_status == "withdrawn")).all()
        assert change.from_status == "new" and change.actor == "citizen"
        assert session.scalar(select(TicketMessage.removed)) is True


def test_out_of_order_edit_and_remove_before_add(post, runtime):
    deliver(post, runtime, "feed__comment__edited", "feed__comment__add")
    [ticket] = tickets(runtime)
    assert ticket.text == "Jalan di Desa Sembalun (dekat SDN 2) rusak parah"

    deliver(post, runtime, "feed__status__remove", "feed__status__add")
    withdrawn = [t for t in tickets(runtime) if t.channel == "post"]
    assert [t.status for t in withdrawn] == [TicketStatus.WITHDRAWN]


def test_hidden_comment_is_flagged_not_withdrawn(post, runtime):
    hide = json.loads(fixture_bytes("feed__comment__hide"))
    hide["entry"][0]["changes"][0]["value"]["comment_id"] = "555000000000111_888000000000001"
    deliver(post, runtime, "feed__comment__add")
    assert post(hide).status_code == 200
    drain(runtime)
    [ticket] = tickets(runtime)
    assert ticket.status == TicketStatus.NEW
    with runtime.db.session() as session:
        assert session.scalar(select(TicketMessage.hidden)) is True


def test_visitor_post_with_photo_keeps_the_attachment(post, runtime):
    deliver(post, runtime, "feed__photo__add")
    [ticket] = tickets(runtime)
    assert ticket.channel == "post"
    assert ticket.attachments and ticket.attachments[0]["type"] == "photo"
    assert ticket.attachments[0]["url"].startswith("https://")


def test_messenger_attachment_and_emoji_text(post, runtime):
    deliver(post, runtime, "messaging__message__attachments", "messaging__message__emoji")
    texts = {t.psid: t for t in tickets(runtime)}
    assert any(t.attachments for t in texts.values())
    emoji = texts["6543210987650002"]
    assert "\U0001f64f" in emoji.text and "ndéq" in emoji.text


def test_unknown_and_malformed_shapes_are_recorded_never_crash(post, runtime):
    deliver(post, runtime, "feed__reaction__add", "feed__comment__add__malformed", "standby__message")
    assert tickets(runtime) == []
    with runtime.db.session() as session:
        events = session.execute(select(Event.kind, Event.outcome, Event.reason)).all()
        assert {d.status for d in session.scalars(select(Delivery))} == {"done"}
    assert len(events) == 3
    assert all(outcome == "unsupported" and reason for _, outcome, reason in events)


def test_every_entry_and_event_of_a_batch_is_processed(post, runtime):
    body = json.loads(fixture_bytes("batch__mixed_entries"))
    expected = sum(len(e.get("changes", [])) + len(e.get("messaging", [])) + len(e.get("standby", []))
                   for e in body["entry"])
    deliver(post, runtime, "batch__mixed_entries")
    with runtime.db.session() as session:
        assert session.scalar(select(func.count()).select_from(Event)) == expected
        assert session.scalar(select(Delivery.item_count)) == expected
    # the comment, the Messenger message and the visitor post; the reaction and the read receipt open none
    assert sorted(t.channel for t in tickets(runtime)) == ["comment", "messenger", "post"]


def test_a_batch_of_1000_changes_becomes_1000_tickets(post, runtime):
    changes = [
        {"field": "feed", "value": {
            "from": {"id": f"73{n:014d}", "name": f"Warga {n}"}, "message": f"Jalan rusak nomor {n} di Praya",
            "post_id": "104000000000001_555000000000111", "comment_id": f"555000000000111_{900000000000 + n}",
            "parent_id": "104000000000001_555000000000111", "created_time": 1767225598 + n,
            "item": "comment", "verb": "add"}}
        for n in range(1000)
    ]
    body = {"object": "page", "entry": [{"id": "104000000000001", "time": 1767225600, "changes": changes}]}
    assert post(body).status_code == 200
    drain(runtime)
    assert len(tickets(runtime)) == 1000


def test_a_failing_delivery_is_retried_then_marked_failed_with_its_error(post, runtime, monkeypatch):
    import ingest.processing

    def broken(*args, **kwargs):  # type: ignore[no-untyped-def]
        raise RuntimeError("parser exploded")

    monkeypatch.setattr(ingest.processing, "apply_batch", broken)
    assert post("feed__comment__add").status_code == 200
    [delivery_id] = drain(runtime)
    with runtime.db.session() as session:
        delivery = session.get(Delivery, delivery_id)
        assert delivery.status == "pending" and delivery.attempts == 1
        assert "parser exploded" in delivery.error and delivery.next_attempt_at is not None
    for _ in range(runtime.settings.max_delivery_attempts):
        drain(runtime)
    with runtime.db.session() as session:
        delivery = session.get(Delivery, delivery_id)
        assert delivery.status == "failed" and "parser exploded" in delivery.error

    monkeypatch.undo()
    from click.testing import CliRunner  # the operator retries it once the cause is fixed

    from ntbcare.cli import cli

    env = {"DATABASE_URL": runtime.settings.database_url,
           **{k: BASE_ENV[k] for k in ("FB_APP_SECRET", "FB_VERIFY_TOKEN", "SECRET_KEY", "FB_PAGE_ID")}}
    result = CliRunner().invoke(cli, ["deliveries", "retry", str(delivery_id)], env=env)
    assert result.exit_code == 0, result.output
    drain(runtime)
    assert len(tickets(runtime)) == 1


@pytest.mark.parametrize("name", ["messaging__read", "messaging__delivery", "messaging__reaction",
                                  "messaging__postback"])
def test_receipts_reactions_and_postbacks_are_recorded_without_tickets(post, runtime, name):
    deliver(post, runtime, name)
    assert tickets(runtime) == []
    assert count(runtime, Event) == 1  # each fixture carries one event, kept for the record
    with runtime.db.session() as session:
        assert session.scalars(select(Event.outcome)).all() == ["recorded"]


@pytest.mark.parametrize(("text", "payload", "joins"), [
    ("NTB-2026-000001", None, False),
    ("cek status ntb 2026 1 dong", None, False),
    (None, "STATUS", False),
    ("NTB-2026-000001 sampai sekarang air belum mengalir juga di rumah kami pak", None, True),
])
def test_a_ticket_number_in_messenger_is_a_status_request(post, runtime, text, payload, joins):
    deliver(post, runtime, "messaging__message__text")
    body = json.loads(fixture_bytes("messaging__message__text"))
    message = {"mid": "m_status_1", "text": text or "Cek status"}
    if payload:
        message["quick_reply"] = {"payload": payload}
    body["entry"][0]["messaging"][0]["message"] = message
    body["entry"][0]["messaging"][0]["timestamp"] += 60_000
    from ingest.processing import process_batch

    assert post(body).status_code == 200
    with runtime.db.session() as session:
        pending = session.scalars(select(Delivery.id).where(Delivery.status == "pending")).all()
    result = process_batch(runtime.db, list(pending), page_id=runtime.settings.fb_page_id)
    [request] = result.status_requests
    assert request.psid == "6543210987654321" and request.mid == "m_status_1"
    assert request.number == (None if payload else "NTB-2026-000001")
    [ticket] = tickets(runtime)
    with runtime.db.session() as session:
        joined = session.scalar(select(func.count()).where(TicketMessage.ticket_id == ticket.id)) == 2
    assert joined is joins
