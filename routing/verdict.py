"""The classifier's verdict on one message, as stored on the ticket.

Kept apart from the classifier so that applying a verdict to a ticket (routing.route) never loads scikit-learn.
"""

from __future__ import annotations

from dataclasses import dataclass


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
