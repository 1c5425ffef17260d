"""`ntbcare operators add|list|disable|set-password`: the console's accounts from the command line (the
first supervisor is made here; supervisors make the rest in the browser too).

Passwords are read from stdin when it is not a terminal (one line), else prompted twice without echo; the
policy (at least 10 characters, not the username) is the console's.
"""

from __future__ import annotations

import json
import sys

import click

from ntbcare.cli.common import opened_runtime
from ntbcare.core.models import OperatorRole
from ntbcare.pipeline import operator_accounts as accounts
from ntbcare.pipeline.operator_accounts import AccountError

ACTOR = "cli"


def stdin_is_terminal() -> bool:
    return sys.stdin.isatty()


def _read_password(username: str) -> str:
    if not stdin_is_terminal():
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = click.prompt(f"password for {username}", hide_input=True, confirmation_prompt=True)
    try:
        accounts.check_password(password, username)
    except AccountError as exc:
        raise click.ClickException(f"{exc}; choose another password") from None
    return password


@click.group()
def operators() -> None:
    """Accounts of the operator console (/ops)."""


@operators.command("add")
@click.argument("username")
@click.option("--role", type=click.Choice(OperatorRole.ALL), default=OperatorRole.OPERATOR, show_default=True)
@click.option("--name", default="", help="the person's full name, shown in the console")
def operators_add(username: str, role: str, name: str) -> None:
    """Create an operator; the password comes from stdin or a prompt."""
    try:
        username = accounts.check_username(username)
    except AccountError as exc:
        raise click.ClickException(str(exc)) from None
    password = _read_password(username)
    with opened_runtime() as runtime, runtime.db.scope() as session:
        try:
            accounts.add(session, username, password, role=role, name=name, actor=ACTOR)
        except AccountError as exc:
            raise click.ClickException(str(exc)) from None
    click.echo(f"{role} {username} added; sign in at /ops/login")


@operators.command("list")
@click.option("--json", "as_json", is_flag=True, help="print a JSON array")
def operators_list(as_json: bool) -> None:
    """Every account with its role and whether it is disabled."""
    with opened_runtime() as runtime, runtime.db.session() as session:
        rows = [{"username": o.username, "name": o.name, "role": o.role, "disabled": o.disabled,
                 "created_at": o.created_at.isoformat()} for o in accounts.list_all(session)]
    if as_json:
        click.echo(json.dumps(rows, ensure_ascii=False, indent=2))
        return
    if not rows:
        click.echo("no operators yet: `ntbcare operators add USERNAME --role supervisor`")
        return
    click.echo(f"{'USERNAME':<24} {'ROLE':<11} {'STATE':<9} NAME")
    for row in rows:
        state = "disabled" if row["disabled"] else "active"
        click.echo(f"{row['username']:<24} {row['role']:<11} {state:<9} {row['name']}")


@operators.command("disable")
@click.argument("username")
def operators_disable(username: str) -> None:
    """Disable an account and end its sessions at once."""
    with opened_runtime() as runtime, runtime.db.scope() as session:
        try:
            operator = accounts.disable(session, username, actor=ACTOR)
        except AccountError as exc:
            raise click.ClickException(str(exc)) from None
    click.echo(f"{operator.username} disabled; their sessions are ended")


@operators.command("set-password")
@click.argument("username")
def operators_set_password(username: str) -> None:
    """Replace an account's password (stdin or prompt); its sessions are ended."""
    with opened_runtime() as runtime:
        with runtime.db.session() as session:
            if accounts.find(session, username) is None:
                raise click.ClickException(f"operator {username} not found: see `ntbcare operators list`")
        password = _read_password(accounts.normalize_username(username))
        with runtime.db.scope() as session:
            try:
                accounts.set_password(session, username, password, actor=ACTOR)
            except AccountError as exc:
                raise click.ClickException(str(exc)) from None
    click.echo(f"password of {accounts.normalize_username(username)} replaced; their sessions are ended")
