"""Attacks from the security review on the ingest side, each performed through the webhook.

Decision for poisoned text: a lone surrogate or NUL in a comment is replaced by U+FFFD and the comment still
becomes a ticket (6 tickets from 5 valid comments and 1 poisoned one); a NaN or Infinity number cannot be
repaired without inventing a value, so that comment is recorded as malformed with its reason (5 tickets).
"""

from __future__ import annotations

import copy
import json
import threading
from typing import Any

import pytest
from click.testing import CliRunner
from sqlalchemy import func, select

import ingest.apply as apply_module
from ingest.envelope import parse_delivery
from ingest.events import NormalizedEvent, UnsupportedItem
from ingest.sanitize import NON_FINITE_REASON, clean_text, scrub
from ntbcare.cli import cli
from ntbcare.core.models import Citizen, Delivery, Event, Ticket, TicketMessage
from tests.conftest import BASE_ENV, PAGE_ID, drain, fixture_bytes, sign

OTHER_PAGE = "105000000000999"


def comment_change(n: int, **overrides: Any) -> dict[str, Any]:
    """The fixture's comment change with its own comment id (``n``) and any field replaced."""
    change = copy.deepcopy(json.loads(fixture_bytes("feed__comment__add"))["entry"][0]["changes"][0])
    change["value"]["comment_id"] = f"555000000000111_88800000000{n:04d}"
    change["value"]["message"] = f"Jalan desa nomor {n} rusak parah, mohon diperbaiki"
    change["value"].update(overrides)
    return change


def delivery(changes: list[dict[str, Any]], page: str = PAGE_ID) -> dict[str, Any]:
    return {"object": "page", "entry": [{"id": page, "time": 1767225600, "changes": changes}]}


def body_of(payload: dict[str, Any]) -> bytes:
    """JSON as Python writes it: lone surrogates and NUL escaped, NaN and Infinity as bare literals."""
    return json.dumps(payload).encode("ascii")


def count(runtime: Any, model: Any) -> int:
    with runtime.db.session() as session:
        return int(session.scalar(select(func.count()).select_from(model)))


def unsupported_reasons(runtime: Any) -> list[str]:
    with runtime.db.session() as session:
        return list(session.scalars(select(Event.reason).where(Event.outcome == "unsupported")))


def statuses(runtime: Any) -> list[str]:
    with runtime.db.session() as session:
        return list(session.scalars(select(Delivery.status)))


POISONS: dict[str, tuple[dict[str, Any], int]] = {
    "lone_surrogate": ({"message": "Lampu jalan mati \ud800 sejak minggu lalu"}, 6),
    "nul": ({"message": "Lampu jalan mati \x00 sejak minggu lalu"}, 6),
    "nan": ({"created_time": float("nan")}, 5),
    "infinity": ({"created_time": float("inf")}, 5),
    "nan_deep": ({"post": {"permalink_url": "https://www.facebook.com/x", "score": float("-inf")}}, 5),
}


@pytest.mark.parametrize("poison", sorted(POISONS))
def test_one_poisoned_comment_does_not_fail_the_other_five(post, runtime, poison):
    overrides, expected_tickets = POISONS[poison]
    changes = [comment_change(n) for n in range(1, 6)]
    changes.insert(2, comment_change(99, **overrides))
    body = body_of(delivery(changes))
    assert post(body).status_code == 200
    drain(runtime)
    assert statuses(runtime) == ["done"]
    assert count(runtime, Ticket) == expected_tickets
    with runtime.db.session() as session:
        texts = list(session.scalars(select(TicketMessage.text)))
    if expected_tickets == 6:
        assert "Lampu jalan mati \ufffd sejak minggu lalu" in texts
        assert unsupported_reasons(runtime) == []
    else:
        assert unsupported_reasons(runtime) == [NON_FINITE_REASON]
        env = {**BASE_ENV, "DATABASE_URL": runtime.settings.database_url, "REDIS_URL": ""}
        listed = CliRunner().invoke(cli, ["deliveries", "list", "--json"], env=env)
        assert listed.exit_code == 0, listed.output
        [row] = json.loads(listed.output)["deliveries"]
        assert NON_FINITE_REASON in [event["reason"] for event in row["events"]]


def test_poisoned_keys_and_messenger_text_are_stored(post, runtime):
    messaging = json.loads(fixture_bytes("messaging__message__text"))
    event = messaging["entry"][0]["messaging"][0]
    event["message"]["text"] = "Pungli \udfff di \x00 kantor"
    event["message"]["\ud800odd"] = "\x00"
    assert post(body_of(messaging)).status_code == 200
    drain(runtime)
    assert statuses(runtime) == ["done"] and count(runtime, Ticket) == 1
    with runtime.db.session() as session:
        assert session.scalar(select(TicketMessage.text)) == "Pungli \ufffd di \ufffd kantor"


def test_scrub_repairs_text_and_flags_non_finite_numbers():
    assert clean_text("ok \U0001f600") == "ok \U0001f600"  # a surrogate pair decodes to one valid character
    assert clean_text("a\ud800b\x00") == "a\ufffdb\ufffd"
    assert scrub({"a": [1.5, "x\udc00"]}) == ({"a": [1.5, "x\ufffd"]}, False)
    assert scrub({"a": [{"b": float("nan")}]}) == ({"a": [{"b": None}]}, True)
    deep: Any = "leaf"
    for _ in range(50_000):  # deeper than any recursion limit: scrubbing is iterative
        deep = [deep]
    assert scrub(deep)[1] is False


