"""Assessments: reasoned findings citing a legal provision or a terms clause version."""

from __future__ import annotations

from sqlalchemy.orm import Session

from cleanit.adapters.db.models import Assessment, LegalProvision
from cleanit.domain.assessments import (
    AssessmentRequest,
    AssessmentStatus,
    check_assessment,
    check_confirmation,
)
from cleanit.domain.cases import OPEN_STATES, CaseState
from cleanit.domain.errors import Conflict, InvalidInput, NotFound
from cleanit.domain.roles import Principal
from cleanit.services import audit
from cleanit.services.cases import visible_case
from cleanit.services.context import Context
from cleanit.services.registries import clause_reference, clause_version_in_force


def assess(
    ctx: Context, principal: Principal, case_id: int, request: AssessmentRequest
) -> Assessment:
    status = check_assessment(principal, request)  # who may find what: the legal-basis rule
    with ctx.transaction() as s:
        case = visible_case(s, principal, case_id, lock=True)
        if CaseState(case.state) not in OPEN_STATES:
            raise Conflict(f"the case is '{case.state}': assessments are closed", field="case")
        if (
            request.legal_provision_id is not None
            and s.get(LegalProvision, request.legal_provision_id) is None
        ):
            raise InvalidInput("no such legal provision", field="legal_provision_id")
        if request.terms_clause_version_id is not None:
            clause, version = clause_reference(s, request.terms_clause_version_id)
            if clause.organisation_id != case.provider_id:
                raise InvalidInput(
                    "cite a clause of this provider's terms", field="terms_clause_version_id"
                )
            current = clause_version_in_force(s, clause.id, ctx.now())
            if current is None or current.id != version.id:
                raise InvalidInput(
                    f"cite the version in force of '{clause.key}' "
                    f"(v{current.version if current else '?'}), not v{version.version}",
                    field="terms_clause_version_id",
                )
        a = Assessment(
            case_id=case.id,
            organisation_id=principal.organisation_id,
            author_id=principal.user_id,
            finding=request.finding.value,
            legal_provision_id=request.legal_provision_id,
            terms_clause_version_id=request.terms_clause_version_id,
            explanation=request.explanation.strip(),
            exemption_considered=request.exemption_considered,
            status=status.value,
            confirmed_at=ctx.now() if status is AssessmentStatus.CONFIRMED else None,
        )
        s.add(a)
        s.flush()
        audit.record(
            s,
            principal,
            "assessment.recorded",
            "case",
            case.id,
            {"assessment_id": a.id, "finding": a.finding, "status": a.status},
            organisation_id=case.provider_id,
            at=ctx.now(),
        )
        return a


def confirm(ctx: Context, principal: Principal, assessment_id: int) -> Assessment:
    """The second person confirms a finding of illegality (four eyes)."""
    with ctx.transaction() as s:
        a = s.get(Assessment, assessment_id, with_for_update=True)
        if a is None:
            raise NotFound("no such assessment")
        case = visible_case(s, principal, a.case_id)
        check_confirmation(principal, author_user_id=a.author_id, author_org_id=a.organisation_id)
        if a.status == AssessmentStatus.CONFIRMED.value:
            raise Conflict("the assessment is already confirmed")
        a.status = AssessmentStatus.CONFIRMED.value
        a.confirmed_by = principal.user_id
        a.confirmed_at = ctx.now()
        audit.record(
            s,
            principal,
            "assessment.confirmed",
            "case",
            case.id,
            {"assessment_id": a.id},
            organisation_id=case.provider_id,
            at=ctx.now(),
        )
        return a


def basis_reference(s: Session, a: Assessment) -> tuple[str, str | None]:
    """Human-readable citation of the assessment's basis, and a URL if any."""
    if a.legal_provision_id is not None:
        p = s.get(LegalProvision, a.legal_provision_id)
        assert p is not None
        return f"{p.instrument}, {p.article} ({p.jurisdiction})", p.url
    assert a.terms_clause_version_id is not None
    clause, v = clause_reference(s, a.terms_clause_version_id)
    return f"Terms clause '{clause.key}' ({clause.title}), version {v.version}", None
