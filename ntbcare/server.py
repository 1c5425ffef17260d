"""gunicorn, embedded: `ntbcare serve` and `ntbcare run` build the app inside each worker process.

Threads (gthread) rather than processes carry the concurrency so that one delivery writer per process
can group many requests into one commit. The worker class is gthread with an event-loop front
(:mod:`ntbcare.server_front`): a thread gets a request only once headers and body have all arrived, so slow or
stalled clients never hold the threads that answer everyone else.
"""

from __future__ import annotations

from typing import Any

from flask import Flask
from gunicorn.app.base import BaseApplication

from ntbcare.app import create_app
from ntbcare.core.settings import Settings
from ntbcare.server_front import BufferingWorker


class _Server(BaseApplication):
    def __init__(self, settings: Settings, options: dict[str, Any]) -> None:
        self._settings = settings
        self._options = options
        super().__init__()

    def load_config(self) -> None:
        for key, value in self._options.items():
            self.cfg.set(key, value)

    def load(self) -> Flask:
        # Read again in the worker so every process has its own engine, threads and connections.
        return create_app(Settings.from_env())


def serve_forever(settings: Settings, *, bind: str, workers: int, threads: int) -> None:
    BufferingWorker.max_body_bytes = settings.webhook_max_body_bytes  # inherited by the forked workers
    options = {
        "bind": bind,
        "workers": workers,
        "threads": threads,
        "worker_class": BufferingWorker,
        "timeout": 30,
        "graceful_timeout": 20,
        "keepalive": 5,
        "accesslog": None,
        "loglevel": settings.log_level.lower(),
        "preload_app": False,
    }
    _Server(settings, options).run()
