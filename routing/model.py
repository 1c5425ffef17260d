"""Training, saving and loading the routing model (two linear stages plus an urgency flag).

Stage 1 tells complaints from chatter; stage 2 picks the matter's owner among the registry targets, with all
regencies merged into one "@REGENCY" class and both water utilities into "@WATER": the location in the text
then decides which regency or utility (jurisdiction), so 10 regency classes need not be learned from words.
Confidence is calibrated with isotonic regression on out-of-fold predictions, and the abstain threshold is
chosen from the out-of-fold precision/coverage table and stored with the model.
"""

from __future__ import annotations

import json
import pickle
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import sklearn
from scipy.special import expit
from sklearn.isotonic import IsotonicRegression
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GroupKFold
from sklearn.svm import LinearSVC

from routing.evaluate import TARGET_PRECISION, choose_operating_point, operating_table
from routing.features import Analysis, FeatureBuilder, analyse
from routing.registry import load_registry

MODEL_FORMAT = 2  # bump whenever TrainedModel or its stages change shape: old pickles then retrain
SEED_DIR = Path(__file__).parent / "data" / "seed"
REGENCY_CLASS, WATER_CLASS = "@REGENCY", "@WATER"
GIRIMENANG_LOCATIONS = frozenset({"52.01", "52.71"})
ROAD_OWNER_CLASSES = frozenset({"PUPRPKP", "BPJN", REGENCY_CLASS})
MARGINS = (0.0, 0.05, 0.1, 0.15)
DEFAULT_THRESHOLD, DEFAULT_MARGIN = 0.5, 0.05
_OOF_FOLDS = 5
# Chosen on the seed by group 5-fold (docs/routing.md): complaint and urgency LR, target SVM.
COMPLAINT_C, TARGET_C, URGENT_C = 50.0, 1.0, 10.0


class SoftmaxSVC:
    """Linear SVM (40x faster to fit than multinomial LR here) with softmax scores at a fitted temperature.

    The scores rank candidates and measure the margin; the confidence shown to users is calibrated separately.
    """

    def __init__(self, c: float = TARGET_C, temperature: float = 4.0, seed: int = 0) -> None:
        self.svm = LinearSVC(C=c, random_state=seed)
        self.temperature = temperature

    @property
    def classes_(self) -> np.ndarray:
        return self.svm.classes_

    def fit(self, matrix, labels) -> SoftmaxSVC:
        self.svm.fit(matrix, labels)
        # float32 weights halve the model file and load time; scores change by < 1e-6.
        self.svm.coef_ = self.svm.coef_.astype(np.float32)
        return self

    def decision(self, matrix) -> np.ndarray:
        """SVM scores per class, computed directly in float32 (sklearn's checks cost ~1 ms per single text)."""
        values = np.asarray(matrix.astype(np.float32) @ self.svm.coef_.T) + self.svm.intercept_
        if values.shape[1] == 1:
            values = np.column_stack([-values[:, 0], values[:, 0]])
        return values

    def predict_proba(self, matrix) -> np.ndarray:
        return softmax(self.decision(matrix) * self.temperature)


def softmax(values: np.ndarray) -> np.ndarray:
    shifted = np.exp(values - values.max(axis=1, keepdims=True))
    return shifted / shifted.sum(axis=1, keepdims=True)


def fit_temperature(decisions: np.ndarray, truth_index: np.ndarray) -> float:
    """Temperature minimising the log loss of out-of-fold decision values."""
    best, best_loss = 1.0, np.inf
    for temperature in (0.5, 1.0, 1.5, 2.0, 3.0, 4.0, 5.0, 6.0, 8.0, 10.0, 14.0, 20.0):
        probabilities = softmax(decisions * temperature)
        loss = -np.mean(np.log(probabilities[np.arange(len(truth_index)), truth_index] + 1e-12))
        if loss < best_loss:
            best, best_loss = temperature, loss
    return best


class ConstantStage:
    """Stand-in for a binary stage when the training data has one class only (e.g. complaints-only corpora)."""

    def __init__(self, positive: bool) -> None:
        self.positive = positive

    def predict_proba(self, matrix) -> np.ndarray:
        column = np.full(matrix.shape[0], 1.0 if self.positive else 0.0)
        return np.column_stack([1.0 - column, column])


