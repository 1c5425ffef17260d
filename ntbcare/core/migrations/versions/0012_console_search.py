"""console search: a trigram index over ticket number, text and citizen name; indexes for duplicates and overdue

SQLite gets an FTS5 table with the trigram tokenizer (substring matching, case folded), holding its own copy
of each ticket's number, text and citizen name, kept in step by triggers on ``tickets`` and ``citizens``:
deleting a row by rowid cannot go out of step, which an external-content table's "delete" (it must repeat
the indexed values exactly, and the name lives in another table) can, silently. PostgreSQL gets pg_trgm GIN
indexes, which serve ``ILIKE '%…%'`` directly (pg_trgm is a trusted extension from PostgreSQL 13: the owner
of the database may create it). Both get ``(location_code, opened_at, updated_at)`` for the review queue's
suggested duplicates (a place's pool and its fingerprint) and ``(status, deadline_at, opened_at)``, which
answers ``overdue=1`` newest first from the index.

A later migration that rebuilds ``tickets`` or ``citizens`` on SQLite (``batch_alter_table``) drops their
triggers and must create them again (``SQLITE_TRIGGERS`` below).

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-07 18:00:00
"""

from __future__ import annotations

from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None

INDEXES = (
    ("ix_tickets_location_opened_updated", ["location_code", "opened_at", "updated_at"]),
    ("ix_tickets_status_deadline_opened", ["status", "deadline_at", "opened_at"]),
)
NAME_OF = "(SELECT display_name FROM citizens WHERE id = new.citizen_id)"
SQLITE_TRIGGERS = (
    f"""CREATE TRIGGER ticket_search_insert AFTER INSERT ON tickets BEGIN
        INSERT INTO ticket_search(rowid, number, text, name) VALUES (new.id, new.number, new.text, {NAME_OF});
    END""",
    f"""CREATE TRIGGER ticket_search_update AFTER UPDATE OF number, text, citizen_id ON tickets BEGIN
        DELETE FROM ticket_search WHERE rowid = old.id;
        INSERT INTO ticket_search(rowid, number, text, name) VALUES (new.id, new.number, new.text, {NAME_OF});
    END""",
    """CREATE TRIGGER ticket_search_delete AFTER DELETE ON tickets BEGIN
        DELETE FROM ticket_search WHERE rowid = old.id;
    END""",
    """CREATE TRIGGER ticket_search_citizen_name AFTER UPDATE OF display_name ON citizens BEGIN
        UPDATE ticket_search SET name = new.display_name
        WHERE rowid IN (SELECT id FROM tickets WHERE citizen_id = new.id);
    END""",
    """CREATE TRIGGER ticket_search_citizen_delete AFTER DELETE ON citizens BEGIN
        UPDATE ticket_search SET name = NULL WHERE rowid IN (SELECT id FROM tickets WHERE citizen_id = old.id);
    END""",
)
TRIGGER_NAMES = ("ticket_search_insert", "ticket_search_update", "ticket_search_delete",
                 "ticket_search_citizen_name", "ticket_search_citizen_delete")
POSTGRES_INDEXES = (
    ("ix_tickets_text_trgm", "tickets", "text"),
    ("ix_tickets_number_trgm", "tickets", "number"),
    ("ix_citizens_display_name_trgm", "citizens", "display_name"),
)


def upgrade() -> None:
    for name, columns in INDEXES:
        op.create_index(name, "tickets", columns, unique=False)
    dialect = op.get_bind().dialect.name
    if dialect == "sqlite":
        op.execute("CREATE VIRTUAL TABLE ticket_search USING fts5(number, text, name, tokenize = 'trigram')")
        for trigger in SQLITE_TRIGGERS:
            op.execute(trigger)
        op.execute("INSERT INTO ticket_search(rowid, number, text, name) "
                   "SELECT t.id, t.number, t.text, c.display_name FROM tickets t "
                   "LEFT JOIN citizens c ON c.id = t.citizen_id")
    elif dialect == "postgresql":
        op.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
        for name, table, column in POSTGRES_INDEXES:
            op.execute(f"CREATE INDEX {name} ON {table} USING gin ({column} gin_trgm_ops)")


def downgrade() -> None:
    dialect = op.get_bind().dialect.name
    if dialect == "sqlite":
        for trigger in TRIGGER_NAMES:
            op.execute(f"DROP TRIGGER IF EXISTS {trigger}")
        op.execute("DROP TABLE IF EXISTS ticket_search")
    elif dialect == "postgresql":
        for name, _table, _column in POSTGRES_INDEXES:
            op.execute(f"DROP INDEX IF EXISTS {name}")
    for name, _columns in reversed(INDEXES):
        op.drop_index(name, table_name="tickets")
