"""`ntbcare facebook check`: the page token, its permissions and both webhook subscriptions, each with what to
do when wrong (see bot.facebook_check)."""

from __future__ import annotations

import json
import sys

import click

from bot.facebook_check import run_checks
from ntbcare.cli.common import load_settings, setup_logging


@click.group()
def facebook() -> None:
    """The Facebook side: page token and webhook subscriptions."""


@facebook.command()
@click.option("--json", "as_json", is_flag=True, help="print the checks as JSON")
def check(as_json: bool) -> None:
    """Ask the Graph API whether the page token works and the page's webhooks are still subscribed."""
    settings = load_settings()
    setup_logging("WARNING", settings.log_format)
    checks = run_checks(settings)
    healthy = all(c.ok for c in checks)
    if as_json:
        click.echo(json.dumps({"ok": healthy, "checks": [c.as_dict() for c in checks]}))
    else:
        for c in checks:
            click.echo(f"{'ok  ' if c.ok else 'FAIL'}  {c.name}: {c.detail}")
            if c.fix:
                click.echo(f"      what to do: {c.fix}")
    if not healthy:
        sys.exit(1)
