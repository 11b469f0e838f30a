"""Tables, mapped with SQLAlchemy 2 typed declarative classes.

Enum-like columns store the domain's explicit string values as text (checked by the domain),
so adding a value never needs a database type migration.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Table,
    Text,
    UniqueConstraint,
    func,
)
from sqlalchemy import text as sql_text
from sqlalchemy.dialects.postgresql import ARRAY, JSONB, UUID
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class Base(DeclarativeBase):
    pass


def _now() -> Any:
    return func.now()


class Organisation(Base):
    __tablename__ = "organisations"
    id: Mapped[int] = mapped_column(primary_key=True)
    slug: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(32))
    contact_email: Mapped[str | None] = mapped_column(String(320))
    webhook_url: Mapped[str | None] = mapped_column(String(2048))
    webhook_secret: Mapped[str | None] = mapped_column(String(128))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=_now())


class User(Base):
    __tablename__ = "users"
    id: Mapped[int] = mapped_column(primary_key=True)
    organisation_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"), index=True)
    email: Mapped[str] = mapped_column(String(320), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    password_hash: Mapped[str] = mapped_column(String(200))
    roles: Mapped[list[str]] = mapped_column(ARRAY(String(32)))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=_now())


class ApiToken(Base):
    __tablename__ = "api_tokens"
    id: Mapped[int] = mapped_column(primary_key=True)
    organisation_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"), index=True)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    name: Mapped[str] = mapped_column(String(200))
    # SHA-256 of the token: tokens are 256-bit random, so a fast hash is safe and lets us look
    # them up by index. The token itself is shown once and never stored.
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    roles: Mapped[list[str]] = mapped_column(ARRAY(String(32)))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=_now())
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class LegalProvision(Base):
    __tablename__ = "legal_provisions"
    __table_args__ = (UniqueConstraint("jurisdiction", "instrument", "article"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    jurisdiction: Mapped[str] = mapped_column(String(8))
    instrument: Mapped[str] = mapped_column(String(300))
    article: Mapped[str] = mapped_column(String(100))
    title: Mapped[str] = mapped_column(String(300))
    summary: Mapped[str] = mapped_column(Text, default="")
    url: Mapped[str | None] = mapped_column(String(2048))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=_now())


class TermsClause(Base):
    __tablename__ = "terms_clauses"
    __table_args__ = (UniqueConstraint("organisation_id", "key"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    organisation_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"), index=True)
    key: Mapped[str] = mapped_column(String(64))
    title: Mapped[str] = mapped_column(String(300))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=_now())


class TermsClauseVersion(Base):
    __tablename__ = "terms_clause_versions"
    __table_args__ = (UniqueConstraint("clause_id", "version"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    clause_id: Mapped[int] = mapped_column(ForeignKey("terms_clauses.id"), index=True)
    version: Mapped[int] = mapped_column(Integer)
    text: Mapped[str] = mapped_column(Text)
    in_force_from: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=_now())


class ContentItem(Base):
    __tablename__ = "content_items"
    __table_args__ = (UniqueConstraint("provider_id", "canonical_url"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    provider_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"))
    url: Mapped[str] = mapped_column(String(2048))
    canonical_url: Mapped[str] = mapped_column(String(2048))
    uploader_ref: Mapped[str | None] = mapped_column(String(200))
    uploader_email: Mapped[str | None] = mapped_column(String(320))
    # What the platform last confirmed: "available" or the action in force.
    platform_state: Mapped[str] = mapped_column(String(32), default="available")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=_now())


class Case(Base):
    __tablename__ = "cases"
    __table_args__ = (
        Index("ix_cases_queue", "provider_id", "state", "priority", "opened_at"),
        Index("ix_cases_content", "content_item_id"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    provider_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"))
    content_item_id: Mapped[int] = mapped_column(ForeignKey("content_items.id"))
    state: Mapped[str] = mapped_column(String(32))
    priority: Mapped[int] = mapped_column(Integer)
    category: Mapped[str] = mapped_column(String(80))
    jurisdiction: Mapped[str] = mapped_column(String(8))
    assignee_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    opened_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=_now())
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=_now())
    closed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class Notice(Base):
    __tablename__ = "notices"
    __table_args__ = (Index("ix_notices_provider_received", "provider_id", "received_at"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    public_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), unique=True)
    # The notifier proves it is them (for status and complaints) with this secret's hash.
    tracking_secret_hash: Mapped[str] = mapped_column(String(64), index=True)
    provider_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"))
    notifier_org_id: Mapped[int | None] = mapped_column(ForeignKey("organisations.id"), index=True)
    notifier_user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    source_type: Mapped[str] = mapped_column(String(32))
    category: Mapped[str] = mapped_column(String(80))
    keywords: Mapped[list[str]] = mapped_column(ARRAY(String(80)), default=list)
    explanation: Mapped[str] = mapped_column(Text)
    locations: Mapped[list[str]] = mapped_column(ARRAY(Text))
    jurisdiction: Mapped[str] = mapped_column(String(8))
    good_faith: Mapped[bool] = mapped_column(Boolean)
    anonymous: Mapped[bool] = mapped_column(Boolean, default=False)
    art16_complete: Mapped[bool] = mapped_column(Boolean)
    notifier_name: Mapped[str | None] = mapped_column(String(200))
    notifier_email: Mapped[str | None] = mapped_column(String(320))
    received_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=_now())


class NoticeCase(Base):
    """A notice may name several locations; each location's content has its own case."""

    __tablename__ = "notice_cases"
    notice_id: Mapped[int] = mapped_column(ForeignKey("notices.id"), primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"), primary_key=True, index=True)


class IdempotencyKey(Base):
    __tablename__ = "idempotency_keys"
    scope: Mapped[str] = mapped_column(String(64), primary_key=True)
    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    request_hash: Mapped[str] = mapped_column(String(64))
    status_code: Mapped[int | None] = mapped_column(Integer)
    response: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=_now())


