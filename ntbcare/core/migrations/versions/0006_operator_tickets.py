"""operator console: tickets, merges and notes

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-04 18:20:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
TICKET_INDEXES = (
    ("ix_tickets_status_opened", ["status", "opened_at"]),
    ("ix_tickets_agency_opened", ["agency_code", "opened_at"]),
    ("ix_tickets_channel_opened", ["channel", "opened_at"]),
    ("ix_tickets_opened_at", ["opened_at"]),
    ("ix_tickets_merged_into_id", ["merged_into_id"]),
)


def upgrade() -> None:
    # A plain column (no foreign key): SQLite cannot add one without rebuilding the tickets table.
    op.add_column("tickets", sa.Column("merged_into_id", BIG_ID, nullable=True))
    for name, columns in TICKET_INDEXES:
        op.create_index(name, "tickets", columns, unique=False)
    op.create_table(
        "ticket_notes",
        sa.Column("id", BIG_ID, autoincrement=True, nullable=False),
        sa.Column("ticket_id", BIG_ID, nullable=False),
        sa.Column("author", sa.String(length=255), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["ticket_id"], ["tickets.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_ticket_notes_ticket_id", "ticket_notes", ["ticket_id"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_ticket_notes_ticket_id", table_name="ticket_notes")
    op.drop_table("ticket_notes")
    for name, _columns in reversed(TICKET_INDEXES):
        op.drop_index(name, table_name="tickets")
    with op.batch_alter_table("tickets", schema=None) as batch_op:
        batch_op.drop_column("merged_into_id")
