"""Fitting the routing model, with calibration and the operating point taken from out-of-fold predictions.

Confidence is calibrated with isotonic regression on out-of-fold predictions (group k-fold by paraphrase
family), and the abstain threshold is chosen from the out-of-fold precision/coverage table and stored with
the model, so the threshold never sees the labels it is judged on.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np
from sklearn.isotonic import IsotonicRegression
from sklearn.model_selection import GroupKFold

from routing.examples import Example
from routing.features import Analysis, FeatureBuilder, analyse
from routing.model import TrainedModel, collapse, current_versions
from routing.operating import MARGINS, TARGET_PRECISION, Guess, choose_operating_point, operating_table
from routing.registry import load_registry
from routing.stages import (
    COMPLAINT_C,
    TARGET_C,
    URGENT_C,
    BinaryStage,
    SoftmaxSVC,
    binary_stage,
    fit_temperature,
    positive_probability,
    softmax,
)

_OOF_FOLDS = 5


@dataclass(frozen=True)
class _Options:
    seed: int
    stem: bool
    road_status_rule: bool


def _kinds() -> dict[str, str]:
    return {record.code: record.kind for record in load_registry()}


def _target_rows(examples: list[Example], kinds: dict[str, str]) -> tuple[list[int], list[str]]:
    """Rows labelled with an owner, and their collapsed class labels."""
    rows, labels = [], []
    for i, example in enumerate(examples):
        if example.complaint and example.agency:
            rows.append(i)
            labels.append(collapse(example.agency, kinds))
    return rows, labels


def _fit_stages(matrix: Any, examples: list[Example], text_columns: int,
                seed: int) -> tuple[BinaryStage, SoftmaxSVC, BinaryStage]:
    # Complaint and urgency read the text n-grams only: keyword and place evidence made chatter that names a
    # place or an agency look like a complaint (group 5-fold F1 0.966 with it, 0.973 without).
    binary_matrix = matrix[:, :text_columns]
    complaint_labels = np.array([example.complaint for example in examples])
    complaint_stage = binary_stage(binary_matrix, complaint_labels, COMPLAINT_C, seed)
    rows, target_labels = _target_rows(examples, _kinds())
    target_stage = SoftmaxSVC(c=TARGET_C, seed=seed)
    target_stage.fit(matrix[rows], target_labels)
    urgent_stage = binary_stage(binary_matrix, np.array([example.urgent for example in examples]), URGENT_C, seed)
    return complaint_stage, target_stage, urgent_stage


def _bare_model(examples: list[Example], features: FeatureBuilder, matrix: Any, options: _Options) -> TrainedModel:
    """Stages fitted on these examples, with no calibration and the default operating point."""
    records = load_registry()
    regency_by_location = {
        record.location: record.code for record in records if record.kind == "regency" and record.location
    }
    complaint_stage, target_stage, urgent_stage = _fit_stages(matrix, examples, features.text_columns,
                                                              options.seed)
    return TrainedModel(features, complaint_stage, target_stage, urgent_stage,
                        regency_by_location=regency_by_location, stem=options.stem,
                        binary_columns=features.text_columns, road_status_rule=options.road_status_rule,
                        versions=current_versions())


def _out_of_fold_scores(model: TrainedModel, examples: list[Example], features: FeatureBuilder, matrix: Any,
                        options: _Options, folds: int) -> tuple[np.ndarray, np.ndarray]:
    """P(complaint) and target SVM scores of every example from a model that never saw its family."""
    classes = [str(label) for label in model.target_stage.classes_]
    families = [example.family or f"row-{i}" for i, example in enumerate(examples)]
    decisions = np.full((len(examples), len(classes)), -5.0)
    p_complaint = np.zeros(len(examples))
    for train_rows, test_rows in GroupKFold(n_splits=folds).split(examples, groups=families):
        fold_model = _bare_model([examples[i] for i in train_rows], features, matrix[train_rows], options)
        test_matrix = matrix[test_rows]
        binary_test = test_matrix[:, : fold_model.binary_columns]
        p_complaint[test_rows] = positive_probability(fold_model.complaint_stage, binary_test)
        fold_columns = [classes.index(str(label)) for label in fold_model.target_stage.classes_]
        decisions[np.ix_(test_rows, fold_columns)] = fold_model.target_stage.decision(test_matrix)
    return p_complaint, decisions


def _calibrate(model: TrainedModel, examples: list[Example], analyses: list[Analysis], p_complaint: np.ndarray,
               decisions: np.ndarray) -> None:
    """Fit the temperature, the isotonic calibration and the operating point on out-of-fold predictions."""
    classes = [str(label) for label in model.target_stage.classes_]
    labelled, labels = _target_rows(examples, _kinds())
    truth_index = np.array([classes.index(label) for label in labels])
    model.target_stage.temperature = fit_temperature(decisions[labelled], truth_index)
    p_target = softmax(decisions * model.target_stage.temperature)
    raw = np.zeros(len(examples))
    gaps = np.zeros(len(examples))
    guesses: list[str | None] = [None] * len(examples)
    for row in range(len(examples)):
        order = np.argsort(-p_target[row])
        top = float(p_target[row][order[0]])
        second = float(p_target[row][order[1]]) if len(order) > 1 else 0.0
        raw[row] = model.raw_confidence(float(p_complaint[row]), top)
        gaps[row] = top - second
        if not model.road_owner_unknown(classes[order[0]], analyses[row]):
            guesses[row] = model.resolve(classes[order[0]], analyses[row])
    complaint_flags = p_complaint >= 0.5
    routed_rows = [i for i in range(len(examples)) if complaint_flags[i]]
    correct = [bool(examples[i].complaint and guesses[i] == examples[i].agency) for i in routed_rows]
    if routed_rows and 0 < sum(correct) < len(correct):
        model.calibration = IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip")
        model.calibration.fit(raw[routed_rows], correct)
    confidences = model.calibration.predict(raw) if model.calibration is not None else raw
    by_margin: dict[float, list[Guess]] = {
        margin: [(guesses[i], float(confidences[i]), float(gaps[i]), bool(complaint_flags[i]))
                 for i in range(len(examples))]
        for margin in MARGINS
    }
    model.oof_table = operating_table(examples, by_margin)
    model.threshold, model.margin = choose_operating_point(model.oof_table, TARGET_PRECISION)


def train(
    examples: Iterable[Example],
    *,
    seed: int = 0,
    stem: bool = False,
    calibrate: bool = True,
    road_status_rule: bool = True,
) -> TrainedModel:
    """Fit on all examples; calibration and threshold come from group k-fold (by family) predictions.

    The TF-IDF vocabulary is fitted once on all training texts (no labels involved) and shared by the folds,
    which keeps training within seconds; the folds' classifiers never see their held-out labels.
    road_status_rule=False is for corpora labelled by topic rather than owner (LaporGub).
    """
    examples = list(examples)
    analyses = [analyse(example.text, stem=stem) for example in examples]
    features = FeatureBuilder()
    matrix = features.fit_transform(analyses)
    options = _Options(seed=seed, stem=stem, road_status_rule=road_status_rule)
    model = _bare_model(examples, features, matrix, options)
    folds = min(_OOF_FOLDS, len({example.family or f"row-{i}" for i, example in enumerate(examples)}))
    if not calibrate or folds < 2:
        return model
    p_complaint, decisions = _out_of_fold_scores(model, examples, features, matrix, options, folds)
    _calibrate(model, examples, analyses, p_complaint, decisions)
    return model
