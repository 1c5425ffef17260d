"""mail bounces: when an outbound mail came back and to whom (``ntbcare mail bounce``; status ``bounced``)

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-07 20:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("outbound_mails") as batch:
        batch.add_column(sa.Column("bounced_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("bounced_to", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("outbound_mails") as batch:
        batch.drop_column("bounced_to")
        batch.drop_column("bounced_at")
