"""/api/v1/removal-orders — TCO removal orders: sent by competent authorities, executed or
answered by the addressed hosting provider against the one-hour clock."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, Header, Query
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from cleanit.api import problems
from cleanit.api.schemas import In, Page
from cleanit.api.security import Caller, Ctx
from cleanit.domain.decisions import Action
from cleanit.domain.orders import InabilityReason, OrderInvalid, ScrutinyOutcome
from cleanit.services import orders

router = APIRouter(prefix="/removal-orders", tags=["removal orders"])

ORDER_EXAMPLE: dict[str, Any] = {
    "addressee": "example-video",
    "sent_at": "2026-03-29T02:55:00+02:00",
    "issuing_authority": "Example Internet Referral Office",
    "issuing_member_state": "BE",
    "reference": "RO-2026-0001",
    "issued_at": "2026-03-29T02:50:00+02:00",
    "content_urls": ["https://video.example.org/v/123"],
    "locating_details": "From 00:45 to the end.",
    "reasons": ["incitement", "threat"],
    "additional_reasons": "Calls to attack invented targets.",
    "withhold_information": False,
    "host_member_state": "BE",
    "contact_name": "Duty officer",
    "contact_email": "orders@authority.example.org",
    "redress_information": "Challenge before the administrative court within 30 days.",
}


class OrderReceiptOut(BaseModel):
    order_id: str
    reference: str
    state: str
    received_at: str = Field(description="Our clock at receipt: the hour starts here")
    deadline_at: str | None
    receipt_hash: str = Field(
        description="SHA-256 of the order as received and the time of receipt, also in the "
        "audit chain"
    )
    case_ids: list[int]
    first_order: bool
    first_order_notice_ok: bool | None
    executed_automatically: bool


class RemovalOrderOut(BaseModel):
    id: str
    reference: str
    state: str
    addressee: str | None
    authority: str | None
    issuing_authority: str
    issuing_member_state: str
    host_member_state: str
    cross_border: bool
    issued_at: str
    sent_at: str | None
    received_at: str
    deadline_at: str | None
    remaining_seconds: int | None = Field(description="Negative once overdue; null if paused")
    overdue: bool
    paused: bool = Field(description="An Annex III answer is open: the clock waits")
    missed_at: str | None
    execution_requested_at: str | None
    executed_at: str | None = Field(description="When the platform confirmed")
    executed_in_time: bool | None
    action: str | None
    automated: bool
    content_urls: list[str]
    locating_details: str | None
    reasons: list[str]
    additional_reasons: str | None
    withhold_information: bool
    confidentiality_days: int | None
    contact: dict[str, str | None]
    redress_information: str
    inability_reason: str | None
    first_order: dict[str, Any]
    receipt: dict[str, Any]
    clock: list[dict[str, Any]]
    items: list[dict[str, Any]]
    escalations: list[dict[str, Any]]
    replies: list[dict[str, Any]]
    hold: dict[str, Any] | None
    scrutiny: dict[str, Any] | None
    complaints: list[dict[str, Any]]
    withdrawal: dict[str, Any] | None = Field(
        default=None, description="When and why the issuing authority withdrew the order"
    )


class ReplyOut(BaseModel):
    id: str
    annex: str
    created_at: datetime
    body: dict[str, Any]
    text: str


class ExecutionIn(In):
    action: Literal["disable_access", "remove"] = Field(
        default="disable_access",
        description="Disable access in all Member States (default) or remove",
    )
    note: str | None = Field(default=None, max_length=2000)


class InabilityIn(In):
    reason: InabilityReason
    explanation: str = Field(max_length=10_000)
    clarification_needed: str | None = Field(
        default=None,
        max_length=10_000,
        description="For manifest errors or insufficient information (Art 3(8))",
    )


class ClarificationIn(In):
    clarification: str = Field(
        max_length=10_000,
        description="The authority's clarification, or how the provider's obstacle was removed",
    )


class ScrutinyIn(In):
    requested_by: Literal["provider", "content_provider", "host_authority"] = "host_authority"
    requested_at: datetime | None = None
    outcome: ScrutinyOutcome | None = None
    reasons: str | None = Field(default=None, max_length=10_000)


class HoldRenewalIn(In):
    days: int = Field(default=42, ge=1, le=42)
    reasons: str = Field(max_length=10_000)


class WithdrawalIn(In):
    reasons: str = Field(max_length=10_000, description="Why the authority withdraws the order")


class PreAuthorisationIn(In):
    authority: str = Field(
        max_length=200, description="The issuing authority organisation's identifier (slug)"
    )
    action: Literal["disable_access", "remove"] = Field(
        default="disable_access",
        description="How its orders are executed: disable access in all Member States, or remove",
    )


class PreAuthorisationOut(BaseModel):
    id: int
    provider: str
    authority: str
    action: str
    authorised_by: str
    authorised_at: str
    active: bool
    revoked_at: str | None


@router.post(
    "",
    status_code=201,
    response_model=OrderReceiptOut,
    summary="Send a removal order (competent authorities)",
)
def send_order(
    ctx: Ctx,
    caller: Caller,
    body: Annotated[dict[str, Any], Body(openapi_examples={"order": {"value": ORDER_EXAMPLE}})],
    idempotency_key: Annotated[str | None, Header(alias="Idempotency-Key", max_length=200)] = None,
) -> JSONResponse:
    """The Annex I fields of Regulation (EU) 2021/784, plus `addressee` (the hosting
    provider's identifier here), `sent_at` (when you sent it) and, for a provider's first
    order, `prior_information_at` or `first_order_emergency` (Art 3(2)). Every wrong field is
    listed in one problem's `errors`; nothing is stored then."""
    try:
        receipt = orders.receive_order(ctx, caller, body, idempotency_key=idempotency_key)
    except OrderInvalid as exc:
        return problems.problem(
            422,
            "Invalid removal order",
            exc.detail,
            code="invalid-order",
            errors=[{"field": f, "message": m} for f, m in exc.errors],
        )
    return JSONResponse(
        receipt.as_dict(),
        status_code=201,
        headers={"Location": f"/api/v1/removal-orders/{receipt.order_id}"},
    )


@router.get(
    "",
    response_model=Page[RemovalOrderOut],
    summary="Orders sent (authority) or received (provider), the most urgent first",
)
def list_orders(
    ctx: Ctx,
    caller: Caller,
    state: str | None = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> Page[RemovalOrderOut]:
    rows, total = orders.list_orders(ctx, caller, state=state, limit=limit, offset=offset)
    return Page(items=[RemovalOrderOut(**r) for r in rows], total=total, limit=limit, offset=offset)


@router.get("/statistics", summary="The numbers for the Art 7 transparency report")
def statistics(
    ctx: Ctx, caller: Caller, year: Annotated[int | None, Query(ge=2000, le=2999)] = None
) -> dict[str, Any]:
    return orders.order_statistics(ctx, caller, year or ctx.now().year)


@router.post(
    "/pre-authorisations",
    status_code=201,
    response_model=PreAuthorisationOut,
    summary="Execute an authority's orders on receipt (the provider's legal staff or admin)",
)
def pre_authorise(body: PreAuthorisationIn, ctx: Ctx, caller: Caller) -> PreAuthorisationOut:
    """A person of the provider decides once that the named competent authority's orders are
    executed as soon as they arrive; those decisions are marked fully automated."""
    pre = orders.pre_authorise(ctx, caller, body.authority, action=Action(body.action))
    return PreAuthorisationOut(**pre.as_dict())


@router.get(
    "/pre-authorisations",
    response_model=list[PreAuthorisationOut],
    summary="The provider's pre-authorisations, the active ones first",
)
def pre_authorisations(ctx: Ctx, caller: Caller) -> list[PreAuthorisationOut]:
    return [PreAuthorisationOut(**p.as_dict()) for p in orders.list_pre_authorisations(ctx, caller)]


@router.delete(
    "/pre-authorisations/{pre_authorisation_id}",
    response_model=PreAuthorisationOut,
    summary="Revoke a pre-authorisation: that authority's next orders wait for a person",
)
def revoke_pre_authorisation(
    pre_authorisation_id: int, ctx: Ctx, caller: Caller
) -> PreAuthorisationOut:
    pre = orders.revoke_pre_authorisation(ctx, caller, pre_authorisation_id)
    return PreAuthorisationOut(**pre.as_dict())


@router.get("/{order_id}", response_model=RemovalOrderOut)
def get_order(order_id: uuid.UUID, ctx: Ctx, caller: Caller) -> RemovalOrderOut:
    return RemovalOrderOut(**orders.get_order(ctx, caller, order_id))


@router.post(
    "/{order_id}/execution",
    response_model=RemovalOrderOut,
    summary="Execute the order (the addressee's reviewers); done when the platform confirms",
)
def execute(order_id: uuid.UUID, body: ExecutionIn, ctx: Ctx, caller: Caller) -> RemovalOrderOut:
    view = orders.execute_order(ctx, caller, order_id, action=Action(body.action), note=body.note)
    return RemovalOrderOut(**view)


@router.post(
    "/{order_id}/inability",
    response_model=RemovalOrderOut,
    summary="Answer that the order cannot be executed (Annex III); the clock waits",
)
def inability(order_id: uuid.UUID, body: InabilityIn, ctx: Ctx, caller: Caller) -> RemovalOrderOut:
    view = orders.report_inability(
        ctx,
        caller,
        order_id,
        reason=body.reason,
        explanation=body.explanation,
        clarification_needed=body.clarification_needed,
    )
    return RemovalOrderOut(**view)


@router.post(
    "/{order_id}/clarification",
    response_model=RemovalOrderOut,
    summary="The clarification arrived or the obstacle is gone: a new hour starts",
)
def clarification(
    order_id: uuid.UUID, body: ClarificationIn, ctx: Ctx, caller: Caller
) -> RemovalOrderOut:
    view = orders.clear_obstacle(ctx, caller, order_id, clarification=body.clarification)
    return RemovalOrderOut(**view)


@router.post(
    "/{order_id}/scrutiny",
    response_model=RemovalOrderOut,
    summary="Record the host Member State's scrutiny of a cross-border order (Art 4)",
)
def scrutiny(order_id: uuid.UUID, body: ScrutinyIn, ctx: Ctx, caller: Caller) -> RemovalOrderOut:
    view = orders.record_scrutiny(
        ctx,
        caller,
        order_id,
        requested_by=body.requested_by,
        requested_at=body.requested_at,
        outcome=body.outcome,
        reasons=body.reasons,
    )
    return RemovalOrderOut(**view)


@router.post(
    "/{order_id}/hold-renewal",
    response_model=RemovalOrderOut,
    summary="Renew the confidentiality hold once (the issuing authority, Art 11(3))",
)
def hold_renewal(
    order_id: uuid.UUID, body: HoldRenewalIn, ctx: Ctx, caller: Caller
) -> RemovalOrderOut:
    view = orders.renew_confidentiality(ctx, caller, order_id, days=body.days, reasons=body.reasons)
    return RemovalOrderOut(**view)


@router.post(
    "/{order_id}/withdrawal",
    response_model=RemovalOrderOut,
    summary="Withdraw the order (the issuing authority): a pending order's clock stops",
)
def withdrawal(
    order_id: uuid.UUID, body: WithdrawalIn, ctx: Ctx, caller: Caller
) -> RemovalOrderOut:
    """A pending order stops (no deadline, no reminders). An executed order is recorded as
    withdrawn; its content stays restricted until the provider decides otherwise."""
    return RemovalOrderOut(**orders.withdraw_order(ctx, caller, order_id, reasons=body.reasons))


def _reply(ctx: Ctx, caller: Caller, order_id: uuid.UUID, annex: str) -> ReplyOut:
    r = orders.get_reply(ctx, caller, order_id, annex)
    return ReplyOut(
        id=str(r.public_id), annex=r.annex, created_at=r.created_at, body=r.body, text=r.text
    )


@router.get(
    "/{order_id}/annex-ii",
    response_model=ReplyOut,
    summary="The Annex II confirmation sent to the authority",
)
def annex_ii(order_id: uuid.UUID, ctx: Ctx, caller: Caller) -> ReplyOut:
    return _reply(ctx, caller, order_id, "II")


@router.get(
    "/{order_id}/annex-iii",
    response_model=ReplyOut,
    summary="The latest Annex III answer sent to the authority",
)
def annex_iii(order_id: uuid.UUID, ctx: Ctx, caller: Caller) -> ReplyOut:
    return _reply(ctx, caller, order_id, "III")
