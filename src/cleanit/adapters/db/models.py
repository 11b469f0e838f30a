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
    # ISO country code of a competent authority (threat-to-life referrals find it by this).
    country: Mapped[str | None] = mapped_column(String(2))
    # The hosts a hosting provider serves content from (a subdomain counts): removal orders
    # may only name URLs on them.
    domains: Mapped[list[str]] = mapped_column(
        ARRAY(String(253)), default=list, server_default=sql_text("'{}'")
    )
    # DSA Art 24(5): statements of reasons go to the Transparency Database (migration 0009).
    tdb_enabled: Mapped[bool] = mapped_column(
        Boolean, default=False, server_default=sql_text("false")
    )


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


# --- preservation (TCO Art 6), investigations, threat to life (migration 0006) ------------


class PreservationHold(Base):
    """Removed content and related data kept, encrypted, for 6 months (docs/preservation.md)."""

    __tablename__ = "preservation_holds"
    __table_args__ = (Index("ix_preservation_holds_due", "status", "expires_at"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    provider_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"), index=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"), index=True)
    decision_id: Mapped[int | None] = mapped_column(ForeignKey("decisions.id"), index=True)
    content_item_id: Mapped[int] = mapped_column(ForeignKey("content_items.id"))
    # The removal order that caused the hold (no FK: the orders table is migration 0007's).
    removal_order_id: Mapped[int | None] = mapped_column(Integer, index=True)
    # Competent authorities with standing (issued the order, notified, asked, were referred
    # to): they may open the hold with a purpose and ask for its extension.
    authority_org_ids: Mapped[list[int]] = mapped_column(ARRAY(Integer), default=list)
    status: Mapped[str] = mapped_column(String(16))  # active | expired
    # Each preserved item: name, media_type, source, preserved_at and its vault BlobRef.
    items: Mapped[list[dict[str, Any]]] = mapped_column(JSONB)
    preserved_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    extensions: Mapped[list[dict[str, Any]]] = mapped_column(JSONB)
    created_by: Mapped[str] = mapped_column(String(200))
    deleted_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class PreservationAccess(Base):
    """Every read of preserved data: who, when, for what purpose, which items."""

    __tablename__ = "preservation_accesses"
    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    hold_id: Mapped[int] = mapped_column(ForeignKey("preservation_holds.id"), index=True)
    actor: Mapped[str] = mapped_column(String(200))
    organisation_id: Mapped[int | None] = mapped_column(Integer)
    purpose: Mapped[str] = mapped_column(Text)
    items: Mapped[list[str]] = mapped_column(ARRAY(String(200)))
    accessed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class InvestigationRequest(Base):
    """A law-enforcement request to preserve or disclose data, and the provider's answer."""

    __tablename__ = "investigation_requests"
    id: Mapped[int] = mapped_column(primary_key=True)
    provider_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"), index=True)
    authority_org_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"), index=True)
    case_id: Mapped[int | None] = mapped_column(ForeignKey("cases.id"))
    hold_id: Mapped[int | None] = mapped_column(ForeignKey("preservation_holds.id"))
    requesting_authority: Mapped[str] = mapped_column(String(300))
    reference: Mapped[str] = mapped_column(String(100))
    kind: Mapped[str] = mapped_column(String(16))  # domain.investigations.RequestKind
    legal_basis: Mapped[str] = mapped_column(Text)
    provision: Mapped[str] = mapped_column(String(200))
    subject: Mapped[str] = mapped_column(Text)
    scope: Mapped[list[str]] = mapped_column(ARRAY(String(32)))
    deadline: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    status: Mapped[str] = mapped_column(String(16))  # open | decided
    decision: Mapped[str | None] = mapped_column(String(16))  # RequestDecision
    decided_categories: Mapped[list[str]] = mapped_column(ARRAY(String(32)), default=list)
    reasons: Mapped[str | None] = mapped_column(Text)
    decided_by: Mapped[str | None] = mapped_column(String(200))
    decided_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_by: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=_now())


