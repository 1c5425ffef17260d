"""`ntbcare classify`, `routing train|evaluate`, `agencies import|export|list`, and the operator's routing
decisions on tickets (`tickets assign`, `tickets not-complaint`)."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import click

from ntbcare.cli import _runtime, _settings, _setup_logging, cli, tickets


@cli.command()
@click.argument("text", required=False)
@click.option("--jsonl", is_flag=True, help='read {"text": ...} lines on stdin, write one JSON line each')
def classify(text: str | None, jsonl: bool) -> None:
    """Classify a message: complaint or not, which agency, how sure, where, how urgent."""
    from ntbcare.runtime import load_classifier

    settings = _settings()
    _setup_logging("WARNING")
    if jsonl == (text is not None):
        raise click.ClickException('give either TEXT or --jsonl (with {"text": ...} lines on stdin)')
    classifier = load_classifier(settings.routing_model_path)
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


@cli.group()
def routing() -> None:
    """Train and evaluate the routing classifier."""


@routing.command("train")
def routing_train() -> None:
    """Retrain from the bundled seed plus every operator and agency decision; running workers pick it up."""
    from routing.decisions import training_examples
    from routing.model import load_seed, train

    settings = _settings()
    _setup_logging("WARNING")
    runtime = _runtime(settings)
    with runtime.db.session() as session:
        decisions = training_examples(session)
    runtime.close()
    seed = load_seed()
    click.echo(f"training on {len(seed)} seed examples and {len(decisions)} decisions...", err=True)
    started = time.monotonic()
    model = train(seed + decisions)
    path = Path(settings.routing_model_path)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(path.suffix + ".new")
    model.save(partial)
    partial.replace(path)  # atomic: a worker never loads half a file
    click.echo(f"saved {path} in {time.monotonic() - started:.1f}s; auto-route threshold {model.threshold:.2f}")


@routing.command("evaluate")
@click.option("--data", "data", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="JSON Lines of labelled examples [default: the bundled frozen test set]")
@click.option("--cross-validate", "folds", type=int, default=None,
              help="instead: group k-fold over seed + decisions with this many folds (retrains each fold)")
@click.option("--json", "as_json", is_flag=True)
def routing_evaluate(data: Path | None, folds: int | None, as_json: bool) -> None:
    """Per-target precision/recall, macro-F1, precision and coverage at the threshold, confusion pairs."""
    from ntbcare.runtime import load_classifier
    from routing.evaluate import evaluate, evaluate_on
    from routing.model import SEED_DIR, load_seed, read_jsonl, train

    settings = _settings()
    _setup_logging("WARNING")
    if folds is not None:
        if folds < 2:
            raise click.ClickException("--cross-validate needs at least 2 folds")
        click.echo(f"cross-validating over {folds} folds (retrains {folds} times)...", err=True)
        report = evaluate(lambda examples: train(examples), load_seed(), folds=folds)
    else:
        path = data or SEED_DIR.parent / "eval" / "frozen_test.jsonl"
        try:
            examples = read_jsonl(path)
        except ValueError as exc:
            raise click.ClickException(str(exc)) from None
        report = evaluate_on(load_classifier(settings.routing_model_path).model, examples)
    click.echo(json.dumps(report.to_json(), ensure_ascii=False, indent=2) if as_json else report.to_text())


@cli.group()
def agencies() -> None:
    """The routing targets: export, edit (contacts!), import."""


@agencies.command("list")
@click.option("--json", "as_json", is_flag=True)
def agencies_list(as_json: bool) -> None:
    """Every target with its contacts."""
    from sqlalchemy import select

    from ntbcare.models import Agency

    runtime = _runtime(_settings())
    with runtime.db.session() as session:
        rows = [{"code": a.code, "name": a.name, "kind": a.kind, "parent": a.parent_code, "emails": a.emails,
                 "active": a.active} for a in session.scalars(select(Agency).order_by(Agency.kind, Agency.code))]
    runtime.close()
    if as_json:
        click.echo(json.dumps(rows, ensure_ascii=False, indent=2))
        return
    missing = sum(1 for r in rows if not r["emails"])
    for r in rows:
        click.echo(f"{r['code']:<18} {r['kind']:<8} {', '.join(r['emails']) or '(no e-mail: tickets go to review)'}")
    click.echo(f"{len(rows)} agencies, {missing} without an e-mail address", err=True)


@agencies.command("export")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path), required=False)
def agencies_export(file: Path | None) -> None:
    """Write the registry (with the contacts set here) as YAML to FILE, or to stdout."""
    import yaml
    from sqlalchemy import select

    from ntbcare.models import Agency

    runtime = _runtime(_settings())
    with runtime.db.session() as session:
        rows = []
        for agency in session.scalars(select(Agency).order_by(Agency.code)):
            row = dict(agency.data or {"code": agency.code, "name": agency.name, "kind": agency.kind})
            row["emails"] = list(agency.emails)
            rows.append(row)
    runtime.close()
    text = yaml.safe_dump(rows, allow_unicode=True, sort_keys=False, width=120)
    if file is None:
        click.echo(text, nl=False)
    else:
        file.write_text(text, encoding="utf-8")
        click.echo(f"{len(rows)} agencies written to {file}", err=True)


@agencies.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
def agencies_import(file: Path) -> None:
    """Load a registry file: new targets are added, known ones updated (contacts included)."""
    from ntbcare.bootstrap import seed_agencies
    from routing.registry import load_registry

    try:
        records = load_registry(file)
    except (ValueError, OSError) as exc:
        raise click.ClickException(f"{file}: {exc}") from None
    runtime = _runtime(_settings())
    with runtime.db.scope() as session:
        added, updated = seed_agencies(session, records, contacts_from_records=True)
    runtime.close()
    click.echo(f"{added} agencies added, {updated} updated from {file}")


def _decide(number: str, action) -> str:  # type: ignore[no-untyped-def]
    from ntbcare.lifecycle import find_ticket

    runtime = _runtime(_settings())
    with runtime.db.scope() as session:
        ticket = find_ticket(session, number)
        if ticket is None:
            raise click.ClickException(f"no ticket {number!r}; see `ntbcare tickets list`")
        action(session, ticket)
        summary = f"{ticket.number}: {ticket.status}" + (f" ({ticket.agency_code})" if ticket.agency_code else "")
    from routing.forwarding import send_due_mails

    send_due_mails(runtime.db, runtime.settings)
    runtime.close()
    return summary


@tickets.command("assign")
@click.argument("number")
@click.argument("agency")
@click.option("--by", "by", default="cli", show_default=True, help="operator name, for the audit trail")
def tickets_assign(number: str, agency: str, by: str) -> None:
    """Give a ticket to AGENCY (a code); the agency is e-mailed and the model learns from it."""
    from ntbcare.models import Agency
    from routing.decisions import assign

    def act(session, ticket) -> None:  # type: ignore[no-untyped-def]
        if session.get(Agency, agency.upper()) is None:
            raise click.ClickException(f"unknown agency code {agency!r}; see `ntbcare agencies list`")
        assign(session, ticket, agency.upper(), actor=f"operator:{by}")

    click.echo(_decide(number, act))


@tickets.command("not-complaint")
@click.argument("number")
@click.option("--by", "by", default="cli", show_default=True)
def tickets_not_complaint(number: str, by: str) -> None:
    """Mark a ticket as not a complaint (reversible by assigning it)."""
    from routing.decisions import mark_not_complaint

    click.echo(_decide(number, lambda session, ticket: mark_not_complaint(session, ticket, actor=f"operator:{by}")))
