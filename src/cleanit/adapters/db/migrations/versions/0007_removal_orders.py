"""removal orders (TCO Art 3): orders, their items, clock, escalations, Annex II/III replies,
Art 4 scrutiny, Art 11 holds, pre-authorised execution; organisations get their domains

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-04 07:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def _ts(name: str, nullable: bool = False) -> sa.Column[object]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.add_column(
        "organisations",
        sa.Column(
            "domains",
            postgresql.ARRAY(sa.String(length=253)),
            server_default=sa.text("'{}'"),
            nullable=False,
        ),
    )
    op.create_table(
        "removal_orders",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("public_id", sa.UUID(), nullable=False),
        sa.Column("authority_id", sa.Integer(), nullable=False),
        sa.Column("provider_id", sa.Integer(), nullable=False),
        sa.Column("reference", sa.String(length=100), nullable=False),
        sa.Column("issuing_authority", sa.String(length=300), nullable=False),
        sa.Column("issuing_member_state", sa.String(length=2), nullable=False),
        sa.Column("host_member_state", sa.String(length=2), nullable=False),
        sa.Column("cross_border", sa.Boolean(), nullable=False),
        _ts("issued_at"),
        _ts("sent_at", True),
        _ts("received_at"),
        sa.Column("content_urls", postgresql.ARRAY(sa.Text()), nullable=False),
        sa.Column("locating_details", sa.Text(), nullable=True),
        sa.Column("reasons", postgresql.ARRAY(sa.String(length=32)), nullable=False),
        sa.Column("additional_reasons", sa.Text(), nullable=True),
        sa.Column("withhold_information", sa.Boolean(), nullable=False),
        sa.Column("confidentiality_days", sa.Integer(), nullable=True),
        sa.Column("contact_name", sa.String(length=200), nullable=True),
        sa.Column("contact_email", sa.String(length=320), nullable=True),
        sa.Column("contact_phone", sa.String(length=40), nullable=True),
        sa.Column("redress_information", sa.Text(), nullable=False),
        sa.Column("received_body", sa.Text(), nullable=False),
        sa.Column("receipt_hash", sa.String(length=64), nullable=False),
        sa.Column("state", sa.String(length=32), nullable=False),
        _ts("deadline_at", True),
        _ts("missed_at", True),
        sa.Column("execution_action", sa.String(length=32), nullable=True),
        _ts("execution_requested_at", True),
        sa.Column("execution_requested_by", sa.String(length=200), nullable=True),
        _ts("executed_at", True),
        sa.Column("executed_in_time", sa.Boolean(), nullable=True),
        sa.Column("automated", sa.Boolean(), nullable=False),
        sa.Column("inability_reason", sa.String(length=32), nullable=True),
        sa.Column("first_order", sa.Boolean(), nullable=False),
        _ts("prior_info_at", True),
        sa.Column("emergency", sa.Boolean(), nullable=False),
        sa.Column("first_order_notice_ok", sa.Boolean(), nullable=True),
        _ts("updated_at"),
        sa.ForeignKeyConstraint(["authority_id"], ["organisations.id"]),
        sa.ForeignKeyConstraint(["provider_id"], ["organisations.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("public_id"),
        sa.UniqueConstraint("authority_id", "reference"),
    )
    op.create_index("ix_removal_orders_authority_id", "removal_orders", ["authority_id"])
    op.create_index(
        "ix_removal_orders_provider", "removal_orders", ["provider_id", "state", "deadline_at"]
    )
    op.create_index("ix_removal_orders_pending", "removal_orders", ["state", "deadline_at"])
    op.create_table(
        "removal_order_items",
        sa.Column("order_id", sa.Integer(), nullable=False),
        sa.Column("content_item_id", sa.Integer(), nullable=False),
        sa.Column("url", sa.Text(), nullable=False),
        sa.Column("case_id", sa.Integer(), nullable=False),
        sa.Column("assessment_id", sa.Integer(), nullable=False),
        sa.Column("decision_id", sa.Integer(), nullable=True),
        _ts("confirmed_at", True),
        _ts("reinstated_at", True),
        sa.Column("reinstated_after", sa.String(length=16), nullable=True),
        sa.ForeignKeyConstraint(["order_id"], ["removal_orders.id"]),
        sa.ForeignKeyConstraint(["content_item_id"], ["content_items.id"]),
        sa.ForeignKeyConstraint(["case_id"], ["cases.id"]),
        sa.ForeignKeyConstraint(["assessment_id"], ["assessments.id"]),
        sa.ForeignKeyConstraint(["decision_id"], ["decisions.id"]),
        sa.PrimaryKeyConstraint("order_id", "content_item_id"),
    )
    op.create_index("ix_removal_order_items_case_id", "removal_order_items", ["case_id"])
    op.create_index("ix_removal_order_items_decision_id", "removal_order_items", ["decision_id"])
    op.create_table(
        "removal_order_clock_events",
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column("order_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        _ts("at"),
        sa.Column("actor", sa.String(length=200), nullable=False),
        sa.Column("note", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(["order_id"], ["removal_orders.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(
        "ix_removal_order_clock_events_order_id", "removal_order_clock_events", ["order_id"]
    )
    op.create_table(
        "removal_order_escalations",
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column("order_id", sa.Integer(), nullable=False),
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("label", sa.String(length=64), nullable=False),
        _ts("due_at"),
        _ts("deadline_at"),
        sa.Column("missed", sa.Boolean(), nullable=False),
        _ts("sent_at"),
        sa.Column("message_id", sa.Integer(), nullable=True),
        sa.Column("webhook_status", sa.String(length=16), nullable=True),
        sa.Column("webhook_attempts", sa.Integer(), nullable=False),
        sa.Column("webhook_error", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(["order_id"], ["removal_orders.id"]),
        sa.ForeignKeyConstraint(["message_id"], ["messages.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("order_id", "key"),
    )
    op.create_table(
        "removal_order_replies",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("public_id", sa.UUID(), nullable=False),
        sa.Column("order_id", sa.Integer(), nullable=False),
        sa.Column("annex", sa.String(length=8), nullable=False),
        sa.Column("body", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        _ts("created_at"),
        sa.ForeignKeyConstraint(["order_id"], ["removal_orders.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("public_id"),
    )
    op.create_index("ix_removal_order_replies_order_id", "removal_order_replies", ["order_id"])
    op.create_table(
        "removal_order_scrutinies",
        sa.Column("order_id", sa.Integer(), nullable=False),
        sa.Column("requested_by", sa.String(length=32), nullable=False),
        _ts("requested_at"),
        sa.Column("request_in_time", sa.Boolean(), nullable=False),
        _ts("due_at"),
        sa.Column("outcome", sa.String(length=32), nullable=True),
        sa.Column("reasons", sa.Text(), nullable=True),
        _ts("decided_at", True),
        sa.Column("recorded_by", sa.String(length=200), nullable=False),
        sa.ForeignKeyConstraint(["order_id"], ["removal_orders.id"]),
        sa.PrimaryKeyConstraint("order_id"),
    )
    op.create_table(
        "removal_order_holds",
        sa.Column("order_id", sa.Integer(), nullable=False),
        _ts("decided_at"),
        sa.Column("period_days", sa.Integer(), nullable=False),
        sa.Column("extension_days", sa.Integer(), nullable=True),
        _ts("renewed_at", True),
        sa.Column("renewal_reasons", sa.Text(), nullable=True),
        _ts("info_due_at"),
        _ts("info_sent_at", True),
        sa.ForeignKeyConstraint(["order_id"], ["removal_orders.id"]),
        sa.PrimaryKeyConstraint("order_id"),
    )
    op.create_index("ix_removal_order_holds_info_due_at", "removal_order_holds", ["info_due_at"])
    op.create_table(
        "removal_order_preauthorisations",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("provider_id", sa.Integer(), nullable=False),
        sa.Column("authority_id", sa.Integer(), nullable=False),
        sa.Column("action", sa.String(length=32), nullable=False),
        sa.Column("authorised_by", sa.String(length=200), nullable=False),
        _ts("authorised_at"),
        _ts("revoked_at", True),
        sa.ForeignKeyConstraint(["provider_id"], ["organisations.id"]),
        sa.ForeignKeyConstraint(["authority_id"], ["organisations.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("provider_id", "authority_id"),
    )


def downgrade() -> None:
    op.drop_table("removal_order_preauthorisations")
    op.drop_index("ix_removal_order_holds_info_due_at", table_name="removal_order_holds")
    op.drop_table("removal_order_holds")
    op.drop_table("removal_order_scrutinies")
    op.drop_index("ix_removal_order_replies_order_id", table_name="removal_order_replies")
    op.drop_table("removal_order_replies")
    op.drop_table("removal_order_escalations")
    op.drop_index("ix_removal_order_clock_events_order_id", table_name="removal_order_clock_events")
    op.drop_table("removal_order_clock_events")
    op.drop_index("ix_removal_order_items_decision_id", table_name="removal_order_items")
    op.drop_index("ix_removal_order_items_case_id", table_name="removal_order_items")
    op.drop_table("removal_order_items")
    op.drop_index("ix_removal_orders_pending", table_name="removal_orders")
    op.drop_index("ix_removal_orders_provider", table_name="removal_orders")
    op.drop_index("ix_removal_orders_authority_id", table_name="removal_orders")
    op.drop_table("removal_orders")
    op.drop_column("organisations", "domains")
