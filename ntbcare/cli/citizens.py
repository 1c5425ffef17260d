"""`ntbcare citizens forget ID`: erase a citizen's personal data on request (see ntbcare.pipeline.forget)."""

from __future__ import annotations

import json

import click

from ntbcare.cli.common import opened_runtime
from ntbcare.pipeline.forget import CitizenNotFound, forget_citizen


@click.group()
def citizens() -> None:
    """The people who wrote to the page."""


@citizens.command()
@click.argument("ident", metavar="ID")
@click.option("--by", "operator", required=True, help="who asks (audited as operator:NAME)")
@click.option("--yes", is_flag=True, help="do not ask for confirmation")
@click.option("--json", "as_json", is_flag=True, help="print what was erased as JSON")
def forget(ident: str, operator: str, yes: bool, as_json: bool) -> None:
    """Erase the personal data of citizen ID (our citizen id, their Facebook user id, their Messenger PSID, or
    the number of a ticket they wrote): name, ids, texts, raw webhook bodies and the kept files of their
    attachments; the tickets stay for the statistics."""
    if not yes and not as_json:
        click.confirm(f"Erase every personal detail of citizen {ident}? This cannot be undone", abort=True)
    with opened_runtime() as runtime:
        try:
            report = forget_citizen(runtime.db, ident, actor=f"operator:{operator}",
                                    media_dir=runtime.settings.media_dir)
        except CitizenNotFound as exc:
            raise click.ClickException(str(exc)) from None
    if as_json:
        click.echo(json.dumps(report.as_dict()))
        return
    tickets = ", ".join(report.tickets) or "none"
    click.echo(f"citizen {ident} forgotten: tickets kept without personal data: {tickets}; {report.messages} "
               f"message(s), {report.events} event(s), {report.deliveries} raw bodies, {report.replies} reply(ies), "
               f"{report.media} attachment(s) ({report.media_files_deleted} file(s) in MEDIA_DIR) erased")
