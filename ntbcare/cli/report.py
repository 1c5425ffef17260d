"""`ntbcare report monthly`: the monthly recap (figures per agency, the province's trend, the ten oldest open
complaints) as HTML, CSV or PDF, for any month; the sweeper e-mails last month's on the first working day."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from ntbcare.cli.common import opened_runtime
from ntbcare.core.models import utcnow
from ntbcare.pipeline.accountability.periods import PeriodError, parse_month, previous_month
from ntbcare.pipeline.accountability.recap import FORMATS, render


@click.group()
def report() -> None:
    """Reports on the agencies' record (the same figures as /transparansi)."""


@report.command("monthly")
@click.option("--month", metavar="YYYY-MM", help="The month to report on (default: last month).")
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="html", show_default=True)
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), help="Write to FILE instead of stdout.")
def report_monthly(month: str | None, fmt: str, out: Path | None) -> None:
    """One row per agency, the province's weekly trend and the ten oldest open complaints."""
    now = utcnow()
    try:
        period = parse_month(month) if month else previous_month(now)
    except PeriodError as exc:
        raise click.ClickException(f"--month: {exc}") from None
    if fmt == "pdf" and out is None and sys.stdout.isatty():
        raise click.ClickException("a PDF is not for a terminal: add --out FILE (or redirect stdout)")
    with opened_runtime() as runtime, runtime.db.session() as session:
        body = render(session, runtime.settings, runtime.pipeline.deadline_policy, period, now, fmt)
    if out is None:
        sys.stdout.buffer.write(body)
        sys.stdout.flush()
        return
    out.write_bytes(body)
    click.echo(f"recap of {period.label} written to {out} ({len(body):,} bytes)", err=True)
