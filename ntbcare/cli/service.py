"""Running the service: `init`, `run`, `serve`, `worker`, and `replay` of recorded webhook bodies."""

from __future__ import annotations

import json
import logging
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import click

from ntbcare.cli.common import checked_runtime, load_settings, safe_url, setup_logging
from ntbcare.core.delivery_store import insert_delivery
from ntbcare.core.metrics import prepare_multiprocess_dir
from ntbcare.core.settings import Settings
from ntbcare.pipeline.bootstrap import initialise

log = logging.getLogger("ntbcare")


@click.command()
def init() -> None:
    """Create or upgrade the database schema and load the reference data. Safe to run again."""
    settings = load_settings()
    setup_logging("WARNING")
    summary = initialise(settings)
    click.echo(f"database ready at {safe_url(settings.database_url)}; {summary}")


def _gunicorn(settings: Settings, host: str, port: int, workers: int, threads: int) -> None:
    # Imported here: gunicorn and the web app are only needed by the commands that serve.
    from ntbcare.server import serve_forever

    serve_forever(settings, bind=f"{host}:{port}", workers=workers, threads=threads)


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, type=int)
def run(host: str, port: int) -> None:
    """Web server and worker in one command, for one small machine (migrates first)."""
    settings = load_settings()
    setup_logging(settings.log_level, settings.log_format)
    initialise(settings)
    prepare_multiprocess_dir(settings.metrics_dir)  # before the worker and gunicorn start: they inherit it
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


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True,
              help="address to bind; keep 127.0.0.1 behind a reverse proxy on the same machine")
@click.option("--port", default=8000, show_default=True, type=int)
@click.option("--workers", default=None, type=int,
              help="gunicorn worker processes [default: 1: one event loop takes the webhook's load, and on "
                   "PostgreSQL one writer commits larger batches than two (docs/benchmarks.md)]")
@click.option("--threads", default=64, show_default=True, type=int, help="threads per worker process")
def serve(host: str, port: int, workers: int | None, threads: int) -> None:
    """The web server alone (gunicorn), for production next to `ntbcare worker`."""
    settings = load_settings()
    setup_logging(settings.log_level, settings.log_format)
    runtime = checked_runtime(settings)
    runtime.close()
    if workers is None:
        workers = 1
    prepare_multiprocess_dir(settings.metrics_dir)
    _gunicorn(settings, host, port, workers=workers, threads=threads)


@click.command()
@click.option("--burst", is_flag=True, help="stop when the queue is empty")
@click.option("--name", default=None, help="worker name (unique per machine)")
def worker(burst: bool, name: str | None) -> None:
    """An RQ worker with a sweeper; run as many as you like, on any machine (needs REDIS_URL)."""
    settings = load_settings()
    setup_logging(settings.log_level, settings.log_format)
    if not settings.uses_redis:
        raise click.ClickException("REDIS_URL is not set: use `ntbcare run`, which processes in-process")
    checked_runtime(settings).close()
    prepare_multiprocess_dir(settings.metrics_dir)
    # Imported here: RQ and the worker loop are only needed by this command.
    from worker import run_worker

    run_worker(settings, burst=burst, name=name)


@click.command()
@click.argument("files", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="print a JSON summary")
def replay(files: tuple[Path, ...], as_json: bool) -> None:
    """Feed recorded webhook bodies through the pipeline (stored, then processed here)."""
    settings = load_settings()
    setup_logging("WARNING")
    runtime = checked_runtime(settings)
    totals: dict[str, Any] = {"files": len(files), "deliveries": [], "done": 0, "failed": 0, "tickets_opened": 0}
    try:
        with click.progressbar(files, label="replaying", file=sys.stderr, show_pos=True) as bar:
            for path in bar:
                delivery_id = insert_delivery(runtime.db, path.read_bytes(), source="replay")
                result = runtime.process([delivery_id])
                totals["deliveries"].append(delivery_id)
                totals["done"] += len(result.done)
                totals["failed"] += len(result.failed) + len(result.retry_later)
                totals["tickets_opened"] += len(result.opened_ticket_ids)
    finally:
        runtime.close()
    if as_json:
        click.echo(json.dumps(totals))
    else:
        click.echo(f"{len(files)} file(s): {totals['done']} processed, {totals['failed']} failed, "
                   f"{totals['tickets_opened']} ticket(s) opened")
    if totals["failed"]:
        sys.exit(1)
