"""`ntbcare mail bounce`: read one returned message from stdin and mark the outbound mail it names ``bounced``.

Made for the mail system's pipe: with Postfix, an alias ``bounces: "|cd /srv/ntbcare && exec .venv/bin/ntbcare
mail bounce"`` and ``recipient_delimiter = +`` (README: "Bounced e-mail"). Postfix says which address the bounce
was delivered to in ``ORIGINAL_RECIPIENT`` (and ``RECIPIENT``); ``--recipient`` says it by hand.

Exit status: 0 when the message was read, whatever it was (a bounce, a delay, an auto-reply, a forgery: each
is one line on stdout), so nothing is bounced back; 75 (EX_TEMPFAIL) when it cannot be recorded now (the
database is unreachable, the schema or settings not ready), so the mail system keeps it and tries again.
"""

from __future__ import annotations

import json
import os
import sys

import click
from sqlalchemy.exc import SQLAlchemyError

from ntbcare.cli.common import opened_runtime
from ntbcare.pipeline.bounce_intake import MAX_BYTES, take_bounce

EX_TEMPFAIL = 75
ENVELOPE_VARIABLES = ("ORIGINAL_RECIPIENT", "RECIPIENT")


@click.group()
def mail() -> None:
    """E-mail coming back to the service: bounces of what it sent."""


@mail.command()
@click.option("--recipient", "recipients", multiple=True, metavar="ADDRESS",
              help="the address the message was delivered to (default: $ORIGINAL_RECIPIENT, $RECIPIENT)")
@click.option("--json", "as_json", is_flag=True, help="print the outcome as JSON")
def bounce(recipients: tuple[str, ...], as_json: bool) -> None:
    """Read a delivery status notification (or any bounce) from stdin and record it."""
    raw = sys.stdin.buffer.read(MAX_BYTES + 1)
    envelope = list(recipients) or [os.environ[name] for name in ENVELOPE_VARIABLES if os.environ.get(name)]
    try:
        with opened_runtime() as runtime:
            intake = take_bounce(runtime.db, runtime.settings, raw, envelope=envelope)
    except (click.ClickException, SQLAlchemyError) as exc:
        detail = exc.format_message() if isinstance(exc, click.ClickException) else type(exc).__name__
        click.echo(f"bounce not recorded, the mail system should try again later: {detail}", err=True)
        sys.exit(EX_TEMPFAIL)
    click.echo(json.dumps(intake.as_dict(), ensure_ascii=False) if as_json else intake.message)
