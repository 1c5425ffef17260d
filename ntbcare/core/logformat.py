"""How the processes log: ``LOG_FORMAT=text`` for people, ``json`` for a log collector (one object per line).

A JSON line carries the ids of what is being worked on (``delivery_ids``, ``ticket_ids``, ``reply_id``,
``job_id``...) from :func:`log_context`, a context variable set where a job, a batch or a send begins, so no
call site has to pass them. Ids are all a line carries of the work: never a body, a text, a name or a token.
Agency link tokens are redacted from every message (:func:`ntbcare.core.security.install_log_redaction`).
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any

from ntbcare.core.security import install_log_redaction

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
MAX_IDS = 50  # a batch of 200 deliveries logs its first 50 ids and the count

_context: ContextVar[dict[str, Any]] = ContextVar("ntbcare_log_context", default={})  # noqa: B039 (never mutated)


@contextmanager
def log_context(**ids: Any) -> Iterator[None]:
    """Every line logged inside the block (in this thread or task) carries these ids as well."""
    token = _context.set({**_context.get(), **{key: _bounded(value) for key, value in ids.items()}})
    try:
        yield
    finally:
        _context.reset(token)


def current_log_context() -> dict[str, Any]:
    return dict(_context.get())


def _bounded(value: Any) -> Any:
    if isinstance(value, list | tuple):
        return list(value[:MAX_IDS]) + ([f"+{len(value) - MAX_IDS}"] if len(value) > MAX_IDS else [])
    return value


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time (UTC, ISO 8601), level, logger, message, the context's ids, exception."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        entry.update(_context.get())
        for key in ("delivery_id", "ticket_id", "job_id", "reply_id", "mail_id"):
            if key in record.__dict__:
                entry[key] = record.__dict__[key]
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            entry["exception"] = record.exc_text
        return json.dumps(entry, ensure_ascii=False, default=str)


def configure_logging(level: str, log_format: str = "text") -> None:
    """Log to stderr in ``log_format`` at ``level``, redaction on. Like ``logging.basicConfig`` it leaves a
    root logger that something else (a test runner, an embedding program) configured alone; a second call
    replaces the handler the first one added."""
    install_log_redaction()
    root = logging.getLogger()
    ours = [handler for handler in root.handlers if getattr(handler, "ntbcare", False)]
    if len(ours) != len(root.handlers):
        return
    for handler in ours:
        root.removeHandler(handler)
    handler = logging.StreamHandler(sys.stderr)
    handler.ntbcare = True  # type: ignore[attr-defined]
    handler.setFormatter(JsonFormatter() if log_format == "json" else logging.Formatter(TEXT_FORMAT))
    root.addHandler(handler)
    root.setLevel(level)
