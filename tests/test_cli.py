"""The `ntbcare` command as an operator and a script use it."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from ntbcare.cli import cli
from tests.conftest import BASE_ENV, FIXTURES


@pytest.fixture
def env(database_url: str) -> dict[str, str]:
    return {**BASE_ENV, "DATABASE_URL": database_url, "REDIS_URL": ""}


def invoke(env, *args: str):  # type: ignore[no-untyped-def]
    result = CliRunner().invoke(cli, list(args), env=env, catch_exceptions=False)
    return result


def test_init_is_idempotent_and_seeds_the_registry(env):
    first = invoke(env, "init")
    assert first.exit_code == 0, first.output
    assert "agencies added" in first.output
    second = invoke(env, "init")
    assert second.exit_code == 0 and " 0 agencies added" in second.output


def test_commands_before_init_say_what_to_do(env):
    result = CliRunner().invoke(cli, ["tickets", "list"], env=env)
    assert result.exit_code != 0
    assert "ntbcare init" in result.output


def test_replay_then_list_and_show(env):
    assert invoke(env, "init").exit_code == 0
    files = [str(FIXTURES / f"{n}.json") for n in ("feed__comment__add", "feed__comment__reply",
                                                    "messaging__message__text", "feed__comment__add")]
    replay = invoke(env, "replay", "--json", *files)
    assert replay.exit_code == 0, replay.output
    summary = json.loads(replay.output.strip().splitlines()[-1])
    assert summary["done"] == 4 and summary["tickets_opened"] == 2

    listed = json.loads(invoke(env, "tickets", "list", "--json").output)
    assert isinstance(listed, list) and len(listed) == 2
    for ticket in listed:
        for key in ("number", "status", "channel", "text", "agency", "created_at", "facebook"):
            assert key in ticket
        assert ticket["status"] != "new"  # replay runs the whole pipeline, routing included
    comment = next(t for t in listed if t["channel"] == "comment")
    assert comment["facebook"]["comment_id"] == "555000000000111_888000000000001"
    assert comment["facebook"]["post_id"] == "104000000000001_555000000000111"
    assert sorted(comment["facebook"]["message_ids"]) == ["555000000000111_888000000000001",
                                                          "555000000000111_888000000000002"]
    messenger = next(t for t in listed if t["channel"] == "messenger")
    assert messenger["facebook"]["psid"] == "6543210987654321"

    table = invoke(env, "tickets", "list").output
    assert table.splitlines()[0].split()[:3] == ["NUMBER", "STATUS", "CHANNEL"]
    assert comment["number"] in table

    by_status = json.loads(invoke(env, "tickets", "list", "--status", comment["status"], "--json").output)
    assert comment["number"] in [t["number"] for t in by_status]
    assert json.loads(invoke(env, "tickets", "list", "--status", "closed", "--json").output) == []
    bad = CliRunner().invoke(cli, ["tickets", "list", "--status", "nonsense"], env=env)
    assert bad.exit_code != 0 and "unknown status" in bad.output

    shown = json.loads(invoke(env, "tickets", "show", comment["number"], "--json").output)
    assert shown["number"] == comment["number"]
    assert [m["kind"] for m in shown["messages"]] == ["comment", "reply"]
    assert shown["history"][0]["action"] == "opened"
    readable = invoke(env, "tickets", "show", comment["number"].lower()).output
    assert comment["number"] in readable and "history:" in readable
    missing = CliRunner().invoke(cli, ["tickets", "show", "NTB-2026-999999"], env=env)
    assert missing.exit_code != 0 and "no ticket" in missing.output


def test_deliveries_list_shows_counts_and_events(env):
    assert invoke(env, "init").exit_code == 0
    invoke(env, "replay", str(FIXTURES / "feed__reaction__add.json"))
    data = json.loads(invoke(env, "deliveries", "list", "--json").output)
    assert data["counts"] == {"done": 1}
    [event] = data["deliveries"][0]["events"]
    assert event["outcome"] == "unsupported" and event["reason"]


def test_worker_without_redis_explains_itself(env):
    result = CliRunner().invoke(cli, ["worker"], env=env)
    assert result.exit_code != 0 and "REDIS_URL" in result.output


def test_operators_edit_reply_templates(env):
    from bot.texts import render
    from ntbcare.core.db import Database

    assert invoke(env, "init").exit_code == 0
    listed = json.loads(invoke(env, "templates", "list", "--json").output)
    assert {"ack_public", "ack_messenger", "answer_public", "status"} <= {t["key"] for t in listed}
    changed = invoke(env, "templates", "set", "ack_public", "Laporan {number} diterima, terima kasih 🙏",
                     "--by", "rina")
    assert changed.exit_code == 0, changed.output
    db = Database(env["DATABASE_URL"])
    with db.session() as session:
        text = render(session, "ack_public", number="NTB-2026-000007")
    assert text == "Laporan NTB-2026-000007 diterima, terima kasih 🙏"
    bad = CliRunner().invoke(cli, ["templates", "set", "ack_public", "Halo {nama}"], env=env)
    assert bad.exit_code != 0 and "{number}" in bad.output
    assert invoke(env, "templates", "reset", "ack_public").exit_code == 0
    with db.session() as session:
        assert render(session, "ack_public", number="NTB-2026-000007").startswith("Terima kasih")
    db.dispose()
