"""The ``ntbcare`` command. Errors are one line on stderr that says what to do; ``--json`` is for scripts."""

from __future__ import annotations

import json
import logging
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import click

from ntbcare.settings import ConfigError, Settings

log = logging.getLogger("ntbcare")


def _settings() -> Settings:
    try:
        return Settings.from_env()
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from None


def _setup_logging(level: str) -> None:
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr)


def _runtime(settings: Settings, mode: str = "inline"):  # type: ignore[no-untyped-def]
    from ntbcare.migrate import is_current
    from ntbcare.runtime import Runtime

    runtime = Runtime.build(settings, mode=mode)
    try:
        current = is_current(runtime.db.engine)
    except Exception as exc:
        raise click.ClickException(f"cannot reach the database at DATABASE_URL: {exc}") from None
    if not current:
        runtime.close()
        raise click.ClickException("the database schema is not up to date: run `ntbcare init` first")
    return runtime


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def cli() -> None:
    """NTB Care: Facebook complaints to agency tickets and back."""


@cli.command()
def init() -> None:
    """Create or upgrade the database schema and load the reference data. Safe to run again."""
    settings = _settings()
    _setup_logging("WARNING")
    from ntbcare.bootstrap import initialise

    summary = initialise(settings)
    click.echo(f"database ready at {_safe_url(settings.database_url)}; {summary}")


def _safe_url(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


def _gunicorn(settings: Settings, host: str, port: int, workers: int, threads: int) -> None:
    from ntbcare.server import serve_forever

    serve_forever(settings, bind=f"{host}:{port}", workers=workers, threads=threads)


@cli.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, type=int)
def run(host: str, port: int) -> None:
    """Web server and worker in one command, for one small machine (migrates first)."""
    settings = _settings()
    _setup_logging(settings.log_level)
    from ntbcare.bootstrap import initialise

    initialise(settings)
    child = None
    if settings.uses_redis:
        child = subprocess.Popen([sys.executable, "-m", "ntbcare.cli", "worker"])
        log.info("started RQ worker (pid %s)", child.pid)
    else:
        log.info("no REDIS_URL: deliveries are processed in-process")
    click.echo(f"NTB Care listening on http://{host}:{port}  (webhook: /webhook, health: /healthz)", err=True)
    try:
        _gunicorn(settings, host, port, workers=1, threads=64)
    finally:
        if child is not None:
            child.send_signal(signal.SIGTERM)
            child.wait(timeout=30)


@cli.command()
@click.option("--host", default="0.0.0.0", show_default=True)
@click.option("--port", default=8000, show_default=True, type=int)
@click.option("--workers", default=None, type=int,
              help="gunicorn worker processes [default: 1 on SQLite (one writer), 2 on PostgreSQL]")
@click.option("--threads", default=64, show_default=True, type=int, help="threads per worker process")
def serve(host: str, port: int, workers: int | None, threads: int) -> None:
    """The web server alone (gunicorn), for production next to `ntbcare worker`."""
    settings = _settings()
    _setup_logging(settings.log_level)
    _runtime(settings).close()
    if workers is None:
        workers = 1 if settings.is_sqlite else 2
    _gunicorn(settings, host, port, workers=workers, threads=threads)


@cli.command()
@click.option("--burst", is_flag=True, help="stop when the queue is empty")
@click.option("--name", default=None, help="worker name (unique per machine)")
def worker(burst: bool, name: str | None) -> None:
    """An RQ worker with a sweeper; run as many as you like, on any machine (needs REDIS_URL)."""
    settings = _settings()
    _setup_logging(settings.log_level)
    if not settings.uses_redis:
        raise click.ClickException("REDIS_URL is not set: use `ntbcare run`, which processes in-process")
    _runtime(settings).close()
    from worker import run_worker

    run_worker(settings, burst=burst, name=name)


@cli.command()
@click.argument("files", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="print a JSON summary")
def replay(files: tuple[Path, ...], as_json: bool) -> None:
    """Feed recorded webhook bodies through the pipeline (stored, then processed here)."""
    from ntbcare.inbox import insert_delivery

    settings = _settings()
    _setup_logging("WARNING")
    runtime = _runtime(settings)
    totals: dict[str, Any] = {"files": len(files), "deliveries": [], "done": 0, "failed": 0, "tickets_opened": 0}
    with click.progressbar(files, label="replaying", file=sys.stderr, show_pos=True) as bar:
        for path in bar:
            delivery_id = insert_delivery(runtime.db, path.read_bytes(), source="replay")
            result = runtime.process([delivery_id])
            totals["deliveries"].append(delivery_id)
            totals["done"] += len(result.done)
            totals["failed"] += len(result.failed) + len(result.retry_later)
            totals["tickets_opened"] += len(result.opened_ticket_ids)
    runtime.close()
    if as_json:
        click.echo(json.dumps(totals))
    else:
        click.echo(f"{len(files)} file(s): {totals['done']} processed, {totals['failed']} failed, "
                   f"{totals['tickets_opened']} ticket(s) opened")
    if totals["failed"]:
        sys.exit(1)


