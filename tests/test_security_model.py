"""The routing model file: nothing is unpickled before its HMAC verifies, and only its owner can read it."""

from __future__ import annotations

import logging
import os
import pickle
import stat
from pathlib import Path

import pytest

from ntbcare.core.security import model_signing_key
from routing.classify import Classifier
from routing.examples import Example, load_seed
from routing.model import SIGNATURE_HEADER, UnsignedModelError, load_model
from routing.training import train

KEY = model_signing_key("a-long-random-secret-key-for-tests-only")


class Exploit:
    """A pickle that creates a marker file when unpickled: what an attacker who can write the file plants."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[object, tuple[str]]:
        return (os.system, (f"touch {self.marker}",))


@pytest.fixture(scope="module")
def saved(tmp_path_factory: pytest.TempPathFactory) -> Path:
    subset: list[Example] = [e for e in load_seed() if e.agency in {"PLN", "PDAM-GIRIMENANG", "PDAM", None}]
    path = tmp_path_factory.mktemp("model") / "fresh" / "routing-model.pkl"
    train(subset).save(path, KEY)
    return path


@pytest.fixture
def small_bundled_seed(monkeypatch: pytest.MonkeyPatch) -> None:
    subset = [e for e in load_seed() if e.agency in {"PLN", "PDAM-GIRIMENANG", "PDAM", None}]
    monkeypatch.setattr("routing.classify.load_seed", lambda: subset)


def test_genuine_model_loads_and_is_private(saved: Path) -> None:
    assert load_model(saved, KEY).decide_many(["PLN mati lampu di Selong"])[0].complaint is True
    assert stat.S_IMODE(saved.stat().st_mode) == 0o600
    assert stat.S_IMODE(saved.parent.stat().st_mode) == 0o700


@pytest.mark.parametrize("shape", ["bare pickle", "old signature", "other key"])
def test_tampered_model_is_refused_without_running_code(
    tmp_path: Path, saved: Path, shape: str, small_bundled_seed: None, caplog: pytest.LogCaptureFixture
) -> None:
    marker = tmp_path / "pwned"
    body = pickle.dumps({"versions": {}, "model": Exploit(marker)})
    path = tmp_path / "routing-model.pkl"
    if shape == "bare pickle":  # as saved before models were signed, or planted
        path.write_bytes(body)
    elif shape == "old signature":  # a genuine signature kept, the pickle after it replaced
        path.write_bytes(saved.read_bytes()[: len(SIGNATURE_HEADER) + 32] + body)
    else:
        import hashlib
        import hmac

        other = model_signing_key("another-secret")
        path.write_bytes(SIGNATURE_HEADER + hmac.new(other, body, hashlib.sha256).digest() + body)
    with pytest.raises(UnsignedModelError, match="ROUTING_MODEL_PATH"):
        load_model(path, KEY)
    assert not marker.exists()
    with caplog.at_level(logging.WARNING):
        classifier = Classifier.load(path, KEY)  # refused, retrained from the seed like a stale model
    assert not marker.exists(), "the planted pickle never ran"
    assert "ROUTING_MODEL_PATH" in caplog.text
    assert classifier.classify("air pdam mati di Ampenan").complaint is True
    assert load_model(path, KEY) is not None, "the retrained model is saved signed"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_model_written_over_a_world_readable_file_becomes_private(tmp_path: Path, saved: Path) -> None:
    path = tmp_path / "routing-model.pkl"
    path.write_bytes(b"old")
    path.chmod(0o644)
    load_model(saved, KEY).save(path, KEY)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
