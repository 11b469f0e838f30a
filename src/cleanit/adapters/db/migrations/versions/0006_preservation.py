"""preservation: holds of removed content (TCO Art 6), their accesses, investigation requests
and their disclosures, threat-to-life referrals; organisations get a Member State

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-03 07:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def _now() -> sa.TextClause:
    return sa.text("now()")


def upgrade() -> None:
    op.add_column("organisations", sa.Column("country", sa.String(length=2), nullable=True))
    op.create_table(
        "preservation_holds",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("provider_id", sa.Integer(), nullable=False),
        sa.Column("case_id", sa.Integer(), nullable=False),
        sa.Column("decision_id", sa.Integer(), nullable=True),
        sa.Column("content_item_id", sa.Integer(), nullable=False),
        sa.Column("removal_order_id", sa.Integer(), nullable=True),
        sa.Column("authority_org_ids", postgresql.ARRAY(sa.Integer()), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("items", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("preserved_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("extensions", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("created_by", sa.String(length=200), nullable=False),
        sa.Column("deleted_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["case_id"], ["cases.id"]),
        sa.ForeignKeyConstraint(["content_item_id"], ["content_items.id"]),
        sa.ForeignKeyConstraint(["decision_id"], ["decisions.id"]),
        sa.ForeignKeyConstraint(["provider_id"], ["organisations.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_preservation_holds_provider_id", "preservation_holds", ["provider_id"])
    op.create_index("ix_preservation_holds_case_id", "preservation_holds", ["case_id"])
    op.create_index("ix_preservation_holds_decision_id", "preservation_holds", ["decision_id"])
    op.create_index(
        "ix_preservation_holds_removal_order_id", "preservation_holds", ["removal_order_id"]
    )
    op.create_index("ix_preservation_holds_due", "preservation_holds", ["status", "expires_at"])
    op.create_table(
        "preservation_accesses",
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column("hold_id", sa.Integer(), nullable=False),
        sa.Column("actor", sa.String(length=200), nullable=False),
        sa.Column("organisation_id", sa.Integer(), nullable=True),
        sa.Column("purpose", sa.Text(), nullable=False),
        sa.Column("items", postgresql.ARRAY(sa.String(length=200)), nullable=False),
        sa.Column("accessed_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["hold_id"], ["preservation_holds.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_preservation_accesses_hold_id", "preservation_accesses", ["hold_id"])
    op.create_table(
        "investigation_requests",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("provider_id", sa.Integer(), nullable=False),
        sa.Column("authority_org_id", sa.Integer(), nullable=False),
        sa.Column("case_id", sa.Integer(), nullable=True),
        sa.Column("hold_id", sa.Integer(), nullable=True),
        sa.Column("requesting_authority", sa.String(length=300), nullable=False),
        sa.Column("reference", sa.String(length=100), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("legal_basis", sa.Text(), nullable=False),
        sa.Column("provision", sa.String(length=200), nullable=False),
        sa.Column("subject", sa.Text(), nullable=False),
        sa.Column("scope", postgresql.ARRAY(sa.String(length=32)), nullable=False),
        sa.Column("deadline", sa.DateTime(timezone=True), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("decision", sa.String(length=16), nullable=True),
        sa.Column("decided_categories", postgresql.ARRAY(sa.String(length=32)), nullable=False),
        sa.Column("reasons", sa.Text(), nullable=True),
        sa.Column("decided_by", sa.String(length=200), nullable=True),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_by", sa.String(length=200), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=_now(), nullable=False),
        sa.ForeignKeyConstraint(["authority_org_id"], ["organisations.id"]),
        sa.ForeignKeyConstraint(["case_id"], ["cases.id"]),
        sa.ForeignKeyConstraint(["hold_id"], ["preservation_holds.id"]),
        sa.ForeignKeyConstraint(["provider_id"], ["organisations.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(
        "ix_investigation_requests_provider_id", "investigation_requests", ["provider_id"]
    )
    op.create_index(
        "ix_investigation_requests_authority_org_id", "investigation_requests", ["authority_org_id"]
    )
    op.create_table(
        "investigation_disclosures",
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column("request_id", sa.Integer(), nullable=False),
        sa.Column("categories", postgresql.ARRAY(sa.String(length=32)), nullable=False),
        sa.Column("note", sa.Text(), nullable=False),
        sa.Column("disclosed_by", sa.String(length=200), nullable=False),
        sa.Column("disclosed_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["request_id"], ["investigation_requests.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(
        "ix_investigation_disclosures_request_id", "investigation_disclosures", ["request_id"]
    )
    op.create_table(
        "threat_to_life_referrals",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("case_id", sa.Integer(), nullable=False),
        sa.Column("provider_id", sa.Integer(), nullable=False),
        sa.Column("hold_id", sa.Integer(), nullable=True),
        sa.Column("member_state", sa.String(length=2), nullable=True),
        sa.Column("recipient_org_id", sa.Integer(), nullable=True),
        sa.Column("recipient", sa.String(length=320), nullable=False),
        sa.Column("reasons", sa.Text(), nullable=False),
        sa.Column("message_id", sa.Integer(), nullable=True),
        sa.Column("body_sha256", sa.String(length=64), nullable=False),
        sa.Column("referred_by", sa.String(length=200), nullable=False),
        sa.Column("referred_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["case_id"], ["cases.id"]),
        sa.ForeignKeyConstraint(["hold_id"], ["preservation_holds.id"]),
        sa.ForeignKeyConstraint(["message_id"], ["messages.id"]),
        sa.ForeignKeyConstraint(["provider_id"], ["organisations.id"]),
        sa.ForeignKeyConstraint(["recipient_org_id"], ["organisations.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_threat_to_life_referrals_case_id", "threat_to_life_referrals", ["case_id"])


def downgrade() -> None:
    op.drop_index("ix_threat_to_life_referrals_case_id", table_name="threat_to_life_referrals")
    op.drop_table("threat_to_life_referrals")
    op.drop_index("ix_investigation_disclosures_request_id", table_name="investigation_disclosures")
    op.drop_table("investigation_disclosures")
    op.drop_index("ix_investigation_requests_authority_org_id", table_name="investigation_requests")
    op.drop_index("ix_investigation_requests_provider_id", table_name="investigation_requests")
    op.drop_table("investigation_requests")
    op.drop_index("ix_preservation_accesses_hold_id", table_name="preservation_accesses")
    op.drop_table("preservation_accesses")
    op.drop_index("ix_preservation_holds_due", table_name="preservation_holds")
    op.drop_index("ix_preservation_holds_removal_order_id", table_name="preservation_holds")
    op.drop_index("ix_preservation_holds_decision_id", table_name="preservation_holds")
    op.drop_index("ix_preservation_holds_case_id", table_name="preservation_holds")
    op.drop_index("ix_preservation_holds_provider_id", table_name="preservation_holds")
    op.drop_table("preservation_holds")
    op.drop_column("organisations", "country")
