"""Placeholder."""

from __future__ import annotations

from flask import Response, make_response

from ntbcare.web.ops.blueprint import bp


@bp.get("/templates")
def templates() -> Response:
    return make_response("")
