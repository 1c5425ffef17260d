"""Retraining the routing model from the bundled seed plus people's decisions, and evaluating it.

scikit-learn is imported inside these functions: web processes and most commands never train.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from ntbcare.core.db import Database
from ntbcare.core.security import model_signing_key, private_dir
from ntbcare.core.settings import Settings
from ntbcare.pipeline.classifier import load_classifier
from routing.decisions import training_examples
from routing.examples import SEED_DIR, Example, load_seed, read_jsonl

if TYPE_CHECKING:
    from routing.evaluate import Report


@dataclass(frozen=True)
class TrainingRun:
    path: Path
    seconds: float
    threshold: float


def training_data(db: Database) -> tuple[list[Example], list[Example]]:
    """The bundled seed and every labelled decision people made (operators, agencies)."""
    with db.session() as session:
        decisions = training_examples(session)
    return load_seed(), decisions


def retrain(settings: Settings, seed: list[Example], decisions: list[Example]) -> TrainingRun:
    """Train on ``seed + decisions`` and replace the saved model atomically (running processes reload it
    when they see the new file)."""
    from routing.training import train

    started = time.monotonic()
    model = train(seed + decisions)
    path = Path(settings.routing_model_path)
    private_dir(path.parent)
    partial = path.with_suffix(path.suffix + ".new")
    model.save(partial, model_signing_key(settings.secret_key))
    partial.replace(path)  # atomic: a worker never loads half a file
    return TrainingRun(path, time.monotonic() - started, model.threshold)


def evaluate_saved_model(settings: Settings, data: Path | None = None) -> Report:
    """The saved model on labelled examples (the bundled frozen test set by default)."""
    from routing.evaluate import evaluate_on

    examples = read_jsonl(data or SEED_DIR.parent / "eval" / "frozen_test.jsonl")
    return evaluate_on(load_classifier(settings.routing_model_path, settings.secret_key).model, examples)


def cross_validate(folds: int) -> Report:
    """Group k-fold over the seed, retraining for every fold."""
    from routing.evaluate import evaluate
    from routing.training import train

    return evaluate(lambda examples: train(examples), load_seed(), folds=folds)
