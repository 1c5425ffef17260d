"""`ntbcare backup FILE`: a consistent copy of the database while the service runs (see ntbcare.core.backup)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from ntbcare.cli.common import load_settings, setup_logging
from ntbcare.core.backup import BackupError, backup_database


@click.command()
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="print the result as JSON")
def backup(file: Path, as_json: bool) -> None:
    """Back up the database into FILE (new, mode 0600): SQLite's online backup, or pg_dump for PostgreSQL."""
    settings = load_settings()
    setup_logging("WARNING", settings.log_format)
    shown: dict[str, int] = {}

    def progress(done: int, total: int) -> None:
        percent = 100 * done // max(total, 1)
        if not as_json and sys.stderr.isatty() and shown.get("percent") != percent:
            shown["percent"] = percent
            click.echo(f"\rbacking up: {percent:3d}% of {total} pages", nl=False, err=True)

    try:
        result = backup_database(settings.database_url, file, progress)
    except BackupError as exc:
        raise click.ClickException(str(exc)) from None
    if shown:
        click.echo("", err=True)
    if as_json:
        click.echo(json.dumps({"file": result.path, "engine": result.engine, "bytes": result.bytes,
                               "method": result.method}))
    else:
        click.echo(f"backup written to {result.path} ({result.bytes} bytes, {result.method}); keep it private: "
                   "it holds citizens' personal data")
