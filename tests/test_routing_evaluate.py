"""Evaluation reports: group k-fold by family, held-out sets, and the LaporGub loader."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from routing import laporgub
from routing.evaluate import evaluate, evaluate_on, predict, report_from
from routing.examples import Example, load_seed
from routing.training import train


@pytest.fixture(scope="module")
def small_seed() -> list[Example]:
    seed = load_seed()
    wanted = {"PLN", "BPJN", "BAPENDA", "POLDA", None}
    return [example for example in seed if example.agency in wanted]


def test_group_kfold_never_splits_a_family(small_seed):
    seen_train_families: list[set[str]] = []

    def factory(examples):
        seen_train_families.append({example.family for example in examples})
        return train(examples, calibrate=False)

    report = evaluate(factory, small_seed, folds=3)
    all_families = {example.family for example in small_seed}
    assert len(seen_train_families) == 3
    held_out = [all_families - families for families in seen_train_families]
    assert all(held_out[i].isdisjoint(held_out[j]) for i in range(3) for j in range(i + 1, 3))
    assert set().union(*held_out) == all_families
    assert report.examples == len(small_seed)


def test_report_has_the_figures_the_cli_prints(small_seed):
    model = train(small_seed[::2])
    report = evaluate_on(model, small_seed[1::2])
    assert report.examples == len(small_seed[1::2])
    assert 0.8 <= report.complaint_f1 <= 1.0
    assert set(report.per_target) == {"PLN", "BPJN", "BAPENDA", "POLDA"}
    assert report.threshold == model.threshold
    coverages = [row["coverage"] for row in report.table]
    assert coverages == sorted(coverages, reverse=True), "a higher threshold never routes more"
    text = report.to_text()
    assert "threshold  precision  coverage" in text and "PLN" in text
    assert json.loads(json.dumps(report.to_json()))["macro_f1"] == report.macro_f1


def test_wrongly_routed_chatter_counts_against_precision():
    truths = [
        Example("a", complaint=True, agency="PLN", family="1"),
        Example("b", complaint=False, family="2"),
    ]
    from routing.evaluate import Prediction

    predictions = [
        Prediction(truths[0], True, "PLN", 0.9, 0.8, True, False, True, None),
        Prediction(truths[1], True, "PLN", 0.9, 0.8, True, False, True, None),
    ]
    report = report_from(predictions, threshold=0.5, margin=0.0)
    assert report.routed_precision == 0.5
    assert report.routed_coverage == 1.0
    assert report.complaint_precision == 0.5


def test_predict_keeps_the_forced_guess_for_abstained_texts(small_seed):
    model = train(small_seed, calibrate=False)
    model.threshold = 1.01
    predictions = predict(model, [example for example in small_seed if example.complaint][:20])
    complaints = [p for p in predictions if p.complaint]
    assert complaints and not any(p.routed for p in complaints)
    assert all(p.guess for p in complaints)


def test_laporgub_loader_maps_categories_and_drops_saberpungli(tmp_path: Path):
    path = tmp_path / "prep.csv"
    path.write_text(
        "id;complaints;category\n"
        "1.0;['lampu', 'jalan', 'mati'];infrastruktur\n"
        "2.0;['pajak', 'motor', 'samsat'];keuangan dan aset \n"
        "3.0;['pungli'];saberpungli\n"
        "4.0;['banjir', 'rumah'];bencana \n",
        encoding="utf-8",
    )
    examples = laporgub.load(path)
    assert [(e.text, e.agency) for e in examples] == [
        ("lampu jalan mati", "PUPRPKP"),
        ("pajak motor samsat", "BAPENDA"),
        ("banjir rumah", "BPBD"),
    ]
    assert all(example.complaint for example in examples)
    train_part, test_part = laporgub.split(examples * 10)
    assert len(train_part) == 24 and len(test_part) == 6
