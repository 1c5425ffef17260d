"""The production app plus one trivial route, served by the same gunicorn: the baseline of bench/ingest.py."""

from __future__ import annotations

from ntbcare.app import create_app
from ntbcare.server_front import Front

app = create_app()


@app.post("/bench/trivial")
def trivial() -> str:
    return "ok"


app.extensions["csrf"].exempt(trivial)  # a webhook-like POST, like /webhook

# The same app as `ntbcare serve` runs it (its front on the event loop, the app in 64 threads).
front = Front(app, app.extensions["ntbcare"], threads=64, max_body_bytes=app.config["MAX_CONTENT_LENGTH"])
