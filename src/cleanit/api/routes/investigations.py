"""/api/v1/investigation-requests: law-enforcement requests to preserve or disclose data
(Clean IT BP10), the provider's decision and the disclosure log."""

from __future__ import annotations

from dataclasses import asdict
from datetime import datetime

from fastapi import APIRouter
from pydantic import BaseModel, Field

from cleanit.api.schemas import In
from cleanit.api.security import Caller, Ctx
from cleanit.services import investigations

router = APIRouter(tags=["investigations"])


class InvestigationIn(In):
    provider: str = Field(max_length=64, description="Slug of the hosting provider asked")
    case_id: int | None = Field(default=None, description="The provider's case, if known")
    requesting_authority: str = Field(max_length=300)
    reference: str = Field(max_length=100, description="The authority's own reference")
    kind: str = Field(description="preservation or disclosure")
    legal_basis: str = Field(max_length=10_000)
    provision: str = Field(max_length=200, examples=["Code of Criminal Procedure, Art 46bis (BE)"])
    subject: str = Field(max_length=10_000, description="The content or accounts concerned")
    scope: list[str] = Field(
        max_length=10,
        description="Data categories: content, account_metadata, ip_logs, uploader_contact, "
        "related_content",
    )
    deadline: str = Field(description="ISO 8601 date and time with a time zone")


class InvestigationDecisionIn(In):
    decision: str = Field(description="comply, partly or refuse")
    categories: list[str] | None = Field(
        default=None, max_length=10, description="partly: the part of the scope answered"
    )
    reasons: str | None = Field(default=None, max_length=10_000)


class DisclosureIn(In):
    categories: list[str] = Field(min_length=1, max_length=10)
    note: str = Field(max_length=10_000, description="What was handed over, how, to whom")


class DisclosureOut(BaseModel):
    id: int
    categories: list[str]
    note: str
    disclosed_by: str
    disclosed_at: datetime


class InvestigationOut(BaseModel):
    id: int
    provider_id: int
    authority_organisation_id: int
    case_id: int | None
    hold_id: int | None
    requesting_authority: str
    reference: str
    kind: str
    legal_basis: str
    provision: str
    subject: str
    scope: list[str]
    deadline: datetime
    status: str
    decision: str | None
    decided_categories: list[str]
    reasons: str | None
    decided_by: str | None
    decided_at: datetime | None
    created_by: str
    created_at: datetime
    disclosures: list[DisclosureOut]


def _out(r: investigations.RequestView) -> InvestigationOut:
    return InvestigationOut(**asdict(r))


@router.post(
    "/investigation-requests",
    status_code=201,
    response_model=InvestigationOut,
    summary="A competent authority asks a provider to preserve or disclose data",
)
def submit(body: InvestigationIn, ctx: Ctx, caller: Caller) -> InvestigationOut:
    raw = body.model_dump(exclude_none=True)
    return _out(investigations.submit_request(ctx, caller, raw))


@router.get(
    "/investigation-requests",
    response_model=list[InvestigationOut],
    summary="Requests addressed to your organisation, or sent by it",
)
def list_requests(ctx: Ctx, caller: Caller, status: str | None = None) -> list[InvestigationOut]:
    return [_out(r) for r in investigations.list_requests(ctx, caller, status=status)]


@router.get("/investigation-requests/{request_id}", response_model=InvestigationOut)
def get_request(request_id: int, ctx: Ctx, caller: Caller) -> InvestigationOut:
    return _out(investigations.get_request(ctx, caller, request_id))


@router.post(
    "/investigation-requests/{request_id}/decision",
    response_model=InvestigationOut,
    summary="Comply, comply in part or refuse (with reasons)",
)
def decide(
    request_id: int, body: InvestigationDecisionIn, ctx: Ctx, caller: Caller
) -> InvestigationOut:
    return _out(
        investigations.decide(
            ctx,
            caller,
            request_id,
            body.decision,
            categories=body.categories,
            reasons=body.reasons,
        )
    )


@router.post(
    "/investigation-requests/{request_id}/disclosures",
    status_code=201,
    response_model=InvestigationOut,
    summary="Log a hand-over of data (never beyond the scope or the decision)",
)
def disclose(request_id: int, body: DisclosureIn, ctx: Ctx, caller: Caller) -> InvestigationOut:
    return _out(investigations.disclose(ctx, caller, request_id, body.categories, note=body.note))
