"""Organisations, roles and what each role may do.

Persisted names are explicit string values, never derived from class names.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class OrgKind(StrEnum):
    HOSTING_PROVIDER = "hosting_provider"
    REFERRAL_UNIT = "referral_unit"
    HOTLINE = "hotline"
    COMPETENT_AUTHORITY = "competent_authority"
    TRUSTED_FLAGGER = "trusted_flagger"
    RESEARCH = "research"


class Role(StrEnum):
    REPORTER = "reporter"
    TRUSTED_FLAGGER = "trusted_flagger"
    REFERRAL_ANALYST = "referral_analyst"
    COMPETENT_AUTHORITY = "competent_authority"
    REVIEWER = "reviewer"
    LEGAL = "legal"
    COMPLAINTS_OFFICER = "complaints_officer"
    ORG_ADMIN = "org_admin"
    AUDITOR = "auditor"


class Permission(StrEnum):
    SUBMIT_NOTICE = "notices:submit"
    READ_NOTICES = "notices:read"
    READ_CASES = "cases:read"
    ASSIGN_CASES = "cases:assign"
    ASSESS_TERMS = "assessments:terms"
    ASSESS_ILLEGAL = "assessments:illegal"
    CONFIRM_ILLEGAL = "assessments:confirm"
    DECIDE = "decisions:decide"
    APPROVE_DECISION = "decisions:approve"
    DECIDE_COMPLAINT = "complaints:decide"
    READ_COMPLAINTS = "complaints:read"
    MANAGE_REGISTRY = "registries:manage"
    MANAGE_ORGANISATION = "organisation:manage"
    READ_AUDIT = "audit:read"
    CONFIRM_PLATFORM_ACTION = "platform:confirm"
    READ_BANKS = "banks:read"
    MANAGE_BANKS = "banks:manage"
    MATCH_CONTENT = "matching:run"
    # Preservation (TCO Art 6): the holds' metadata; opening the content, always with a
    # purpose; extending a hold on a reasoned request.
    READ_PRESERVATION = "preservation:read"
    ACCESS_PRESERVED = "preservation:access"
    EXTEND_PRESERVATION = "preservation:extend"
    # Law-enforcement requests (Clean IT BP10) and threat-to-life referrals (TCO Art 14(5)).
    SUBMIT_INVESTIGATION = "investigations:submit"
    READ_INVESTIGATIONS = "investigations:read"
    DECIDE_INVESTIGATION = "investigations:decide"
    REFER_THREAT_TO_LIFE = "threat_to_life:refer"
    # Removal orders (TCO Art 3): authorities issue them (and clarify, renew holds); the
    # addressee's reviewers execute them, answer with Annex III and pre-authorise execution.
    ISSUE_ORDERS = "orders:issue"
    READ_ORDERS = "orders:read"
    EXECUTE_ORDERS = "orders:execute"
    # DSA Transparency Database: see where statements stand; send a refused one again.
    READ_TDB = "tdb:read"
    SUBMIT_TDB = "tdb:submit"
    # Transparency reports (DSA Art 15, TCO Art 7): computing them from the records.
    READ_REPORTS = "reports:read"
    # Pseudonymised research exports (Clean IT BP13): an organisation's own auditor/admin,
    # or the auditor/admin of a research organisation (any provider; see services/research).
    EXPORT_RESEARCH = "research:export"


_STAFF_READ = {Permission.READ_NOTICES, Permission.READ_CASES}

ROLE_PERMISSIONS: dict[Role, frozenset[Permission]] = {
    Role.REPORTER: frozenset({Permission.SUBMIT_NOTICE}),
    Role.TRUSTED_FLAGGER: frozenset({Permission.SUBMIT_NOTICE, Permission.READ_NOTICES}),
    Role.REFERRAL_ANALYST: frozenset(
        {
            Permission.SUBMIT_NOTICE,
            *_STAFF_READ,
            Permission.ASSESS_ILLEGAL,
            Permission.CONFIRM_ILLEGAL,
            # Referral units curate hash lists of content they found illegal.
            Permission.READ_BANKS,
            Permission.MANAGE_BANKS,
        }
    ),
    Role.COMPETENT_AUTHORITY: frozenset(
        {
            Permission.SUBMIT_NOTICE,
            *_STAFF_READ,
            Permission.ASSESS_ILLEGAL,
            Permission.CONFIRM_ILLEGAL,
            # Only on holds it has standing in (it issued the order, notified or asked).
            Permission.READ_PRESERVATION,
            Permission.ACCESS_PRESERVED,
            Permission.EXTEND_PRESERVATION,
            Permission.SUBMIT_INVESTIGATION,
            Permission.READ_INVESTIGATIONS,
            Permission.ISSUE_ORDERS,
            Permission.READ_ORDERS,
        }
    ),
    # Provider staff submit own-initiative notices (what they found themselves).
    Role.REVIEWER: frozenset(
        {
            *_STAFF_READ,
            Permission.SUBMIT_NOTICE,
            Permission.ASSIGN_CASES,
            Permission.ASSESS_TERMS,
            Permission.DECIDE,
            Permission.READ_BANKS,
            Permission.MATCH_CONTENT,
            Permission.REFER_THREAT_TO_LIFE,
            Permission.READ_ORDERS,
            Permission.EXECUTE_ORDERS,
        }
    ),
    Role.LEGAL: frozenset(
        {
            *_STAFF_READ,
            Permission.SUBMIT_NOTICE,
            Permission.ASSIGN_CASES,
            Permission.ASSESS_TERMS,
            Permission.DECIDE,
            Permission.APPROVE_DECISION,
            Permission.MANAGE_REGISTRY,
            Permission.READ_BANKS,
            Permission.MANAGE_BANKS,
            Permission.MATCH_CONTENT,
            # The provider's lawyers open preserved data (with a purpose), record a court's
            # extension and answer law-enforcement requests.
            Permission.READ_PRESERVATION,
            Permission.ACCESS_PRESERVED,
            Permission.EXTEND_PRESERVATION,
            Permission.READ_INVESTIGATIONS,
            Permission.DECIDE_INVESTIGATION,
            Permission.REFER_THREAT_TO_LIFE,
            Permission.READ_ORDERS,
            Permission.EXECUTE_ORDERS,
            Permission.READ_REPORTS,
            Permission.READ_TDB,
            Permission.SUBMIT_TDB,
        }
    ),
    Role.COMPLAINTS_OFFICER: frozenset(
        {
            *_STAFF_READ,
            Permission.READ_COMPLAINTS,
            Permission.DECIDE_COMPLAINT,
            Permission.READ_ORDERS,
        }
    ),
    Role.ORG_ADMIN: frozenset(
        {
            *_STAFF_READ,
            Permission.MANAGE_ORGANISATION,
            Permission.MANAGE_REGISTRY,
            Permission.CONFIRM_PLATFORM_ACTION,
            Permission.READ_COMPLAINTS,
            Permission.READ_BANKS,
            Permission.MANAGE_BANKS,
            Permission.MATCH_CONTENT,
            # The platform's integration uploads the removed content to its hold.
            Permission.READ_PRESERVATION,
            Permission.READ_ORDERS,
            Permission.EXPORT_RESEARCH,
            Permission.READ_REPORTS,
            Permission.READ_TDB,
            Permission.SUBMIT_TDB,
        }
    ),
    Role.AUDITOR: frozenset(
        {
            *_STAFF_READ,
            Permission.READ_AUDIT,
            Permission.READ_COMPLAINTS,
            Permission.READ_BANKS,
            # Metadata and the access log of holds, never their content.
            Permission.READ_PRESERVATION,
            Permission.READ_INVESTIGATIONS,
            Permission.READ_ORDERS,
            Permission.EXPORT_RESEARCH,
            Permission.READ_TDB,
        }
    ),
}

# Which roles make sense in which kind of organisation. Only referral units, hotlines and
# competent authorities may hold the roles that record content as *illegal* (legal basis rule).
ROLES_BY_ORG_KIND: dict[OrgKind, frozenset[Role]] = {
    OrgKind.HOSTING_PROVIDER: frozenset(
        {
            Role.REVIEWER,
            Role.LEGAL,
            Role.COMPLAINTS_OFFICER,
            Role.ORG_ADMIN,
            Role.AUDITOR,
            Role.REPORTER,
        }
    ),
    OrgKind.REFERRAL_UNIT: frozenset(
        {Role.REFERRAL_ANALYST, Role.ORG_ADMIN, Role.AUDITOR, Role.REPORTER}
    ),
    OrgKind.HOTLINE: frozenset(
        {Role.REFERRAL_ANALYST, Role.ORG_ADMIN, Role.AUDITOR, Role.REPORTER}
    ),
    OrgKind.COMPETENT_AUTHORITY: frozenset(
        {Role.COMPETENT_AUTHORITY, Role.ORG_ADMIN, Role.AUDITOR, Role.REPORTER}
    ),
    OrgKind.TRUSTED_FLAGGER: frozenset({Role.TRUSTED_FLAGGER, Role.ORG_ADMIN, Role.REPORTER}),
    OrgKind.RESEARCH: frozenset({Role.AUDITOR, Role.ORG_ADMIN, Role.REPORTER}),
}


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is acting: a signed-in user or an API token, always inside one organisation.

    ``user_id`` is None for anonymous members of the public and for machine tokens.
    """

    organisation_id: int | None
    org_kind: OrgKind | None
    roles: frozenset[Role]
    user_id: int | None = None
    token_id: int | None = None
    label: str = "anonymous"

    @property
    def is_anonymous(self) -> bool:
        return self.organisation_id is None

    def can(self, permission: Permission) -> bool:
        return any(permission in ROLE_PERMISSIONS[r] for r in self.roles)


ANONYMOUS = Principal(organisation_id=None, org_kind=None, roles=frozenset())


def check_roles_fit(kind: OrgKind, roles: frozenset[Role]) -> None:
    """Refuse roles that an organisation of this kind may not hold."""
    from cleanit.domain.errors import InvalidInput

    wrong = sorted(r.value for r in roles - ROLES_BY_ORG_KIND[kind])
    if wrong:
        raise InvalidInput(
            f"a {kind.value} organisation cannot hold the role(s) {', '.join(wrong)}",
            field="roles",
        )
