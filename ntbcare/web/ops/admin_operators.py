"""Placeholder."""

from __future__ import annotations

from flask import Response, make_response

from ntbcare.web.ops.blueprint import bp


@bp.get("/operators")
def operators() -> Response:
    return make_response("")
