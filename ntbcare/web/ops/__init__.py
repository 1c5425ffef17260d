"""The operator console (``/ops``): Diskominfotik's operators sign in, see what needs a person and work
tickets; supervisors also manage operators, agency contacts and the bot's templates.

The blueprint lives in :mod:`ntbcare.web.ops.blueprint`; each view module registers its routes on it, and is
imported here, in ``VIEWS``, so registering the blueprint brings every page with it.
"""

from __future__ import annotations

from importlib import import_module

from ntbcare.web.ops.blueprint import ERRORS, bp

# One line per view module of the console.
VIEWS = (
    "ntbcare.web.ops.login",
    "ntbcare.web.ops.dashboard",
    "ntbcare.web.ops.overdue",
    "ntbcare.web.ops.reports",
    "ntbcare.web.ops.admin_operators",
    "ntbcare.web.ops.admin_contacts",
    "ntbcare.web.ops.admin_templates",
    "ntbcare.web.ops.tickets",
    "ntbcare.web.ops.ticket_actions",
)

for _module in VIEWS:
    import_module(_module)

__all__ = ["ERRORS", "VIEWS", "bp"]
