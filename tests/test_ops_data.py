"""Backups and personal data: `ntbcare backup FILE` and a restore the service reads back with every ticket intact;
raw webhook bodies emptied after RAW_RETENTION_DAYS while the normalized events stay; `ntbcare citizens forget ID`
leaves no trace of the citizen anywhere in the database but keeps their tickets, audited."""

from __future__ import annotations

import json
import shutil
from datetime import timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from sqlalchemy import MetaData, select, update

from ntbcare.cli import cli
from ntbcare.core.db import Database
from ntbcare.core.models import AuditEntry, Citizen, Delivery, DeliveryStatus, Event, Reply, Ticket
from ntbcare.pipeline.retention import purge_raw_bodies
from tests.conftest import BASE_ENV, drop_postgres_database, fresh_postgres_database

NIK = "5201140101900001"
PHONE = "081234567890"


def comment_file(directory: Path, n: int, text: str, name: str) -> str:
    value = {"from": {"id": f"75{n:014d}", "name": name}, "message": text,
             "post_id": "104000000000001_555000000000111", "comment_id": f"555000000000111_{900000000000 + n}",
             "parent_id": "104000000000001_555000000000111", "created_time": 1767225598 + n, "item": "comment",
             "verb": "add"}
    body = {"object": "page", "entry": [{"id": "104000000000001", "time": 1767225600,
                                         "changes": [{"field": "feed", "value": value}]}]}
    path = directory / f"comment-{n}.json"
    path.write_text(json.dumps(body), encoding="utf-8")
    return str(path)


def messenger_file(directory: Path, psid: str, mid: str, text: str) -> str:
    event = {"sender": {"id": psid}, "recipient": {"id": "104000000000001"}, "timestamp": 1767225600000,
             "message": {"mid": mid, "text": text}}
    body = {"object": "page", "entry": [{"id": "104000000000001", "time": 1767225600000, "messaging": [event]}]}
    path = directory / f"{mid}.json"
    path.write_text(json.dumps(body), encoding="utf-8")
    return str(path)


def invoke(env: dict[str, str], *args: str, input: str | None = None) -> Result:
    return CliRunner().invoke(cli, list(args), env=env, input=input)


def ok(env: dict[str, str], *args: str) -> Result:
    result = invoke(env, *args)
    assert result.exit_code == 0, result.output
    return result


@pytest.fixture
def env(database_url: str, tmp_path: Path) -> dict[str, str]:
    env = {**BASE_ENV, "DATABASE_URL": database_url, "REDIS_URL": "", "SMTP_URL": ""}
    ok(env, "init")
    files = [comment_file(tmp_path, 1, f"Jalan rusak parah di Gerung Lombok Barat, NIK saya {NIK}", "Lalu Ahmad Fauzi"),
             comment_file(tmp_path, 2, "Lampu jalan mati di Ampenan sudah seminggu", "Ni Made Sari"),
             messenger_file(tmp_path, "6543210987654321", "m_forget_1", f"Air PDAM tidak mengalir, hp {PHONE}")]
    ok(env, "replay", *files)
    return env


def tickets(env: dict[str, str]) -> list[dict]:
    return json.loads(ok(env, "tickets", "list", "--json", "--limit", "100").output)


def test_backup_then_restore_gives_the_same_tickets(env, tmp_path):
    before = tickets(env)
    assert len(before) == 3
    target = tmp_path / "backups" / "ntbcare-backup.db"
    target.parent.mkdir()
    if env["DATABASE_URL"].startswith("postgresql"):
        result = json.loads(ok(env, "backup", str(target), "--json").output)
        assert result["engine"] == "postgresql" and result["bytes"] > 0
        restored_url = fresh_postgres_database()
        try:
            pg_restore = shutil.which("pg_restore")
            assert pg_restore is not None
            import subprocess

            subprocess.run([pg_restore, "--no-owner", f"--dbname={restored_url}", str(target)], check=True)
            assert tickets({**env, "DATABASE_URL": restored_url}) == before
        finally:
            drop_postgres_database(restored_url)
    else:
        result = json.loads(ok(env, "backup", str(target), "--json").output)
        assert result == {"file": str(target), "engine": "sqlite", "bytes": target.stat().st_size,
                          "method": "sqlite online backup"}
        restored = tmp_path / "restored.db"  # restore: the backup file copied to a fresh place, the service on it
        shutil.copyfile(target, restored)
        assert tickets({**env, "DATABASE_URL": f"sqlite:///{restored}"}) == before
    assert target.stat().st_mode & 0o777 == 0o600
    again = invoke(env, "backup", str(target))
    assert again.exit_code == 1 and "already exists" in again.output


def test_backup_of_postgres_without_pg_dump_says_what_to_do(tmp_path):
    url = fresh_postgres_database()
    try:
        empty = tmp_path / "bin"
        empty.mkdir()
        result = invoke({**BASE_ENV, "DATABASE_URL": url, "PATH": str(empty)}, "backup", str(tmp_path / "x.dump"))
        assert result.exit_code == 1
        assert "pg_dump is not installed" in result.output and "pg_restore" in result.output
        assert not (tmp_path / "x.dump").exists()
    finally:
        drop_postgres_database(url)