class Assessment(Base):
    __tablename__ = "assessments"
    id: Mapped[int] = mapped_column(primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"), index=True)
    organisation_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"))
    author_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    finding: Mapped[str] = mapped_column(String(32))
    legal_provision_id: Mapped[int | None] = mapped_column(ForeignKey("legal_provisions.id"))
    terms_clause_version_id: Mapped[int | None] = mapped_column(
        ForeignKey("terms_clause_versions.id")
    )
    explanation: Mapped[str] = mapped_column(Text)
    exemption_considered: Mapped[bool] = mapped_column(Boolean, default=False)
    status: Mapped[str] = mapped_column(String(16))
    confirmed_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=_now())
    confirmed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # True for the assessment an auto_action bank's decision rests on (authored by no one).
    automated: Mapped[bool] = mapped_column(
        Boolean, default=False, server_default=sql_text("false")
    )


class Decision(Base):
    __tablename__ = "decisions"
    id: Mapped[int] = mapped_column(primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"), index=True)
    provider_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"))
    action: Mapped[str] = mapped_column(String(32))
    ground: Mapped[str | None] = mapped_column(String(32))
    assessment_id: Mapped[int | None] = mapped_column(ForeignKey("assessments.id"))
    facts: Mapped[str] = mapped_column(Text)
    justification: Mapped[str | None] = mapped_column(Text)
    territorial_scope: Mapped[list[str]] = mapped_column(ARRAY(String(2)), default=list)
    duration_days: Mapped[int | None] = mapped_column(Integer)
    automated_detection: Mapped[bool] = mapped_column(Boolean, default=False)
    automated_decision: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(24))
    decided_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    approved_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    replaces_id: Mapped[int | None] = mapped_column(ForeignKey("decisions.id"))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=_now())
    in_force_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class Statement(Base):
    __tablename__ = "statements"
    id: Mapped[int] = mapped_column(primary_key=True)
    public_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), unique=True)
    decision_id: Mapped[int] = mapped_column(ForeignKey("decisions.id"), unique=True)
    # The content provider complains with the secret in the statement's link; we keep its hash.
    complaint_secret_hash: Mapped[str] = mapped_column(String(64))
    body: Mapped[dict[str, Any]] = mapped_column(JSONB)
    text: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=_now())


