"""Engine and sessions. No Flask-SQLAlchemy: jobs and the CLI use the database without an app context.

SQLite runs in WAL mode with ``synchronous=FULL`` (an acknowledged delivery survives a power cut) and
``BEGIN IMMEDIATE`` transactions (writers queue on the lock instead of failing on upgrade). PostgreSQL
keeps its default synchronous commit; connections carry a short connect timeout so a dead server is
noticed in about a second rather than hanging the webhook.
"""

from __future__ import annotations

import fcntl
import os
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

from ntbcare.core.security import private_dir, private_file

SQLITE_BUSY_TIMEOUT_MS = 5000
READ_ONLY = "ntbcare_read_only"  # execution option: this transaction only reads


def make_engine(database_url: str, *, busy_timeout_ms: int = SQLITE_BUSY_TIMEOUT_MS, pool_size: int = 5) -> Engine:
    """Create an engine with the pragmas and timeouts this service relies on."""
    url = make_url(database_url)
    if url.get_backend_name() == "sqlite":
        if url.database and url.database != ":memory:" and not url.database.startswith("file:"):
            # Created here, 0600 in a 0700 folder, before SQLite creates it with the umask's mode: it holds
            # complaints and names (its -wal and -shm files take the database file's mode).
            file = Path(url.database).expanduser()
            private_dir(file.parent)
            private_file(file)
        engine = create_engine(url, hide_parameters=True,
                               connect_args={"check_same_thread": False, "timeout": busy_timeout_ms / 1000})
        _configure_sqlite(engine, busy_timeout_ms)
        return engine
    if url.get_backend_name() == "postgresql":
        if url.drivername in {"postgresql", "postgres"}:
            url = url.set(drivername="postgresql+psycopg")
        return create_engine(
            url,
            hide_parameters=True,  # errors never log complaint texts, names or raw bodies
            pool_size=pool_size,
            max_overflow=10,
            pool_pre_ping=True,
            connect_args={"connect_timeout": 2, "options": "-c synchronous_commit=on"},
        )
    return create_engine(url, hide_parameters=True)


def _configure_sqlite(engine: Engine, busy_timeout_ms: int) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: sqlite3.Connection, _record: object) -> None:
        dbapi_connection.isolation_level = None  # we issue BEGIN ourselves
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=FULL")
        cursor.execute(f"PRAGMA busy_timeout={int(busy_timeout_ms)}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        # A read-only session (Database.read_session) takes a WAL snapshot that never blocks a writer; every
        # other transaction claims the write lock up front, so two writers never deadlock upgrading.
        conn.exec_driver_sql("BEGIN" if conn.get_execution_options().get(READ_ONLY) else "BEGIN IMMEDIATE")


def make_sessionmaker(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)


@contextmanager
def session_scope(factory: sessionmaker[Session]) -> Iterator[Session]:
    """One transaction: commit on success, roll back on any exception."""
    session = factory()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


class SQLiteWriteLock:
    """Queues SQLite writers of all processes on one kernel lock.

    SQLite's own busy handler waits by sleeping in steps of up to 100 ms, so writers in several processes
    (gunicorn workers, the worker) lose most of their time sleeping while the lock is free. A blocking
    ``flock`` wakes the next writer the moment the lock is released. A thread lock orders the threads of one
    process, since ``flock`` is held per open file, not per thread.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._local = threading.RLock()
        self._depth = 0
        self._fd: int | None = None
        self._pid: int | None = None

    @contextmanager
    def held(self) -> Iterator[None]:
        """Hold the lock; re-entrant within a thread, and only the outermost holder takes the kernel lock."""
        with self._local:
            if self._depth > 0:
                self._depth += 1
                try:
                    yield
                finally:
                    self._depth -= 1
                return
            fd = self._descriptor()
            fcntl.flock(fd, fcntl.LOCK_EX)
            self._depth = 1
            try:
                yield
            finally:
                self._depth = 0
                fcntl.flock(fd, fcntl.LOCK_UN)

    def _descriptor(self) -> int:
        """This process's open lock file: a descriptor inherited through fork would share the parent's lock."""
        if self._fd is None or self._pid != os.getpid():
            self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
            self._pid = os.getpid()
        return self._fd


class Database:
    """The engine and session factory of one process, built from a URL once."""

    def __init__(self, database_url: str, **engine_options: int) -> None:
        self.url = database_url
        self.engine = make_engine(database_url, **engine_options)
        self.sessions = make_sessionmaker(self.engine)
        database = self.engine.url.database if self.is_sqlite else None
        self.write_lock = (
            SQLiteWriteLock(Path(database + "-writelock")) if database and database != ":memory:" else None
        )

    @property
    def is_sqlite(self) -> bool:
        return self.engine.dialect.name == "sqlite"

    def session(self) -> Session:
        return self.sessions()

    def read_session(self) -> Session:
        """A session for long reads (the public figures): on SQLite its transactions begin deferred, reading a
        snapshot while writers go on, instead of holding the write lock for as long as the read takes."""
        return Session(self.engine.execution_options(**{READ_ONLY: True}), expire_on_commit=False)

    @contextmanager
    def write_lock_held(self) -> Iterator[None]:
        """Hold the SQLite write lock (a no-op for PostgreSQL) around a raw write transaction."""
        if self.write_lock is None:
            yield
            return
        with self.write_lock.held():
            yield

    @contextmanager
    def scope(self) -> Iterator[Session]:
        """One write transaction (behind the SQLite write lock when there is one)."""
        if self.write_lock is None:
            with session_scope(self.sessions) as session:
                yield session
            return
        with self.write_lock.held(), session_scope(self.sessions) as session:
            yield session

    def dispose(self) -> None:
        self.engine.dispose()
