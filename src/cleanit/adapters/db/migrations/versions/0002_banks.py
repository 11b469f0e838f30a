"""hash banks, their entries and matches

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-29 06:15:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("CREATE SEQUENCE bank_entries_changed_seq")
    op.create_table(
        "banks",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("organisation_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("labels", postgresql.ARRAY(sa.String(length=80)), nullable=False),
        sa.Column("thresholds", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("mode", sa.String(length=16), nullable=False),
        sa.Column("category", sa.String(length=80), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("negative", sa.Boolean(), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(["organisation_id"], ["organisations.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("organisation_id", "name"),
    )
    op.create_index(op.f("ix_banks_organisation_id"), "banks", ["organisation_id"], unique=False)
    op.create_table(
        "bank_entries",
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column("bank_id", sa.Integer(), nullable=False),
        sa.Column("signal_type", sa.String(length=16), nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        sa.Column("labels", postgresql.ARRAY(sa.String(length=80)), nullable=False),
        sa.Column("source", sa.String(length=300), nullable=False),
        sa.Column("added_by", sa.String(length=200), nullable=False),
        sa.Column(
            "added_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False
        ),
        sa.Column("review_date", sa.DateTime(timezone=True), nullable=True),
        sa.Column("removed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("removed_by", sa.String(length=200), nullable=True),
        sa.Column("quarantined_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column(
            "changed_seq",
            sa.BigInteger(),
            server_default=sa.text("nextval('bank_entries_changed_seq')"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(["bank_id"], ["banks.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_bank_entries_bank", "bank_entries", ["bank_id", "id"], unique=False)
    op.create_index(
        op.f("ix_bank_entries_changed_seq"), "bank_entries", ["changed_seq"], unique=False
    )
    op.create_index(
        "ix_bank_entries_value", "bank_entries", ["value"], unique=False, postgresql_using="hash"
    )
    op.create_table(
        "matches",
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column("case_id", sa.Integer(), nullable=True),
        sa.Column("bank_id", sa.Integer(), nullable=False),
        sa.Column("entry_id", sa.BigInteger(), nullable=False),
        sa.Column("organisation_id", sa.Integer(), nullable=False),
        sa.Column("signal_type", sa.String(length=16), nullable=False),
        sa.Column("distance", sa.Integer(), nullable=False),
        sa.Column("content_sha256", sa.String(length=64), nullable=False),
        sa.Column("suppressed", sa.Boolean(), nullable=False),
        sa.Column(
            "matched_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(["bank_id"], ["banks.id"]),
        sa.ForeignKeyConstraint(["case_id"], ["cases.id"]),
        sa.ForeignKeyConstraint(["entry_id"], ["bank_entries.id"]),
        sa.ForeignKeyConstraint(["organisation_id"], ["organisations.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(op.f("ix_matches_case_id"), "matches", ["case_id"], unique=False)
    op.create_index("ix_matches_entry_time", "matches", ["entry_id", "matched_at"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_matches_entry_time", table_name="matches")
    op.drop_index(op.f("ix_matches_case_id"), table_name="matches")
    op.drop_table("matches")
    op.drop_index("ix_bank_entries_value", table_name="bank_entries", postgresql_using="hash")
    op.drop_index(op.f("ix_bank_entries_changed_seq"), table_name="bank_entries")
    op.drop_index("ix_bank_entries_bank", table_name="bank_entries")
    op.drop_table("bank_entries")
    op.drop_index(op.f("ix_banks_organisation_id"), table_name="banks")
    op.drop_table("banks")
    op.execute("DROP SEQUENCE bank_entries_changed_seq")
