"""The routing commands as the README promises them: `ntbcare init` trains a missing model, and
`ntbcare routing evaluate --cross-validate N` measures the method over the bundled seed."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from ntbcare.cli import cli
from ntbcare.core.db import Database
from ntbcare.core.migrate import upgrade
from ntbcare.core.security import model_signing_key
from routing.classify import Classifier
from routing.examples import load_seed
from routing.model import load_model
from tests.conftest import BASE_ENV

PLN_TEXT = "Listrik padam sejak pagi di Kelurahan Pagesangan Mataram, token sudah diisi tetap mati. Tolong PLN"


@pytest.fixture
def migrated_sqlite(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'ntbcare.db'}"
    database = Database(url)
    upgrade(database.engine)
    database.dispose()
    return url


def test_init_trains_a_missing_model_that_then_classifies(tmp_path: Path) -> None:
    model = tmp_path / "models" / "routing-model.pkl"
    env = {**BASE_ENV, "DATABASE_URL": f"sqlite:///{tmp_path / 'ntbcare.db'}", "ROUTING_MODEL_PATH": str(model)}
    result = CliRunner().invoke(cli, ["init"], env=env)
    assert result.exit_code == 0, result.output
    assert model.is_file(), "init trains the model from the bundled seed and saves it"
    assert str(model) in result.output
    verdict = Classifier(load_model(model, model_signing_key(BASE_ENV["SECRET_KEY"]))).classify(PLN_TEXT)
    assert verdict.complaint is True
    assert verdict.candidates[0]["agency"] == "PLN"


def test_cross_validate_needs_two_folds(migrated_sqlite: str) -> None:
    env = {**BASE_ENV, "DATABASE_URL": migrated_sqlite}
    result = CliRunner().invoke(cli, ["routing", "evaluate", "--cross-validate", "1"], env=env)
    assert result.exit_code != 0
    assert "at least 2 folds" in result.output


def test_cross_validate_reports_every_seed_example_once_without_the_saved_model(
        tmp_path: Path, migrated_sqlite: str) -> None:
    absent = tmp_path / "never-written.pkl"
    env = {**BASE_ENV, "DATABASE_URL": migrated_sqlite, "ROUTING_MODEL_PATH": str(absent)}
    result = CliRunner().invoke(cli, ["routing", "evaluate", "--cross-validate", "2", "--json"], env=env)
    assert result.exit_code == 0, result.output
    assert "cross-validating over 2 folds" in result.stderr
    figures = json.loads(result.stdout)
    seed = load_seed()
    assert figures["examples"] == len(seed), "each seed example is predicted once, by the fold that held it out"
    assert set(figures["per_target"]) == {example.agency for example in seed if example.complaint and example.agency}
    for key in ("macro_f1", "routed_precision", "routed_coverage", "threshold", "margin", "confusions", "table"):
        assert key in figures
    assert figures["complaint_f1"] >= 0.9
    assert 0.5 <= figures["macro_f1"] <= 1.0
    assert 0.0 < figures["routed_coverage"] < 1.0
    assert not absent.exists(), "cross-validation retrains per fold; it neither loads nor writes the saved model"
