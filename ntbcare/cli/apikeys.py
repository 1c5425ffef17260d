"""`ntbcare apikeys add|list|revoke`: keys for software that writes to the Open311 API (POST requests)."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

import click
from sqlalchemy import select

from ntbcare.cli.common import opened_runtime, table
from ntbcare.core.models import ApiKey
from ntbcare.pipeline.accountability.apikeys import ApiKeyError, add_key, revoke_key


def _when(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M UTC") if value is not None else "-"


@click.group()
def apikeys() -> None:
    """Open311 write keys: made once, stored hashed, revoked by name."""


@apikeys.command("add")
@click.argument("name")
def apikeys_add(name: str) -> None:
    """Make a key for the client NAME and print it once (only its hash is kept); a revoked key of NAME is
    replaced by the new one, an active one must be revoked first."""
    with opened_runtime() as runtime, runtime.db.scope() as session:
        try:
            _, key, replaced = add_key(session, name)
        except ApiKeyError as exc:
            raise click.ClickException(str(exc)) from None
    click.echo(key)
    if replaced:
        click.echo(f"the revoked key of {name} was replaced by this new key (the old one stays refused)", err=True)
    click.echo(f"key for {name} made: give it to the client now, it cannot be shown again", err=True)


@apikeys.command("list")
@click.option("--json", "as_json", is_flag=True)
def apikeys_list(as_json: bool) -> None:
    """Every key: name, first characters, when made, last used and revoked (never the key)."""
    with opened_runtime() as runtime, runtime.db.session() as session:
        rows: list[dict[str, Any]] = [{"name": k.name, "prefix": k.prefix, "created_at": _when(k.created_at),
                 "last_used_at": _when(k.last_used_at), "revoked_at": _when(k.revoked_at),
                 "active": k.revoked_at is None}
                for k in session.scalars(select(ApiKey).order_by(ApiKey.name))]
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    if not rows:
        click.echo("no API keys: `ntbcare apikeys add NAME` makes one", err=True)
        return
    click.echo(table(("NAME", "STARTS", "CREATED", "LAST USED", "REVOKED"),
                     [(r["name"], r["prefix"] + "…", r["created_at"], r["last_used_at"], r["revoked_at"])
                      for r in rows]))


@apikeys.command("revoke")
@click.argument("name")
def apikeys_revoke(name: str) -> None:
    """Stop the key of NAME from working (at once, in every web process)."""
    with opened_runtime() as runtime, runtime.db.scope() as session:
        try:
            revoke_key(session, name)
        except ApiKeyError as exc:
            raise click.ClickException(str(exc)) from None
    click.echo(f"key for {name} revoked")
