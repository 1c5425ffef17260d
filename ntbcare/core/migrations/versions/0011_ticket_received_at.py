"""tickets.received_at: when the ticket's first delivery reached us; deadlines count from it, not from the
payload's own clock (``opened_at`` stays the citizen's time, for display)

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-07 17:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("tickets") as batch:
        batch.add_column(sa.Column("received_at", sa.DateTime(timezone=True), nullable=True))
    # Existing tickets: the receipt of the earliest delivery that touched them, else when the row was written.
    op.execute(
        "UPDATE tickets SET received_at = COALESCE((SELECT MIN(d.received_at) FROM events e"
        " JOIN deliveries d ON d.id = e.delivery_id WHERE e.ticket_id = tickets.id), created_at)"
    )
    with op.batch_alter_table("tickets") as batch:
        batch.alter_column("received_at", existing_type=sa.DateTime(timezone=True), nullable=False)


def downgrade() -> None:
    with op.batch_alter_table("tickets") as batch:
        batch.drop_column("received_at")
