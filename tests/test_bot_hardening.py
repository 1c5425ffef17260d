"""Attacks on the bot: personal data written so the public-answer check missed it, texts that made the e-mail
pattern quadratic, and ids from payloads that steered Graph requests to other objects."""

from __future__ import annotations

import re

import pytest
import responses
from sqlalchemy import select, update

from bot import privacy
from bot.acknowledge import acknowledge_tickets
from bot.errors import InvalidRequestError
from bot.graph import GraphClient
from bot.privacy import MASK, MAX_CHARS, contains_personal_data, personal_data_kinds, scrub
from bot.sender import send_due_replies
from ntbcare.core.models import AuditEntry, Channel, Reply, ReplyStatus, Ticket
from tests import test_bot_outbox as outbox_tests
from tests.test_bot_outbox import APP_SECRET, BASE, FAST, PAGE_ID, TOKEN, VERSION, answer, make_ticket, reply_row

clock, fake, graph_client = outbox_tests.clock, outbox_tests.fake, outbox_tests.graph_client

# -- NIK and phone numbers however they are written ---------------------------------------------------------------

NIKS = ["5201 0112 3456 7890", "5201-0112-3456-7890", "5201.0112.3456.7890", "５２０１０１１２３４５６７８９０",
        "５２０１ ０１１２ ３４５６ ７８９０", "5201 - 0112 - 3456 - 7890", "5201–0112–3456–7890",
        "5201\u00a00112\u00a03456\u00a07890", "520101 123456 7890"]
PHONES = ["0812 3456 7890", "+62 812-3456-7890", "０８１２３４５６７８９０", "＋６２ ８１２-３４５６-７８９０",
          "0812 - 3456 - 7890", "0812.3456.7890", "(+62) 812 3456 7890", "+62\u00a0812\u00a03456\u00a07890"]
ORDINARY = ["Laporan NTB-2026-000123 sudah diteruskan", "laporan NTB-2026-000123 dan NTB-2026-000124",
            "tahun 2026", "tahun ２０２６", "biaya Rp 150.000", "Rp 1.500.000 dan Rp 2.500.000",
            "anggaran 1.500.000 2.000.000 3.000.000", "tanggal 12-03-2026 jam 10.30", "KM 12 sejak 2026",
            "RT 03 RW 05 no. 17", "jam 08.30 sampai 12.00"]


def digits(text: str) -> str:
    return "".join(char for char in text if char.isdigit())


@pytest.mark.parametrize(("kind", "number"), [("nik", n) for n in NIKS] + [("phone", p) for p in PHONES])
def test_separated_and_full_width_numbers_are_found_and_masked(kind: str, number: str) -> None:
    text = f"Data saya {number}, mohon dicek"
    assert kind in personal_data_kinds(text)
    assert scrub(text) == f"Data saya {MASK}, mohon dicek"  # the rest of the text untouched
    assert not contains_personal_data(scrub(text)) and scrub(scrub(text)) == scrub(text)


@pytest.mark.parametrize("text", ORDINARY)
def test_ordinary_numbers_stay(text: str) -> None:
    assert personal_data_kinds(text) == [] and scrub(text) == text


def test_full_width_text_around_a_number_is_published_as_written() -> None:
    text = "Ｈａｌｏ ＮＴＢ, ＮＩＫ ５２０１ ０１１２ ３４５６ ７８９０ ａｄａ"
    assert scrub(text) == f"Ｈａｌｏ ＮＴＢ, ＮＩＫ {MASK} ａｄａ"


def test_a_public_answer_never_carries_a_separated_nik_or_phone(db, settings, fake, graph_client) -> None:  # type: ignore[no-untyped-def]
    ticket_id = make_ticket(db)
    answer(db, ticket_id, "Sudah dicek untuk NIK 5201 0112 3456 7890, hubungi ＋６２ ８１２-３４５６-７８９０.")
    send_due_replies(db, settings, graph_client, policy=FAST)
    [public] = fake.comments["555000000000111_600000000001"]
    assert "3456" not in digits(public["message"]) and not contains_personal_data(public["message"])
    assert MASK in public["message"]


def test_a_comment_with_a_separated_nik_is_hidden(db, settings) -> None:  # type: ignore[no-untyped-def]
    ticket_id = make_ticket(db, text="tolong cek bantuan, NIK saya 5201-0112-3456-7890")
    with db.scope() as session:
        keys = {r.key for r in acknowledge_tickets(session, settings, [session.get(Ticket, ticket_id)])}
    assert f"hide:{ticket_id}" in keys and f"ack-public:{ticket_id}" not in keys


# -- linear time, and a bounded read --------------------------------------------------------------------------------

ADVERSARIAL = {  # each made the old e-mail pattern try every start position against the rest of the text
    "local part, no @": "a" * 1_000_000,
    "dotted local part": "a." * 500_000,
    "labels without a top-level domain": "x@" + "a." * 500_000,
    "dashes before an @": "-" * 1_000_000 + "@",
}


@pytest.mark.timeout(60)
@pytest.mark.parametrize("text", ADVERSARIAL.values(), ids=ADVERSARIAL.keys())
def test_every_pattern_finishes_on_a_million_adversarial_characters(text: str) -> None:
    for pattern in (privacy.EMAIL, privacy.NIK, privacy.PHONE):
        assert list(pattern.finditer(text)) == []


@pytest.mark.timeout(60)
@pytest.mark.parametrize("text", ADVERSARIAL.values(), ids=ADVERSARIAL.keys())
def test_checking_and_scrubbing_a_huge_text_read_only_its_beginning(text: str) -> None:
    assert not contains_personal_data(text)
    assert scrub(text).endswith(privacy.CUT) and len(scrub(text)) <= MAX_CHARS + len(privacy.CUT)