def test_old_raw_bodies_are_emptied_and_the_events_stay(env, database_url):
    db = Database(database_url)
    try:
        with db.scope() as session:
            first, second, third = session.scalars(select(Delivery.id).order_by(Delivery.id)).all()
            events_before = len(session.scalars(select(Event.id)).all())
            now = session.scalar(select(Delivery.received_at).where(Delivery.id == first))
            session.execute(update(Delivery).where(Delivery.id.in_([first, second]))
                            .values(received_at=now - timedelta(days=91)))
            session.execute(update(Delivery).where(Delivery.id == second).values(status=DeliveryStatus.PENDING))
        assert purge_raw_bodies(db, 90, now=now) == 1
        assert purge_raw_bodies(db, 90, now=now) == 0  # nothing left to do
        with db.session() as session:
            bodies = dict(session.execute(select(Delivery.id, Delivery.body)).all())
            assert bodies[first] == b""
            assert bodies[second] != b"" and bodies[third] != b""  # pending, or not old enough
            assert len(session.scalars(select(Event.id)).all()) == events_before
            assert session.scalar(select(Delivery.status).where(Delivery.id == first)) == DeliveryStatus.DONE
    finally:
        db.dispose()
    assert len(tickets(env)) == 3


def every_value(db: Database) -> str:
    """Every column of every row of every table, as text: where a leftover would show."""
    metadata = MetaData()
    metadata.reflect(db.engine)
    parts = []
    with db.engine.connect() as connection:
        for table in metadata.sorted_tables:
            for row in connection.execute(table.select()):
                parts.extend(repr(value) if isinstance(value, bytes) else str(value) for value in row)
    return "\n".join(parts)


@pytest.mark.parametrize("how", ["fb_user_id", "citizen_id", "ticket_number"])
def test_forgetting_a_commenter_erases_them_everywhere_and_keeps_the_ticket(env, database_url, how):
    db = Database(database_url)
    try:
        with db.session() as session:
            citizen = session.scalars(select(Citizen).where(Citizen.display_name == "Lalu Ahmad Fauzi")).one()
            ident = {"fb_user_id": citizen.fb_user_id, "citizen_id": str(citizen.id),
                     "ticket_number": "ntb-2026-000001"}[how]
            fb_user_id = citizen.fb_user_id
        assert NIK in every_value(db) and "Lalu Ahmad Fauzi" in every_value(db)
        statuses_before = {t["number"]: (t["status"], t["channel"]) for t in tickets(env)}

        report = json.loads(ok(env, "citizens", "forget", ident, "--by", "siti", "--json").output)
        assert report["tickets"] == ["NTB-2026-000001"] and report["deliveries"] == 1 and report["messages"] == 1

        remaining = every_value(db)
        for trace in (NIK, "Lalu Ahmad Fauzi", "Lalu", fb_user_id, "555000000000111_900000000001"):
            assert trace not in remaining, trace
        assert "Ni Made Sari" in remaining and PHONE in remaining  # the others are untouched
        after = tickets(env)
        assert {t["number"]: (t["status"], t["channel"]) for t in after} == statuses_before
        [forgotten] = [t for t in after if t["number"] == "NTB-2026-000001"]
        assert forgotten["text"] == "[dihapus atas permintaan warga]"
        with db.session() as session:
            [entry] = session.scalars(select(AuditEntry).where(AuditEntry.action == "citizen_forgotten")).all()
            assert entry.actor == "operator:siti" and entry.ticket_id is not None
    finally:
        db.dispose()


def test_forgetting_by_psid_erases_the_messenger_ticket(env, database_url):
    db = Database(database_url)
    with db.scope() as session:  # an answer that belongs to no ticket, sent to that Messenger id
        session.add(Reply(key="status:m_lost", ticket=None, kind="status", channel="messenger",
                          target_id="6543210987654321", text="Nomor NTB-2026-000777 tidak ditemukan", status="sent"))
    db.dispose()
    report = json.loads(ok(env, "citizens", "forget", "6543210987654321", "--by", "siti", "--json").output)
    assert report["tickets"] == ["NTB-2026-000003"]
    db = Database(database_url)
    try:
        remaining = every_value(db)
        assert PHONE not in remaining and "6543210987654321" not in remaining and "000777" not in remaining
        assert NIK in remaining  # another citizen's ticket
        with db.session() as session:
            assert session.scalar(select(Ticket.status).where(Ticket.number == "NTB-2026-000003")) is not None
    finally:
        db.dispose()


def test_forgetting_someone_unknown_changes_nothing_and_says_so(env):
    result = invoke(env, "citizens", "forget", "999999999999999", "--by", "siti", "--yes")
    assert result.exit_code == 1 and "no citizen has the id" in result.output
    result = invoke(env, "citizens", "forget", "NTB-2026-000999", "--by", "siti", "--yes")
    assert result.exit_code == 1 and "no ticket 'NTB-2026-000999'" in result.output
    declined = invoke(env, "citizens", "forget", "6543210987654321", "--by", "siti", input="n\n")
    assert declined.exit_code == 1
    assert PHONE in json.dumps(tickets(env))
