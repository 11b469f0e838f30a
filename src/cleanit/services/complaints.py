"""Complaints (DSA Art 20, TCO Art 10): lodged with the secret from a statement of reasons or
a notice's tracking code, decided by a person who took no part in the decision."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from cleanit.adapters.db.models import Case, Complaint, Decision, Notice, NoticeCase, Statement
from cleanit.adapters.passwords import digest
from cleanit.domain.cases import CaseEvent, CaseState, next_state
from cleanit.domain.complaints import (
    ComplainantKind,
    ComplaintOutcome,
    ComplaintStatus,
    check_grounds,
    check_handler,
    check_window,
)
from cleanit.domain.decisions import (
    RESTRICTIVE_ACTIONS,
    Action,
    AutomatedDecision,
    DecisionRequest,
    DecisionStatus,
    check_decision,
)
from cleanit.domain.errors import Conflict, InvalidInput, NotFound, Unauthenticated
from cleanit.domain.roles import Permission, Principal
from cleanit.services import audit, order_followups
from cleanit.services.authz import require, require_member
from cleanit.services.context import Context
from cleanit.services.decisions import put_in_force
from cleanit.services.outbox import queue_message


@dataclass(frozen=True)
class ComplaintReceipt:
    complaint_id: str
    lodged_at: str
    decision_id: int


def lodge_complaint(
    ctx: Context,
    *,
    grounds: str,
    statement_id: uuid.UUID | None = None,
    code: str | None = None,
    tracking_code: str | None = None,
    contact_email: str | None = None,
) -> ComplaintReceipt:
    """The content provider complains with (statement_id, code); a notifier with their
    tracking code. No account is needed for either."""
    grounds = check_grounds(grounds)
    with ctx.transaction() as s:
        if statement_id is not None:
            st = s.scalar(select(Statement).where(Statement.public_id == statement_id))
            if st is None or code is None or st.complaint_secret_hash != digest(code):
                raise Unauthenticated("the statement link is not valid")
            decision = s.get(Decision, st.decision_id, with_for_update=True)
            kind = ComplainantKind.CONTENT_PROVIDER
        elif tracking_code is not None:
            decision = _decision_for_notifier(s, tracking_code)
            kind = ComplainantKind.NOTIFIER
        else:
            raise InvalidInput(
                "give the statement link or your tracking code", field="tracking_code"
            )
        assert decision is not None
        if decision.status != DecisionStatus.IN_FORCE.value or decision.in_force_at is None:
            raise Conflict("this decision is no longer in force; there is nothing to contest")
        check_window(decision.in_force_at, ctx.now(), ctx.complaint_window)
        case = s.get(Case, decision.case_id, with_for_update=True)
        assert case is not None
        case.state = next_state(CaseState(case.state), CaseEvent.LODGE_COMPLAINT).value
        case.updated_at = ctx.now()
        c = Complaint(
            public_id=uuid.uuid4(),
            decision_id=decision.id,
            case_id=case.id,
            provider_id=case.provider_id,
            complainant_kind=kind.value,
            grounds=grounds,
            contact_email=(contact_email or "").strip() or None,
            status=ComplaintStatus.OPEN.value,
            lodged_at=ctx.now(),
        )
        s.add(c)
        s.flush()
        if c.contact_email:
            queue_message(
                s,
                kind="complaint.acknowledgement",
                recipient=c.contact_email,
                subject=f"We received your complaint {c.public_id}",
                body="A person who did not take the original decision will review "
                "it and tell you the outcome with reasons.\n",
                related=("complaint", c.public_id),
            )
        audit.record(
            s,
            f"complainant:{kind.value}",
            "complaint.lodged",
            "case",
            case.id,
            {"complaint_id": str(c.public_id), "decision_id": decision.id},
            organisation_id=case.provider_id,
            at=ctx.now(),
        )
        return ComplaintReceipt(str(c.public_id), c.lodged_at.isoformat(), decision.id)


def _decision_for_notifier(s: Session, tracking_code: str) -> Decision:
    notice = s.scalar(select(Notice).where(Notice.tracking_secret_hash == digest(tracking_code)))
    if notice is None:
        raise Unauthenticated("unknown tracking code")
    decision = s.scalar(
        select(Decision)
        .join(NoticeCase, NoticeCase.case_id == Decision.case_id)
        .where(NoticeCase.notice_id == notice.id, Decision.status == DecisionStatus.IN_FORCE.value)
        .order_by(Decision.id.desc())
        .limit(1)
        .with_for_update()
    )
    if decision is None:
        raise Conflict("no decision has been taken on your notice yet")
    return decision


def decide_complaint(
    ctx: Context,
    principal: Principal,
    complaint_id: uuid.UUID,
    *,
    outcome: ComplaintOutcome,
    reasons: str,
    new_action: Action | None = None,
    territorial_scope: tuple[str, ...] = (),
) -> Complaint:
    """Uphold, reverse or modify. A reversal reinstates the content with a new statement."""
    require(principal, Permission.DECIDE_COMPLAINT)
    if len(reasons.strip()) < 10:
        raise InvalidInput(
            "give the reasons for the outcome (at least 10 characters)", field="reasons"
        )
    with ctx.transaction() as s:
        c = s.scalar(select(Complaint).where(Complaint.public_id == complaint_id).with_for_update())
        if c is None:
            raise NotFound("no such complaint")
        require_member(principal, c.provider_id)
        if c.status != ComplaintStatus.OPEN.value:
            raise Conflict("this complaint is already decided")
        original = s.get(Decision, c.decision_id, with_for_update=True)
        case = s.get(Case, c.case_id, with_for_update=True)
        assert original is not None and case is not None
        check_handler(principal.user_id, {original.decided_by, original.approved_by})
        if original.status != DecisionStatus.IN_FORCE.value:
            raise Conflict("the decision was already changed by another complaint")
        was_restrictive = Action(original.action) in RESTRICTIVE_ACTIONS
        replacement: Decision | None = None
        if outcome is ComplaintOutcome.UPHELD:
            event = (
                CaseEvent.COMPLAINT_CLOSED_RESTRICTED
                if was_restrictive
                else CaseEvent.COMPLAINT_CLOSED_UNRESTRICTED
            )
        elif outcome is ComplaintOutcome.REVERSED and was_restrictive:
            replacement = _replacement(original, Action.NO_ACTION, reasons, principal, ())
            event = CaseEvent.COMPLAINT_CLOSED_UNRESTRICTED
        elif outcome is ComplaintOutcome.REVERSED:
            # "No action" was wrong: the case goes back to review, to be decided afresh.
            original.status = DecisionStatus.SUPERSEDED.value
            event = CaseEvent.COMPLAINT_REOPENS
        else:
            if new_action is None or not was_restrictive or new_action is Action(original.action):
                raise InvalidInput(
                    "'modified' replaces a restriction with a different action "
                    "on the ladder: give new_action",
                    field="new_action",
                )
            replacement = _replacement(original, new_action, reasons, principal, territorial_scope)
            check_decision(
                DecisionRequest(
                    action=new_action,
                    facts=replacement.facts,
                    territorial_scope=territorial_scope,
                    justification=reasons,
                ),
                has_basis=original.assessment_id is not None,
            )
            event = (
                CaseEvent.COMPLAINT_CLOSED_RESTRICTED
                if new_action in RESTRICTIVE_ACTIONS
                else CaseEvent.COMPLAINT_CLOSED_UNRESTRICTED
            )
        others_open = (
            s.scalar(
                select(func.count())
                .select_from(Complaint)
                .where(
                    Complaint.case_id == case.id,
                    Complaint.status == ComplaintStatus.OPEN.value,
                    Complaint.id != c.id,
                )
            )
            or 0
        )
        if not others_open:
            case.state = next_state(CaseState(case.state), event).value
        case.updated_at = ctx.now()
        c.status, c.outcome = ComplaintStatus.DECIDED.value, outcome.value
        c.reasons, c.handled_by, c.decided_at = reasons.strip(), principal.user_id, ctx.now()
        if replacement is not None:
            s.add(replacement)
            s.flush()
            c.new_decision_id = replacement.id
            put_in_force(s, ctx, replacement, case, replaces=original)
            order_followups.complaint_decided(s, ctx, c, principal)  # TCO Art 10
        if c.contact_email:
            queue_message(
                s,
                kind="complaint.outcome",
                recipient=c.contact_email,
                subject=f"Outcome of your complaint {c.public_id}",
                body=(
                    f"Outcome: {outcome.value}.\nReasons: {c.reasons}\n\n"
                    "If you disagree, you may turn to a certified out-of-court "
                    "dispute settlement body or to a court.\n"
                ),
                related=("complaint", c.public_id),
            )
        audit.record(
            s,
            principal,
            "complaint.decided",
            "case",
            case.id,
            {
                "complaint_id": str(c.public_id),
                "outcome": outcome.value,
                "new_decision_id": c.new_decision_id,
            },
            organisation_id=case.provider_id,
            at=ctx.now(),
        )
        return c


def _replacement(
    original: Decision, action: Action, reasons: str, principal: Principal, scope: tuple[str, ...]
) -> Decision:
    return Decision(
        case_id=original.case_id,
        provider_id=original.provider_id,
        action=action.value,
        ground=original.ground if action in RESTRICTIVE_ACTIONS else None,
        assessment_id=original.assessment_id if action in RESTRICTIVE_ACTIONS else None,
        facts=f"Decided on complaint: {reasons.strip()}",
        justification=None,
        territorial_scope=list(scope),
        automated_detection=original.automated_detection,
        automated_decision=AutomatedDecision.NOT_AUTOMATED.value,
        status=DecisionStatus.AWAITING_APPROVAL.value,
        decided_by=principal.user_id,
    )


def list_complaints(
    ctx: Context, principal: Principal, status: str | None = None, limit: int = 50, offset: int = 0
) -> tuple[list[Complaint], int]:
    require(principal, Permission.READ_COMPLAINTS)
    with ctx.sessions() as s:
        q = select(Complaint).where(Complaint.provider_id == principal.organisation_id)
        if status:
            q = q.where(Complaint.status == status)
        total = s.scalar(select(func.count()).select_from(q.subquery())) or 0
        return list(s.scalars(q.order_by(Complaint.lodged_at).limit(limit).offset(offset))), total
