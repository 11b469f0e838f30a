"""Request and response bodies. Unknown fields are refused so typos never pass silently."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Generic, TypeVar

from pydantic import BaseModel, ConfigDict, Field, field_validator

from cleanit.domain.assessments import Finding
from cleanit.domain.complaints import ComplaintOutcome
from cleanit.domain.decisions import Action, AutomatedDecision
from cleanit.domain.notices import Category, SourceType
from cleanit.domain.roles import Role


class In(BaseModel):
    model_config = ConfigDict(extra="forbid", str_max_length=20_000)

    @field_validator("*")
    @classmethod
    def _storable(cls, value: Any) -> Any:
        """PostgreSQL text cannot hold NUL characters: refuse them here, naming the field."""
        texts = value if isinstance(value, list) else [value]
        if any(isinstance(t, str) and "\x00" in t for t in texts):
            raise ValueError("must not contain NUL characters")
        return value


T = TypeVar("T")


class Page(BaseModel, Generic[T]):
    items: list[T]
    total: int
    limit: int
    offset: int


class NoticeIn(In):
    provider: str = Field(
        description="Slug of the hosting provider the notice is addressed to",
        examples=["example-video"],
        max_length=64,
    )
    source_type: SourceType = SourceType.END_USER
    category: Category = Field(examples=[Category.RISK_FOR_PUBLIC_SECURITY])
    keywords: list[str] = Field(
        default_factory=list, max_length=20, examples=[["KEYWORD_TERRORIST_CONTENT"]]
    )
    explanation: str = Field(
        max_length=10_000, description="Why the content is illegal or against the terms"
    )
    locations: list[str] = Field(
        min_length=1, max_length=50, description="Exact URLs of the content"
    )
    jurisdiction: str = Field(default="EU", max_length=2, examples=["DE"])
    good_faith: bool = Field(description="The notice is accurate and complete (Art 16(2)(d))")
    notifier_name: str | None = Field(default=None, max_length=200)
    notifier_email: str | None = Field(default=None, max_length=320)
    anonymous: bool = False


class NoticeReceiptOut(BaseModel):
    notice_id: str
    tracking_code: str = Field(description="Keep it: it shows the outcome and lets you complain")
    received_at: str
    case_ids: list[int]
    art16_complete: bool
    acknowledgement_sent: bool


class NoticeOut(BaseModel):
    id: str
    source_type: str
    category: str
    keywords: list[str]
    explanation: str
    locations: list[str]
    jurisdiction: str
    art16_complete: bool
    received_at: datetime
    case_ids: list[int] = Field(default_factory=list)


class NoticeStatusOut(BaseModel):
    notice_id: str
    received_at: str
    status: str
    outcome: str | None
    decided_at: str | None


class CaseOut(BaseModel):
    id: int
    state: str
    priority: int
    category: str
    jurisdiction: str
    assignee_id: int | None
    opened_at: str
    updated_at: str


class AssignIn(In):
    assignee_id: int | None = Field(default=None, description="Omit to take the case yourself")


class AssessmentIn(In):
    finding: Finding
    explanation: str = Field(max_length=10_000)
    legal_provision_id: int | None = None
    terms_clause_version_id: int | None = None
    exemption_considered: bool = False


class AssessmentOut(BaseModel):
    id: int
    case_id: int
    finding: str
    status: str
    legal_provision_id: int | None
    terms_clause_version_id: int | None


class DecisionIn(In):
    action: Action
    facts: str = Field(max_length=5000, description="Facts and circumstances relied on")
    assessment_id: int | None = Field(
        default=None, description="The confirmed assessment the decision rests on"
    )
    territorial_scope: list[str] = Field(default_factory=list, max_length=40)
    justification: str | None = Field(default=None, max_length=5000)
    automated_detection: bool = False
    automated_decision: AutomatedDecision = AutomatedDecision.NOT_AUTOMATED
    duration_days: int | None = None


class DecisionOut(BaseModel):
    id: int
    case_id: int
    action: str
    ground: str | None
    status: str
    territorial_scope: list[str]
    automated_detection: bool
    automated_decision: str
    decided_by: int | None
    approved_by: int | None
    replaces_id: int | None
    justification: str | None
    in_force_at: str | None


class RejectIn(In):
    reason: str = Field(max_length=5000)


class ComplaintIn(In):
    grounds: str = Field(max_length=10_000)
    statement_id: str | None = Field(default=None, description="From the statement's link")
    code: str | None = Field(
        default=None, max_length=200, description="The secret code from the statement's link"
    )
    tracking_code: str | None = Field(
        default=None, max_length=200, description="A notifier's tracking code"
    )
    contact_email: str | None = Field(default=None, max_length=320)


class ComplaintReceiptOut(BaseModel):
    complaint_id: str
    lodged_at: str
    decision_id: int


class ComplaintDecisionIn(In):
    outcome: ComplaintOutcome
    reasons: str = Field(max_length=10_000)
    new_action: Action | None = None
    territorial_scope: list[str] = Field(default_factory=list, max_length=40)


class ComplaintOut(BaseModel):
    id: str
    decision_id: int
    case_id: int
    complainant_kind: str
    grounds: str
    status: str
    outcome: str | None
    reasons: str | None
    new_decision_id: int | None
    lodged_at: datetime
    decided_at: datetime | None


class LegalProvisionIn(In):
    jurisdiction: str = Field(max_length=2)
    instrument: str = Field(max_length=300)
    article: str = Field(max_length=100)
    title: str = Field(max_length=300)
    summary: str = Field(default="", max_length=5000)
    url: str | None = Field(default=None, max_length=2048)


class LegalProvisionOut(BaseModel):
    id: int
    jurisdiction: str
    instrument: str
    article: str
    title: str
    summary: str
    url: str | None


class TermsClauseIn(In):
    key: str = Field(max_length=64)
    title: str = Field(max_length=300)
    text: str = Field(max_length=20_000)
    in_force_from: datetime | None = None


class TermsClauseOut(BaseModel):
    id: int
    key: str
    title: str
    version_id: int
    version: int
    text: str
    in_force_from: datetime


class LoginIn(In):
    email: str = Field(max_length=320)
    password: str = Field(max_length=1000)


class TokenOut(BaseModel):
    token: str
    token_id: int
    roles: list[str]


class UserIn(In):
    email: str = Field(max_length=320)
    name: str = Field(max_length=200)
    password: str = Field(min_length=12, max_length=1000)
    roles: list[Role] = Field(min_length=1)


class UserOut(BaseModel):
    id: int
    email: str
    name: str
    roles: list[str]


class WebhookIn(In):
    url: str = Field(max_length=2048)


class WebhookOut(BaseModel):
    url: str
    secret: str = Field(description="Signs every webhook body (HMAC-SHA256); shown only now")


class PlatformActionOut(BaseModel):
    id: str
    type: str
    action: str
    content_url: str
    status: str
    payload: dict[str, Any]


class StatementOut(BaseModel):
    id: str
    decision_id: int
    statement: dict[str, Any]
    text: str


class ContentIn(In):
    url: str = Field(max_length=2048)
    uploader_ref: str | None = Field(default=None, max_length=200)
    uploader_email: str | None = Field(default=None, max_length=320)


class ContentOut(BaseModel):
    id: int
    url: str
    platform_state: str
