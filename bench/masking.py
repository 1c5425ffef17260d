"""Personal data and routing: the frozen set and one provincial-road complaint, with and without masking.

Both models are trained on the bundled seed in this process; the baseline swaps the masking step for the
identity (what routing did before issue 10). Prints the frozen-set figures of each, and the confidence and
verdict of a clear complaint alone, with "hubungi saya di 08…", and with a phone number and a NIK.
Run: .venv/bin/python bench/masking.py
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

ROAD = ("Jalan provinsi ruas Praya - Keruak di Lombok Tengah rusak parah, lubang besar di mana-mana, "
        "sudah banyak pengendara jatuh. Mohon segera diperbaiki")
VARIANTS = {
    "alone": ROAD,
    "+ phone": ROAD + ". Hubungi saya di 081234567890",
    "+ phone + NIK": ROAD + ". Hubungi saya di 0812-3456-7890, NIK saya 5202011203850001",
    "+ e-mail + link": ROAD + ". Surel saya lalu.hendra@gmail.com, foto di https://photos.app.goo.gl/AbC123",
}


def measure(label: str) -> None:
    from routing.classify import Classifier
    from routing.evaluate import evaluate_on
    from routing.examples import load_seed, read_jsonl
    from routing.training import train

    model = train(load_seed())
    report = evaluate_on(model, read_jsonl(ROOT / "routing/data/eval/frozen_test.jsonl"))
    print(f"== {label}")
    print(f"frozen set: complaint F1 {report.complaint_f1:.3f}  macro-F1 {report.macro_f1:.3f}  "
          f"auto-routed precision {report.routed_precision:.3f}  coverage {report.routed_coverage:.3f}")
    classifier = Classifier(model)
    for name, text in VARIANTS.items():
        verdict = classifier.classify(text)
        outcome = verdict.agency or f"review ({verdict.abstain_reason})"
        print(f"  {name:<16} confidence {verdict.confidence:.3f}  -> {outcome}")


def main() -> None:
    import routing.tokens

    masking = routing.tokens.mask_personal_data
    routing.tokens.mask_personal_data = lambda text: routing.tokens._URL.sub(" tautanweb ", text)
    try:
        measure("baseline: no masking (URLs still reduced to a marker, as before)")
    finally:
        routing.tokens.mask_personal_data = masking
    measure("masked: phone numbers, NIKs, e-mail addresses removed before features")


if __name__ == "__main__":
    main()
