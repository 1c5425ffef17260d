"""Attacks on the bot: personal data written so the public-answer check missed it, and texts that made the
e-mail pattern quadratic."""

from __future__ import annotations

import re

import pytest

from bot import privacy
from bot.acknowledge import acknowledge_tickets
from bot.privacy import MASK, MAX_CHARS, contains_personal_data, personal_data_kinds, scrub
from bot.sender import send_due_replies
from ntbcare.core.models import Ticket
from tests import test_bot_outbox as outbox_tests
from tests.test_bot_outbox import FAST, answer, make_ticket

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
