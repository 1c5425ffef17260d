"""The classifier the worker and the CLI call: one pass per ticket, offline."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from pathlib import Path

from routing.examples import load_seed
from routing.model import StaleModelError, TrainedModel, load_model
from routing.tokens import MAX_TEXT_CHARS
from routing.training import train
from routing.verdict import Classification

logger = logging.getLogger(__name__)



class Classifier:
    """A trained model plus the decision rules (threshold, margin, jurisdiction) stored with it."""

    def __init__(self, model: TrainedModel) -> None:
        self.model = model

    @classmethod
    def load(cls, path: Path, signing_key: bytes) -> Classifier:
        """Load a saved model whose HMAC verifies with ``signing_key``; if it is missing, stale or unsigned,
        retrain from the bundled seed and save it signed."""
        path = Path(path)
        try:
            return cls(load_model(path, signing_key))
        except FileNotFoundError:
            logger.info("routing model %s missing: training from the bundled seed", path)
        except StaleModelError as error:
            logger.warning("routing model unusable (%s): retraining from the bundled seed", error)
        model = train(load_seed())
        try:
            model.save(path, signing_key)
        except OSError as error:
            logger.warning("could not save routing model to %s: %s", path, error)
        return cls(model)

    @property
    def threshold(self) -> float:
        """The calibrated confidence below which a complaint goes to an operator."""
        return self.model.threshold

    def classify(self, text: str) -> Classification:
        """Classify one citizen message."""
        return self.classify_many([text])[0]

    def classify_many(self, texts: Iterable[str]) -> list[Classification]:
        """Classify a batch (vectorised: much faster per text than one call each); each text is read up to
        :data:`MAX_TEXT_CHARS`."""
        texts = [text[:MAX_TEXT_CHARS] for text in texts]
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
