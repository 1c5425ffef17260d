"""What every command shares: settings that fail in one line, logging, a runtime on a current schema, tables."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import click
from sqlalchemy.engine import make_url

from ntbcare.core.logformat import configure_logging
from ntbcare.core.migrate import is_current
from ntbcare.core.settings import ConfigError, Settings
from ntbcare.pipeline.runtime import Runtime


def load_settings() -> Settings:
    try:
        return Settings.from_env()
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from None


def setup_logging(level: str, log_format: str = "text") -> None:
    """Log to stderr (LOG_FORMAT: text or JSON lines); agency link tokens are redacted from every line."""
    configure_logging(level, log_format)


def safe_url(url: str) -> str:
    return make_url(url).render_as_string(hide_password=True)


def checked_runtime(settings: Settings, mode: str = "inline") -> Runtime:
    """A runtime whose database is reachable and migrated; otherwise one line saying what to do."""
    runtime = Runtime.build(settings, mode=mode)
    try:
        current = is_current(runtime.db.engine)
    except Exception as exc:
        runtime.close()
        raise click.ClickException(f"cannot reach the database at DATABASE_URL: {exc}") from None
    if not current:
        runtime.close()
        raise click.ClickException("the database schema is not up to date: run `ntbcare init` first")
    return runtime


@contextmanager
def opened_runtime(settings: Settings | None = None) -> Iterator[Runtime]:
    """A checked runtime for the length of one command, closed whatever happens."""
    runtime = checked_runtime(settings or load_settings())
    try:
        yield runtime
    finally:
        runtime.close()


def table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """Left-aligned columns; the last column is not padded."""
    lines = [tuple(str(x) for x in row) for row in rows]
    widths = [max(len(str(x)) for x in col) for col in zip(header, *lines, strict=False)]
    fmt = "  ".join(f"{{:<{w}}}" for w in widths[:-1]) + "  {}"
    return "\n".join(fmt.format(*row) for row in [tuple(header), *lines])
