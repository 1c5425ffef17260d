"""agency sign-in links; mails about no single ticket; actors that name a person's e-mail address

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-04 15:55:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "agency_sign_ins",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("email", sa.String(length=255), nullable=False),
        sa.Column("agency_codes", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("used_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("token_hash"),
    )
    with op.batch_alter_table("agency_sign_ins", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_agency_sign_ins_email"), ["email"], unique=False)
    with op.batch_alter_table("outbound_mails", schema=None) as batch_op:
        batch_op.alter_column("ticket_id", existing_type=sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
                              nullable=True)
    for table in ("audit_entries", "routing_decisions"):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.alter_column("actor", existing_type=sa.String(length=64), type_=sa.String(length=255),
                                  existing_nullable=False)


def downgrade() -> None:
    for table in ("audit_entries", "routing_decisions"):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.alter_column("actor", existing_type=sa.String(length=255), type_=sa.String(length=64),
                                  existing_nullable=False)
    with op.batch_alter_table("outbound_mails", schema=None) as batch_op:
        batch_op.alter_column("ticket_id", existing_type=sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
                              nullable=False)
    with op.batch_alter_table("agency_sign_ins", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_agency_sign_ins_email"))
    op.drop_table("agency_sign_ins")
