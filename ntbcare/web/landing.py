"""The site's front door (``/``): a small Indonesian page that leads citizens to the public accountability
page and operators to the console's login."""

from __future__ import annotations

from flask import Blueprint, Response, make_response, render_template

bp = Blueprint("landing", __name__)


@bp.get("/")
def index() -> Response:
    return make_response(render_template("web/landing.html"))
