"""auto_action banks and recently seen content for retroactive matching

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-29 06:45:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("banks", sa.Column("auto_action", sa.String(length=32), nullable=True))
    op.add_column("banks", sa.Column("auto_terms_clause_version_id", sa.Integer(), nullable=True))
    op.create_foreign_key(
        "banks_auto_terms_clause_version_id_fkey",
        "banks",
        "terms_clause_versions",
        ["auto_terms_clause_version_id"],
        ["id"],
    )
    op.add_column(
        "assessments",
        sa.Column("automated", sa.Boolean(), server_default=sa.text("false"), nullable=False),
    )
    op.create_table(
        "seen_content",
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column("organisation_id", sa.Integer(), nullable=False),
        sa.Column("url", sa.Text(), nullable=False),
        sa.Column("content_sha256", sa.String(length=64), nullable=False),
        sa.Column("signal_type", sa.String(length=16), nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        sa.Column("seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["organisation_id"], ["organisations.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("organisation_id", "url", "signal_type", "value"),
    )
    op.create_index("ix_seen_content_value", "seen_content", ["value"], postgresql_using="hash")
    op.create_index("ix_seen_content_org_time", "seen_content", ["organisation_id", "seen_at"])


def downgrade() -> None:
    op.drop_index("ix_seen_content_org_time", table_name="seen_content")
    op.drop_index("ix_seen_content_value", table_name="seen_content", postgresql_using="hash")
    op.drop_table("seen_content")
    op.drop_column("assessments", "automated")
    op.drop_constraint("banks_auto_terms_clause_version_id_fkey", "banks", type_="foreignkey")
    op.drop_column("banks", "auto_terms_clause_version_id")
    op.drop_column("banks", "auto_action")
