"""Messenger edits and unsent messages in any order, through the real pipeline (webhook → stored delivery → worker
→ tickets), on SQLite and PostgreSQL: as with comment edits, an edit or an unsend that reaches us before its
message ends in the same state as in order, an older edit (lower ``num_edit``) never overwrites a newer one, and
an unsent message's text leaves the ticket's text (what is forwarded and classified) but stays in the history."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import select

from ntbcare.core.models import AuditEntry, Ticket, TicketMessage
from tests.conftest import drain, fixture_bytes

MID = "m_Q1w2E3r4T5y6"
ORIGINAL = "Saya mau lapor pungli di kantor desa"
EDIT1 = "Saya mau lapor pungli di kantor Desa Lingsar"
EDIT2 = "Saya mau lapor pungli di kantor Desa Lingsar, Lombok Barat"
TEXT, FIRST_EDIT, SECOND_EDIT = "messaging__message__text", "messaging__message_edit", "messaging__message_edit__second"
UNSENT = "messaging__message__unsent"
FOLLOW_UP = "Di Desa Kuripan, Lombok Barat, setiap urus surat diminta uang"


def follow_up() -> dict:
    body = json.loads(fixture_bytes(TEXT))
    event = body["entry"][0]["messaging"][0]
    event["message"] = {"mid": "m_follow_up_2", "text": FOLLOW_UP}
    event["timestamp"] += 60_000
    return body


def deliver_each(post, runtime, *bodies: str | dict) -> None:  # type: ignore[no-untyped-def]
    """Each body its own delivery, processed before the next arrives."""
    for body in bodies:
        assert post(body).status_code == 200
        drain(runtime)


def deliver_together(post, runtime, *names: str) -> None:  # type: ignore[no-untyped-def]
    """All events in one delivery, in this order."""
    first = json.loads(fixture_bytes(names[0]))
    for name in names[1:]:
        first["entry"] += json.loads(fixture_bytes(name))["entry"]
    assert post(first).status_code == 200
    drain(runtime)


def the_ticket(runtime) -> tuple[Ticket, dict[str, TicketMessage], list[AuditEntry]]:  # type: ignore[no-untyped-def]
    with runtime.db.session() as session:
        [ticket] = session.scalars(select(Ticket)).all()
        messages = {m.external_id: m for m in session.scalars(select(TicketMessage))}
        trail = list(session.scalars(select(AuditEntry).where(AuditEntry.ticket_id == ticket.id)
                                     .order_by(AuditEntry.id)))
    return ticket, messages, trail


@pytest.mark.parametrize("order", [(TEXT, FIRST_EDIT), (FIRST_EDIT, TEXT)], ids=["in_order", "edit_first"])
def test_an_edit_before_its_message_ends_as_in_order(post, runtime, order):
    deliver_each(post, runtime, *order)
    ticket, messages, trail = the_ticket(runtime)
    assert ticket.text == EDIT1 and messages[MID].text == EDIT1
    [edit] = [entry for entry in trail if entry.action == "text_edited"]
    assert (edit.detail["previous"], edit.detail["new"]) == (ORIGINAL, EDIT1)
    assert [entry.action for entry in trail] == ["opened", "text_edited"]


@pytest.mark.parametrize("order", [
    (TEXT, SECOND_EDIT, FIRST_EDIT), (SECOND_EDIT, FIRST_EDIT, TEXT), (SECOND_EDIT, TEXT, FIRST_EDIT),
    (FIRST_EDIT, SECOND_EDIT, TEXT), (TEXT, FIRST_EDIT, SECOND_EDIT),
], ids=["late_first_edit", "edits_first_newest_first", "newest_edit_first", "edits_first_in_order", "in_order"])
def test_an_older_edit_never_overwrites_a_newer_one(post, runtime, order):
    deliver_each(post, runtime, *order)
    ticket, messages, trail = the_ticket(runtime)
    assert ticket.text == EDIT2 and messages[MID].text == EDIT2
    assert trail[-1].action == "text_edited" and trail[-1].detail["new"] == EDIT2


def test_an_older_edit_in_the_same_delivery_never_overwrites_a_newer_one(post, runtime):
    deliver_together(post, runtime, SECOND_EDIT, TEXT, FIRST_EDIT)
    ticket, messages, _ = the_ticket(runtime)
    assert ticket.text == EDIT2 and messages[MID].text == EDIT2


@pytest.mark.parametrize("order", ["in_order", "unsent_first", "one_delivery"])
def test_an_unsent_message_leaves_the_ticket_text_and_stays_in_the_history(post, runtime, order):
    if order == "in_order":
        deliver_each(post, runtime, TEXT, follow_up(), UNSENT)
    elif order == "unsent_first":
        deliver_each(post, runtime, UNSENT, TEXT, follow_up())
    else:
        deliver_together(post, runtime, UNSENT, TEXT)
        deliver_each(post, runtime, follow_up())
    ticket, messages, trail = the_ticket(runtime)
    assert ticket.text == FOLLOW_UP  # what is forwarded and classified
    assert messages[MID].removed and messages[MID].text == ORIGINAL  # kept for operators and agencies
    assert [entry.action for entry in trail].count("message_unsent") == 1