class InvestigationDisclosure(Base):
    """One hand-over of data under a decided request (always inside its scope)."""

    __tablename__ = "investigation_disclosures"
    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    request_id: Mapped[int] = mapped_column(ForeignKey("investigation_requests.id"), index=True)
    categories: Mapped[list[str]] = mapped_column(ARRAY(String(32)))
    note: Mapped[str] = mapped_column(Text)
    disclosed_by: Mapped[str] = mapped_column(String(200))
    disclosed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class ThreatToLifeReferral(Base):
    """Art 14(5): content that threatens life, sent at once to an authority or Europol."""

    __tablename__ = "threat_to_life_referrals"
    id: Mapped[int] = mapped_column(primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"), index=True)
    provider_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"))
    hold_id: Mapped[int | None] = mapped_column(ForeignKey("preservation_holds.id"))
    member_state: Mapped[str | None] = mapped_column(String(2))
    recipient_org_id: Mapped[int | None] = mapped_column(ForeignKey("organisations.id"))
    recipient: Mapped[str] = mapped_column(String(320))
    reasons: Mapped[str] = mapped_column(Text)
    message_id: Mapped[int | None] = mapped_column(ForeignKey("messages.id"))
    # SHA-256 of the message body sent: what was handed over, fixed in the audit log.
    body_sha256: Mapped[str] = mapped_column(String(64))
    referred_by: Mapped[str] = mapped_column(String(200))
    referred_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class RemovalOrder(Base):
    """A removal order (TCO Art 3) as received from a competent authority, and its progress.

    ``received_at`` is our clock at receipt and starts the hour; ``sent_at`` is what the
    authority says. ``received_body`` is the order exactly as received (canonical JSON) and
    ``receipt_hash`` its SHA-256 with ``received_at``, also written to the audit chain.
    """

    __tablename__ = "removal_orders"
    __table_args__ = (
        UniqueConstraint("authority_id", "reference"),
        Index("ix_removal_orders_provider", "provider_id", "state", "deadline_at"),
        Index("ix_removal_orders_pending", "state", "deadline_at"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    public_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), unique=True)
    authority_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"), index=True)
    provider_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"))
    reference: Mapped[str] = mapped_column(String(100))
    issuing_authority: Mapped[str] = mapped_column(String(300))
    issuing_member_state: Mapped[str] = mapped_column(String(2))
    host_member_state: Mapped[str] = mapped_column(String(2))
    cross_border: Mapped[bool] = mapped_column(Boolean)
    issued_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    sent_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    received_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    content_urls: Mapped[list[str]] = mapped_column(ARRAY(Text))
    locating_details: Mapped[str | None] = mapped_column(Text)
    reasons: Mapped[list[str]] = mapped_column(ARRAY(String(32)))
    additional_reasons: Mapped[str | None] = mapped_column(Text)
    withhold_information: Mapped[bool] = mapped_column(Boolean)
    confidentiality_days: Mapped[int | None] = mapped_column(Integer)
    contact_name: Mapped[str | None] = mapped_column(String(200))
    contact_email: Mapped[str | None] = mapped_column(String(320))
    contact_phone: Mapped[str | None] = mapped_column(String(40))
    redress_information: Mapped[str] = mapped_column(Text)
    received_body: Mapped[str] = mapped_column(Text)
    receipt_hash: Mapped[str] = mapped_column(String(64))
    state: Mapped[str] = mapped_column(String(32))
    # The deadline in force (None while an Annex III obstacle is open or once closed).
    deadline_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # The first deadline that passed without execution or an answer: recorded, never erased.
    missed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    execution_action: Mapped[str | None] = mapped_column(String(32))
    execution_requested_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    execution_requested_by: Mapped[str | None] = mapped_column(String(200))
    # When the platform confirmed the last item: the time of execution (Annex II).
    executed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    executed_in_time: Mapped[bool | None] = mapped_column(Boolean)
    automated: Mapped[bool] = mapped_column(Boolean, default=False)
    inability_reason: Mapped[str | None] = mapped_column(String(32))
    # Art 3(2): the provider's first order, and whether the authority informed it 12 h ahead.
    first_order: Mapped[bool] = mapped_column(Boolean)
    prior_info_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    emergency: Mapped[bool] = mapped_column(Boolean, default=False)
    first_order_notice_ok: Mapped[bool | None] = mapped_column(Boolean)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class RemovalOrderItem(Base):
    """One URL of an order: its content item, case, the authority's finding and our decision."""

    __tablename__ = "removal_order_items"
    order_id: Mapped[int] = mapped_column(ForeignKey("removal_orders.id"), primary_key=True)
    content_item_id: Mapped[int] = mapped_column(ForeignKey("content_items.id"), primary_key=True)
    url: Mapped[str] = mapped_column(Text)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"), index=True)
    assessment_id: Mapped[int] = mapped_column(ForeignKey("assessments.id"))
    decision_id: Mapped[int | None] = mapped_column(ForeignKey("decisions.id"), index=True)
    confirmed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    reinstated_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    reinstated_after: Mapped[str | None] = mapped_column(String(16))  # complaint | scrutiny


class RemovalOrderClockEvent(Base):
    """The order clock's history (domain.orders.OrderClock is computed from it)."""

    __tablename__ = "removal_order_clock_events"
    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("removal_orders.id"), index=True)
    kind: Mapped[str] = mapped_column(String(32))
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    actor: Mapped[str] = mapped_column(String(200))
    note: Mapped[str | None] = mapped_column(Text)


