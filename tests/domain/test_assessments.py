"""Assessments: the legal-basis principle (who may record what) and four eyes on illegality."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cleanit.domain.assessments import (
    AssessmentRequest,
    AssessmentStatus,
    Finding,
    check_assessment,
    check_confirmation,
)
from cleanit.domain.errors import Forbidden, InvalidInput, PrincipleViolation
from cleanit.domain.roles import ROLES_BY_ORG_KIND, OrgKind, Principal, Role

EXPLANATION = "Public provocation to join an invented violent group."
LEGAL = {Finding.ILLEGAL, Finding.NOT_ILLEGAL}
TERMS = {Finding.INCOMPATIBLE_WITH_TERMS, Finding.COMPATIBLE_WITH_TERMS}
# Written out here, not imported: who may record a finding of (non-)illegality.
MAY_ASSESS_LEGALITY = {OrgKind.REFERRAL_UNIT, OrgKind.HOTLINE, OrgKind.COMPETENT_AUTHORITY}


def principal(
    kind: OrgKind,
    roles: set[Role] | frozenset[Role] | None = None,
    *,
    org_id: int = 1,
    user_id: int | None = 100,
) -> Principal:
    return Principal(
        organisation_id=org_id,
        org_kind=kind,
        roles=frozenset(ROLES_BY_ORG_KIND[kind] if roles is None else roles),
        user_id=user_id,
    )


def cited(finding: Finding, **kw: object) -> AssessmentRequest:
    """A request citing the right kind of basis for the finding."""
    basis: dict[str, object] = (
        {"legal_provision_id": 3} if finding in LEGAL else {"terms_clause_version_id": 5}
    )
    basis.setdefault("exemption_considered", True)
    basis.update(kw)
    return AssessmentRequest(finding=finding, explanation=EXPLANATION, **basis)  # type: ignore[arg-type]


@pytest.mark.parametrize("kind", list(OrgKind))
@pytest.mark.parametrize("finding", list(Finding))
def test_who_may_record_which_finding(kind: OrgKind, finding: Finding) -> None:
    """Every organisation kind (with every role it may hold) × every finding."""
    p = principal(kind)
    allowed = kind in MAY_ASSESS_LEGALITY if finding in LEGAL else kind is OrgKind.HOSTING_PROVIDER
    if allowed:
        status = check_assessment(p, cited(finding))
        expected = (
            AssessmentStatus.PROPOSED if finding is Finding.ILLEGAL else AssessmentStatus.CONFIRMED
        )
        assert status is expected
    else:
        with pytest.raises(Forbidden) as exc:
            check_assessment(p, cited(finding))
        assert exc.value.field == "finding"


@pytest.mark.parametrize(
    ("kind", "role", "finding"),
    [
        (OrgKind.REFERRAL_UNIT, Role.REPORTER, Finding.ILLEGAL),
        (OrgKind.REFERRAL_UNIT, Role.AUDITOR, Finding.NOT_ILLEGAL),
        (OrgKind.COMPETENT_AUTHORITY, Role.ORG_ADMIN, Finding.ILLEGAL),
        (OrgKind.HOSTING_PROVIDER, Role.REPORTER, Finding.INCOMPATIBLE_WITH_TERMS),
        (OrgKind.HOSTING_PROVIDER, Role.COMPLAINTS_OFFICER, Finding.COMPATIBLE_WITH_TERMS),
        (OrgKind.HOSTING_PROVIDER, Role.ORG_ADMIN, Finding.INCOMPATIBLE_WITH_TERMS),
        # A role from another kind of organisation does not carry over.
        (OrgKind.HOSTING_PROVIDER, Role.REFERRAL_ANALYST, Finding.ILLEGAL),
        (OrgKind.REFERRAL_UNIT, Role.REVIEWER, Finding.INCOMPATIBLE_WITH_TERMS),
    ],
)
def test_the_right_organisation_is_not_enough_without_the_right_role(
    kind: OrgKind, role: Role, finding: Finding
) -> None:
    with pytest.raises(Forbidden):
        check_assessment(principal(kind, {role}), cited(finding))


@pytest.mark.parametrize(
    ("kind", "role"),
    [
        (OrgKind.REFERRAL_UNIT, Role.REFERRAL_ANALYST),
        (OrgKind.HOTLINE, Role.REFERRAL_ANALYST),
        (OrgKind.COMPETENT_AUTHORITY, Role.COMPETENT_AUTHORITY),
    ],
)
def test_illegality_requires_the_exemptions_to_have_been_considered(
    kind: OrgKind, role: Role
) -> None:
    p = principal(kind, {role})
    with pytest.raises(PrincipleViolation) as exc:
        check_assessment(p, cited(Finding.ILLEGAL, exemption_considered=False))
    assert exc.value.field == "exemption_considered"
    # A finding that restricts nobody does not need it.
    assert check_assessment(p, cited(Finding.NOT_ILLEGAL, exemption_considered=False)) is (
        AssessmentStatus.CONFIRMED
    )
    assert check_assessment(p, cited(Finding.ILLEGAL)) is AssessmentStatus.PROPOSED


@pytest.mark.parametrize("finding", list(Finding))
def test_each_finding_cites_exactly_one_basis_of_its_own_kind(finding: Finding) -> None:
    p = principal(OrgKind.REFERRAL_UNIT if finding in LEGAL else OrgKind.HOSTING_PROVIDER)
    field = "legal_provision_id" if finding in LEGAL else "terms_clause_version_id"
    wrong_basis = [
        {"legal_provision_id": None, "terms_clause_version_id": None},
        {"legal_provision_id": 3, "terms_clause_version_id": 5},
        # the other kind of basis only
        {"legal_provision_id": None, "terms_clause_version_id": 5}
        if finding in LEGAL
        else {"legal_provision_id": 3, "terms_clause_version_id": None},
    ]
    for basis in wrong_basis:
        req = AssessmentRequest(
            finding=finding, explanation=EXPLANATION, exemption_considered=True, **basis
        )  # type: ignore[arg-type]
        with pytest.raises(InvalidInput) as exc:
            check_assessment(p, req)
        assert exc.value.field == field


@pytest.mark.parametrize("explanation", ["", "too short", "   x   "])
def test_a_finding_is_explained(explanation: str) -> None:
    req = AssessmentRequest(
        finding=Finding.INCOMPATIBLE_WITH_TERMS, explanation=explanation, terms_clause_version_id=5
    )
    with pytest.raises(InvalidInput) as exc:
        check_assessment(principal(OrgKind.HOSTING_PROVIDER), req)
    assert exc.value.field == "explanation"


@given(
    kind=st.sampled_from(OrgKind),
    roles=st.sets(st.sampled_from(Role), min_size=1, max_size=4),
    finding=st.sampled_from(Finding),
)
def test_only_illegal_findings_wait_for_a_second_person(
    kind: OrgKind, roles: set[Role], finding: Finding
) -> None:
    try:
        status = check_assessment(principal(kind, roles), cited(finding))
    except Forbidden:
        return
    if finding in LEGAL:
        assert kind in MAY_ASSESS_LEGALITY
        assert roles & {Role.REFERRAL_ANALYST, Role.COMPETENT_AUTHORITY}
    else:
        assert kind is OrgKind.HOSTING_PROVIDER and roles & {Role.REVIEWER, Role.LEGAL}
    assert (status is AssessmentStatus.PROPOSED) == (finding is Finding.ILLEGAL)


# --- four eyes ---------------------------------------------------------------------------------

AUTHOR_ORG, AUTHOR = 10, 1000


def analyst(
    *,
    org_id: int = AUTHOR_ORG,
    user_id: int | None = 1001,
    kind: OrgKind = OrgKind.REFERRAL_UNIT,
    role: Role = Role.REFERRAL_ANALYST,
) -> Principal:
    return principal(kind, {role}, org_id=org_id, user_id=user_id)


def test_a_colleague_confirms() -> None:
    check_confirmation(analyst(), author_user_id=AUTHOR, author_org_id=AUTHOR_ORG)  # no error


def test_the_author_cannot_confirm_their_own_finding() -> None:
    with pytest.raises(PrincipleViolation) as exc:
        check_confirmation(analyst(user_id=AUTHOR), author_user_id=AUTHOR, author_org_id=AUTHOR_ORG)
    assert exc.value.field == "assessment"


def test_a_token_without_a_person_cannot_be_the_second_person() -> None:
    token = Principal(
        organisation_id=AUTHOR_ORG,
        org_kind=OrgKind.REFERRAL_UNIT,
        roles=frozenset({Role.REFERRAL_ANALYST}),
        user_id=None,
        token_id=7,
    )
    with pytest.raises(PrincipleViolation):
        check_confirmation(token, author_user_id=AUTHOR, author_org_id=AUTHOR_ORG)
    # ...not even when the author was a machine token too.
    with pytest.raises(PrincipleViolation):
        check_confirmation(token, author_user_id=None, author_org_id=AUTHOR_ORG)


@pytest.mark.parametrize(
    "other",
    [
        analyst(org_id=AUTHOR_ORG + 1),  # an analyst of another referral unit
        analyst(
            org_id=AUTHOR_ORG + 1, kind=OrgKind.COMPETENT_AUTHORITY, role=Role.COMPETENT_AUTHORITY
        ),
        analyst(org_id=AUTHOR_ORG + 2, kind=OrgKind.HOSTING_PROVIDER, role=Role.LEGAL),
        analyst(role=Role.REPORTER),  # same organisation, but may not confirm
        analyst(role=Role.AUDITOR),
        analyst(role=Role.ORG_ADMIN),
    ],
)
def test_only_colleagues_allowed_to_confirm_may_confirm(other: Principal) -> None:
    with pytest.raises(Forbidden) as exc:
        check_confirmation(other, author_user_id=AUTHOR, author_org_id=AUTHOR_ORG)
    assert exc.value.field == "assessment"