def test_the_same_body_resent_is_one_delivery(post, runtime):
    body = fixture_bytes("feed__comment__add")
    answers = [post(body) for _ in range(3)]
    assert [a.status_code for a in answers] == [200] * 3
    assert len({a.data for a in answers}) == 1  # each answer names the one stored delivery
    assert count(runtime, Delivery) == 1
    assert runtime.dispatcher.dispatched == [1]
    drain(runtime)
    assert post(body).status_code == 200  # a late replay after processing changes nothing either
    assert count(runtime, Delivery) == 1 and count(runtime, Ticket) == 1
    assert post("feed__status__add").status_code == 200  # another body is stored as before
    assert count(runtime, Delivery) == 2


def test_the_same_body_sent_concurrently_is_one_delivery(post, runtime):
    body = fixture_bytes("feed__comment__add")
    app = post.client.application
    codes: list[int] = []

    def send() -> None:
        r = app.test_client().post("/webhook", data=body, headers={"X-Hub-Signature-256": sign(body)})
        codes.append(r.status_code)

    threads = [threading.Thread(target=send) for _ in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert codes == [200] * 20 and count(runtime, Delivery) == 1


def test_an_entry_for_another_page_opens_no_ticket(post, runtime):
    foreign = delivery([comment_change(1)], page=OTHER_PAGE)
    assert post(body_of(foreign)).status_code == 200
    mixed = delivery([comment_change(2)])
    mixed["entry"].append(delivery([comment_change(3)], page=OTHER_PAGE)["entry"][0])
    assert post(body_of(mixed)).status_code == 200
    drain(runtime)
    assert statuses(runtime) == ["done", "done"]
    assert count(runtime, Ticket) == 1
    reason = f"entry for page {OTHER_PAGE}, not ours"
    assert unsupported_reasons(runtime) == [reason, reason]


def test_without_a_page_id_every_entry_is_read():
    (item,) = parse_delivery(delivery([comment_change(1)], page=OTHER_PAGE))
    assert isinstance(item, NormalizedEvent)


TRAVERSAL = "1_../../104000000000001/feed?x="
BAD_IDS: dict[str, dict[str, Any]] = {
    "comment_id": {"comment_id": TRAVERSAL},
    "post_id": {"post_id": TRAVERSAL, "parent_id": TRAVERSAL},
    "parent_id": {"parent_id": "555000000000111_888/../x"},
    "from.id": {"from": {"id": "7300000000000042/messages", "name": "X"}},
    "unicode_digits": {"comment_id": "555000000000111_\u0663\u0663\u0663"},
    "trailing_newline": {"comment_id": "555000000000111_888000000000001\n"},
}


@pytest.mark.parametrize("case", sorted(BAD_IDS))
def test_an_id_that_is_not_a_facebook_id_opens_no_ticket(post, runtime, case):
    changes = [comment_change(1), comment_change(2, **BAD_IDS[case])]
    assert post(body_of(delivery(changes))).status_code == 200
    drain(runtime)
    assert statuses(runtime) == ["done"] and count(runtime, Ticket) == 1
    [reason] = unsupported_reasons(runtime)
    assert reason.endswith("is not a Facebook id")


@pytest.mark.parametrize("field", ["sender", "recipient"])
def test_a_messenger_id_that_is_not_a_facebook_id_is_malformed(field):
    name = "messaging__message__echo" if field == "recipient" else "messaging__message__text"
    payload = json.loads(fixture_bytes(name))
    payload["entry"][0]["messaging"][0][field]["id"] = TRAVERSAL
    (item,) = parse_delivery(payload)
    assert isinstance(item, UnsupportedItem)
    assert item.reason == f"{field}.id {TRAVERSAL!r} is not a Facebook id"


def test_overlong_values_cost_only_their_item(post, runtime):
    """Lengths the columns refuse on PostgreSQL: a long name is cut, a long message id makes its item malformed."""
    changes = [comment_change(1), comment_change(2, **{"from": {"id": "7300000000000043", "name": "N" * 400}})]
    assert post(body_of(delivery(changes))).status_code == 200
    messaging = json.loads(fixture_bytes("messaging__message__text"))
    messaging["entry"][0]["messaging"][0]["message"]["mid"] = "m_" + "x" * 300
    assert post(body_of(messaging)).status_code == 200
    drain(runtime)
    assert statuses(runtime) == ["done", "done"] and count(runtime, Ticket) == 2
    with runtime.db.session() as session:
        assert session.scalar(select(func.max(func.length(Citizen.display_name)))) == 255
    [reason] = unsupported_reasons(runtime)
    assert reason.startswith("an id or key longer than")


def test_an_item_the_database_refuses_is_recorded_and_the_rest_stored(post, runtime, monkeypatch):
    """Whatever the edge misses: the refused item is malformed with its reason, the others become tickets."""
    real = apply_module.apply_event

    def refuse_marked(state, event, page_id):
        if event.text and "TOLAK" in event.text:
            raise UnicodeEncodeError("utf-8", "x", 0, 1, "refused by the test")
        return real(state, event, page_id)

    monkeypatch.setattr(apply_module, "apply_event", refuse_marked)
    changes = [comment_change(n) for n in range(1, 6)]
    changes.insert(3, comment_change(77, message="TOLAK ini"))
    assert post(body_of(delivery(changes))).status_code == 200
    drain(runtime)
    assert post(body_of(delivery(changes + [comment_change(6)]))).status_code == 200  # a redelivery, one more
    drain(runtime)
    assert statuses(runtime) == ["done", "done"] and count(runtime, Ticket) == 6
    assert unsupported_reasons(runtime) == [
        "malformed: the database refused a value of this item (UnicodeEncodeError)"]
