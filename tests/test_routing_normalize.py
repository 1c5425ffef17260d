"""Normalising informal Indonesian, Sasak and emoji without losing what matters."""

from routing.normalize import normalize


def test_slang_abbreviations_and_sasak_words_become_standard_words():
    assert normalize("tlg pak, sdh 3 hr blm ada air") == "tolong bapak sudah number hari belum ada air"
    assert normalize("tiang ndek tau mele lapor kemana") == "saya tidak tahu mau lapor kemana"


def test_repeated_letters_and_reduplication_are_squeezed():
    assert normalize("tolooong bangeeet") == "tolong banget"
    assert normalize("kanak2 sakit") == "anak sakit"


def test_emoji_tags_and_links_become_marker_words():
    text = normalize("@Lalu Ahmad liat ni 🙏 https://fb.com/x 😡")
    assert text.split() == ["tagorang", "lihat", "ini", "emojipositif", "tautanweb", "emojinegatif"]


def test_stemming_is_optional():
    assert normalize("perbaikan jalan") == "perbaikan jalan"
    assert normalize("perbaikan jalan", stem=True) == "baik jalan"
