"""/api/v1/complaints and /api/v1/statements."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.responses import PlainTextResponse

from cleanit.adapters.db.models import Complaint
from cleanit.api.schemas import (
    ComplaintDecisionIn,
    ComplaintIn,
    ComplaintOut,
    ComplaintReceiptOut,
    Page,
    StatementOut,
)
from cleanit.api.security import Caller, Ctx, MaybeCaller
from cleanit.domain.errors import InvalidInput
from cleanit.services import complaints, statements

router = APIRouter(tags=["complaints"])


@router.post(
    "/complaints",
    status_code=201,
    response_model=ComplaintReceiptOut,
    summary="Lodge a complaint (content provider or notifier; no account needed)",
)
def lodge(body: ComplaintIn, ctx: Ctx) -> ComplaintReceiptOut:
    receipt = complaints.lodge_complaint(
        ctx,
        grounds=body.grounds,
        statement_id=_uuid(body.statement_id, "statement_id"),
        code=body.code,
        tracking_code=body.tracking_code,
        contact_email=body.contact_email,
    )
    return ComplaintReceiptOut(**receipt.__dict__)


def _uuid(value: str | None, field: str) -> uuid.UUID | None:
    if value is None:
        return None
    try:
        return uuid.UUID(value)
    except ValueError:
        raise InvalidInput("not a valid identifier", field=field) from None


@router.get("/complaints", response_model=Page[ComplaintOut])
def list_complaints(
    ctx: Ctx,
    caller: Caller,
    status: str | None = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> Page[ComplaintOut]:
    rows, total = complaints.list_complaints(ctx, caller, status, limit, offset)
    return Page(items=[_out(c) for c in rows], total=total, limit=limit, offset=offset)


@router.post("/complaints/{complaint_id}/decision", response_model=ComplaintOut)
def decide(
    complaint_id: uuid.UUID, body: ComplaintDecisionIn, ctx: Ctx, caller: Caller
) -> ComplaintOut:
    c = complaints.decide_complaint(
        ctx,
        caller,
        complaint_id,
        outcome=body.outcome,
        reasons=body.reasons,
        new_action=body.new_action,
        territorial_scope=tuple(body.territorial_scope),
    )
    return _out(c)


@router.get(
    "/statements/{statement_id}",
    response_model=StatementOut,
    summary="A statement of reasons (staff, or the content provider with its code)",
)
def get_statement(
    statement_id: uuid.UUID, ctx: Ctx, caller: MaybeCaller, code: str | None = None
) -> StatementOut:
    st = statements.get_statement(ctx, caller, statement_id, code)
    return StatementOut(
        id=str(st.public_id), decision_id=st.decision_id, statement=st.body, text=st.text
    )


@router.get("/statements/{statement_id}/text", response_class=PlainTextResponse)
def get_statement_text(
    statement_id: uuid.UUID, ctx: Ctx, caller: MaybeCaller, code: str | None = None
) -> str:
    return statements.get_statement(ctx, caller, statement_id, code).text


def _out(c: Complaint) -> ComplaintOut:
    return ComplaintOut(
        id=str(c.public_id),
        decision_id=c.decision_id,
        case_id=c.case_id,
        complainant_kind=c.complainant_kind,
        grounds=c.grounds,
        status=c.status,
        outcome=c.outcome,
        reasons=c.reasons,
        new_decision_id=c.new_decision_id,
        lodged_at=c.lodged_at,
        decided_at=c.decided_at,
    )
