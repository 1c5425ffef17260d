"""The SQLite write lock queues the writers of every process: held until the outermost holder leaves."""

from __future__ import annotations

import fcntl
import os
import threading
from pathlib import Path

from ntbcare.core.db import SQLiteWriteLock


def another_process_could_lock(path: Path) -> bool:
    """A separate open file stands for another process: flock conflicts between open files."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    finally:
        os.close(fd)
    return True


def test_the_kernel_lock_is_held_until_the_outermost_holder_leaves(tmp_path: Path) -> None:
    path = tmp_path / "ntbcare.db-writelock"
    lock = SQLiteWriteLock(path)
    with lock.held():
        assert not another_process_could_lock(path)
        with lock.held():  # a nested write (re-entrant: no deadlock)
            assert not another_process_could_lock(path)
        assert not another_process_could_lock(path)  # leaving the inner block keeps it
    assert another_process_could_lock(path)


def test_another_thread_waits_for_the_holder(tmp_path: Path) -> None:
    lock = SQLiteWriteLock(tmp_path / "ntbcare.db-writelock")
    entered = threading.Event()

    def write() -> None:
        with lock.held():
            entered.set()

    with lock.held():
        writer = threading.Thread(target=write)
        writer.start()
        assert not entered.wait(0.2)
    assert entered.wait(5)
    writer.join(5)


def test_a_long_read_never_holds_the_write_lock(db) -> None:  # type: ignore[no-untyped-def]
    """The public figures read for half a second or more; on SQLite a plain session begins IMMEDIATE and would
    keep every webhook commit waiting that long, a read session reads a snapshot while the writer commits."""
    import time

    from sqlalchemy import func, select

    from ntbcare.core.models import Agency

    with db.read_session() as reader:
        assert reader.scalar(select(func.count(Agency.code))) == 0  # the read's transaction is open from here
        started = time.monotonic()
        with db.scope() as writer:
            writer.add(Agency(code="DISHUB", name="Dinas Perhubungan", kind="opd", emails=["dishub@ntb.test"]))
        assert time.monotonic() - started < 1.0
        assert reader.in_transaction()
        assert reader.scalar(select(func.count(Agency.code))) == (0 if db.is_sqlite else 1)  # its snapshot
    with db.read_session() as later:
        assert later.scalar(select(func.count(Agency.code))) == 1