def _binary_stage(matrix, labels: np.ndarray, c: float, seed: int):
    if labels.all() or not labels.any():
        return ConstantStage(bool(labels.all()))
    return LogisticRegression(C=c, class_weight="balanced", solver="liblinear", random_state=seed).fit(matrix, labels)


def positive_probability(stage: LogisticRegression | ConstantStage, matrix) -> np.ndarray:
    """P(positive class) of a binary stage, without sklearn's per-call input checks."""
    if isinstance(stage, ConstantStage):
        return stage.predict_proba(matrix)[:, 1]
    return expit(np.asarray(matrix @ stage.coef_[0]).ravel() + stage.intercept_[0])


class StaleModelError(RuntimeError):
    """The saved model was written by another scikit-learn or model-format version."""


@dataclass
class Example:
    """One labelled message (the JSONL layout of routing/data/seed)."""

    text: str
    complaint: bool
    agency: str | None = None
    urgent: bool = False
    location: str | None = None
    family: str = ""

    @classmethod
    def from_dict(cls, row: dict) -> Example:
        return cls(
            text=str(row["text"]),
            complaint=bool(row["complaint"]),
            agency=row.get("agency") or None,
            urgent=bool(row.get("urgent", False)),
            location=row.get("location") or None,
            family=str(row.get("family") or ""),
        )


def read_jsonl(path: Path) -> list[Example]:
    """Examples of one JSON Lines file; a bad line raises ValueError naming file and line."""
    examples = []
    for number, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            examples.append(Example.from_dict(json.loads(line)))
        except (ValueError, KeyError, TypeError) as error:
            raise ValueError(f"{path}:{number}: {error}") from error
    return examples


def load_seed(directory: Path = SEED_DIR) -> list[Example]:
    """All seed examples shipped with the package (routing/data/seed/*.jsonl)."""
    return [example for path in sorted(Path(directory).glob("*.jsonl")) for example in read_jsonl(path)]


def collapse(agency: str, kinds: dict[str, str]) -> str:
    """Training label: regencies and water utilities merge, the location decides between them."""
    if kinds.get(agency) == "regency":
        return REGENCY_CLASS
    if agency in ("PDAM", "PDAM-GIRIMENANG"):
        return WATER_CLASS
    return agency


@dataclass(frozen=True)
class Decision:
    """What the model decided for one text."""

    complaint: bool
    agency: str | None
    confidence: float
    candidates: list[dict]
    urgent: bool
    abstain_reason: str | None
    best_guess: str | None
    routable: bool = True