def test_a_number_cut_at_the_limit_is_not_published_in_part() -> None:
    nik = "5201 0112 3456 7890"
    for offset in range(1, len(nik)):
        text = "laporan " * (MAX_CHARS // 8) + "x" * 10
        text = text[: MAX_CHARS - offset] + " " + nik + " email baiq.nurul@gmail.com"
        scrubbed = scrub(text)
        assert not re.search(r"\d", scrubbed[-40:]) and "@" not in scrubbed, offset


def test_personal_data_within_the_limit_of_a_long_text_is_masked() -> None:
    text = "Kronologi: " + "jalan rusak " * 500 + "hubungi 0812 3456 7890. " + "lampu mati " * 2000
    assert len(text) > MAX_CHARS and "phone" in personal_data_kinds(text)
    assert "7890" not in scrub(text) and MASK in scrub(text)


# -- ids from payloads in Graph requests ----------------------------------------------------------------------------

FORGED_IDS = ["1_../../104000000000001/feed?x=", "../me", "555000000000111/comments", "555000000000111?fields=x",
              "555000000000111#x", "５５５０００", "١٢٣", "555000000000111\n", "1_2_3", ""]


def with_target(db, target: str, channel: str = Channel.COMMENT, text: str | None = None, n: int = 1) -> int:  # type: ignore[no-untyped-def]
    """Ticket ``n``, whose public target (or Messenger PSID) is ``target``, as a payload could have set it."""
    ticket_id = make_ticket(db, n, channel=channel, **({"text": text} if text else {}))
    with db.scope() as session:
        ticket = session.get(Ticket, ticket_id)
        if channel == Channel.MESSENGER:
            ticket.psid = target
        else:
            ticket.comment_id = ticket.origin_id = target
    return ticket_id


@pytest.mark.parametrize("target", FORGED_IDS)
def test_a_forged_comment_id_sends_nothing_and_the_reply_fails_with_the_reason(db, settings, fake, graph_client,  # type: ignore[no-untyped-def]
                                                                               target) -> None:
    [reply_id] = answer(db, with_target(db, target))
    report = send_due_replies(db, settings, graph_client, policy=FAST)
    assert fake.calls == []  # no request reached any URL
    reply = reply_row(db, reply_id)
    assert report.failed == [reply_id] and reply.status == ReplyStatus.FAILED
    assert reply.error.startswith("InvalidGraphIdError: not a Facebook object id") and repr(target[:100]) in reply.error
    send_due_replies(db, settings, graph_client, policy=FAST)  # failed for good: not retried
    assert fake.calls == [] and reply_row(db, reply_id).status == ReplyStatus.FAILED
    with db.session() as session:
        assert session.scalars(select(AuditEntry.action).where(AuditEntry.action == "reply_failed")).all()


def test_forged_ids_fail_hiding_private_replies_and_messenger_too(db, settings, fake, graph_client) -> None:  # type: ignore[no-untyped-def]
    forged = "1_../../104000000000001/feed?x="
    comment = with_target(db, forged, text="NIK saya 5201 0112 3456 7890")
    messenger = with_target(db, "../../104000000000001/feed", channel=Channel.MESSENGER, n=2)
    with db.scope() as session:
        owed = acknowledge_tickets(session, settings, [session.get(Ticket, comment), session.get(Ticket, messenger)])
        channels = sorted(r.channel for r in owed)
    assert channels == ["hide", "messenger", "private_reply"]
    report = send_due_replies(db, settings, graph_client, policy=FAST)
    assert fake.calls == [] and len(report.failed) == 3
    with db.session() as session:
        assert {r.status for r in session.scalars(select(Reply))} == {ReplyStatus.FAILED}


def test_an_unknown_reply_with_a_forged_id_is_failed_without_a_read_back(db, settings, fake, graph_client) -> None:  # type: ignore[no-untyped-def]
    [reply_id] = answer(db, with_target(db, "1_../../104000000000001/feed?x="))
    with db.scope() as session:
        session.execute(update(Reply).where(Reply.id == reply_id).values(status=ReplyStatus.UNKNOWN, attempts=1))
    send_due_replies(db, settings, graph_client, policy=FAST)
    assert fake.calls == [] and reply_row(db, reply_id).status == ReplyStatus.FAILED


@responses.activate
def test_the_client_quotes_each_id_as_one_path_segment() -> None:
    responses.add_callback(responses.POST, re.compile(f"{re.escape(BASE)}/.*"),
                           callback=lambda request: (200, {}, '{"id": "1_2"}'))
    responses.add_callback(responses.GET, re.compile(f"{re.escape(BASE)}/.*"),
                           callback=lambda request: (200, {}, '{"data": []}'))
    with GraphClient(BASE, VERSION, PAGE_ID, TOKEN, APP_SECRET) as client:
        client.reply_to_comment("1_../../104000000000001/feed?x=", "Halo")
        client.list_comment_replies("../me#frag")
        for dot_segment in ("..", ".", ""):
            with pytest.raises(InvalidRequestError):
                client.hide_comment(dot_segment)
    paths = [request.url.split("?")[0].removeprefix(BASE) for request in (c.request for c in responses.calls)]
    assert paths == [f"/{VERSION}/1_..%2F..%2F104000000000001%2Ffeed%3Fx%3D/comments",
                     f"/{VERSION}/..%2Fme%23frag/comments"]
    assert "x=" not in (responses.calls[0].request.url.split("?") + [""])[1]