class RemovalOrderEscalation(Base):
    """A reminder sent to the provider's on-call contact; the key makes each fire once."""

    __tablename__ = "removal_order_escalations"
    __table_args__ = (UniqueConstraint("order_id", "key"),)
    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("removal_orders.id"))
    key: Mapped[str] = mapped_column(String(64))
    label: Mapped[str] = mapped_column(String(64))
    due_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    deadline_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    missed: Mapped[bool] = mapped_column(Boolean)
    sent_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    message_id: Mapped[int | None] = mapped_column(ForeignKey("messages.id"))
    # The platform webhook, when the provider has one: pending | sent | failed.
    webhook_status: Mapped[str | None] = mapped_column(String(16))
    webhook_attempts: Mapped[int] = mapped_column(Integer, default=0)
    webhook_error: Mapped[str | None] = mapped_column(Text)


class RemovalOrderReply(Base):
    """An Annex II confirmation or Annex III answer, as sent to the issuing authority."""

    __tablename__ = "removal_order_replies"
    id: Mapped[int] = mapped_column(primary_key=True)
    public_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), unique=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("removal_orders.id"), index=True)
    annex: Mapped[str] = mapped_column(String(8))  # "II" | "III"
    body: Mapped[dict[str, Any]] = mapped_column(JSONB)
    text: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class RemovalOrderScrutiny(Base):
    """Art 4: the host Member State's scrutiny of a cross-border order, and its outcome."""

    __tablename__ = "removal_order_scrutinies"
    order_id: Mapped[int] = mapped_column(ForeignKey("removal_orders.id"), primary_key=True)
    requested_by: Mapped[str] = mapped_column(String(32))
    requested_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    request_in_time: Mapped[bool] = mapped_column(Boolean)
    due_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    outcome: Mapped[str | None] = mapped_column(String(32))
    reasons: Mapped[str | None] = mapped_column(Text)
    decided_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    recorded_by: Mapped[str] = mapped_column(String(200))


