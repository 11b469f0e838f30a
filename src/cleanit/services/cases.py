"""Cases: the review queue, a case's full record, and assignment."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import exists, func, select
from sqlalchemy.orm import Session

from cleanit.adapters.db.models import (
    Assessment,
    AuditEntry,
    Case,
    Complaint,
    ContentItem,
    Decision,
    Notice,
    NoticeCase,
    PlatformAction,
    RemovalOrder,
    RemovalOrderItem,
    User,
)
from cleanit.domain.cases import CaseEvent, CaseState, next_state
from cleanit.domain.errors import InvalidInput, NotFound
from cleanit.domain.orders import PENDING_STATES, OrderClock
from cleanit.domain.roles import OrgKind, Permission, Principal
from cleanit.services import audit
from cleanit.services.authz import require
from cleanit.services.context import Context
from cleanit.services.order_followups import clock_of


def visible_case(s: Session, principal: Principal, case_id: int, *, lock: bool = False) -> Case:
    """The case, if the principal's organisation hosts the content or sent a notice on it."""
    q = select(Case).where(Case.id == case_id)
    if lock:
        q = q.with_for_update()
    case = s.scalar(q)
    if case is None:
        raise NotFound("no such case")
    if case.provider_id == principal.organisation_id and (
        principal.org_kind is OrgKind.HOSTING_PROVIDER
    ):
        return case
    notified = s.scalar(
        select(
            exists().where(
                NoticeCase.case_id == case.id,
                NoticeCase.notice_id == Notice.id,
                Notice.notifier_org_id == principal.organisation_id,
            )
        )
    )
    if principal.organisation_id is not None and notified:
        return case
    raise NotFound("no such case")


def list_cases(
    ctx: Context,
    principal: Principal,
    *,
    state: str | None = None,
    category: str | None = None,
    jurisdiction: str | None = None,
    assignee_id: int | None = None,
    limit: int = 50,
    offset: int = 0,
) -> tuple[list[Case], int]:
    """The provider's queue, most urgent first (priority, then oldest)."""
    require(principal, Permission.READ_CASES)
    if state is not None and state not in {s.value for s in CaseState}:
        raise InvalidInput(f"unknown state '{state}'", field="state")
    with ctx.sessions() as s:
        if principal.org_kind is OrgKind.HOSTING_PROVIDER:
            q = select(Case).where(Case.provider_id == principal.organisation_id)
        else:
            q = select(Case).where(
                Case.id.in_(
                    select(NoticeCase.case_id)
                    .join(Notice, Notice.id == NoticeCase.notice_id)
                    .where(Notice.notifier_org_id == principal.organisation_id)
                )
            )
        if state:
            q = q.where(Case.state == state)
        if category:
            q = q.where(Case.category == category)
        if jurisdiction:
            q = q.where(Case.jurisdiction == jurisdiction)
        if assignee_id is not None:
            q = q.where(Case.assignee_id == assignee_id)
        total = s.scalar(select(func.count()).select_from(q.subquery())) or 0
        rows = s.scalars(
            q.order_by(Case.priority, Case.opened_at, Case.id).limit(limit).offset(offset)
        )
        return list(rows), total


def case_record(ctx: Context, principal: Principal, case_id: int) -> dict[str, Any]:
    """Everything about one case: content, notices, assessments, decisions, complaints."""
    require(principal, Permission.READ_CASES)
    with ctx.sessions() as s:
        case = visible_case(s, principal, case_id)
        is_provider = case.provider_id == principal.organisation_id
        item = s.get(ContentItem, case.content_item_id)
        assert item is not None
        notices = s.scalars(
            select(Notice)
            .join(NoticeCase, NoticeCase.notice_id == Notice.id)
            .where(NoticeCase.case_id == case.id)
            .order_by(Notice.id)
        ).all()
        if not is_provider:
            notices = [n for n in notices if n.notifier_org_id == principal.organisation_id]
        record: dict[str, Any] = {
            "case": case_summary(case),
            "content": {
                "url": item.url,
                "platform_state": item.platform_state,
                "uploader_ref": item.uploader_ref if is_provider else None,
            },
            "notices": [
                {
                    "id": str(n.public_id),
                    "source_type": n.source_type,
                    "category": n.category,
                    "explanation": n.explanation,
                    "received_at": n.received_at.isoformat(),
                    "art16_complete": n.art16_complete,
                    # The notifier's identity stays with the provider (data minimisation).
                    "notifier_name": n.notifier_name if is_provider else None,
                }
                for n in notices
            ],
            "assessments": [
                {
                    "id": a.id,
                    "finding": a.finding,
                    "status": a.status,
                    "organisation_id": a.organisation_id,
                    "explanation": a.explanation,
                    "legal_provision_id": a.legal_provision_id,
                    "terms_clause_version_id": a.terms_clause_version_id,
                    "author_id": a.author_id,
                    "confirmed_by": a.confirmed_by,
                }
                for a in s.scalars(
                    select(Assessment).where(Assessment.case_id == case.id).order_by(Assessment.id)
                )
            ],
            "decisions": [
                decision_summary(d)
                for d in s.scalars(
                    select(Decision).where(Decision.case_id == case.id).order_by(Decision.id)
                )
            ],
            "complaints": [
                {
                    "id": str(c.public_id),
                    "status": c.status,
                    "outcome": c.outcome,
                    "complainant_kind": c.complainant_kind,
                    "lodged_at": c.lodged_at.isoformat(),
                }
                for c in s.scalars(select(Complaint).where(Complaint.case_id == case.id))
            ]
            if is_provider
            else [],
            "platform_actions": [
                {
                    "id": str(p.public_id),
                    "kind": p.kind,
                    "action": p.action,
                    "status": p.status,
                    "attempts": p.attempts,
                }
                for p in s.scalars(
                    select(PlatformAction)
                    .where(PlatformAction.content_item_id == item.id)
                    .order_by(PlatformAction.id)
                )
            ]
            if is_provider
            else [],
            "history": [
                {"seq": e.seq, "at": e.at.isoformat(), "actor": e.actor, "action": e.action}
                for e in s.scalars(
                    select(AuditEntry)
                    .where(AuditEntry.entity == "case", AuditEntry.entity_id == str(case.id))
                    .order_by(AuditEntry.seq)
                )
            ]
            if is_provider
            else [],
            # The 1-hour clock of a pending removal order on the content (provider only).
            "removal_order": _order_clocks(s, ctx, principal, [case.id]).get(case.id)
            if is_provider
            else None,
        }
        return record


