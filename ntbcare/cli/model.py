"""`ntbcare classify` and `ntbcare routing train|evaluate`: the routing classifier from the command line."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from ntbcare.cli.common import load_settings, opened_runtime, setup_logging
from ntbcare.pipeline import training
from ntbcare.pipeline.classifier import load_classifier


@click.command()
@click.argument("text", required=False)
@click.option("--jsonl", is_flag=True, help='read {"text": ...} lines on stdin, write one JSON line each')
def classify(text: str | None, jsonl: bool) -> None:
    """Classify a message: complaint or not, which agency, how sure, where, how urgent."""
    settings = load_settings()
    setup_logging("WARNING")
    if jsonl == (text is not None):
        raise click.ClickException('give either TEXT or --jsonl (with {"text": ...} lines on stdin)')
    classifier = load_classifier(settings.routing_model_path, settings.secret_key)
    if text is not None:
        click.echo(json.dumps(classifier.classify(text).to_json(), ensure_ascii=False))
        return
    texts: list[str] = []
    for number, line in enumerate(sys.stdin, start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            texts.append(str(row["text"]))
        except (ValueError, KeyError, TypeError):
            raise click.ClickException(f'line {number}: expected a JSON object with a "text" field') from None
    for start in range(0, len(texts), 512):
        for verdict in classifier.classify_many(texts[start : start + 512]):
            click.echo(json.dumps(verdict.to_json(), ensure_ascii=False))


@click.group()
def routing() -> None:
    """Train and evaluate the routing classifier."""


@routing.command("train")
def routing_train() -> None:
    """Retrain from the bundled seed plus every operator and agency decision; running workers pick it up."""
    settings = load_settings()
    setup_logging("WARNING")
    with opened_runtime(settings) as runtime:
        seed, decisions = training.training_data(runtime.db)
    click.echo(f"training on {len(seed)} seed examples and {len(decisions)} decisions...", err=True)
    run = training.retrain(settings, seed, decisions)
    click.echo(f"saved {run.path} in {run.seconds:.1f}s; auto-route threshold {run.threshold:.2f}")


@routing.command("evaluate")
@click.option("--data", "data", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="JSON Lines of labelled examples [default: the bundled frozen test set]")
@click.option("--cross-validate", "folds", type=int, default=None,
              help="instead: group k-fold over the bundled seed with this many folds (retrains each fold)")
@click.option("--json", "as_json", is_flag=True)
def routing_evaluate(data: Path | None, folds: int | None, as_json: bool) -> None:
    """Per-target precision/recall, macro-F1, precision and coverage at the threshold, confusion pairs."""
    settings = load_settings()
    setup_logging("WARNING")
    if folds is not None:
        if folds < 2:
            raise click.ClickException("--cross-validate needs at least 2 folds")
        click.echo(f"cross-validating over {folds} folds (retrains {folds} times)...", err=True)
        report = training.cross_validate(folds)
    else:
        try:
            report = training.evaluate_saved_model(settings, data)
        except ValueError as exc:
            raise click.ClickException(str(exc)) from None
    click.echo(json.dumps(report.to_json(), ensure_ascii=False, indent=2) if as_json else report.to_text())
