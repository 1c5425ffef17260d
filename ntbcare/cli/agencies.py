"""`ntbcare agencies list|export|import`: the routing targets and their contacts (YAML, codes as registered)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click
import yaml
from sqlalchemy import select

from ntbcare.cli.common import opened_runtime
from ntbcare.core.models import Agency
from ntbcare.core.security import private_file
from ntbcare.pipeline.bootstrap import seed_agencies
from routing.registry import load_registry


@click.group()
def agencies() -> None:
    """The routing targets: export, edit (contacts!), import."""


@agencies.command("list")
@click.option("--json", "as_json", is_flag=True)
def agencies_list(as_json: bool) -> None:
    """Every target with its contacts."""
    with opened_runtime() as runtime, runtime.db.session() as session:
        rows: list[dict[str, Any]] = [
            {"code": a.code, "name": a.name, "kind": a.kind, "parent": a.parent_code, "emails": a.emails,
             "active": a.active} for a in session.scalars(select(Agency).order_by(Agency.kind, Agency.code))]
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
    with opened_runtime() as runtime, runtime.db.session() as session:
        rows = []
        for agency in session.scalars(select(Agency).order_by(Agency.code)):
            row = dict(agency.data or {"code": agency.code, "name": agency.name, "kind": agency.kind})
            row["emails"] = list(agency.emails)
            rows.append(row)
    text = yaml.safe_dump(rows, allow_unicode=True, sort_keys=False, width=120)
    if file is None:
        click.echo(text, nl=False)
    else:
        private_file(file)  # it lists the agencies' contact addresses
        file.write_text(text, encoding="utf-8")
        click.echo(f"{len(rows)} agencies written to {file}", err=True)


@agencies.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
def agencies_import(file: Path) -> None:
    """Load a registry file: new targets are added, known ones updated (contacts included)."""
    try:
        records = load_registry(file)
    except (ValueError, OSError) as exc:
        raise click.ClickException(f"{file}: {exc}") from None
    with opened_runtime() as runtime, runtime.db.scope() as session:
        added, updated = seed_agencies(session, records, contacts_from_records=True)
    click.echo(f"{added} agencies added, {updated} updated from {file}")
