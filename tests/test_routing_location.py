"""Finding the kab/kota (and kecamatan/desa) a citizen names, the way citizens name it."""

import pytest

from routing.location import find_location
from routing.normalize import normalize


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("jalan di Lobar rusak parah", "52.01"),
        ("sekolah di Gerung bocor", "52.01"),
        ("lampu mati di Loteng dr kmrn", "52.02"),
        ("pasar Praya becek", "52.02"),
        ("Lotim banjir lg", "52.03"),
        ("kantor di Selong tutup", "52.03"),
        ("jalan ke Tanjung rusak", "52.08"),
        ("KLU blm ada listrik", "52.08"),
        ("warga KSB protes", "52.07"),
        ("puskesmas Taliwang antri", "52.07"),
        ("RSUD Sumbawa Besar", "52.04"),
        ("kantor bupati di Woha", "52.06"),
        ("pasar Raba kotor", "52.72"),
        ("air mati di kota Bima", "52.72"),
        ("macet di Mtr tiap sore", "52.71"),
        ("Cakranegara banjir", "52.71"),
        ("Hu'u dompu panas", "52.05"),
    ],
)
def test_aliases_and_capitals_find_the_kabupaten(text, code):
    match = find_location(text)
    assert match is not None
    assert match.code == code


def test_kecamatan_and_desa_are_reported_with_codes():
    match = find_location("jembatan putus di desa Kelayu Utara, Selong")
    assert match.code == "52.03"
    assert match.desa.name == "Kelayu Utara"
    assert match.kecamatan.name == "Selong"
    detail = match.to_dict()
    assert detail["kabkota"] == {"code": "52.03", "name": "Kabupaten Lombok Timur"}
    assert detail["desa"]["code"] == match.desa.code


def test_one_typo_in_a_long_name_is_forgiven():
    assert find_location("banjir di Masbagek tadi malam").code == "52.03"
    assert find_location("jalan ke Sembalunn longsor").code == "52.03"
    assert find_location("Cakranegra macet").code == "52.71"


def test_indonesian_words_are_not_misread_as_places():
    assert find_location("minta 2 lembar fotokopi ktp") is None
    assert find_location("sampe skrg blm ada kabar") is None
    assert find_location("lansia sebatang kara tdk dapat bantuan") is None
    assert find_location("pengen jembatan gantung diperbaiki") is None


def test_ordinary_word_names_count_after_a_cue():
    assert find_location("jalan di desa Sampe rusak").code == "52.04"
    assert find_location("antri panjang di pelabuhan Lembar").code == "52.01"


def test_plain_bima_is_the_kabupaten_unless_city_places_are_named():
    assert find_location("air mati di Bima 3 hari").code == "52.06"
    assert find_location("drainase di Paruga mampet, Pemkot Bima lambat").code == "52.72"


def test_no_place_no_location():
    assert find_location("mantap pak gub, semoga sehat selalu") is None
    assert find_location("") is None


def test_normaliser_keeps_place_names_and_school_levels():
    text = normalize("Jln di desa Sampe rusak, sampe skrg SMP kami blm diperbaiki")
    assert "desa sampe" in text
    assert "sampai sekarang" in text
    assert "smp" in text
