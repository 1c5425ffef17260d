"""What every web surface reads from the running app: the process's :class:`Runtime`.

The app factory installs one runtime per app (``install_runtime``); views ask for it with
``current_runtime()`` instead of reaching into ``current_app.extensions`` each in their own way, so a surface
built without a runtime fails with a clear message rather than a KeyError deep inside a view.
"""

from __future__ import annotations

from flask import Flask, current_app

from ntbcare.pipeline.runtime import Runtime

# The key is shared with webhooks.py, which reads it through its own accessor (it sits below the web layer).
RUNTIME_KEY = "ntbcare"


def install_runtime(app: Flask, runtime: Runtime) -> None:
    """Make ``runtime`` the one every request of ``app`` uses."""
    app.extensions[RUNTIME_KEY] = runtime


def current_runtime() -> Runtime:
    """The runtime of the app serving this request."""
    runtime = current_app.extensions.get(RUNTIME_KEY)
    if not isinstance(runtime, Runtime):
        raise RuntimeError("this app has no NTB Care runtime: build it with ntbcare.app.create_app")
    return runtime