def order_clocks(
    ctx: Context, principal: Principal, case_ids: Sequence[int]
) -> dict[int, dict[str, Any]]:
    """For the queue: case id → the most urgent pending removal order on it, with its clock
    (``order_clock``). Only the provider's own people who read orders see them; for anyone
    else, and for cases without a pending order, nothing."""
    with ctx.sessions() as s:
        return _order_clocks(s, ctx, principal, case_ids)


def _order_clocks(
    s: Session, ctx: Context, principal: Principal, case_ids: Sequence[int]
) -> dict[int, dict[str, Any]]:
    if (
        not case_ids
        or principal.org_kind is not OrgKind.HOSTING_PROVIDER
        or not principal.can(Permission.READ_ORDERS)
    ):
        return {}
    rows = s.execute(
        select(RemovalOrderItem.case_id, RemovalOrder)
        .join(RemovalOrder, RemovalOrder.id == RemovalOrderItem.order_id)
        .where(
            RemovalOrderItem.case_id.in_(list(case_ids)),
            RemovalOrder.provider_id == principal.organisation_id,
            RemovalOrder.state.in_([st.value for st in PENDING_STATES]),
        )
        .order_by(RemovalOrder.id)
    ).all()
    now = ctx.now()
    clocks: dict[int, OrderClock] = {}
    found: dict[int, dict[str, Any]] = {}
    for case_id, order in rows:
        if order.id not in clocks:
            clocks[order.id] = clock_of(s, order)
        view = order_clock(order, clocks[order.id], now)
        current = found.get(case_id)
        if current is None or _urgency(view) < _urgency(current):
            found[case_id] = view
    return found


def order_clock(order: RemovalOrder, clock: OrderClock, now: datetime) -> dict[str, Any]:
    """What the case page and the queue show of a pending order: computed from its clock,
    so ``remaining_seconds`` is negative once the hour has passed, and both are null while an
    Annex III answer has the clock paused."""
    remaining = clock.remaining(now)
    deadline = clock.deadline
    return {
        "id": str(order.public_id),
        "reference": order.reference,
        "state": order.state,
        "deadline": deadline.astimezone(UTC).isoformat() if deadline is not None else None,
        "remaining_seconds": int(remaining.total_seconds()) if remaining is not None else None,
        "overdue": remaining is not None and remaining.total_seconds() < 0,
        "paused": clock.paused,
        "execution_requested_at": order.execution_requested_at.astimezone(UTC).isoformat()
        if order.execution_requested_at is not None
        else None,
    }


def _urgency(view: dict[str, Any]) -> tuple[bool, int]:
    """Running clocks first, the least time left first."""
    left = view["remaining_seconds"]
    return (left is None, left if isinstance(left, int) else 0)


def case_summary(case: Case) -> dict[str, Any]:
    return {
        "id": case.id,
        "state": case.state,
        "priority": case.priority,
        "category": case.category,
        "jurisdiction": case.jurisdiction,
        "assignee_id": case.assignee_id,
        "opened_at": case.opened_at.isoformat(),
        "updated_at": case.updated_at.isoformat(),
    }


def decision_summary(d: Decision) -> dict[str, Any]:
    return {
        "id": d.id,
        "case_id": d.case_id,
        "action": d.action,
        "ground": d.ground,
        "status": d.status,
        "territorial_scope": d.territorial_scope,
        "automated_detection": d.automated_detection,
        "automated_decision": d.automated_decision,
        "decided_by": d.decided_by,
        "approved_by": d.approved_by,
        "replaces_id": d.replaces_id,
        "justification": d.justification,
        "in_force_at": d.in_force_at.isoformat() if d.in_force_at else None,
    }


def assign(ctx: Context, principal: Principal, case_id: int, assignee_id: int | None) -> Case:
    """Assign the case to a reviewer of the provider (None: to yourself)."""
    require(principal, Permission.ASSIGN_CASES)
    with ctx.transaction() as s:
        case = visible_case(s, principal, case_id, lock=True)
        if case.provider_id != principal.organisation_id:
            raise NotFound("no such case")
        target = assignee_id if assignee_id is not None else principal.user_id
        if target is None:
            raise InvalidInput("name the reviewer to assign", field="assignee_id")
        user = s.get(User, target)
        if (
            user is None
            or user.organisation_id != case.provider_id
            or not user.active
            or not ({"reviewer", "legal"} & set(user.roles))
        ):
            raise InvalidInput(
                "the assignee must be an active reviewer of this provider", field="assignee_id"
            )
        case.state = next_state(CaseState(case.state), CaseEvent.ASSIGN).value
        case.assignee_id = target
        case.updated_at = ctx.now()
        audit.record(
            s,
            principal,
            "case.assigned",
            "case",
            case.id,
            {"assignee_id": target},
            organisation_id=case.provider_id,
            at=ctx.now(),
        )
        return case