class Complaint(Base):
    __tablename__ = "complaints"
    id: Mapped[int] = mapped_column(primary_key=True)
    public_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), unique=True)
    decision_id: Mapped[int] = mapped_column(ForeignKey("decisions.id"), index=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"), index=True)
    provider_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"))
    complainant_kind: Mapped[str] = mapped_column(String(32))
    grounds: Mapped[str] = mapped_column(Text)
    contact_email: Mapped[str | None] = mapped_column(String(320))
    status: Mapped[str] = mapped_column(String(16))
    outcome: Mapped[str | None] = mapped_column(String(16))
    reasons: Mapped[str | None] = mapped_column(Text)
    handled_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    new_decision_id: Mapped[int | None] = mapped_column(ForeignKey("decisions.id"))
    lodged_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=_now())
    decided_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class PlatformAction(Base):
    """An instruction to the hosting platform; done only once the platform acknowledged it."""

    __tablename__ = "platform_actions"
    id: Mapped[int] = mapped_column(primary_key=True)
    public_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), unique=True)
    decision_id: Mapped[int] = mapped_column(ForeignKey("decisions.id"), index=True)
    provider_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"))
    content_item_id: Mapped[int] = mapped_column(ForeignKey("content_items.id"))
    kind: Mapped[str] = mapped_column(String(16))  # "restrict" | "reinstate"
    action: Mapped[str] = mapped_column(String(32))
    payload: Mapped[dict[str, Any]] = mapped_column(JSONB)
    status: Mapped[str] = mapped_column(String(16))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=_now())
    delivered_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    acknowledged_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class Message(Base):
    """The outbox: every e-mail is written here in the transaction that causes it."""

    __tablename__ = "messages"
    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(48))
    recipient: Mapped[str] = mapped_column(String(320))
    subject: Mapped[str] = mapped_column(String(300))
    body: Mapped[str] = mapped_column(Text)
    related_entity: Mapped[str | None] = mapped_column(String(32))
    related_id: Mapped[str | None] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=_now())
    sent_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class AuditEntry(Base):
    __tablename__ = "audit_log"
    seq: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    actor: Mapped[str] = mapped_column(String(200))
    organisation_id: Mapped[int | None] = mapped_column(Integer, index=True)
    action: Mapped[str] = mapped_column(String(64))
    entity: Mapped[str] = mapped_column(String(32))
    entity_id: Mapped[str] = mapped_column(String(64))
    data: Mapped[dict[str, Any]] = mapped_column(JSONB)
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))


class DemoSitePost(Base):
    """The invented demo hosting site's posts (only used by ``make run``'s demo)."""

    __tablename__ = "demo_site_posts"
    id: Mapped[int] = mapped_column(primary_key=True)
    slug: Mapped[str] = mapped_column(String(64), unique=True)
    title: Mapped[str] = mapped_column(String(200))
    body: Mapped[str] = mapped_column(Text)
    author_email: Mapped[str] = mapped_column(String(320))
    state: Mapped[str] = mapped_column(String(32), default="available")
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=_now())


class Bank(Base):
    """A hash list owned by one organisation (see docs/banks.md)."""

    __tablename__ = "banks"
    __table_args__ = (UniqueConstraint("organisation_id", "name"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    organisation_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")
    labels: Mapped[list[str]] = mapped_column(ARRAY(String(80)), default=list)
    # Largest distance that still matches, per signal type ({"pdq": 31, "md5": 0, ...}).
    thresholds: Mapped[dict[str, Any]] = mapped_column(JSONB)
    mode: Mapped[str] = mapped_column(String(16))  # "review" | "auto_action"
    category: Mapped[str] = mapped_column(String(80))
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    negative: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=_now())
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=_now())
    # For mode "auto_action": the item action a confirmed match takes, and the terms clause
    # version the automated decision cites (both None in a review bank).
    auto_action: Mapped[str | None] = mapped_column(String(32))
    auto_terms_clause_version_id: Mapped[int | None] = mapped_column(
        ForeignKey("terms_clause_versions.id")
    )


# Every change to an entry takes a new number from this sequence, so matching indexes can
# catch up with "everything changed since the number I saw last".
BANK_ENTRY_CHANGES = "bank_entries_changed_seq"


class BankEntry(Base):
    __tablename__ = "bank_entries"
    __table_args__ = (
        Index("ix_bank_entries_value", "value", postgresql_using="hash"),
        Index("ix_bank_entries_bank", "bank_id", "id"),
    )
    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    bank_id: Mapped[int] = mapped_column(ForeignKey("banks.id"))
    signal_type: Mapped[str] = mapped_column(String(16))
    value: Mapped[str] = mapped_column(Text)  # canonical form (domain.signals.normalise_hash)
    labels: Mapped[list[str]] = mapped_column(ARRAY(String(80)), default=list)
    source: Mapped[str] = mapped_column(
        String(300)
    )  # local | decision:<id> | import:<file> | exchange:<name>
    added_by: Mapped[str] = mapped_column(String(200))
    added_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=_now())
    review_date: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    removed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    removed_by: Mapped[str | None] = mapped_column(String(200))
    quarantined_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    changed_seq: Mapped[int] = mapped_column(
        BigInteger,
        server_default=sql_text(f"nextval('{BANK_ENTRY_CHANGES}')"),
        index=True,
    )


