"""The migrations and the models describe one schema: what Alembic builds is what the code reads and writes.

A table or column added to a model without a migration (or a model module that no longer registers its
tables on ``Base.metadata``) shows up here as a difference, on SQLite and on PostgreSQL.
"""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect

from ntbcare.core.db import Database
from ntbcare.core.models import Base

TABLES = {"agencies", "agency_answers", "agency_sign_ins", "audit_entries", "citizens", "deliveries", "events",
          "operator_sessions", "operators",
          "outbound_mails", "ratings", "replies", "reply_templates", "routing_decisions", "service_flags",
          "ticket_counters",
          "ticket_holds", "ticket_messages", "ticket_notes", "tickets",
          "api_keys", "ticket_media"}


def test_every_table_is_declared_by_a_model_and_built_by_the_migrations(db: Database) -> None:
    assert set(Base.metadata.tables) == TABLES
    assert set(inspect(db.engine).get_table_names()) == TABLES | {"alembic_version"}


def test_migrated_schema_matches_the_models(db: Database) -> None:
    with db.engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        assert compare_metadata(context, Base.metadata) == []
