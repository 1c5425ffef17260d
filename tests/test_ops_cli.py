"""`ntbcare operators add|list|disable|set-password`: making the first supervisor and managing accounts from
the command line, with the password read from stdin (or prompted twice on a terminal)."""

from __future__ import annotations

import json
import sys
from typing import Any

import pytest
from click.testing import CliRunner, Result

from ntbcare.cli import cli
from ntbcare.pipeline import operator_accounts
from tests.conftest import BASE_ENV
from tests.ops_helpers import login


@pytest.fixture
def ntbcare(database_url: str, db: Any) -> Any:
    env = {**BASE_ENV, "DATABASE_URL": database_url, "REDIS_URL": ""}

    def run(*args: str, stdin: str | None = None) -> Result:
        return CliRunner().invoke(cli, ["operators", *args], env=env, input=stdin)

    return run


def test_the_first_supervisor_is_made_from_stdin_and_can_sign_in(ntbcare, db, client) -> None:  # type: ignore[no-untyped-def]
    result = ntbcare("add", "Kepala", "--role", "supervisor", "--name", "Kepala Bidang", stdin="kata-sandi-kepala\n")
    assert result.exit_code == 0, result.output
    assert "supervisor kepala added" in result.output
    assert login(client, "kepala", "kata-sandi-kepala").status_code == 303
    assert "Kepala Bidang" in client.get("/ops/").get_data(as_text=True)
    assert 'href="/ops/operators"' in client.get("/ops/").get_data(as_text=True)


def test_add_refuses_a_weak_password_a_bad_name_and_a_duplicate(ntbcare) -> None:  # type: ignore[no-untyped-def]
    short = ntbcare("add", "ani", stdin="pendek\n")
    assert short.exit_code == 1 and "at least 10 characters" in short.output
    same = ntbcare("add", "ani.lestari", stdin="ANI.LESTARI\n")
    assert same.exit_code == 1 and "must not be the username" in same.output
    bad = ntbcare("add", "ani lestari", stdin="kata-sandi-ani-1\n")
    assert bad.exit_code == 1 and "username" in bad.output
    assert ntbcare("add", "ani", stdin="kata-sandi-ani-1\n").exit_code == 0
    again = ntbcare("add", "ani", stdin="kata-sandi-ani-2\n")
    assert again.exit_code == 1 and "already exists" in again.output
    role = ntbcare("add", "budi", "--role", "admin", stdin="kata-sandi-budi\n")
    assert role.exit_code == 2


def test_list_shows_people_a_table_and_scripts_json(ntbcare) -> None:  # type: ignore[no-untyped-def]
    assert "no operators yet" in ntbcare("list").output
    ntbcare("add", "kepala", "--role", "supervisor", "--name", "Kepala Bidang", stdin="kata-sandi-kepala\n")
    ntbcare("add", "ani", stdin="kata-sandi-ani-1\n")
    table = ntbcare("list").output.splitlines()
    assert table[0].split() == ["USERNAME", "ROLE", "STATE", "NAME"]
    assert table[1].split() == ["ani", "operator", "active"]
    assert table[2].split() == ["kepala", "supervisor", "active", "Kepala", "Bidang"]
    rows = json.loads(ntbcare("list", "--json").output)
    assert [(r["username"], r["role"], r["disabled"]) for r in rows] == [("ani", "operator", False),
                                                                         ("kepala", "supervisor", False)]
    assert all("password" not in key for row in rows for key in row)


def test_disable_ends_sessions_and_set_password_replaces_the_password(ntbcare, client) -> None:  # type: ignore[no-untyped-def]
    ntbcare("add", "ani", stdin="kata-sandi-ani-1\n")
    login(client, "ani", "kata-sandi-ani-1")
    changed = ntbcare("set-password", "ani", stdin="sandi-baru-ani-2\n")
    assert changed.exit_code == 0 and "sessions are ended" in changed.output
    assert client.get("/ops/").status_code == 303
    assert login(client, "ani", "kata-sandi-ani-1").status_code == 401
    assert login(client, "ani", "sandi-baru-ani-2").status_code == 303
    assert ntbcare("set-password", "ani", stdin="pendek\n").exit_code == 1
    disabled = ntbcare("disable", "ani")
    assert disabled.exit_code == 0 and "ani disabled" in disabled.output
    assert client.get("/ops/").status_code == 303
    assert json.loads(ntbcare("list", "--json").output)[0]["disabled"] is True
    missing = ntbcare("disable", "nobody")
    assert missing.exit_code == 1 and "ntbcare operators list" in missing.output
    assert ntbcare("set-password", "nobody", stdin="kata-sandi-baru\n").exit_code == 1


def test_on_a_terminal_the_password_is_asked_twice(ntbcare, db, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setattr(sys.modules["ntbcare.cli.operators"], "stdin_is_terminal", lambda: True)
    mismatch = ntbcare("add", "ani", stdin="kata-sandi-ani-1\nbeda-sandi-ani-1\nkata-sandi-ani-1\nkata-sandi-ani-1\n")
    assert mismatch.exit_code == 0, mismatch.output
    assert mismatch.output.count("password for ani") >= 2 and "do not match" in mismatch.output
    with db.session() as session:
        assert operator_accounts.authenticate(session, "ani", "kata-sandi-ani-1") is not None


def test_passwords_are_stored_as_argon2id_hashes_never_as_given(ntbcare, db, client) -> None:  # type: ignore[no-untyped-def]
    from sqlalchemy import select

    from ntbcare.core.models import Operator

    assert ntbcare("add", "ani", stdin="kata-sandi-ani-1\n").exit_code == 0
    assert ntbcare("set-password", "ani", stdin="kata-sandi-ani-2\n").exit_code == 0
    with db.session() as session:
        stored = session.scalar(select(Operator.password_hash).where(Operator.username == "ani"))
    assert stored.startswith("$argon2id$v=19$") and "kata-sandi-ani" not in stored
    assert login(client, "ani", "kata-sandi-ani-2").status_code == 303


def test_audit_actors_are_what_the_readme_says(ntbcare, db, client) -> None:  # type: ignore[no-untyped-def]
    """README ("Sessions"): logins are operator:<username>, a failed login is system, the CLI's account actions
    are cli."""
    from pathlib import Path

    from sqlalchemy import select

    from ntbcare.core.models import AuditEntry

    assert ntbcare("add", "ani", stdin="kata-sandi-ani-1\n").exit_code == 0
    assert login(client, "ani", "salah-sandinya-1").status_code == 401
    assert login(client, "ani", "kata-sandi-ani-1").status_code == 303
    assert ntbcare("disable", "ani").exit_code == 0
    with db.session() as session:
        actors = [(e.action, e.actor) for e in session.scalars(select(AuditEntry).order_by(AuditEntry.id))]
    assert actors == [("operator_added", "cli"), ("login_failed", "system"), ("login", "operator:ani"),
                      ("operator_disabled", "cli")]
    readme = " ".join((Path(__file__).resolve().parent.parent / "README.md").read_text(encoding="utf-8").split())
    assert "a failed login is audited as `system`" in readme
    assert "is audited as `cli`" in readme
