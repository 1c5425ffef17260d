"""Labelled messages: the JSON Lines layout of the seed, the frozen test set and people's decisions.

Kept apart from the model so that recording a decision as a training example never loads scikit-learn.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

SEED_DIR = Path(__file__).parent / "data" / "seed"


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
        """One parsed JSON line; a missing text or complaint flag raises KeyError."""
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
