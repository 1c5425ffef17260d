"""Placeholder."""

from __future__ import annotations

from flask import Response, make_response

from ntbcare.web.ops.blueprint import bp


@bp.get("/contacts")
def contacts() -> Response:
    return make_response("")


@bp.get("/contacts/<code>")
def contact(code: str) -> Response:
    return make_response(code)