class RemovalOrderHold(Base):
    """Art 11(3): the uploader is not told until ``info_due_at``; then the sweep tells them."""

    __tablename__ = "removal_order_holds"
    order_id: Mapped[int] = mapped_column(ForeignKey("removal_orders.id"), primary_key=True)
    decided_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    period_days: Mapped[int] = mapped_column(Integer)
    extension_days: Mapped[int | None] = mapped_column(Integer)
    renewed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    renewal_reasons: Mapped[str | None] = mapped_column(Text)
    info_due_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    info_sent_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class RemovalOrderPreAuthorisation(Base):
    """A provider's standing decision to execute one authority's orders on receipt."""

    __tablename__ = "removal_order_preauthorisations"
    __table_args__ = (UniqueConstraint("provider_id", "authority_id"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    provider_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"))
    authority_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"))
    action: Mapped[str] = mapped_column(String(32))  # disable_access | remove
    authorised_by: Mapped[str] = mapped_column(String(200))
    authorised_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


# --- bulk matching submissions (migration 0008) --------------------------------------------


class MatchingBatch(Base):
    """Content a platform submitted for matching in bulk; each item is matched by a job."""

    __tablename__ = "matching_batches"
    id: Mapped[int] = mapped_column(primary_key=True)
    organisation_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"), index=True)
    # Who submitted it: the items are matched as this principal (label, roles, user, token).
    submitted_by: Mapped[str] = mapped_column(String(200))
    roles: Mapped[list[str]] = mapped_column(ARRAY(String(32)))
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    token_id: Mapped[int | None] = mapped_column(ForeignKey("api_tokens.id"))
    total: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class MatchingBatchItem(Base):
    """One object of a batch: where it is, and the outcome of matching it."""

    __tablename__ = "matching_batch_items"
    __table_args__ = (
        UniqueConstraint("batch_id", "position"),
        Index("ix_matching_batch_items_status", "batch_id", "status"),
    )
    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    batch_id: Mapped[int] = mapped_column(ForeignKey("matching_batches.id"))
    position: Mapped[int] = mapped_column(Integer)  # index in the submitted list, from 0
    url: Mapped[str | None] = mapped_column(Text)  # where the content is published, as given
    storage_url: Mapped[str] = mapped_column(Text)
    content_type: Mapped[str | None] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(16))  # queued | done | failed
    md5: Mapped[str | None] = mapped_column(String(32))
    sha256: Mapped[str | None] = mapped_column(String(64))
    pdq: Mapped[str | None] = mapped_column(String(64))
    # The ContentMatchResult's matches (list of objects) and notes (list of strings).
    matches: Mapped[list[dict[str, Any]] | None] = mapped_column(JSONB)
    notes: Mapped[list[str] | None] = mapped_column(JSONB)
    case_id: Mapped[int | None] = mapped_column(ForeignKey("cases.id"))
    error_code: Mapped[str | None] = mapped_column(String(64))
    error: Mapped[str | None] = mapped_column(Text)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


# --- DSA Transparency Database submissions (migration 0009) -------------------------------


class TdbSubmission(Base):
    """One statement of reasons for the Transparency Database: queued, sent or refused.

    ``problems`` holds the reasons in plain words (ours before sending, or the TDB's) for a
    person to read; ``tdb_id``/``tdb_url`` are the TDB's uuid and permalink once stored.
    """

    __tablename__ = "tdb_submissions"
    __table_args__ = (Index("ix_tdb_submissions_status", "provider_id", "status", "id"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    decision_id: Mapped[int] = mapped_column(ForeignKey("decisions.id"), unique=True)
    provider_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"))
    puid: Mapped[str] = mapped_column(String(500), unique=True)
    payload: Mapped[dict[str, Any]] = mapped_column(JSONB)
    status: Mapped[str] = mapped_column(String(16))  # queued | submitted | rejected | skipped
    attempts: Mapped[int] = mapped_column(Integer, default=0, server_default=sql_text("0"))
    last_error: Mapped[str | None] = mapped_column(Text)
    problems: Mapped[list[dict[str, str]] | None] = mapped_column(JSONB)
    tdb_id: Mapped[str | None] = mapped_column(String(64))
    tdb_url: Mapped[str | None] = mapped_column(String(2048))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    submitted_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


# --- transparency report publications (migration 0010) -------------------------------------


class ReportPublication(Base):
    """A transparency report made public: a frozen snapshot, never recomputed."""

    __tablename__ = "report_publications"
    __table_args__ = (Index("ix_report_publications_org", "organisation_id", "published_at"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    organisation_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"))
    kind: Mapped[str] = mapped_column(String(8))  # dsa | tco
    period_label: Mapped[str] = mapped_column(String(64))
    period_start: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    period_end: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    snapshot: Mapped[dict[str, Any]] = mapped_column(JSONB)  # services.reports.report_to_dict
    published_by: Mapped[str] = mapped_column(String(200))
    published_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
