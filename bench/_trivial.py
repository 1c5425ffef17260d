"""The baseline a Flask user would write: one trivial route, nothing else (served by stock gunicorn gthread)."""

from __future__ import annotations

from flask import Flask

app = Flask(__name__)


@app.post("/trivial")
def trivial() -> str:
    return "ok"
