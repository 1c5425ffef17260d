"""Alembic environment: migrates the database named by the caller's URL (see ntbcare.core.migrate)."""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection

from ntbcare.core.db import make_engine
from ntbcare.core.models import Base
from ntbcare.core.ticket_search import include_name

config = context.config
target_metadata = Base.metadata


def _database_url() -> str:
    """The URL the caller set (ntbcare.core.migrate.alembic_config always sets one)."""
    url = config.get_main_option("sqlalchemy.url")
    if not url:
        raise RuntimeError("sqlalchemy.url is not set: migrate through ntbcare.core.migrate")
    return url


def run_migrations_offline() -> None:
    context.configure(url=_database_url(), target_metadata=target_metadata,
                      literal_binds=True, render_as_batch=True, include_name=include_name)
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    engine = make_engine(_database_url())
    with engine.connect() as conn:
        _run(conn)
    engine.dispose()


def _run(connection: Connection) -> None:
    context.configure(connection=connection, target_metadata=target_metadata, render_as_batch=True,
                      compare_type=True, include_name=include_name)
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
