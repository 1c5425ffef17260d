"""The classifier as the worker uses it: complaint or not, target, confidence, review, urgency."""

from __future__ import annotations

import pickle
from pathlib import Path

import pytest

from routing.classify import Classifier
from routing.examples import Example, load_seed
from routing.model import SIGNATURE_HEADER, StaleModelError, TrainedModel, current_versions, load_model
from routing.training import train
from routing.verdict import Classification

KEY = b"k" * 32


def signed(body: bytes, key: bytes = KEY) -> bytes:
    """A model file as TrainedModel.save writes it: header, HMAC-SHA256 of the pickle, the pickle."""
    import hashlib
    import hmac

    return SIGNATURE_HEADER + hmac.new(key, body, hashlib.sha256).digest() + body


def unsigned(data: bytes) -> bytes:
    return data[len(SIGNATURE_HEADER) + 32 :]


@pytest.fixture(scope="module")
def seed() -> list[Example]:
    return load_seed()


@pytest.fixture(scope="module")
def classifier(seed) -> Classifier:
    return Classifier(train(seed))


# Written for these tests (not copied from the seed): one plain message per common target.
CLEAR_CASES = [
    ("PLN", "Listrik padam lagi di Masbagik dari jam 6 pagi, token baru diisi kemarin. PLN tolong!"),
    ("PDAM-GIRIMENANG", "Air PDAM di Ampenan mati 3 hari, mandi pun susah. Giri Menang kemana?"),
    ("PDAM", "PDAM di Praya airnya keruh coklat seminggu ini, tdk bisa dipakai masak"),
    ("PUPRPKP", "jalan provinsi ruas Kopang - Mantang berlubang besar2, sdh bnyk yg jatuh"),
    ("DIKPORA", "SMA negeri di Mataram minta uang seragam 1,5 juta, katanya wajib. mohon dicek"),
    ("BAPENDA", "antri di samsat selong dr pagi blm dilayani, mau bayar pajak motor aja susah"),
    ("POLDA", "motor sy hilang dicuri di depan masjid, lapor polsek tdk ditanggapi"),
    ("BPN", "sertifikat tanah PTSL sdh 2 thn blm jadi, BPN lombok tengah lambat"),
    ("BPJSKES", "kartu BPJS kesehatan sy tiba2 nonaktif, pdhl iuran dibayar tiap bulan"),
    ("DISNAKERTRANS", "gaji sy di perusahaan sdh 3 bln tdk dibayar dan dibawah UMP, tlg disnaker"),
    ("BPBD", "banjir setinggi dada di Sambelia, warga butuh perahu dan tenda, tolong BPBD"),
    ("KAB-LOTIM", "SMP negeri di Aikmel atap kelasnya ambruk, murid belajar di teras"),
    ("KOTA-MATARAM", "sampah di Cakranegara tdk diangkut seminggu, bau sekali"),
    ("KAB-BIMA", "puskesmas di Woha tdk ada dokter, pasien disuruh pulang"),
]

CHATTER = [
    "mantap pak gubernur, jalan di kampung kami sdh mulus. terima kasih 🙏",
    "aamiin semoga sehat selalu",
    "@Baiq Rina liat ni",
    "selamat hari jadi NTB, semoga makin maju",
]


@pytest.mark.parametrize(("agency", "text"), CLEAR_CASES)
def test_clear_complaints_go_to_their_target(classifier, agency, text):
    result = classifier.classify(text)
    assert result.complaint is True
    assert result.candidates[0]["agency"] == agency
    assert result.agency in (agency, None)


def test_most_clear_complaints_are_routed_without_review(classifier):
    results = classifier.classify_many([text for _, text in CLEAR_CASES])
    routed = [r.agency for r in results if r.agency is not None]
    assert len(routed) >= 0.7 * len(CLEAR_CASES)
    assert all(result.confidence >= classifier.threshold for result in results if result.agency)


@pytest.mark.parametrize("text", CHATTER)
def test_praise_prayers_and_tags_are_not_complaints(classifier, text):
    result = classifier.classify(text)
    assert result.complaint is False
    assert result.agency is None
    assert result.abstain_reason is None


def test_vague_complaint_goes_to_operator_review(classifier):
    result = classifier.classify("pak tolong lah diperhatikan, sdh lama begini trs, kami capek")
    assert result.complaint is True
    assert result.agency is None
    assert result.abstain_reason in {"low_confidence", "close_candidates", "jurisdiction_unknown"}
    assert result.to_json()["review"] is True
    assert result.candidates, "the operator still sees the top candidates"


def test_regency_matter_without_a_place_asks_an_operator(classifier):
    result = classifier.classify("SMP negeri kami atapnya ambruk, murid belajar di teras. mohon bantuan")
    assert result.agency is None
    assert result.complaint is True
    assert result.abstain_reason is not None


def test_location_decides_between_regencies(classifier):
    lotim, ksb = classifier.classify_many([
        "SMP negeri di Aikmel atap kelasnya ambruk, murid belajar di teras",
        "SMP negeri di Taliwang atap kelasnya ambruk, murid belajar di teras",
    ])
    assert (lotim.candidates[0]["agency"], ksb.candidates[0]["agency"]) == ("KAB-LOTIM", "KAB-KSB")
    assert (lotim.location, ksb.location) == ("52.03", "52.07")


def test_urgent_flag_for_threat_to_life(classifier):
    urgent = classifier.classify("TOLONG!! rumah terbakar di Pagesangan, api besar, ada anak kecil di dalam!!")
    calm = classifier.classify("lampu jalan provinsi di Kopang mati sebulan, mohon diganti")
    assert urgent.urgent is True
    assert calm.urgent is False


