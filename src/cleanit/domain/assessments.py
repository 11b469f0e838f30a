"""Assessments: a reasoned finding on a case, citing a legal provision or a terms clause.

The legal-basis principle lives here: only referral units, hotlines, competent authorities (and
courts) may record content as *illegal*, always citing a legal provision, and only after a
second person confirms (four eyes). A hosting provider records *incompatible with terms*,
citing the terms clause version in force — never the reverse.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from cleanit.domain.errors import Forbidden, InvalidInput, PrincipleViolation
from cleanit.domain.roles import OrgKind, Permission, Principal


class Finding(StrEnum):
    ILLEGAL = "illegal"
    NOT_ILLEGAL = "not_illegal"
    INCOMPATIBLE_WITH_TERMS = "incompatible_with_terms"
    COMPATIBLE_WITH_TERMS = "compatible_with_terms"


class AssessmentStatus(StrEnum):
    PROPOSED = "proposed"  # waiting for the second person
    CONFIRMED = "confirmed"


LEGAL_FINDINGS = frozenset({Finding.ILLEGAL, Finding.NOT_ILLEGAL})
TERMS_FINDINGS = frozenset({Finding.INCOMPATIBLE_WITH_TERMS, Finding.COMPATIBLE_WITH_TERMS})
ILLEGALITY_ORG_KINDS = frozenset(
    {OrgKind.REFERRAL_UNIT, OrgKind.HOTLINE, OrgKind.COMPETENT_AUTHORITY}
)


@dataclass(frozen=True, slots=True)
class AssessmentRequest:
    finding: Finding
    explanation: str
    legal_provision_id: int | None = None
    terms_clause_version_id: int | None = None
    # TCO Art 1(3): educational, journalistic, artistic or research purposes were considered.
    exemption_considered: bool = False


def check_assessment(principal: Principal, request: AssessmentRequest) -> AssessmentStatus:
    """Apply the legal-basis principle. Returns the status the new assessment starts in."""
    if len(request.explanation.strip()) < 10:
        raise InvalidInput("explain the finding (at least 10 characters)", field="explanation")
    if request.finding in LEGAL_FINDINGS:
        if principal.org_kind not in ILLEGALITY_ORG_KINDS or not principal.can(
            Permission.ASSESS_ILLEGAL
        ):
            raise Forbidden(
                "only a referral unit, hotline or competent authority may assess legality; "
                "a hosting provider records whether content is incompatible with its terms",
                field="finding",
            )
        if request.legal_provision_id is None or request.terms_clause_version_id is not None:
            raise InvalidInput(
                "a legal finding must cite exactly one legal provision", field="legal_provision_id"
            )
        if request.finding is Finding.ILLEGAL and not request.exemption_considered:
            raise PrincipleViolation(
                "confirm that the educational, journalistic, artistic and research exemption "
                "(TCO Art 1(3)) was considered",
                field="exemption_considered",
            )
        # Illegality needs a second person; a 'not illegal' finding restricts nobody.
        if request.finding is Finding.ILLEGAL:
            return AssessmentStatus.PROPOSED
        return AssessmentStatus.CONFIRMED
    if principal.org_kind is not OrgKind.HOSTING_PROVIDER or not principal.can(
        Permission.ASSESS_TERMS
    ):
        raise Forbidden(
            "only the hosting provider's reviewers assess content against its terms",
            field="finding",
        )
    if request.terms_clause_version_id is None or request.legal_provision_id is not None:
        raise InvalidInput(
            "a terms finding must cite exactly one terms clause version",
            field="terms_clause_version_id",
        )
    return AssessmentStatus.CONFIRMED


def check_confirmation(
    principal: Principal, *, author_user_id: int | None, author_org_id: int
) -> None:
    """Four eyes: a second person of the same organisation, allowed to confirm, not the author."""
    if principal.organisation_id != author_org_id or not principal.can(Permission.CONFIRM_ILLEGAL):
        raise Forbidden(
            "only a colleague in the assessing organisation may confirm", field="assessment"
        )
    if principal.user_id is None or principal.user_id == author_user_id:
        raise PrincipleViolation(
            "a finding of illegality needs a second person: the author cannot confirm it",
            field="assessment",
        )
