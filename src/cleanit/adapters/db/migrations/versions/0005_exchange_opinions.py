"""exchange opinions: feedback on exchange entries, sent back by a job; record id index

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-02 07:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_exchange_entries_record", "exchange_entries", ["exchange_id", "record_id"])
    op.create_table(
        "exchange_opinions",
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column("exchange_id", sa.Integer(), nullable=False),
        sa.Column("entry_id", sa.BigInteger(), nullable=False),
        sa.Column("record_id", sa.String(length=200), nullable=False),
        sa.Column("opinion", sa.String(length=32), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("requested_by", sa.String(length=200), nullable=False),
        sa.Column("requested_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("sent_to", postgresql.ARRAY(sa.String(length=64)), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(["entry_id"], ["bank_entries.id"]),
        sa.ForeignKeyConstraint(["exchange_id"], ["exchanges.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_exchange_opinions_exchange_id", "exchange_opinions", ["exchange_id"])
    op.create_index("ix_exchange_opinions_entry_id", "exchange_opinions", ["entry_id"])


def downgrade() -> None:
    op.drop_index("ix_exchange_opinions_entry_id", table_name="exchange_opinions")
    op.drop_index("ix_exchange_opinions_exchange_id", table_name="exchange_opinions")
    op.drop_table("exchange_opinions")
    op.drop_index("ix_exchange_entries_record", table_name="exchange_entries")
