"""replies in parts (a Messenger text over 2,000 characters is several rows sent in order), and replies without a
ticket (a status answer to someone who has none)

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-07 16:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("replies") as batch:
        batch.add_column(sa.Column("follows_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
                                   nullable=True))
        batch.create_foreign_key("fk_replies_follows_id", "replies", ["follows_id"], ["id"])
        batch.create_index("ix_replies_follows_id", ["follows_id"])
        batch.alter_column("ticket_id", existing_type=sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
                           nullable=True)


def downgrade() -> None:
    op.execute("DELETE FROM replies WHERE ticket_id IS NULL")
    with op.batch_alter_table("replies") as batch:
        batch.alter_column("ticket_id", existing_type=sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
                           nullable=False)
        batch.drop_index("ix_replies_follows_id")
        batch.drop_constraint("fk_replies_follows_id", type_="foreignkey")
        batch.drop_column("follows_id")
