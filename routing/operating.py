"""The operating point: which confidence threshold and score margin let the classifier route on its own.

Training picks it from out-of-fold predictions and stores it with the model; evaluation prints the same
precision/coverage table, so the figures people read are the ones the choice was made on.
"""

from __future__ import annotations

import numpy as np

from routing.examples import Example

TARGET_PRECISION = 0.92
MARGINS = (0.0, 0.05, 0.1, 0.15)

# (best guess, calibrated confidence, top-minus-second score, predicted complaint) for one text.
Guess = tuple[str | None, float, float, bool]


def operating_table(truths: list[Example], decisions_by_margin: dict[float, list[Guess]]) -> list[dict]:
    """Precision and coverage of auto-routing for thresholds 0.0-0.95 and each margin.

    Coverage is the share of true complaints routed automatically; precision counts any routed text whose
    target is wrong, including chatter routed as a complaint.
    """
    complaints = sum(1 for truth in truths if truth.complaint) or 1
    table = []
    for margin, decisions in decisions_by_margin.items():
        for threshold in np.round(np.arange(0.0, 0.96, 0.05), 2):
            routed = correct = routed_complaints = 0
            for truth, (guess, confidence, gap, is_complaint) in zip(truths, decisions, strict=True):
                if not is_complaint or guess is None or confidence < threshold or gap < margin:
                    continue
                routed += 1
                routed_complaints += truth.complaint
                correct += truth.complaint and guess == truth.agency
            table.append({
                "threshold": float(threshold),
                "margin": margin,
                "precision": round(correct / routed, 4) if routed else 1.0,
                "coverage": round(routed_complaints / complaints, 4),
                "routed": routed,
            })
    return table


def choose_operating_point(table: list[dict], target: float = TARGET_PRECISION) -> tuple[float, float]:
    """Highest coverage whose precision reaches the target (else the most precise row).

    Among equal rows the larger margin wins: the close-candidates guard is kept whenever it costs nothing.
    """
    good = [row for row in table if row["precision"] >= target and row["routed"] > 0]
    if good:
        best = max(good, key=lambda row: (row["coverage"], row["precision"], row["margin"], -row["threshold"]))
    else:
        best = max(table, key=lambda row: (row["precision"], row["coverage"]))
    return best["threshold"], best["margin"]
