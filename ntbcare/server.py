"""gunicorn, embedded: `ntbcare serve` and `ntbcare run` build the app inside each worker process.

gunicorn manages the processes (binding, restarts, graceful stops); each runs one uvicorn event loop
(:class:`ntbcare.server_protocol.FrontWorker`) serving :class:`ntbcare.server_front.Front`: requests are read on
the loop without a thread, ``POST /webhook`` is answered there once its group commit is done, and the Flask app
answers the rest in ``threads`` threads. One delivery writer per process groups the webhook's commits.
"""

from __future__ import annotations

from typing import Any

from gunicorn.app.base import BaseApplication

from ntbcare.app import create_app
from ntbcare.core.settings import Settings
from ntbcare.pipeline.runtime import Runtime
from ntbcare.server_front import Front
from ntbcare.server_protocol import FrontWorker


def build_front(settings: Settings, *, threads: int) -> Front:
    """The ASGI app of one server process: its own runtime (engine, writer, dispatcher) and Flask app."""
    app = create_app(settings)
    runtime: Runtime = app.extensions["ntbcare"]
    return Front(app, runtime, threads=threads, max_body_bytes=settings.webhook_max_body_bytes)


class _Server(BaseApplication):
    def __init__(self, settings: Settings, options: dict[str, Any], threads: int) -> None:
        self._settings = settings
        self._options = options
        self._threads = threads
        super().__init__()

    def load_config(self) -> None:
        for key, value in self._options.items():
            self.cfg.set(key, value)

    def load(self) -> Front:
        # Read again in the worker so every process has its own engine, threads and connections.
        return build_front(Settings.from_env(), threads=self._threads)


def serve_forever(settings: Settings, *, bind: str, workers: int, threads: int) -> None:
    options = {
        "bind": bind,
        "workers": workers,
        "worker_class": FrontWorker,
        "timeout": 30,
        "graceful_timeout": 20,
        "keepalive": 5,
        "accesslog": None,
        "loglevel": settings.log_level.lower(),
        "preload_app": False,
    }
    _Server(settings, options, threads).run()
