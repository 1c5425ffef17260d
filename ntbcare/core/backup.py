"""Backups of the database while the service runs.

SQLite: the online backup API copies the database page by page into a new file (mode 0600: it holds personal
data) while writers keep going; a page changed meanwhile makes SQLite copy again, so the file is always one
consistent state. The copy is then checked with ``PRAGMA integrity_check``. Restoring is copying that file back
to DATABASE_URL's path with the service stopped (or pointing DATABASE_URL at it).

PostgreSQL: ``pg_dump --format=custom`` when it is installed (the password goes through PGPASSWORD, never the
command line); restore with ``pg_restore --clean --if-exists --no-owner --dbname=...``. Without pg_dump the
command says how to take one and fails, so a cron job never believes a backup was made.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.engine import make_url

from ntbcare.core.security import private_file

PAGES_PER_STEP = 256


class BackupError(RuntimeError):
    """The backup was not made; the message says what to do."""


@dataclass(frozen=True)
class BackupResult:
    path: str
    engine: str
    bytes: int
    method: str


def sqlite_path(database_url: str) -> Path | None:
    url = make_url(database_url)
    if url.get_backend_name() != "sqlite":
        return None
    if not url.database or url.database == ":memory:":
        raise BackupError("DATABASE_URL names an in-memory SQLite database: there is nothing to back up")
    return Path(url.database)


def backup_database(database_url: str, destination: Path,
                    progress: Callable[[int, int], None] | None = None) -> BackupResult:
    """Back up the database at ``database_url`` into the new file ``destination``."""
    if destination.exists():
        raise BackupError(f"{destination} already exists: choose a new file name (a backup never overwrites)")
    source = sqlite_path(database_url)
    if source is not None:
        return _backup_sqlite(source, destination, progress)
    return _backup_postgres(database_url, destination)


def _backup_sqlite(source: Path, destination: Path, progress: Callable[[int, int], None] | None) -> BackupResult:
    if not source.is_file():
        raise BackupError(f"no SQLite database at {source}: check DATABASE_URL")
    private_file(destination)
    try:
        with sqlite3.connect(f"file:{source}?mode=ro", uri=True) as src, sqlite3.connect(destination) as dst:
            src.backup(dst, pages=PAGES_PER_STEP,
                       progress=(lambda _status, remaining, total: progress(total - remaining, total))
                       if progress else None)
            verdict = dst.execute("PRAGMA integrity_check").fetchone()
        if verdict is None or verdict[0] != "ok":
            raise BackupError(f"the copy at {destination} failed its integrity check: {verdict}")
    except (sqlite3.Error, BackupError) as exc:
        destination.unlink(missing_ok=True)
        raise BackupError(f"backup failed: {exc}") from None
    return BackupResult(str(destination), "sqlite", destination.stat().st_size, "sqlite online backup")


def pg_dump_guidance(destination: Path) -> str:
    return (f"pg_dump is not installed: install the PostgreSQL client (apt install postgresql-client) and run "
            f"`ntbcare backup {destination}` again, or run `pg_dump --format=custom --file={destination} "
            f"<DATABASE_URL>` yourself; restore with `pg_restore --clean --if-exists --no-owner --dbname=<url> FILE`")


def _backup_postgres(database_url: str, destination: Path) -> BackupResult:
    pg_dump = shutil.which("pg_dump")
    if pg_dump is None:
        raise BackupError(pg_dump_guidance(destination))
    url = make_url(database_url)
    env = dict(os.environ)  # the client's own variables (PGSSLMODE...) still apply
    if url.password:
        env["PGPASSWORD"] = str(url.password)
    plain = url.set(drivername="postgresql", password=None).render_as_string(hide_password=False)
    private_file(destination)
    completed = subprocess.run([pg_dump, "--format=custom", f"--file={destination}", f"--dbname={plain}"],
                               env=env, capture_output=True, text=True, check=False)
    if completed.returncode != 0:
        destination.unlink(missing_ok=True)
        detail = (completed.stderr or "").strip().splitlines()
        raise BackupError(f"pg_dump failed: {detail[-1] if detail else completed.returncode}")
    return BackupResult(str(destination), "postgresql", destination.stat().st_size, "pg_dump --format=custom")
