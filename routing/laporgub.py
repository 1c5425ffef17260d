"""Evaluation-only loader for the LaporGub Central Java corpus (no licence: never shipped, never trained into
a product model). Used to choose and tune the method and to report how it does on real complaints.

The corpus is `dataset/prep_2024_2025.csv` of github.com/aiaja/text-mining-laporgub (see docs/routing.md).
Run: python -m routing.laporgub prep_2024_2025.csv
"""

from __future__ import annotations

import argparse
import ast
import csv
import random
import sys
import time
from collections import Counter
from pathlib import Path

from routing.evaluate import evaluate_on
from routing.examples import Example
from routing.training import train

# LaporGub category -> closest NTB Care target (see docs/routing.md for what does not map cleanly).
CATEGORY_TO_TARGET: dict[str, str] = {
    "infrastruktur": "PUPRPKP",
    "sosial masyarakat": "DINSOSP3A",
    "pendidikan": "DIKPORA",
    "permades dan kependudukan": "DPMPDDUKCAPIL",
    "energi": "PLN",
    "kepegawaian": "BKD",
    "lingkungan": "DLHK",
    "keuangan dan aset": "BAPENDA",
    "kesehatan": "DIKES",
    "ekonomi dan industri": "DISPERINDAG",
    "bencana": "BPBD",
    "forkominda": "POLDA",
    "pertanian": "DISTANKP",
    "pembangunan daerah": "BAPPEDA",
    "pariwisata dan budaya": "DISPAR",
    "kategori lain-lain": "LG-LAINLAIN",
}


def load(path: Path) -> list[Example]:
    """Rows as complaint Examples (tokens joined by spaces, label mapped; 'saberpungli' dropped)."""
    csv.field_size_limit(sys.maxsize)
    examples = []
    with Path(path).open(encoding="utf-8", newline="") as handle:
        for row in csv.DictReader(handle, delimiter=";"):
            category = row["category"].strip()
            if category not in CATEGORY_TO_TARGET:
                continue
            tokens = ast.literal_eval(row["complaints"])
            examples.append(
                Example(
                    text=" ".join(tokens),
                    complaint=True,
                    agency=CATEGORY_TO_TARGET[category],
                    family=f"lg-{row['id']}",
                )
            )
    return examples


def split(examples: list[Example], *, test_share: float = 0.2, seed: int = 0) -> tuple[list, list]:
    """Random split like the corpus baseline (80/20, seed 0), so the figures compare."""
    shuffled = list(examples)
    random.Random(seed).shuffle(shuffled)
    cut = int(len(shuffled) * (1 - test_share))
    return shuffled[:cut], shuffled[cut:]


def _say(line: str) -> None:
    sys.stdout.write(line + "\n")


def main(argv: list[str] | None = None) -> int:
    """Train on 80% of the corpus and print the report on the other 20%."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("path", type=Path)
    parser.add_argument("--stem", action="store_true", help="Sastrawi-stem again (the corpus is pre-stemmed)")
    arguments = parser.parse_args(argv)
    examples = load(arguments.path)
    train_set, test_set = split(examples)
    _say(f"rows {len(examples)}  train {len(train_set)}  test {len(test_set)}")
    _say(f"labels: {dict(Counter(example.agency for example in examples).most_common())}")
    started = time.perf_counter()
    # LaporGub labels are topics, not owners: a road complaint is "infrastruktur" whatever the road's status,
    # so the NTB rule that sends roads of unknown status to an operator would only hide correct answers here.
    model = train(train_set, stem=arguments.stem, road_status_rule=False)
    _say(f"training {time.perf_counter() - started:.1f} s")
    report = evaluate_on(model, test_set)
    _say(report.to_text())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