@cli.group()
def tickets() -> None:
    """List and show tickets."""


@tickets.command("list")
@click.option("--status", default=None, help="only tickets with this status")
@click.option("--limit", default=100, show_default=True, type=int)
@click.option("--json", "as_json", is_flag=True, help="print a JSON array")
def tickets_list(status: str | None, limit: int, as_json: bool) -> None:
    """The newest tickets first."""
    from ntbcare.models import TicketStatus
    from ntbcare.queries import list_tickets, ticket_to_dict

    if status and status not in TicketStatus.ALL:
        raise click.ClickException(f"unknown status {status!r}; use one of: {', '.join(TicketStatus.ALL)}")
    settings = _settings()
    runtime = _runtime(settings)
    with runtime.db.session() as session:
        rows = [ticket_to_dict(t) for t in list_tickets(session, status=status, limit=limit)]
    runtime.close()
    if as_json:
        click.echo(json.dumps(rows, ensure_ascii=False, indent=2))
        return
    if not rows:
        click.echo("no tickets" + (f" with status {status}" if status else ""))
        return
    click.echo(_table(rows))


def _table(rows: list[dict[str, Any]]) -> str:
    header = ("NUMBER", "STATUS", "CHANNEL", "AGENCY", "CREATED (UTC)", "TEXT")
    lines = [
        (r["number"], r["status"], r["channel"], r["agency"] or "-", (r["created_at"] or "")[:16].replace("T", " "),
         " ".join((r["text"] or "").split())[:60])
        for r in rows
    ]
    widths = [max(len(str(x)) for x in col) for col in zip(header, *lines, strict=False)]
    fmt = "  ".join(f"{{:<{w}}}" for w in widths[:-1]) + "  {}"
    return "\n".join(fmt.format(*row) for row in [header, *lines])


@tickets.command("show")
@click.argument("number")
@click.option("--json", "as_json", is_flag=True, help="print a JSON object")
def tickets_show(number: str, as_json: bool) -> None:
    """One ticket with its messages and history."""
    from ntbcare.lifecycle import find_ticket
    from ntbcare.queries import ticket_detail

    settings = _settings()
    runtime = _runtime(settings)
    with runtime.db.session() as session:
        ticket = find_ticket(session, number)
        if ticket is None:
            runtime.close()
            raise click.ClickException(f"no ticket {number!r}; see `ntbcare tickets list`")
        data = ticket_detail(session, ticket)
    runtime.close()
    if as_json:
        click.echo(json.dumps(data, ensure_ascii=False, indent=2))
        return
    click.echo(f"{data['number']}  [{data['status']}]  {data['channel']}  agency: {data['agency'] or '-'}")
    click.echo(f"opened {data['opened_at']}  by {data['citizen'] or 'unknown'}")
    if data["permalink"]:
        click.echo(data["permalink"])
    click.echo("")
    for m in data["messages"]:
        flag = " (removed)" if m["removed"] else " (hidden)" if m["hidden"] else ""
        click.echo(f"  {m['occurred_at'][:16]}  {m['kind']}{flag}: {m['text'] or ''}")
    click.echo("\nhistory:")
    for h in data["history"]:
        change = f" {h['from'] or ''}→{h['to']}" if h["to"] else ""
        click.echo(f"  {h['at'][:19]}  {h['actor']}: {h['action']}{change}")


@cli.group()
def deliveries() -> None:
    """Inspect stored webhook deliveries and retry failed ones."""


@deliveries.command("list")
@click.option("--status", type=click.Choice(["pending", "done", "failed"]), default=None)
@click.option("--limit", default=50, show_default=True, type=int)
@click.option("--json", "as_json", is_flag=True)
def deliveries_list(status: str | None, limit: int, as_json: bool) -> None:
    """The newest deliveries, with counts per status."""
    from ntbcare.queries import delivery_counts, delivery_to_dict, events_of, list_deliveries

    runtime = _runtime(_settings())
    with runtime.db.session() as session:
        counts = delivery_counts(session)
        rows = [delivery_to_dict(d, events_of(session, d.id)) for d in list_deliveries(session, status=status,
                                                                                      limit=limit)]
    runtime.close()
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
    from sqlalchemy import update

    from ntbcare.models import Delivery, DeliveryStatus

    if not ids and not all_failed:
        raise click.ClickException("name delivery ids, or use --all-failed")
    runtime = _runtime(_settings())
    with runtime.db.scope() as session:
        query = update(Delivery).where(Delivery.status == DeliveryStatus.FAILED)
        if not all_failed:
            query = query.where(Delivery.id.in_(ids))
        count = session.execute(
            query.values(status=DeliveryStatus.PENDING, attempts=0, next_attempt_at=None, dispatched_at=None)
        ).rowcount
    runtime.close()
    click.echo(f"{count} deliver{'y' if count == 1 else 'ies'} queued again")


from ntbcare import cli_replies, cli_routing  # noqa: E402,F401  (they register their commands on the groups above)


def main() -> None:
    cli(prog_name="ntbcare")


if __name__ == "__main__":
    main()
