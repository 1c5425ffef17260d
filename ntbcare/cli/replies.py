"""`ntbcare replies list|retry|send|resume`: what the page owes citizens on Facebook, and the operator's levers
when a reply failed or the Page token died."""

from __future__ import annotations

import json
from typing import Any

import click
from sqlalchemy import func, select

from bot.outbox import clear_page_token_flag, page_token_paused, retry_replies
from ntbcare.cli.common import opened_runtime
from ntbcare.core.models import Reply


@click.group()
def replies() -> None:
    """Replies to citizens on Facebook: list, retry failed ones, send due ones now."""


def _reply_to_dict(reply: Any) -> dict[str, Any]:
    return {"id": reply.id, "key": reply.key, "ticket": reply.ticket.number if reply.ticket else None,
            "kind": reply.kind, "channel": reply.channel, "target": reply.target_id, "status": reply.status,
            "attempts": reply.attempts,
            "graph_id": reply.graph_id, "error": reply.error, "text": reply.text,
            "created_at": reply.created_at.isoformat() if reply.created_at else None,
            "sent_at": reply.sent_at.isoformat() if reply.sent_at else None}


@replies.command("list")
@click.option("--status", default=None, help="only replies with this status (pending, sending, sent, unknown, "
                                             "failed, undeliverable)")
@click.option("--limit", default=50, show_default=True, type=int)
@click.option("--json", "as_json", is_flag=True, help="print a JSON object")
def replies_list(status: str | None, limit: int, as_json: bool) -> None:
    """The newest replies, with counts per status and whether sending is paused."""
    with opened_runtime() as runtime, runtime.db.session() as session:
        counts = dict(session.execute(select(Reply.status, func.count()).group_by(Reply.status)).all())
        query = select(Reply).order_by(Reply.id.desc()).limit(limit)
        if status:
            query = query.where(Reply.status == status)
        rows = [_reply_to_dict(r) for r in session.scalars(query)]
        paused = page_token_paused(session)
    if as_json:
        click.echo(json.dumps({"counts": counts, "paused": paused, "replies": rows}, ensure_ascii=False, indent=2))
        return
    if paused:
        click.echo("SENDING PAUSED: the Page token was refused; replace it, then run `ntbcare replies resume`")
    click.echo("  ".join(f"{k}: {v}" for k, v in sorted(counts.items())) or "no replies")
    for r in rows:
        ticket = r["ticket"] or "(no ticket)"
        click.echo(f"#{r['id']:<7} {r['status']:<13} {ticket}  {r['key']:<28} attempts {r['attempts']}  "
                   f"{r['error'] or r['graph_id'] or ''}")


@replies.command("retry")
@click.argument("ids", nargs=-1, type=int)
@click.option("--all-failed", is_flag=True, help="retry every failed reply")
def replies_retry(ids: tuple[int, ...], all_failed: bool) -> None:
    """Queue failed replies again (by id also undeliverable ones, e.g. after the citizen wrote again)."""
    if not ids and not all_failed:
        raise click.ClickException("name reply ids, or use --all-failed")
    with opened_runtime() as runtime:
        queued = retry_replies(runtime.db, None if all_failed else list(ids), actor="operator:cli")
    click.echo(f"{len(queued)} repl{'y' if len(queued) == 1 else 'ies'} queued again")


@replies.command("send")
@click.option("--limit", default=50, show_default=True, type=int)
def replies_send(limit: int) -> None:
    """Send the due replies now (the worker's sweeper does this periodically)."""
    with opened_runtime() as runtime:
        report = runtime.pipeline.send_replies(limit=limit)
    if report.paused:
        raise click.ClickException(f"sending is paused: {report.paused}")
    click.echo(f"sent {len(report.sent)}, found already posted {len(report.reconciled)}, retry later "
               f"{len(report.retry)}, unknown {len(report.unknown)}, failed {len(report.failed)}, undeliverable "
               f"{len(report.undeliverable)}")


@replies.command("resume")
def replies_resume() -> None:
    """Resume sending after the Page token was replaced (clears the page_token_invalid flag)."""
    with opened_runtime() as runtime:
        was_paused = clear_page_token_flag(runtime.db)
    click.echo("sending resumed" if was_paused else "sending was not paused")
