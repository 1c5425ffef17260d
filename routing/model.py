"""The trained routing model: two linear stages plus an urgency flag, and how a saved one is read back.

Stage 1 tells complaints from chatter; stage 2 picks the matter's owner among the registry targets, with all
regencies merged into one "@REGENCY" class and both water utilities into "@WATER": the location in the text
then decides which regency or utility (jurisdiction), so 10 regency classes need not be learned from words.
Fitting lives in routing.training; this module only applies a fitted model and persists it.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import pickle
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import sklearn
from sklearn.isotonic import IsotonicRegression

from ntbcare.core.security import PRIVATE_FILE_MODE, private_dir
from routing.features import Analysis, FeatureBuilder, analyse
from routing.stages import BinaryStage, SoftmaxSVC, positive_probability

# Bump whenever a pickled class moves or TrainedModel or its stages change shape: old files then retrain.
# 3: the stages moved from routing.model to routing.stages.
MODEL_FORMAT = 3
REGENCY_CLASS, WATER_CLASS = "@REGENCY", "@WATER"
WATER_UTILITIES = ("PDAM", "PDAM-GIRIMENANG")
GIRIMENANG_LOCATIONS = frozenset({"52.01", "52.71"})
ROAD_OWNER_CLASSES = frozenset({"PUPRPKP", "BPJN", REGENCY_CLASS})
DEFAULT_THRESHOLD, DEFAULT_MARGIN = 0.5, 0.05


# A saved model is SIGNATURE_HEADER + HMAC-SHA256(key, pickle bytes) + pickle bytes: unpickling runs code, so
# nothing is unpickled before the HMAC verifies.
SIGNATURE_HEADER = b"NTBCARE-ROUTING-MODEL HMAC-SHA256\n"
_MAC_BYTES = hashlib.sha256().digest_size


class StaleModelError(RuntimeError):
    """The saved model was written by another scikit-learn or model-format version."""


class UnsignedModelError(StaleModelError):
    """The file's HMAC does not verify (saved before signing, with another key, or altered): never unpickled."""


def collapse(agency: str, kinds: dict[str, str]) -> str:
    """Training label: regencies and water utilities merge, the location decides between them."""
    if kinds.get(agency) == "regency":
        return REGENCY_CLASS
    if agency in WATER_UTILITIES:
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
    complaint_stage: BinaryStage
    target_stage: SoftmaxSVC
    urgent_stage: BinaryStage
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
        """Normalised text, location and evidence of each text, as this model was trained to read them."""
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
        """Decisions for a batch of texts (one vectorised pass)."""
        analyses = self.analyse(texts)
        p_complaint, p_target, p_urgent = self.scores(analyses)
        return [
            self.decide(analysis, float(p_complaint[i]), p_target[i], float(p_urgent[i]))
            for i, analysis in enumerate(analyses)
        ]

    def save(self, path: Path, signing_key: bytes) -> None:
        """Pickle with the versions it was built with, signed with ``signing_key``; the file is 0600 and a
        folder created for it 0700. load_model refuses a mismatch (then retrain)."""
        path = Path(path)
        private_dir(path.parent)
        body = pickle.dumps({"versions": current_versions(), "model": self}, protocol=pickle.HIGHEST_PROTOCOL)
        temporary = path.with_suffix(path.suffix + ".tmp")
        temporary.unlink(missing_ok=True)  # a leftover may have a wider mode; O_EXCL then creates it 0600
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_FILE_MODE)
        with os.fdopen(fd, "wb") as handle:
            handle.write(SIGNATURE_HEADER + _mac(signing_key, body) + body)
        os.chmod(temporary, PRIVATE_FILE_MODE)  # whatever the umask
        temporary.replace(path)


def _mac(key: bytes, body: bytes) -> bytes:
    return hmac.new(key, body, hashlib.sha256).digest()


def current_versions() -> dict:
    """Versions a saved model must match to be reused."""
    return {"format": MODEL_FORMAT, "sklearn": sklearn.__version__, "numpy": np.__version__}


def load_model(path: Path, signing_key: bytes) -> TrainedModel:
    """Unpickle a model saved by this code with this key.

    Raises UnsignedModelError, before anything is unpickled, when the HMAC does not verify, and
    StaleModelError when versions differ or it cannot be read (a class it names has moved since).
    """
    data = Path(path).read_bytes()
    start = len(SIGNATURE_HEADER)
    mac, body = data[start : start + _MAC_BYTES], data[start + _MAC_BYTES :]
    if not data.startswith(SIGNATURE_HEADER) or not hmac.compare_digest(mac, _mac(signing_key, body)):
        raise UnsignedModelError(
            f"routing model {path} (ROUTING_MODEL_PATH) has no valid signature for this SECRET_KEY: "
            "not loaded (saved before models were signed, with another key, or altered)"
        )
    try:
        payload = pickle.loads(body)
    except (pickle.UnpicklingError, AttributeError, ImportError, EOFError, TypeError) as error:
        raise StaleModelError(f"cannot read model {path}: {error}") from error
    if not isinstance(payload, dict) or payload.get("versions") != current_versions():
        versions = payload.get("versions") if isinstance(payload, dict) else None
        raise StaleModelError(f"model {path} was saved by other versions: {versions}")
    return payload["model"]