def test_json_has_the_ticket_keys_and_calibrated_ranges(classifier):
    result = classifier.classify("listrik mati terus di Gunungsari, PLN tolong")
    data = result.to_json()
    assert list(data)[:6] == ["complaint", "agency", "confidence", "candidates", "location", "urgent"]
    assert 0.0 <= data["confidence"] <= 1.0
    assert len(data["candidates"]) <= 5
    scores = [candidate["score"] for candidate in data["candidates"]]
    assert scores == sorted(scores, reverse=True)
    assert data["location"] == "52.01"
    assert data["location_detail"]["kecamatan"]["name"] == "Gunungsari"


def test_training_with_extra_examples_changes_a_prediction(seed):
    text = "tenda pengungsian di lapangan Kopang bocor semua"
    extra = [
        Example(text=f"tenda pengungsian {place} bocor, tolong diganti", complaint=True, agency="BIROUMUM",
                family=f"op-{i}")
        for i, place in enumerate(["di Kopang", "lapangan Praya", "posko Jonggat", "di Janapria", "lapangan Kopang",
                                   "di Pujut", "posko Batukliang", "di Kopang lagi"])
    ]
    before = Classifier(train(seed, calibrate=False)).classify(text).candidates[0]["agency"]
    after = Classifier(train(seed + extra, calibrate=False)).classify(text).candidates[0]["agency"]
    assert before != "BIROUMUM"
    assert after == "BIROUMUM"


def test_missing_model_is_trained_and_saved_then_reused(tmp_path: Path, small_bundled_seed, monkeypatch):
    path = tmp_path / "model.pkl"
    first = Classifier.load(path, KEY)
    assert path.exists()
    saved, stamp = path.read_bytes(), path.stat().st_mtime_ns

    def no_training(*args, **kwargs):
        raise AssertionError("a saved model of the current versions must be reused, not retrained")

    monkeypatch.setattr("routing.classify.train", no_training)
    again = Classifier.load(path, KEY)
    assert path.stat().st_mtime_ns == stamp and path.read_bytes() == saved, "the saved file is not rewritten"
    assert again.classify("PLN mati lampu di Selong").candidates[0]["agency"] == "PLN"
    assert isinstance(first.classify("halo"), Classification)


@pytest.fixture
def small_bundled_seed(seed, monkeypatch):
    """Retraining tests do not need the whole seed: a few targets keep them fast."""
    subset = [example for example in seed if example.agency in {"PLN", "PDAM-GIRIMENANG", "PDAM", None}]
    monkeypatch.setattr("routing.classify.load_seed", lambda: subset)
    return subset


def test_model_from_another_library_version_is_retrained(tmp_path: Path, small_bundled_seed):
    path = tmp_path / "model.pkl"
    Classifier.load(path, KEY)
    payload = pickle.loads(unsigned(path.read_bytes()))
    payload["versions"] = {**payload["versions"], "sklearn": "0.0.1"}
    path.write_bytes(signed(pickle.dumps(payload)))
    Classifier.load(path, KEY)
    assert load_model(path, KEY).versions["sklearn"] != "0.0.1"


def test_model_naming_a_class_that_has_moved_is_retrained(tmp_path: Path, small_bundled_seed, monkeypatch):
    """A file pickled before a class moved module cannot be unpickled: it is retrained, never an error."""

    class Moved:
        pass

    Moved.__module__, Moved.__qualname__ = "routing.model", "Moved"
    monkeypatch.setattr("routing.model.Moved", Moved, raising=False)
    path = tmp_path / "model.pkl"
    path.write_bytes(signed(pickle.dumps({"versions": current_versions(), "model": Moved()})))
    monkeypatch.delattr("routing.model.Moved")
    with pytest.raises(StaleModelError):
        load_model(path, KEY)
    assert Classifier.load(path, KEY).classify("air pdam mati di Ampenan").complaint is True
    assert isinstance(load_model(path, KEY), TrainedModel)


def test_garbage_model_file_is_replaced(tmp_path: Path, small_bundled_seed):
    path = tmp_path / "model.pkl"
    path.write_bytes(b"not a pickle")
    assert Classifier.load(path, KEY).classify("air pdam mati di Ampenan").complaint is True


def test_road_of_unknown_status_goes_to_review_but_a_provincial_road_is_routed(classifier):
    unknown, provincial = classifier.classify_many([
        "JALAN RUSAK PARAH DI LOTIM TOLONG",
        "jalan provinsi di Lotim rusak parah, lubang dimana2",
    ])
    assert unknown.complaint and unknown.agency is None
    assert unknown.abstain_reason == "jurisdiction_unknown"
    assert provincial.candidates[0]["agency"] == "PUPRPKP"


def test_the_classifier_reads_a_text_only_up_to_its_cap(classifier):
    """A text of megabytes (a paste, an attack) must not hold a worker: only its first MAX_TEXT_CHARS count."""
    from routing.classify import MAX_TEXT_CHARS

    road = "Jalan provinsi ke Sembalun berlubang besar, mohon Dinas PUPR perbaiki. "
    power = "Listrik padam sejak pagi di Kelurahan Pagesangan Mataram, token sudah diisi tetap mati. Tolong PLN. "
    head = (road * 200)[:MAX_TEXT_CHARS]
    assert classifier.classify(power * 20).agency == "PLN"
    assert classifier.classify(head + power * 2000).to_json() == classifier.classify(head).to_json()
