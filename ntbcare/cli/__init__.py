"""The ``ntbcare`` command: one group per subject, each in its own module. Errors are one line on stderr that
says what to do; ``--json`` is for scripts, tables are for people."""

from __future__ import annotations

import click

from ntbcare.cli.agencies import agencies
from ntbcare.cli.apikeys import apikeys
from ntbcare.cli.backup import backup
from ntbcare.cli.citizens import citizens
from ntbcare.cli.deliveries import deliveries
from ntbcare.cli.facebook import facebook
from ntbcare.cli.mail import mail
from ntbcare.cli.media import media
from ntbcare.cli.model import classify, routing
from ntbcare.cli.operators import operators
from ntbcare.cli.replies import replies
from ntbcare.cli.report import report
from ntbcare.cli.service import init, replay, run, serve, worker
from ntbcare.cli.templates import templates
from ntbcare.cli.tickets import tickets


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def cli() -> None:
    """NTB Care: Facebook complaints to agency tickets and back."""


for command in (init, run, serve, worker, replay, tickets, deliveries, classify, routing, agencies, replies,
                templates, operators, apikeys, report, backup, citizens, facebook, media, mail):
    cli.add_command(command)


def main() -> None:
    cli(prog_name="ntbcare")