class Match(Base):
    """One piece of content matched one bank entry (evidence in the case, if one opened)."""

    __tablename__ = "matches"
    __table_args__ = (Index("ix_matches_entry_time", "entry_id", "matched_at"),)
    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    case_id: Mapped[int | None] = mapped_column(ForeignKey("cases.id"), index=True)
    bank_id: Mapped[int] = mapped_column(ForeignKey("banks.id"))
    entry_id: Mapped[int] = mapped_column(ForeignKey("bank_entries.id"))
    organisation_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"))
    signal_type: Mapped[str] = mapped_column(String(16))
    distance: Mapped[int] = mapped_column(Integer)
    content_sha256: Mapped[str] = mapped_column(String(64))
    suppressed: Mapped[bool] = mapped_column(Boolean, default=False)
    matched_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=_now())


class SeenContent(Base):
    """A signal of content matched recently (kept for retroactive matching, then purged)."""

    __tablename__ = "seen_content"
    __table_args__ = (
        UniqueConstraint("organisation_id", "url", "signal_type", "value"),
        Index("ix_seen_content_value", "value", postgresql_using="hash"),
        Index("ix_seen_content_org_time", "organisation_id", "seen_at"),
    )
    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    organisation_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"))
    url: Mapped[str] = mapped_column(Text)  # canonical form
    content_sha256: Mapped[str] = mapped_column(String(64))
    signal_type: Mapped[str] = mapped_column(String(16))
    value: Mapped[str] = mapped_column(Text)
    seen_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


def table(model: type[Base]) -> Table:
    """The Core table of a mapped class (for statements built once and run with parameters)."""
    t = model.__table__
    assert isinstance(t, Table)
    return t


class Exchange(Base):
    """A feed that fills one bank of its organisation (see docs/exchanges.md)."""

    __tablename__ = "exchanges"
    __table_args__ = (UniqueConstraint("organisation_id", "name"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    organisation_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"), index=True)
    name: Mapped[str] = mapped_column(String(100))
    kind: Mapped[str] = mapped_column(String(32))  # "file" (later "threatexchange", "tat")
    bank_id: Mapped[int] = mapped_column(ForeignKey("banks.id"))
    config: Mapped[dict[str, Any]] = mapped_column(JSONB)
    # Where the last committed batch stopped (the feed client's own format); None: the start.
    checkpoint: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    last_run_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_status: Mapped[str | None] = mapped_column(String(16))  # running | ok | failed
    last_message: Mapped[str | None] = mapped_column(Text)
    records_imported: Mapped[int] = mapped_column(BigInteger, default=0)
    records_duplicate: Mapped[int] = mapped_column(BigInteger, default=0)
    records_failed: Mapped[int] = mapped_column(BigInteger, default=0)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=_now())


class ExchangeEntry(Base):
    """Which feed record an entry came from."""

    __tablename__ = "exchange_entries"
    entry_id: Mapped[int] = mapped_column(ForeignKey("bank_entries.id"), primary_key=True)
    exchange_id: Mapped[int] = mapped_column(ForeignKey("exchanges.id"), index=True)
    record_id: Mapped[str] = mapped_column(String(200))


class ExchangeError(Base):
    """A feed record that could not be read: reported, skipped."""

    __tablename__ = "exchange_errors"
    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    exchange_id: Mapped[int] = mapped_column(ForeignKey("exchanges.id"), index=True)
    position: Mapped[str] = mapped_column(String(100))
    message: Mapped[str] = mapped_column(Text)
    excerpt: Mapped[str] = mapped_column(Text, default="")
    recorded_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=_now())


# Feed deletions find the entry a record gave by (exchange, record id).
Index("ix_exchange_entries_record", ExchangeEntry.exchange_id, ExchangeEntry.record_id)


class ExchangeOpinion(Base):
    """Our opinion on an entry an exchange gave us, and its delivery back to the exchange."""

    __tablename__ = "exchange_opinions"
    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    exchange_id: Mapped[int] = mapped_column(ForeignKey("exchanges.id"), index=True)
    entry_id: Mapped[int] = mapped_column(ForeignKey("bank_entries.id"), index=True)
    record_id: Mapped[str] = mapped_column(String(200))  # the exchange's id for the record
    opinion: Mapped[str] = mapped_column(String(32))  # domain.exchanges.Opinion
    status: Mapped[str] = mapped_column(String(16))  # pending | sent | failed
    requested_by: Mapped[str] = mapped_column(String(200))
    requested_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    sent_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # What the opinion was attached to at the exchange (e.g. ThreatExchange descriptor ids).
    sent_to: Mapped[list[str]] = mapped_column(ARRAY(String(64)), default=list)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(Text)
