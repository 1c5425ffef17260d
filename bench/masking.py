"""Personal data and routing: the frozen set and one provincial-road complaint, with and without masking.

Both models are trained on the bundled seed in this process; the baseline swaps the masking step for the
identity (what routing did before issue 10). Prints the frozen-set figures of each, how many frozen-set
complaints change their decision when the writer's contact details are appended, and the confidence and verdict
of a clear provincial-road complaint alone, with "hubungi saya di 08…", and with a phone number and a NIK.
Run: .venv/bin/python bench/masking.py
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

ROAD = "drainase sepanjang jalan provinsi di Pringgabaya mampet, tiap hujan air naik ke jalan, kendaraan pd mogok"
VARIANTS = {
    "alone": ROAD,
    "+ phone": ROAD + ". Hubungi saya di 081234567890",
    "+ phone (dashes)": ROAD + ". Hubungi saya di 0812-3456-7890",
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
    complaints = [row.text for row in read_jsonl(ROOT / "routing/data/eval/frozen_test.jsonl")
                  if classifier.classify(row.text).complaint]
    for name in ("+ phone", "+ phone + NIK"):
        suffix = VARIANTS[name][len(ROAD):]
        plain = classifier.classify_many(complaints)
        with_details = classifier.classify_many([text + suffix for text in complaints])
        pairs = zip(plain, with_details, strict=True)
        changed = sum((a.agency, a.abstain_reason) != (b.agency, b.abstain_reason) for a, b in pairs)
        print(f"  frozen-set complaints {name} appended: {changed} of {len(complaints)} decisions change")
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
