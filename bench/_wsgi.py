"""The production app plus one trivial route, served by the same gunicorn: the baseline of bench/ingest.py."""

from __future__ import annotations

from ntbcare.app import create_app

app = create_app()


@app.post("/bench/trivial")
def trivial() -> str:
    return "ok"


app.extensions["csrf"].exempt(trivial)  # a webhook-like POST, like /webhook
