"""/api/v1/cases — the queue, a case's record, assignment, assessments and decisions."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from cleanit.adapters.db.models import Assessment
from cleanit.api.schemas import (
    AssessmentIn,
    AssessmentOut,
    AssignIn,
    CaseOut,
    DecisionIn,
    DecisionOut,
    Page,
    RejectIn,
    StatementOut,
)
from cleanit.api.security import Caller, Ctx
from cleanit.domain.assessments import AssessmentRequest
from cleanit.domain.decisions import DecisionRequest
from cleanit.services import assessments, cases, decisions, statements

router = APIRouter(tags=["cases"])


class CaseOrderClockOut(BaseModel):
    """The most urgent pending removal order on the case and its 1-hour clock."""

    id: str
    reference: str
    state: str
    deadline: str | None = Field(description="Null while an Annex III answer pauses the clock")
    remaining_seconds: int | None = Field(description="Negative once the deadline has passed")
    overdue: bool
    paused: bool
    execution_requested_at: str | None


class QueueCaseOut(CaseOut):
    removal_order: CaseOrderClockOut | None = Field(
        default=None, description="Shown to the provider's own staff who read removal orders"
    )


@router.get("/cases", response_model=Page[QueueCaseOut], summary="The queue, most urgent first")
def list_cases(
    ctx: Ctx,
    caller: Caller,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    offset: Annotated[int, Query(ge=0)] = 0,
    state: str | None = None,
    category: str | None = None,
    jurisdiction: str | None = None,
    assignee_id: int | None = None,
) -> Page[QueueCaseOut]:
    rows, total = cases.list_cases(
        ctx,
        caller,
        state=state,
        category=category,
        jurisdiction=jurisdiction,
        assignee_id=assignee_id,
        limit=limit,
        offset=offset,
    )
    clocks = cases.order_clocks(ctx, caller, [c.id for c in rows])
    return Page(
        items=[
            QueueCaseOut(**cases.case_summary(c), removal_order=_clock(clocks.get(c.id)))
            for c in rows
        ],
        total=total,
        limit=limit,
        offset=offset,
    )


def _clock(found: dict[str, Any] | None) -> CaseOrderClockOut | None:
    return CaseOrderClockOut(**found) if found is not None else None


@router.get("/cases/{case_id}", summary="Everything about one case")
def get_case(case_id: int, ctx: Ctx, caller: Caller) -> dict[str, Any]:
    return cases.case_record(ctx, caller, case_id)


@router.post("/cases/{case_id}/assignment", response_model=CaseOut)
def assign(case_id: int, body: AssignIn, ctx: Ctx, caller: Caller) -> CaseOut:
    return CaseOut(**cases.case_summary(cases.assign(ctx, caller, case_id, body.assignee_id)))


@router.post("/cases/{case_id}/assessments", status_code=201, response_model=AssessmentOut)
def assess(case_id: int, body: AssessmentIn, ctx: Ctx, caller: Caller) -> AssessmentOut:
    a = assessments.assess(ctx, caller, case_id, AssessmentRequest(**body.model_dump()))
    return _assessment_out(a)


@router.post(
    "/assessments/{assessment_id}/confirmation",
    response_model=AssessmentOut,
    summary="A second person confirms a finding of illegality",
)
def confirm(assessment_id: int, ctx: Ctx, caller: Caller) -> AssessmentOut:
    a = assessments.confirm(ctx, caller, assessment_id)
    return _assessment_out(a)


@router.post("/cases/{case_id}/decisions", status_code=201, response_model=DecisionOut)
def decide(case_id: int, body: DecisionIn, ctx: Ctx, caller: Caller) -> DecisionOut:
    req = DecisionRequest(
        **(body.model_dump() | {"territorial_scope": tuple(body.territorial_scope)})
    )
    return DecisionOut(**cases.decision_summary(decisions.decide_case(ctx, caller, case_id, req)))


@router.post(
    "/decisions/{decision_id}/approval",
    response_model=DecisionOut,
    summary="The second person approves a decision wider than the single item",
)
def approve(decision_id: int, ctx: Ctx, caller: Caller) -> DecisionOut:
    return DecisionOut(**cases.decision_summary(decisions.approve(ctx, caller, decision_id)))


@router.post("/decisions/{decision_id}/rejection", response_model=DecisionOut)
def reject(decision_id: int, body: RejectIn, ctx: Ctx, caller: Caller) -> DecisionOut:
    return DecisionOut(
        **cases.decision_summary(decisions.reject(ctx, caller, decision_id, body.reason))
    )


@router.get("/decisions/{decision_id}/statement", response_model=StatementOut)
def decision_statement(decision_id: int, ctx: Ctx, caller: Caller) -> StatementOut:
    st = statements.statement_for_decision(ctx, caller, decision_id)
    return StatementOut(
        id=str(st.public_id), decision_id=st.decision_id, statement=st.body, text=st.text
    )


def _assessment_out(a: Assessment) -> AssessmentOut:
    return AssessmentOut(
        id=a.id,
        case_id=a.case_id,
        finding=a.finding,
        status=a.status,
        legal_provision_id=a.legal_provision_id,
        terms_clause_version_id=a.terms_clause_version_id,
    )
