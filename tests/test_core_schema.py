"""The migrations and the models describe one schema: what Alembic builds is what the code reads and writes.

A table or column added to a model without a migration (or a model module that no longer registers its
tables on ``Base.metadata``) shows up here as a difference, on SQLite and on PostgreSQL.
"""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect, text

from ntbcare.core.db import Database
from ntbcare.core.models import Base
from ntbcare.core.ticket_search import POSTGRES_INDEXES, SQLITE_TABLES, SQLITE_TRIGGERS, include_name

TABLES = {"agencies", "agency_answers", "agency_sign_ins", "audit_entries", "citizens", "deliveries", "events",
          "operator_sessions", "operators",
          "outbound_mails", "ratings", "replies", "reply_templates", "routing_decisions", "service_flags",
          "ticket_counters",
          "ticket_holds", "ticket_messages", "ticket_notes", "tickets",
          "api_keys", "ticket_media"}


def test_every_table_is_declared_by_a_model_and_built_by_the_migrations(db: Database) -> None:
    """Every table but the search index's (SQLite's FTS5 table and its shadow tables, revision 0012)."""
    assert set(Base.metadata.tables) == TABLES
    search = SQLITE_TABLES if db.is_sqlite else set()
    assert set(inspect(db.engine).get_table_names()) == TABLES | {"alembic_version"} | search


def test_the_search_index_is_built_beside_the_models(db: Database) -> None:
    """What revision 0012 builds outside the models is there, and nothing else is skipped by the comparison."""
    with db.engine.connect() as connection:
        if db.is_sqlite:
            triggers = set(connection.scalars(text("SELECT name FROM sqlite_master WHERE type = 'trigger'")))
            assert triggers == set(SQLITE_TRIGGERS)
        else:
            indexes = set(connection.scalars(text("SELECT indexname FROM pg_indexes WHERE indexname LIKE '%trgm'")))
            assert indexes == set(POSTGRES_INDEXES)
    assert include_name("tickets", "table", {}) and include_name("ix_tickets_status_opened", "index", {})


def test_migrated_schema_matches_the_models(db: Database) -> None:
    with db.engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True, "include_name": include_name})
        assert compare_metadata(context, Base.metadata) == []