@dataclass
class TrainedModel:
    """Fitted stages, calibration and the operating point chosen from out-of-fold predictions."""

    features: FeatureBuilder
    complaint_stage: LogisticRegression | ConstantStage
    target_stage: SoftmaxSVC
    urgent_stage: LogisticRegression | ConstantStage
    regency_by_location: dict[str, str]
    calibration: IsotonicRegression | None = None
    threshold: float = DEFAULT_THRESHOLD
    margin: float = DEFAULT_MARGIN
    stem: bool = False
    binary_columns: int | None = None
    road_status_rule: bool = True
    oof_table: list[dict] = field(default_factory=list)
    versions: dict = field(default_factory=dict)

    def analyse(self, texts: list[str]) -> list[Analysis]:
        return [analyse(text, stem=self.stem) for text in texts]

    def scores(self, analyses: list[Analysis]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """P(complaint), P(target class) over target_stage.classes_, P(urgent) for each text."""
        matrix = self.features.transform(analyses)
        binary_matrix = matrix if self.binary_columns is None else matrix[:, : self.binary_columns]
        p_complaint = positive_probability(self.complaint_stage, binary_matrix)
        p_target = self.target_stage.predict_proba(matrix)
        p_urgent = positive_probability(self.urgent_stage, binary_matrix)
        return p_complaint, p_target, p_urgent

    def resolve(self, label: str, analysis: Analysis) -> str | None:
        """A collapsed class made concrete by the text's location (None: jurisdiction unknown)."""
        location = analysis.location.code if analysis.location else None
        if label == REGENCY_CLASS:
            return self.regency_by_location.get(location) if location else None
        if label == WATER_CLASS:
            if location is None:
                return "PDAM-GIRIMENANG" if "giri menang" in analysis.normalized or (
                    "girimenang" in analysis.normalized
                ) else None
            return "PDAM-GIRIMENANG" if location in GIRIMENANG_LOCATIONS else "PDAM"
        return label

    def road_owner_unknown(self, label: str, analysis: Analysis) -> bool:
        """A road complaint whose owner class was predicted but whose road status the text never gives."""
        return self.road_status_rule and analysis.road_status_unknown and label in ROAD_OWNER_CLASSES

    @staticmethod
    def raw_confidence(p_complaint: float, top: float) -> float:
        """Uncalibrated confidence that routing this text is right (calibrated by isotonic regression)."""
        return float(p_complaint * top)

    def calibrated(self, raw: float) -> float:
        """Isotonic mapping by interpolation (same result as calibration.predict, ~50x cheaper per text)."""
        if self.calibration is None:
            return raw
        return float(np.interp(raw, self.calibration.X_thresholds_, self.calibration.y_thresholds_))

    def decide(
        self,
        analysis: Analysis,
        p_complaint: float,
        p_target: np.ndarray,
        p_urgent: float,
        *,
        threshold: float | None = None,
        margin: float | None = None,
    ) -> Decision:
        """Complaint or not, target, calibrated confidence and abstain reason for one text."""
        threshold = self.threshold if threshold is None else threshold
        margin = self.margin if margin is None else margin
        order = np.argsort(-p_target)
        classes = self.target_stage.classes_
        candidates: list[dict] = []
        for index in order:
            code = self.resolve(str(classes[index]), analysis)
            if code is not None and all(c["agency"] != code for c in candidates):
                candidates.append({"agency": code, "score": round(float(p_target[index] * p_complaint), 4)})
            if len(candidates) == 5:
                break
        top, second = float(p_target[order[0]]), float(p_target[order[1]]) if len(order) > 1 else 0.0
        best_guess = self.resolve(str(classes[order[0]]), analysis)
        road_unknown = self.road_owner_unknown(str(classes[order[0]]), analysis)
        if p_complaint < 0.5:
            return Decision(False, None, round(1.0 - p_complaint, 4), candidates, False, None, best_guess,
                            routable=False)
        confidence = round(self.calibrated(self.raw_confidence(p_complaint, top)), 4)
        reason = None
        if confidence < threshold:
            reason = "low_confidence"
        elif top - second < margin:
            reason = "close_candidates"
        elif best_guess is None or road_unknown:
            reason = "jurisdiction_unknown"
        agency = best_guess if reason is None else None
        routable = best_guess is not None and not road_unknown
        return Decision(True, agency, confidence, candidates, bool(p_urgent >= 0.5), reason, best_guess, routable)

    def decide_many(self, texts: list[str]) -> list[Decision]:
        analyses = self.analyse(texts)
        p_complaint, p_target, p_urgent = self.scores(analyses)
        return [
            self.decide(analysis, float(p_complaint[i]), p_target[i], float(p_urgent[i]))
            for i, analysis in enumerate(analyses)
        ]

    def save(self, path: Path) -> None:
        """Pickle with the versions it was built with; load_model refuses a mismatch (then retrain)."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_suffix(path.suffix + ".tmp")
        with temporary.open("wb") as handle:
            pickle.dump({"versions": current_versions(), "model": self}, handle, protocol=pickle.HIGHEST_PROTOCOL)
        temporary.replace(path)


def current_versions() -> dict:
    """Versions a saved model must match to be reused."""
    return {"format": MODEL_FORMAT, "sklearn": sklearn.__version__, "numpy": np.__version__}


def load_model(path: Path) -> TrainedModel:
    """Unpickle a model saved by this code; raises StaleModelError when versions differ."""
    with Path(path).open("rb") as handle:
        try:
            payload = pickle.load(handle)
        except (pickle.UnpicklingError, AttributeError, ImportError, EOFError, TypeError) as error:
            raise StaleModelError(f"cannot read model {path}: {error}") from error
    if not isinstance(payload, dict) or payload.get("versions") != current_versions():
        raise StaleModelError(f"model {path} was saved by other versions: {payload.get('versions')}")
    return payload["model"]


def _fit_stages(matrix, examples: list[Example], kinds: dict[str, str], seed: int, text_columns: int):
    # Complaint and urgency read the text n-grams only: keyword and place evidence made chatter that names a
    # place or an agency look like a complaint (group 5-fold F1 0.966 with it, 0.973 without).
    binary_matrix = matrix[:, :text_columns]
    complaint_labels = np.array([example.complaint for example in examples])
    complaint_stage = _binary_stage(binary_matrix, complaint_labels, COMPLAINT_C, seed)
    rows = [i for i, example in enumerate(examples) if example.complaint and example.agency]
    target_labels = [collapse(examples[i].agency, kinds) for i in rows]
    target_stage = SoftmaxSVC(c=TARGET_C, seed=seed)
    target_stage.fit(matrix[rows], target_labels)
    urgent_stage = _binary_stage(binary_matrix, np.array([example.urgent for example in examples]), URGENT_C, seed)
    return complaint_stage, target_stage, urgent_stage


def _bare_model(
    examples: list[Example], features: FeatureBuilder, matrix, *, seed: int, stem: bool, road_status_rule: bool
) -> TrainedModel:
    records = load_registry()
    kinds = {record.code: record.kind for record in records}
    regency_by_location = {record.location: record.code for record in records if record.kind == "regency"}
    stages = _fit_stages(matrix, examples, kinds, seed, features.text_columns)
    return TrainedModel(features, *stages, regency_by_location=regency_by_location, stem=stem,
                        binary_columns=features.text_columns, road_status_rule=road_status_rule,
                        versions=current_versions())


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
    options = {"seed": seed, "stem": stem, "road_status_rule": road_status_rule}
    model = _bare_model(examples, features, matrix, **options)
    families = [example.family or f"row-{i}" for i, example in enumerate(examples)]
    folds = min(_OOF_FOLDS, len(set(families)))
    if not calibrate or folds < 2:
        return model
    classes = [str(label) for label in model.target_stage.classes_]
    decisions_oof = np.full((len(examples), len(classes)), -5.0)
    p_complaint_oof = np.zeros(len(examples))
    for train_rows, test_rows in GroupKFold(n_splits=folds).split(examples, groups=families):
        fold_model = _bare_model([examples[i] for i in train_rows], features, matrix[train_rows], **options)
        test_matrix = matrix[test_rows]
        binary_test = test_matrix[:, : fold_model.binary_columns]
        p_complaint_oof[test_rows] = positive_probability(fold_model.complaint_stage, binary_test)
        fold_columns = [classes.index(str(label)) for label in fold_model.target_stage.classes_]
        decisions_oof[np.ix_(test_rows, fold_columns)] = fold_model.target_stage.decision(test_matrix)
    kinds = {record.code: record.kind for record in load_registry()}
    labelled = [i for i, example in enumerate(examples) if example.complaint and example.agency]
    truth_index = np.array([classes.index(collapse(examples[i].agency, kinds)) for i in labelled])
    model.target_stage.temperature = fit_temperature(decisions_oof[labelled], truth_index)
    p_target_oof = softmax(decisions_oof * model.target_stage.temperature)
    raw = np.zeros(len(examples))
    gaps = np.zeros(len(examples))
    guesses: list[str | None] = [None] * len(examples)
    for row in range(len(examples)):
        order = np.argsort(-p_target_oof[row])
        top = float(p_target_oof[row][order[0]])
        second = float(p_target_oof[row][order[1]]) if len(order) > 1 else 0.0
        raw[row] = model.raw_confidence(float(p_complaint_oof[row]), top)
        gaps[row] = top - second
        if not model.road_owner_unknown(classes[order[0]], analyses[row]):
            guesses[row] = model.resolve(classes[order[0]], analyses[row])
    complaint_flags = p_complaint_oof >= 0.5
    routed_rows = [i for i in range(len(examples)) if complaint_flags[i]]
    correct = [bool(examples[i].complaint and guesses[i] == examples[i].agency) for i in routed_rows]
    if routed_rows and 0 < sum(correct) < len(correct):
        model.calibration = IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip")
        model.calibration.fit(raw[routed_rows], correct)
    confidences = model.calibration.predict(raw) if model.calibration is not None else raw
    decisions = {
        margin: [(guesses[i], float(confidences[i]), float(gaps[i]), bool(complaint_flags[i]))
                 for i in range(len(examples))]
        for margin in MARGINS
    }
    model.oof_table = operating_table(examples, decisions)
    model.threshold, model.margin = choose_operating_point(model.oof_table, TARGET_PRECISION)
    return model
