"""Measure the classifier: group k-fold by paraphrase family, or a fixed test set (the honest number)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass, field

import numpy as np
from sklearn.model_selection import GroupKFold

from routing.classify import Classifier
from routing.examples import Example
from routing.model import TrainedModel
from routing.operating import Guess, operating_table

NOT_COMPLAINT = "(not a complaint)"
NO_JURISDICTION = "(owner unknown)"


@dataclass(frozen=True)
class Prediction:
    """One evaluated text: the forced guess and what the operating point made of it."""

    truth: Example
    complaint: bool
    guess: str | None
    confidence: float
    gap: float
    routed: bool
    urgent: bool
    routable: bool
    location: str | None


@dataclass
class Report:
    """Evaluation figures; to_text() for people, to_json() for files and CI."""

    examples: int
    complaint_precision: float
    complaint_recall: float
    complaint_f1: float
    macro_f1: float
    accuracy: float
    routed_precision: float
    routed_coverage: float
    threshold: float
    margin: float
    per_target: dict[str, dict] = field(default_factory=dict)
    table: list[dict] = field(default_factory=list)
    confusions: list[dict] = field(default_factory=list)
    urgent_precision: float = 0.0
    urgent_recall: float = 0.0
    location_accuracy: float | None = None
    calibration: list[dict] = field(default_factory=list)
    abstain_reasons: dict[str, int] = field(default_factory=dict)

    def to_json(self) -> dict:
        """Every figure as plain JSON types (``ntbcare routing evaluate --json``)."""
        return asdict(self)

    def to_text(self) -> str:
        """A readable summary with the per-target table and the precision/coverage curve."""
        lines = [
            f"examples: {self.examples}",
            f"complaint vs not: precision {self.complaint_precision:.3f}  recall {self.complaint_recall:.3f}  "
            f"F1 {self.complaint_f1:.3f}",
            f"target macro-F1 (forced, no abstain): {self.macro_f1:.3f}  accuracy on complaints {self.accuracy:.3f}",
            f"auto-routed at threshold {self.threshold:.2f} / margin {self.margin:.2f}: precision "
            f"{self.routed_precision:.3f}  coverage {self.routed_coverage:.3f}",
            f"urgent: precision {self.urgent_precision:.3f}  recall {self.urgent_recall:.3f}",
        ]
        if self.location_accuracy is not None:
            lines.append(f"location (kab/kota) accuracy where labelled: {self.location_accuracy:.3f}")
        if self.abstain_reasons:
            lines.append("review reasons: " + ", ".join(f"{k} {v}" for k, v in sorted(self.abstain_reasons.items())))
        lines += ["", "threshold  precision  coverage  routed"]
        lines += [
            f"{row['threshold']:9.2f}  {row['precision']:9.3f}  {row['coverage']:8.3f}  {row['routed']:6d}"
            for row in self.table
        ]
        lines += ["", "calibration (confidence bin: mean confidence / share correct / n)"]
        lines += [f"  {row['bin']}: {row['confidence']:.2f} / {row['accuracy']:.2f} / {row['n']}" for row in
                  self.calibration]
        lines += ["", f"{'target':<20} precision  recall   f1   support"]
        for code, row in sorted(self.per_target.items()):
            lines.append(
                f"{code:<20} {row['precision']:9.3f} {row['recall']:7.3f} {row['f1']:5.3f} {row['support']:7d}"
            )
        lines += ["", "top confusions (truth -> guess: count)"]
        lines += [f"  {row['truth']} -> {row['guess']}: {row['count']}" for row in self.confusions]
        return "\n".join(lines)


def _model_of(model: TrainedModel | Classifier) -> TrainedModel:
    return model.model if isinstance(model, Classifier) else model


def predict(model: TrainedModel | Classifier, examples: list[Example]) -> list[Prediction]:
    """Run a model (TrainedModel or Classifier) over examples, keeping the forced guess for the curves."""
    trained = _model_of(model)
    analyses = trained.analyse([example.text for example in examples])
    p_complaint, p_target, p_urgent = trained.scores(analyses)
    predictions = []
    for i, (example, analysis) in enumerate(zip(examples, analyses, strict=True)):
        decision = trained.decide(analysis, float(p_complaint[i]), p_target[i], float(p_urgent[i]))
        ordered = np.sort(p_target[i])[::-1]
        gap = float(ordered[0] - ordered[1]) if len(ordered) > 1 else float(ordered[0])
        predictions.append(
            Prediction(
                truth=example,
                complaint=decision.complaint,
                guess=decision.best_guess if decision.complaint else None,
                confidence=decision.confidence if decision.complaint else 0.0,
                gap=gap,
                routed=decision.agency is not None,
                urgent=decision.urgent,
                routable=decision.routable,
                location=analysis.location.code if analysis.location else None,
            )
        )
    return predictions


def _ratio(numerator: float, denominator: float) -> float:
    return round(numerator / denominator, 4) if denominator else 0.0


def _f1(precision: float, recall: float) -> float:
    return round(2 * precision * recall / (precision + recall), 4) if precision + recall else 0.0


def report_from(predictions: list[Prediction], threshold: float, margin: float) -> Report:
    """All figures from a list of predictions (pooled over folds or from one test set)."""
    truths = [p.truth for p in predictions]
    true_complaint = sum(t.complaint for t in truths)
    predicted_complaint = sum(p.complaint for p in predictions)
    both = sum(p.complaint and p.truth.complaint for p in predictions)
    complaint_precision, complaint_recall = _ratio(both, predicted_complaint), _ratio(both, true_complaint)

    truth_labels = [t.agency if t.complaint and t.agency else NOT_COMPLAINT for t in truths]
    guess_labels = [
        (p.guess or NO_JURISDICTION) if p.complaint else NOT_COMPLAINT for p in predictions
    ]
    per_target = {}
    for code in sorted(set(truth_labels) - {NOT_COMPLAINT, NO_JURISDICTION}):
        hits = sum(t == code and g == code for t, g in zip(truth_labels, guess_labels, strict=True))
        precision = _ratio(hits, guess_labels.count(code))
        recall = _ratio(hits, truth_labels.count(code))
        per_target[code] = {"precision": precision, "recall": recall, "f1": _f1(precision, recall),
                            "support": truth_labels.count(code)}
    macro_f1 = round(float(np.mean([row["f1"] for row in per_target.values()])), 4) if per_target else 0.0

    routed = [p for p in predictions if p.routed]
    routed_correct = sum(p.truth.complaint and p.guess == p.truth.agency for p in routed)
    routed_complaints = sum(p.truth.complaint for p in routed)
    decisions: dict[float, list[Guess]] = {
        margin: [(p.guess if p.routable else None, p.confidence, p.gap, p.complaint) for p in predictions]
    }
    confusions = Counter(
        (t, g) for t, g in zip(truth_labels, guess_labels, strict=True) if t != g
    ).most_common(15)

    urgent_hits = sum(p.urgent and p.truth.urgent for p in predictions)
    located = [p for p in predictions if p.truth.location]
    reasons: Counter[str] = Counter()
    for p in predictions:
        if p.complaint and not p.routed:
            reasons[_reason(p, threshold, margin)] += 1
    return Report(
        examples=len(predictions),
        complaint_precision=complaint_precision,
        complaint_recall=complaint_recall,
        complaint_f1=_f1(complaint_precision, complaint_recall),
        macro_f1=macro_f1,
        accuracy=_ratio(sum(t == g for t, g in zip(truth_labels, guess_labels, strict=True) if t != NOT_COMPLAINT),
                        sum(t != NOT_COMPLAINT for t in truth_labels)),
        routed_precision=_ratio(routed_correct, len(routed)),
        routed_coverage=_ratio(routed_complaints, true_complaint),
        threshold=threshold,
        margin=margin,
        per_target=per_target,
        table=operating_table(truths, decisions),
        confusions=[{"truth": t, "guess": g, "count": n} for (t, g), n in confusions],
        urgent_precision=_ratio(urgent_hits, sum(p.urgent for p in predictions)),
        urgent_recall=_ratio(urgent_hits, sum(t.urgent for t in truths)),
        location_accuracy=_ratio(sum(p.location == p.truth.location for p in located), len(located))
        if located else None,
        calibration=_calibration(predictions),
        abstain_reasons=dict(reasons),
    )


def _reason(prediction: Prediction, threshold: float, margin: float) -> str:
    if not prediction.routable:
        return "jurisdiction_unknown"
    if prediction.confidence < threshold:
        return "low_confidence"
    if prediction.gap < margin:
        return "close_candidates"
    return "jurisdiction_unknown"


def _calibration(predictions: list[Prediction]) -> list[dict]:
    """Mean confidence against the share actually correct, per confidence bin (complaints predicted)."""
    rows = []
    edges = (0.0, 0.5, 0.7, 0.8, 0.9, 0.95, 1.01)
    for low, high in zip(edges, edges[1:], strict=False):
        members = [p for p in predictions if p.complaint and p.guess and low <= p.confidence < high]
        if members:
            rows.append({
                "bin": f"{low:.2f}-{min(high, 1.0):.2f}",
                "confidence": round(float(np.mean([p.confidence for p in members])), 4),
                "accuracy": _ratio(sum(p.truth.complaint and p.guess == p.truth.agency for p in members),
                                   len(members)),
                "n": len(members),
            })
    return rows


def evaluate_on(model: TrainedModel | Classifier, examples: list[Example]) -> Report:
    """Figures of one trained model (or Classifier) on a held-out set, at the model's stored threshold."""
    trained = _model_of(model)
    return report_from(predict(trained, list(examples)), trained.threshold, trained.margin)


def evaluate(model_factory: Callable[[list[Example]], TrainedModel | Classifier], examples: list[Example], *,
             folds: int = 5) -> Report:
    """Group k-fold by family: variants of one message never sit on both sides of a split."""
    examples = list(examples)
    families = [example.family or f"row-{i}" for i, example in enumerate(examples)]
    predictions: list[Prediction | None] = [None] * len(examples)
    thresholds, margins = [], []
    for train_rows, test_rows in GroupKFold(n_splits=folds).split(examples, groups=families):
        trained = _model_of(model_factory([examples[i] for i in train_rows]))
        thresholds.append(trained.threshold)
        margins.append(trained.margin)
        for row, prediction in zip(test_rows, predict(trained, [examples[i] for i in test_rows]), strict=True):
            predictions[row] = prediction
    report = report_from([p for p in predictions if p is not None], float(np.mean(thresholds)),
                         float(np.mean(margins)))
    return report

