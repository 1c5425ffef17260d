"""`ntbcare replies list|retry|send|resume`: what the page owes citizens on Facebook, and the operator's levers
when a reply failed or the Page token died."""

from __future__ import annotations

import json
from typing import Any

import click

from ntbcare.cli import _runtime, _settings, cli


@cli.group()
def replies() -> None:
    """Replies to citizens on Facebook: list, retry failed ones, send due ones now."""


def _reply_to_dict(reply: Any) -> dict[str, Any]:
    return {"id": reply.id, "key": reply.key, "ticket": reply.ticket.number, "kind": reply.kind,
            "channel": reply.channel, "target": reply.target_id, "status": reply.status, "attempts": reply.attempts,
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
    from sqlalchemy import func, select

    from bot.outbox import page_token_paused
    from ntbcare.models import Reply

    runtime = _runtime(_settings())
    with runtime.db.session() as session:
        counts = dict(session.execute(select(Reply.status, func.count()).group_by(Reply.status)).all())
        query = select(Reply).order_by(Reply.id.desc()).limit(limit)
        if status:
            query = query.where(Reply.status == status)
        rows = [_reply_to_dict(r) for r in session.scalars(query)]
        paused = page_token_paused(session)
    runtime.close()
    if as_json:
        click.echo(json.dumps({"counts": counts, "paused": paused, "replies": rows}, ensure_ascii=False, indent=2))
        return
    if paused:
        click.echo("SENDING PAUSED: the Page token was refused; replace it, then run `ntbcare replies resume`")
    click.echo("  ".join(f"{k}: {v}" for k, v in sorted(counts.items())) or "no replies")
    for r in rows:
        click.echo(f"#{r['id']:<7} {r['status']:<13} {r['ticket']}  {r['key']:<28} attempts {r['attempts']}  "
                   f"{r['error'] or r['graph_id'] or ''}")


@replies.command("retry")
@click.argument("ids", nargs=-1, type=int)
@click.option("--all-failed", is_flag=True, help="retry every failed reply")
def replies_retry(ids: tuple[int, ...], all_failed: bool) -> None:
    """Queue failed replies again (by id also undeliverable ones, e.g. after the citizen wrote again)."""
    from bot.outbox import retry_replies

    if not ids and not all_failed:
        raise click.ClickException("name reply ids, or use --all-failed")
    runtime = _runtime(_settings())
    queued = retry_replies(runtime.db, None if all_failed else list(ids), actor="operator:cli")
    runtime.close()
    click.echo(f"{len(queued)} repl{'y' if len(queued) == 1 else 'ies'} queued again")


@replies.command("send")
@click.option("--limit", default=50, show_default=True, type=int)
def replies_send(limit: int) -> None:
    """Send the due replies now (the worker's sweeper does this periodically)."""
    from bot.outbox import send_due_replies

    settings = _settings()
    runtime = _runtime(settings)
    report = send_due_replies(runtime.db, settings, limit=limit)
    runtime.close()
    if report.paused:
        raise click.ClickException(f"sending is paused: {report.paused}")
    click.echo(f"sent {len(report.sent)}, found already posted {len(report.reconciled)}, retry later "
               f"{len(report.retry)}, unknown {len(report.unknown)}, failed {len(report.failed)}, undeliverable "
               f"{len(report.undeliverable)}")


@replies.command("resume")
def replies_resume() -> None:
    """Resume sending after the Page token was replaced (clears the page_token_invalid flag)."""
    from bot.outbox import clear_page_token_flag

    runtime = _runtime(_settings())
    was_paused = clear_page_token_flag(runtime.db)
    runtime.close()
    click.echo("sending resumed" if was_paused else "sending was not paused")


@cli.group()
def templates() -> None:
    """The wording of the bot's replies (Indonesian): defaults, and the operators' versions."""


@templates.command("list")
@click.option("--json", "as_json", is_flag=True)
def templates_list(as_json: bool) -> None:
    """Every template key with the text in use and whether operators changed it."""
    from bot.texts import DEFAULT_TEMPLATES
    from ntbcare.models import ReplyTemplate

    runtime = _runtime(_settings())
    with runtime.db.session() as session:
        rows = []
        for key, default in DEFAULT_TEMPLATES.items():
            row = session.get(ReplyTemplate, key)
            rows.append({"key": key, "text": row.text if row else default, "edited": row is not None,
                         "updated_by": row.updated_by if row else None, "default": default})
    runtime.close()
    if as_json:
        click.echo(json.dumps(rows, ensure_ascii=False, indent=2))
        return
    for row in rows:
        click.echo(f"{row['key']}{' (diubah oleh ' + str(row['updated_by']) + ')' if row['edited'] else ''}:")
        click.echo("  " + row["text"].replace("\n", "\n  "))


@templates.command("set")
@click.argument("key")
@click.argument("text")
@click.option("--by", "by", default="cli", show_default=True, help="operator name")
def templates_set(key: str, text: str, by: str) -> None:
    """Replace the wording of KEY; its placeholders (e.g. {number}) must be those of the default."""
    from bot.texts import DEFAULT_TEMPLATES, template_placeholders
    from ntbcare.models import ReplyTemplate

    if key not in DEFAULT_TEMPLATES:
        raise click.ClickException(f"unknown template {key!r}; see `ntbcare templates list`")
    try:
        unknown = template_placeholders(text) - template_placeholders(DEFAULT_TEMPLATES[key])
    except ValueError as exc:
        raise click.ClickException(f"the text is not a valid template: {exc}") from None
    if unknown:
        allowed = ", ".join("{" + p + "}" for p in sorted(template_placeholders(DEFAULT_TEMPLATES[key])))
        raise click.ClickException(f"unknown placeholders {sorted(unknown)}; {key} may use {allowed}")
    runtime = _runtime(_settings())
    with runtime.db.scope() as session:
        row = session.get(ReplyTemplate, key) or ReplyTemplate(key=key)
        row.text, row.updated_by = text, f"operator:{by}"
        session.add(row)
    runtime.close()
    click.echo(f"template {key} updated")


@templates.command("reset")
@click.argument("key")
def templates_reset(key: str) -> None:
    """Go back to the default wording of KEY."""
    from ntbcare.models import ReplyTemplate

    runtime = _runtime(_settings())
    with runtime.db.scope() as session:
        row = session.get(ReplyTemplate, key)
        if row is not None:
            session.delete(row)
    runtime.close()
    click.echo(f"template {key} is the default again")
