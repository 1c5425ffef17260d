"""Personal data in a complaint must not sway its routing: phone numbers, NIKs and e-mail addresses are
removed and URLs reduced to a marker before any feature is taken."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from routing.classify import Classifier
from routing.examples import load_seed
from routing.tokens import mask_personal_data, prepare
from routing.training import train

ROAD = ("Jalan provinsi ruas Praya - Keruak di Lombok Tengah rusak parah, lubang besar di mana-mana, "
        "sudah banyak pengendara jatuh. Mohon segera diperbaiki")


@pytest.mark.parametrize(("text", "kept", "gone"), [
    ("hubungi saya di 0812-3456-7890 ya", "hubungi saya di", "7890"),
    ("WA +62 812 3456 7890 pak", "WA", "812"),
    ("no hp 6281234567890", "no hp", "628"),
    ("NIK 5202011203850001 atas nama Lalu", "atas nama Lalu", "5202"),
    ("surel lalu.hendra@gmail.com", "surel", "gmail"),
    ("foto di https://photos.app.goo.gl/AbC123", "tautanweb", "goo.gl"),
])
def test_personal_data_is_masked(text: str, kept: str, gone: str) -> None:
    masked = mask_personal_data(text)
    assert kept in masked and gone not in masked and gone not in prepare(text)


@pytest.mark.parametrize("text", ["jalan km 12 rusak 3 meter", "RT 02/RW 05 sejak tahun 2024",
                                  "jam 08.30 lampu mati", "nomor rumah 081"])
def test_ordinary_numbers_stay(text: str) -> None:
    assert mask_personal_data(text) == text


@pytest.fixture(scope="module")
def classifier() -> Classifier:
    return Classifier(train(load_seed()))


DRAIN = ("drainase sepanjang jalan provinsi di Pringgabaya mampet, tiap hujan air naik ke jalan, "
         "kendaraan pd mogok")
DETAILS = ". Hubungi saya di 0812-3456-7890, NIK saya 5202011203850001"


@contextmanager
def without_masking() -> Iterator[None]:
    """Routing as before issue 10: features taken from the writer's contact details too (the baseline)."""
    import routing.tokens

    masking = routing.tokens.mask_personal_data
    routing.tokens.mask_personal_data = lambda text: text
    try:
        yield
    finally:
        routing.tokens.mask_personal_data = masking


@pytest.fixture(scope="module")
def unmasked_classifier() -> Classifier:
    with without_masking():
        return Classifier(train(load_seed()))


def test_contact_details_would_send_a_clear_complaint_to_review_without_masking(
        classifier: Classifier, unmasked_classifier: Classifier) -> None:
    assert classifier.classify(DRAIN).agency == classifier.classify(DRAIN + DETAILS).agency == "PUPRPKP"
    with without_masking():
        alone, with_details = unmasked_classifier.classify(DRAIN), unmasked_classifier.classify(DRAIN + DETAILS)
    assert alone.agency == "PUPRPKP"
    assert with_details.agency is None and with_details.abstain_reason == "low_confidence"


@pytest.mark.parametrize("extra", [
    ". Hubungi saya di 081234567890",
    ". Hubungi saya di 0812-3456-7890, NIK saya 5202011203850001",
    ". Surel saya lalu.hendra@gmail.com",
])
def test_a_complaint_routes_the_same_with_its_writers_contact_details(classifier: Classifier, extra: str) -> None:
    alone = classifier.classify(ROAD)
    with_details = classifier.classify(ROAD + extra)
    assert (with_details.agency, with_details.abstain_reason) == (alone.agency, alone.abstain_reason)
    assert with_details.confidence == pytest.approx(alone.confidence, abs=0.005)


ADVERSARIAL = {"a run of digits": "1" * 1_000_000 + " selesai", "digits glued to a word": "1" * 1_000_000 + "a",
               "dotted words": "a.b" * 300_000, "digits with separators": "1 " * 500_000,
               "an @ after a long run": "x" * 1_000_000 + "@", "tags": "@a " * 300_000}


@pytest.mark.timeout(60)
@pytest.mark.parametrize("text", ADVERSARIAL.values(), ids=ADVERSARIAL.keys())
def test_masking_finishes_on_a_million_adversarial_characters(text: str) -> None:
    """Linear patterns: a quadratic one (the e-mail pattern tried from every character) needs hours here."""
    masked = mask_personal_data(text)
    assert not re.search(r"\w@\w", masked)
    if text.endswith(" selesai") or text.startswith("1 "):
        assert not re.search(r"\d", masked)  # a long number, however written, is gone


def test_routing_reads_only_the_beginning_of_a_huge_text() -> None:
    assert prepare(ROAD + " " + "x" * 1_000_000) == prepare((ROAD + " " + "x" * 1_000_000)[:8_000])
    assert len(prepare("jalan " * 200_000)) <= 8_000
