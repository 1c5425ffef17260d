"""`ntbcare media list|retry|download`: the photos and files of complaint tickets kept in MEDIA_DIR, and the
operator's levers when a download failed."""

from __future__ import annotations

import json

import click

from ntbcare.cli.common import opened_runtime
from ntbcare.core.models import MediaStatus
from ntbcare.pipeline.media import list_media, retry_media


@click.group()
def media() -> None:
    """Citizens' attachments downloaded from Facebook's CDN: list, retry failed ones, download due ones now."""


@media.command("list")
@click.option("--status", type=click.Choice(MediaStatus.ALL), default=None, help="only attachments in this state")
@click.option("--limit", default=50, show_default=True, type=int)
@click.option("--json", "as_json", is_flag=True, help="print a JSON object")
def media_list(status: str | None, limit: int, as_json: bool) -> None:
    """The newest attachments with their state, and counts per state."""
    with opened_runtime() as runtime, runtime.db.session() as session:
        counts, rows = list_media(session, status, limit)
    if as_json:
        click.echo(json.dumps({"counts": counts, "media": rows}, ensure_ascii=False, indent=2))
        return
    click.echo("  ".join(f"{k}: {v}" for k, v in sorted(counts.items())) or "no attachments")
    for r in rows:
        waiting = " (waits: the ticket is not a complaint)" if r["waiting_for_complaint"] else ""
        kept = f"{r['content_type']} {r['size']} bytes {r['path']}" if r["status"] == MediaStatus.STORED else ""
        click.echo(f"#{r['id']:<7} {r['status']:<11} {r['ticket']}  {r['kind']:<6} attempts {r['attempts']}  "
                   f"{kept or r['reason'] or ''}{waiting}")


@media.command("retry")
@click.argument("ids", nargs=-1, type=int)
@click.option("--all-failed", is_flag=True, help="retry every failed download")
def media_retry(ids: tuple[int, ...], all_failed: bool) -> None:
    """Queue failed downloads again (by id also refused ones, e.g. after MEDIA_MAX_BYTES was raised)."""
    if not ids and not all_failed:
        raise click.ClickException("name attachment ids, or use --all-failed")
    with opened_runtime() as runtime:
        queued = retry_media(runtime.db, None if all_failed else list(ids), actor="operator:cli")
    click.echo(f"{len(queued)} attachment(s) queued again")


@media.command("download")
@click.option("--limit", default=20, show_default=True, type=int)
def media_download(limit: int) -> None:
    """Download the due attachments now (the worker's sweeper does this every round)."""
    with opened_runtime() as runtime:
        report = runtime.pipeline.download_media(limit=limit)
    click.echo(f"stored {len(report.stored)}, refused {len(report.refused)}, retry later {len(report.retry)}, "
               f"failed {len(report.failed)}")
