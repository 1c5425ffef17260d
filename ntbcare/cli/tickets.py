"""`ntbcare tickets list|show|assign|not-complaint|revoke-links`: read tickets, the operator's routing decisions,
and revoking a ticket's leaked agency links."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, Protocol

import click

from ntbcare.cli.common import opened_runtime, table
from ntbcare.core.lifecycle import find_ticket
from ntbcare.core.models import TicketStatus
from ntbcare.core.queries import list_tickets, ticket_detail, ticket_to_dict
from ntbcare.pipeline import decisions
from ntbcare.pipeline.join import Pipeline


class Summarised(Protocol):
    def summary(self) -> str: ...


@click.group()
def tickets() -> None:
    """List and show tickets; assign them, mark them not a complaint, or revoke their agency links."""


@tickets.command("list")
@click.option("--status", default=None, help="only tickets with this status")
@click.option("--limit", default=100, show_default=True, type=int)
@click.option("--json", "as_json", is_flag=True, help="print a JSON array")
def tickets_list(status: str | None, limit: int, as_json: bool) -> None:
    """The newest tickets first."""
    if status and status not in TicketStatus.ALL:
        raise click.ClickException(f"unknown status {status!r}; use one of: {', '.join(TicketStatus.ALL)}")
    with opened_runtime() as runtime, runtime.db.session() as session:
        rows = [ticket_to_dict(t) for t in list_tickets(session, status=status, limit=limit)]
    if as_json:
        click.echo(json.dumps(rows, ensure_ascii=False, indent=2))
        return
    if not rows:
        click.echo("no tickets" + (f" with status {status}" if status else ""))
        return
    click.echo(_ticket_table(rows))


def _ticket_table(rows: list[dict[str, Any]]) -> str:
    header = ("NUMBER", "STATUS", "CHANNEL", "AGENCY", "CREATED (UTC)", "TEXT")
    return table(header, [
        (r["number"], r["status"], r["channel"], r["agency"] or "-", (r["created_at"] or "")[:16].replace("T", " "),
         " ".join((r["text"] or "").split())[:60])
        for r in rows
    ])


@tickets.command("show")
@click.argument("number")
@click.option("--json", "as_json", is_flag=True, help="print a JSON object")
def tickets_show(number: str, as_json: bool) -> None:
    """One ticket with its messages and history."""
    with opened_runtime() as runtime, runtime.db.session() as session:
        ticket = find_ticket(session, number)
        if ticket is None:
            raise click.ClickException(f"no ticket {number!r}; see `ntbcare tickets list`")
        data = ticket_detail(session, ticket)
    if as_json:
        click.echo(json.dumps(data, ensure_ascii=False, indent=2))
        return
    click.echo(f"{data['number']}  [{data['status']}]  {data['channel']}  agency: {data['agency'] or '-'}")
    click.echo(f"opened {data['opened_at']}  by {data['citizen'] or 'unknown'}")
    if data["permalink"]:
        click.echo(data["permalink"])
    if data["merged_into"]:
        click.echo(f"merged into {data['merged_into']}")
    if data["merged"]:
        click.echo(f"merged into this one: {', '.join(data['merged'])}")
    click.echo("")
    for m in data["messages"]:
        flag = " (removed)" if m["removed"] else " (hidden)" if m["hidden"] else ""
        origin = f" [from {m['ticket']}]" if m["ticket"] != data["number"] else ""
        click.echo(f"  {m['occurred_at'][:16]}  {m['kind']}{flag}{origin}: {m['text'] or ''}")
    click.echo("\nhistory:")
    for h in data["history"]:
        change = f" {h['from'] or ''}→{h['to']}" if h["to"] else ""
        click.echo(f"  {h['at'][:19]}  {h['actor']}: {h['action']}{change}")


@tickets.command("assign")
@click.argument("number")
@click.argument("agency")
@click.option("--by", "by", default="cli", show_default=True, help="operator name, for the audit trail")
def tickets_assign(number: str, agency: str, by: str) -> None:
    """Give a ticket to AGENCY (a code); the agency is e-mailed and the model learns from it."""
    _decide(lambda pipeline: decisions.assign(pipeline, number, agency, actor=f"operator:{by}"))


@tickets.command("not-complaint")
@click.argument("number")
@click.option("--by", "by", default="cli", show_default=True)
def tickets_not_complaint(number: str, by: str) -> None:
    """Mark a ticket as not a complaint (reversible by assigning it)."""
    _decide(lambda pipeline: decisions.not_complaint(pipeline, number, actor=f"operator:{by}"))


@tickets.command("revoke-links")
@click.argument("number")
@click.option("--by", "by", default="cli", show_default=True, help="operator name, for the audit trail")
def tickets_revoke_links(number: str, by: str) -> None:
    """Void every agency link issued for a ticket so far (a leaked one), keeping its agency."""
    _decide(lambda pipeline: decisions.revoke_links(pipeline, number, actor=f"operator:{by}"))


def _decide(decide: Callable[[Pipeline], Summarised]) -> None:
    """Make an operator's decision through the pipeline; a refusal is one line and exit status 1."""
    with opened_runtime() as runtime:
        try:
            outcome = decide(runtime.pipeline)
        except decisions.DecisionRefused as exc:
            raise click.ClickException(str(exc)) from None
    click.echo(outcome.summary())
