"""Routing classifier speed and memory: training time, model load time, texts/s, resident memory.

A bare TF-IDF + LogisticRegression on the same texts runs in the same process as the baseline.
Run: .venv/bin/python bench/classify.py [--repeat 3]
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

_LOAD_PROBE = """
import json, sys, time
started = time.perf_counter()
from routing.model import load_model
from routing.location import gazetteer
from routing.words import common_words
imported = time.perf_counter()
model = load_model(sys.argv[1])
gazetteer(); common_words()
model.decide_many(["lampu jalan mati di Selong"])
ready = time.perf_counter()
status = dict(line.split(":", 1) for line in open("/proc/self/status") if ":" in line)
print(json.dumps({"import_s": imported - started, "load_s": ready - imported,
                  "rss_mb": int(status["VmRSS"].split()[0]) / 1024,
                  "peak_rss_mb": int(status["VmHWM"].split()[0]) / 1024}))
"""


def _rss_mb() -> float:
    with open("/proc/self/status") as handle:
        for line in handle:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def _best_rate(function, texts: list[str], repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        started = time.perf_counter()
        function(texts)
        best = min(best, time.perf_counter() - started)
    return len(texts) / best


def main() -> int:
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline

    from routing.classify import Classifier
    from routing.examples import load_seed, read_jsonl
    from routing.training import train

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeat", type=int, default=3)
    arguments = parser.parse_args()

    seed = load_seed()
    frozen_path = ROOT / "routing" / "data" / "eval" / "frozen_test.jsonl"
    texts = [example.text for example in read_jsonl(frozen_path)] if frozen_path.exists() else []
    texts = (texts + [example.text for example in seed])[:2000]

    started = time.perf_counter()
    model = train(seed)
    train_s = time.perf_counter() - started
    classifier = Classifier(model)
    rss_after_train = _rss_mb()

    batch_rate = _best_rate(classifier.classify_many, texts, arguments.repeat)
    single_rate = _best_rate(lambda items: [classifier.classify(text) for text in items], texts[:500], arguments.repeat)

    from routing.location import find_location

    started = time.perf_counter()
    for text in texts:
        find_location(text)
    location_us = (time.perf_counter() - started) / len(texts) * 1e6

    labels = [example.agency or "NOT" for example in seed]
    started = time.perf_counter()
    baseline = make_pipeline(TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True), LogisticRegression(max_iter=2000))
    baseline.fit([example.text for example in seed], labels)
    baseline_train_s = time.perf_counter() - started
    baseline_batch = _best_rate(baseline.predict_proba, texts, arguments.repeat)
    baseline_single = _best_rate(lambda items: [baseline.predict_proba([text]) for text in items], texts[:500],
                                 arguments.repeat)

    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "model.pkl"
        model.save(path)
        size_mb = path.stat().st_size / 1e6
        probe = subprocess.run([sys.executable, "-c", _LOAD_PROBE, str(path)], capture_output=True, text=True,
                               check=True, cwd=ROOT)
        load = json.loads(probe.stdout)

    rows = [
        ("seed examples", f"{len(seed)}", ""),
        ("training (two stages + urgency + 5-fold calibration)", f"{train_s:.1f} s",
         f"baseline {baseline_train_s:.1f} s"),
        (f"classify_many, texts/s (batch of {len(texts)})", f"{batch_rate:,.0f}",
         f"baseline {baseline_batch:,.0f} (ratio {batch_rate / baseline_batch:.2f})"),
        ("classify, texts/s (one call per text)", f"{single_rate:,.0f}",
         f"baseline {baseline_single:,.0f} (ratio {single_rate / baseline_single:.2f})"),
        ("find_location alone, per text", f"{location_us:.0f} µs", "token index, 1,293 names + aliases"),
        ("model file size", f"{size_mb:.1f} MB", ""),
        ("model load in a fresh process (incl. gazetteer)", f"{load['load_s'] * 1000:.0f} ms",
         f"import {load['import_s'] * 1000:.0f} ms"),
        ("resident memory after load (fresh process)", f"{load['rss_mb']:.0f} MB",
         f"peak {load['peak_rss_mb']:.0f} MB"),
        ("resident memory of this process after training", f"{rss_after_train:.0f} MB", ""),
    ]
    print(f"Python {platform.python_version()}, {platform.machine()}, single process")
    print("| measure | value | note |")
    print("|---|---|---|")
    for name, value, note in rows:
        print(f"| {name} | {value} | {note} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
