"""`ntbcare deliveries list|retry`: the stored webhook deliveries, and putting failed ones back."""

from __future__ import annotations

import json
from typing import Any, cast

import click
from sqlalchemy import CursorResult, update

from ntbcare.cli.common import opened_runtime
from ntbcare.core.models import Delivery, DeliveryStatus
from ntbcare.core.queries import delivery_counts, delivery_to_dict, events_of, list_deliveries


@click.group()
def deliveries() -> None:
    """Inspect stored webhook deliveries and retry failed ones."""


@deliveries.command("list")
@click.option("--status", type=click.Choice(["pending", "done", "failed"]), default=None)
@click.option("--limit", default=50, show_default=True, type=int)
@click.option("--json", "as_json", is_flag=True)
def deliveries_list(status: str | None, limit: int, as_json: bool) -> None:
    """The newest deliveries, with counts per status."""
    with opened_runtime() as runtime, runtime.db.session() as session:
        counts = delivery_counts(session)
        rows = [delivery_to_dict(d, events_of(session, d.id))
                for d in list_deliveries(session, status=status, limit=limit)]
    if as_json:
        click.echo(json.dumps({"counts": counts, "deliveries": rows}, ensure_ascii=False, indent=2))
        return
    click.echo("  ".join(f"{k}: {v}" for k, v in sorted(counts.items())) or "no deliveries")
    for r in rows:
        click.echo(f"#{r['id']:<8} {r['status']:<8} attempts {r['attempts']}  items {r['items'] or 0}  "
                   f"{r['received_at'][:19]}  {r['error'] or ''}")


@deliveries.command("retry")
@click.argument("ids", nargs=-1, type=int)
@click.option("--all-failed", is_flag=True, help="retry every failed delivery")
def deliveries_retry(ids: tuple[int, ...], all_failed: bool) -> None:
    """Put failed deliveries back to pending; the worker (or its sweeper) processes them again."""
    if not ids and not all_failed:
        raise click.ClickException("name delivery ids, or use --all-failed")
    with opened_runtime() as runtime, runtime.db.scope() as session:
        query = update(Delivery).where(Delivery.status == DeliveryStatus.FAILED)
        if not all_failed:
            query = query.where(Delivery.id.in_(ids))
        result = cast("CursorResult[Any]", session.execute(
            query.values(status=DeliveryStatus.PENDING, attempts=0, next_attempt_at=None, dispatched_at=None)
        ))
        count = result.rowcount
    click.echo(f"{count} deliver{'y' if count == 1 else 'ies'} queued again")
