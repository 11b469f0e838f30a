"""exchanges: feeds that fill banks, with their checkpoints and reported errors

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-29 07:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "exchanges",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("organisation_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("bank_id", sa.Integer(), nullable=False),
        sa.Column("config", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("checkpoint", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.Column("last_run_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_status", sa.String(length=16), nullable=True),
        sa.Column("last_message", sa.Text(), nullable=True),
        sa.Column("records_imported", sa.BigInteger(), nullable=False),
        sa.Column("records_duplicate", sa.BigInteger(), nullable=False),
        sa.Column("records_failed", sa.BigInteger(), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(["bank_id"], ["banks.id"]),
        sa.ForeignKeyConstraint(["organisation_id"], ["organisations.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("organisation_id", "name"),
    )
    op.create_index("ix_exchanges_organisation_id", "exchanges", ["organisation_id"])
    op.create_table(
        "exchange_entries",
        sa.Column("entry_id", sa.BigInteger(), nullable=False),
        sa.Column("exchange_id", sa.Integer(), nullable=False),
        sa.Column("record_id", sa.String(length=200), nullable=False),
        sa.ForeignKeyConstraint(["entry_id"], ["bank_entries.id"]),
        sa.ForeignKeyConstraint(["exchange_id"], ["exchanges.id"]),
        sa.PrimaryKeyConstraint("entry_id"),
    )
    op.create_index("ix_exchange_entries_exchange_id", "exchange_entries", ["exchange_id"])
    op.create_table(
        "exchange_errors",
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column("exchange_id", sa.Integer(), nullable=False),
        sa.Column("position", sa.String(length=100), nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("excerpt", sa.Text(), nullable=False),
        sa.Column(
            "recorded_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(["exchange_id"], ["exchanges.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_exchange_errors_exchange_id", "exchange_errors", ["exchange_id"])


def downgrade() -> None:
    op.drop_index("ix_exchange_errors_exchange_id", table_name="exchange_errors")
    op.drop_table("exchange_errors")
    op.drop_index("ix_exchange_entries_exchange_id", table_name="exchange_entries")
    op.drop_table("exchange_entries")
    op.drop_index("ix_exchanges_organisation_id", table_name="exchanges")
    op.drop_table("exchanges")
