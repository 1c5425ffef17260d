"""`ntbcare templates list|set|reset`: the wording of the bot's replies (Indonesian), editable by operators."""

from __future__ import annotations

import json

import click

from bot.texts import DEFAULT_TEMPLATES, template_placeholders
from ntbcare.cli.common import opened_runtime
from ntbcare.core.models import ReplyTemplate


@click.group()
def templates() -> None:
    """The wording of the bot's replies (Indonesian): defaults, and the operators' versions."""


@templates.command("list")
@click.option("--json", "as_json", is_flag=True)
def templates_list(as_json: bool) -> None:
    """Every template key with the text in use and whether operators changed it."""
    with opened_runtime() as runtime, runtime.db.session() as session:
        rows = []
        for key, default in DEFAULT_TEMPLATES.items():
            edited = session.get(ReplyTemplate, key)
            rows.append({"key": key, "text": edited.text if edited else default, "edited": edited is not None,
                         "updated_by": edited.updated_by if edited else None, "default": default})
    if as_json:
        click.echo(json.dumps(rows, ensure_ascii=False, indent=2))
        return
    for row in rows:
        click.echo(f"{row['key']}{' (diubah oleh ' + str(row['updated_by']) + ')' if row['edited'] else ''}:")
        click.echo("  " + str(row["text"]).replace("\n", "\n  "))


@templates.command("set")
@click.argument("key")
@click.argument("text")
@click.option("--by", "by", default="cli", show_default=True, help="operator name")
def templates_set(key: str, text: str, by: str) -> None:
    """Replace the wording of KEY; its placeholders (e.g. {number}) must be those of the default."""
    if key not in DEFAULT_TEMPLATES:
        raise click.ClickException(f"unknown template {key!r}; see `ntbcare templates list`")
    try:
        unknown = template_placeholders(text) - template_placeholders(DEFAULT_TEMPLATES[key])
    except ValueError as exc:
        raise click.ClickException(f"the text is not a valid template: {exc}") from None
    if unknown:
        allowed = ", ".join("{" + p + "}" for p in sorted(template_placeholders(DEFAULT_TEMPLATES[key])))
        raise click.ClickException(f"unknown placeholders {sorted(unknown)}; {key} may use {allowed}")
    with opened_runtime() as runtime, runtime.db.scope() as session:
        row = session.get(ReplyTemplate, key) or ReplyTemplate(key=key)
        row.text, row.updated_by = text, f"operator:{by}"
        session.add(row)
    click.echo(f"template {key} updated")


@templates.command("reset")
@click.argument("key")
def templates_reset(key: str) -> None:
    """Go back to the default wording of KEY."""
    with opened_runtime() as runtime, runtime.db.scope() as session:
        row = session.get(ReplyTemplate, key)
        if row is not None:
            session.delete(row)
    click.echo(f"template {key} is the default again")
