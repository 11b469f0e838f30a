"""Deciding cases: the proportionality ladder, four eyes for wide actions, and what follows a
decision in force — the statement of reasons, the messages and the platform action."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from cleanit.adapters.db.models import (
    Assessment,
    Case,
    ContentItem,
    Decision,
    Notice,
    NoticeCase,
    Organisation,
    Statement,
)
from cleanit.adapters.passwords import digest, new_secret
from cleanit.domain.assessments import AssessmentStatus, Finding
from cleanit.domain.cases import CaseEvent, CaseState, next_state
from cleanit.domain.decisions import (
    RESTRICTIVE_ACTIONS,
    Action,
    AutomatedDecision,
    DecisionRequest,
    DecisionStatus,
    Ground,
    check_decision,
)
from cleanit.domain.errors import Conflict, InvalidInput, NotFound, PrincipleViolation
from cleanit.domain.notices import SourceType
from cleanit.domain.roles import Permission, Principal
from cleanit.domain.statements import StatementInput, build_statement, render_text
from cleanit.services import audit, preservation, tdb
from cleanit.services.assessments import basis_reference
from cleanit.services.authz import require, require_member
from cleanit.services.cases import visible_case
from cleanit.services.context import Context
from cleanit.services.outbox import queue_message
from cleanit.services.platform import queue_platform_action

_RESTRICTING_FINDINGS = {
    Finding.ILLEGAL.value: Ground.ILLEGAL_CONTENT,
    Finding.INCOMPATIBLE_WITH_TERMS.value: Ground.INCOMPATIBLE_CONTENT,
}


def _basis(s: Session, case: Case, assessment_id: int | None) -> Assessment | None:
    if assessment_id is None:
        return None
    a = s.get(Assessment, assessment_id)
    if a is None or a.case_id != case.id:
        raise InvalidInput("the assessment does not belong to this case", field="assessment_id")
    if a.status != AssessmentStatus.CONFIRMED.value:
        raise PrincipleViolation(
            "this finding of illegality still waits for its second person", field="assessment_id"
        )
    if a.finding not in _RESTRICTING_FINDINGS:
        raise PrincipleViolation(
            f"a '{a.finding}' finding cannot ground a restriction", field="assessment_id"
        )
    return a


def decide_case(
    ctx: Context, principal: Principal, case_id: int, request: DecisionRequest
) -> Decision:
    """Record a decision. Wide actions wait for a second person; others take effect now."""
    require(principal, Permission.DECIDE)
    with ctx.transaction() as s:
        case = visible_case(s, principal, case_id, lock=True)
        require_member(principal, case.provider_id)
        state = CaseState(case.state)
        if state is CaseState.OPEN:  # deciding an unassigned case takes it
            state = next_state(state, CaseEvent.ASSIGN)
            case.assignee_id = principal.user_id
        basis = _basis(s, case, request.assessment_id)
        if request.action is Action.NO_ACTION and basis is not None:
            raise InvalidInput("'no_action' needs no assessment", field="assessment_id")
        needs_second = check_decision(request, has_basis=basis is not None)
        event = (
            CaseEvent.PROPOSE_WIDE_DECISION
            if needs_second
            else CaseEvent.DECIDE_RESTRICTIVE
            if request.action in RESTRICTIVE_ACTIONS
            else CaseEvent.DECIDE_NO_ACTION
        )
        case.state = next_state(state, event).value
        case.updated_at = ctx.now()
        d = Decision(
            case_id=case.id,
            provider_id=case.provider_id,
            action=request.action.value,
            ground=_RESTRICTING_FINDINGS[basis.finding].value if basis else None,
            assessment_id=basis.id if basis else None,
            facts=request.facts.strip(),
            justification=(request.justification or "").strip() or None,
            territorial_scope=list(request.territorial_scope),
            duration_days=request.duration_days,
            automated_detection=request.automated_detection,
            automated_decision=request.automated_decision.value,
            status=DecisionStatus.AWAITING_APPROVAL.value,
            decided_by=principal.user_id,
        )
        s.add(d)
        s.flush()
        audit.record(
            s,
            principal,
            "decision.proposed" if needs_second else "decision.taken",
            "case",
            case.id,
            {"decision_id": d.id, "action": d.action, "ground": d.ground},
            organisation_id=case.provider_id,
            at=ctx.now(),
        )
        if not needs_second:
            put_in_force(s, ctx, d, case)
        return d


def approve(ctx: Context, principal: Principal, decision_id: int) -> Decision:
    """The second person approves a wide decision; it then takes effect."""
    require(principal, Permission.APPROVE_DECISION)
    with ctx.transaction() as s:
        d, case = _pending(s, principal, decision_id)
        if principal.user_id is None or principal.user_id == d.decided_by:
            raise PrincipleViolation(
                "a second person must approve; not the one who proposed it", field="approver"
            )
        case.state = next_state(CaseState(case.state), CaseEvent.APPROVE).value
        d.approved_by = principal.user_id
        audit.record(
            s,
            principal,
            "decision.approved",
            "case",
            case.id,
            {"decision_id": d.id},
            organisation_id=case.provider_id,
            at=ctx.now(),
        )
        put_in_force(s, ctx, d, case)
        return d


def reject(ctx: Context, principal: Principal, decision_id: int, reason: str) -> Decision:
    require(principal, Permission.APPROVE_DECISION)
    if len(reason.strip()) < 10:
        raise InvalidInput("say why (at least 10 characters)", field="reason")
    with ctx.transaction() as s:
        d, case = _pending(s, principal, decision_id)
        case.state = next_state(CaseState(case.state), CaseEvent.REJECT_PROPOSAL).value
        d.status = DecisionStatus.REJECTED.value
        d.approved_by = principal.user_id
        audit.record(
            s,
            principal,
            "decision.rejected",
            "case",
            case.id,
            {"decision_id": d.id, "reason": reason.strip()},
            organisation_id=case.provider_id,
            at=ctx.now(),
        )
        return d


def _pending(s: Session, principal: Principal, decision_id: int) -> tuple[Decision, Case]:
    d = s.get(Decision, decision_id, with_for_update=True)
    if d is None or d.provider_id != principal.organisation_id:
        raise NotFound("no such decision")
    if d.status != DecisionStatus.AWAITING_APPROVAL.value:
        raise Conflict(f"the decision is '{d.status}', not awaiting approval")
    case = s.get(Case, d.case_id, with_for_update=True)
    assert case is not None
    return d, case


def _source_of(s: Session, case: Case) -> str:
    sources = set(
        s.scalars(
            select(Notice.source_type)
            .join(NoticeCase, NoticeCase.notice_id == Notice.id)
            .where(NoticeCase.case_id == case.id)
        )
    )
    for src in (
        SourceType.AUTHORITY_NOTICE,
        SourceType.REFERRAL_UNIT,
        SourceType.TRUSTED_FLAGGER,
        SourceType.END_USER,
        SourceType.AUTOMATED_DETECTION,
    ):
        if src.value in sources:
            return f"notice ({src.value.replace('_', ' ')})"
    return "own initiative"


def put_in_force(
    s: Session,
    ctx: Context,
    d: Decision,
    case: Case,
    replaces: Decision | None = None,
    *,
    inform_uploader: bool = True,
) -> Statement | None:
    """Make the decision effective and start everything that follows from it.

    ``inform_uploader`` False keeps the statement of reasons from the content provider for
    now (a removal order's confidentiality hold, TCO Art 11(3)); it is stored all the same.
    """
    now = ctx.now()
    d.status = DecisionStatus.IN_FORCE.value
    d.in_force_at = now
    if replaces is not None:
        replaces.status = DecisionStatus.SUPERSEDED.value
        d.replaces_id = replaces.id
    item = s.get(ContentItem, case.content_item_id)
    provider = s.get(Organisation, case.provider_id)
    assert item is not None and provider is not None
    action = Action(d.action)
    restrictive = action in RESTRICTIVE_ACTIONS
    previously_restricted = replaces is not None and Action(replaces.action) in RESTRICTIVE_ACTIONS
    statement = None
    if restrictive or previously_restricted:
        statement = _statement(s, ctx, d, case, item, provider, replaces, inform_uploader)
    if restrictive:
        queue_platform_action(s, ctx, decision=d, item=item, kind="restrict", action=d.action)
    elif previously_restricted:
        queue_platform_action(s, ctx, decision=d, item=item, kind="reinstate", action="reinstate")
    _tell_notifiers(s, ctx, d, case, provider)
    preservation.preserve_for_decision(s, ctx, d, case)  # TCO Art 6: content taken down
    tdb.queue_statement(s, ctx, d, case)  # DSA Art 24(5): statement for the TDB
    audit.record(
        s,
        "system",
        "decision.in_force",
        "case",
        case.id,
        {
            "decision_id": d.id,
            "action": d.action,
            "statement_id": str(statement.public_id) if statement else None,
        },
        organisation_id=case.provider_id,
        at=now,
    )
    return statement


def _statement(
    s: Session,
    ctx: Context,
    d: Decision,
    case: Case,
    item: ContentItem,
    provider: Organisation,
    replaces: Decision | None,
    inform_uploader: bool = True,
) -> Statement:
    basis_id = d.assessment_id or (replaces.assessment_id if replaces else None)
    basis = s.get(Assessment, basis_id) if basis_id else None
    if basis is not None:
        reference, _ = basis_reference(s, basis)
        explanation = basis.explanation
        ground = Ground(d.ground or _RESTRICTING_FINDINGS[basis.finding].value)
    else:  # pragma: no cover - restrictive decisions always have a basis (check_decision)
        raise PrincipleViolation("a statement of reasons needs a basis")
    public_id = uuid.uuid4()
    secret = new_secret()
    deadline: datetime = (d.in_force_at or ctx.now()) + ctx.complaint_window
    body = build_statement(
        StatementInput(
            decision_id=d.id,
            provider_name=provider.name,
            content_url=item.url,
            action=Action(d.action),
            ground=ground,
            basis_reference=reference,
            basis_explanation=explanation,
            facts=d.facts,
            source=_source_of(s, case),
            decided_at=(d.in_force_at or ctx.now()).isoformat(),
            territorial_scope=tuple(d.territorial_scope),
            duration_days=d.duration_days,
            automated_detection=d.automated_detection,
            automated_decision=AutomatedDecision(d.automated_decision),
            complaint_url=f"{ctx.base_url}/complaints/new?statement={public_id}&code={secret}",
            complaint_deadline=deadline.date().isoformat(),
            replaces_decision_id=replaces.id if replaces else None,
        )
    )
    body["statement_id"] = str(public_id)
    text = render_text(body)
    st = Statement(
        public_id=public_id,
        decision_id=d.id,
        complaint_secret_hash=digest(secret),
        body=body,
        text=text,
    )
    s.add(st)
    s.flush()
    if item.uploader_email and inform_uploader:
        queue_message(
            s,
            kind="statement_of_reasons",
            recipient=item.uploader_email,
            subject=f"{provider.name}: a decision about your content",
            body=text,
            related=("statement", st.public_id),
        )
    return st


def _tell_notifiers(
    s: Session, ctx: Context, d: Decision, case: Case, provider: Organisation
) -> None:
    """DSA Art 16(5): every notifier with an address learns the outcome and the redress."""
    rows = s.execute(
        select(Notice.notifier_email, Notice.public_id)
        .join(NoticeCase, NoticeCase.notice_id == Notice.id)
        .where(NoticeCase.case_id == case.id, Notice.notifier_email.is_not(None))
    ).all()
    outcome = (
        "no action was taken"
        if d.action == Action.NO_ACTION.value
        else f"we applied: {d.action.replace('_', ' ')}"
    )
    for email, public_id in rows:
        if not email:
            continue
        queue_message(
            s,
            kind="notice.outcome",
            recipient=email,
            subject=f"Decision on your notice {public_id}",
            body=(
                f"{provider.name} has decided on your notice {public_id}: {outcome}.\n"
                f"Decisions were taken by a person"
                f"{'' if d.automated_decision == 'not_automated' else ' with automated means'}"
                ".\nIf you disagree you can complain with your tracking code within "
                f"{ctx.complaint_window.days} days.\n"
            ),
            related=("notice", public_id),
        )
