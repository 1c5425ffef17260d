"""The classifier the worker and the CLI call: one pass per ticket, offline."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from routing.model import StaleModelError, TrainedModel, load_model, load_seed, train

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Classification:
    """Verdict on one message; agency is None for chatter and whenever the ticket goes to review."""

    complaint: bool
    agency: str | None
    confidence: float
    candidates: list[dict]
    location: str | None
    location_detail: dict | None
    urgent: bool
    abstain_reason: str | None

    @property
    def review(self) -> bool:
        """True when an operator must decide (a complaint the classifier would not route alone)."""
        return self.abstain_reason is not None

    def to_json(self) -> dict:
        """The ticket JSON layout: complaint, agency, confidence, candidates, location, urgent (+ extras)."""
        return {
            "complaint": self.complaint,
            "agency": self.agency,
            "confidence": self.confidence,
            "candidates": [dict(candidate) for candidate in self.candidates],
            "location": self.location,
            "urgent": self.urgent,
            "location_detail": self.location_detail,
            "review": self.review,
            "abstain_reason": self.abstain_reason,
        }


def default_model_path() -> Path:
    """Where the default model is cached: $NTBCARE_ROUTING_MODEL, else the user's cache directory."""
    configured = os.environ.get("NTBCARE_ROUTING_MODEL")
    if configured:
        return Path(configured)
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return cache / "ntbcare" / "routing-model.pkl"


class Classifier:
    """A trained model plus the decision rules (threshold, margin, jurisdiction) stored with it."""

    def __init__(self, model: TrainedModel) -> None:
        self.model = model

    @classmethod
    def load(cls, path: Path | None = None) -> Classifier:
        """Load a saved model; if it is missing or stale, retrain from the bundled seed and save it."""
        path = Path(path) if path is not None else default_model_path()
        try:
            return cls(load_model(path))
        except FileNotFoundError:
            logger.info("routing model %s missing: training from the bundled seed", path)
        except StaleModelError as error:
            logger.warning("routing model unusable (%s): retraining from the bundled seed", error)
        model = train(load_seed())
        try:
            model.save(path)
        except OSError as error:
            logger.warning("could not save routing model to %s: %s", path, error)
        return cls(model)

    @property
    def threshold(self) -> float:
        return self.model.threshold

    def classify(self, text: str) -> Classification:
        """Classify one citizen message."""
        return self.classify_many([text])[0]

    def classify_many(self, texts: Iterable[str]) -> list[Classification]:
        """Classify a batch (vectorised: much faster per text than one call each)."""
        texts = list(texts)
        if not texts:
            return []
        analyses = self.model.analyse(texts)
        p_complaint, p_target, p_urgent = self.model.scores(analyses)
        results = []
        for i, analysis in enumerate(analyses):
            decision = self.model.decide(analysis, float(p_complaint[i]), p_target[i], float(p_urgent[i]))
            location = analysis.location
            results.append(
                Classification(
                    complaint=decision.complaint,
                    agency=decision.agency,
                    confidence=decision.confidence,
                    candidates=decision.candidates,
                    location=location.code if location else None,
                    location_detail=location.to_dict() if location else None,
                    urgent=decision.urgent,
                    abstain_reason=decision.abstain_reason,
                )
            )
        return results
