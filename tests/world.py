"""A small invented world for tests: organisations, people with every role, registries."""

from __future__ import annotations

from dataclasses import dataclass, field

from cleanit.domain.notices import Category, NoticeDraft, SourceType
from cleanit.domain.roles import OrgKind, Principal, Role
from cleanit.services import organisations, registries
from cleanit.services.authz import principal_for_user
from cleanit.services.context import Context

PASSWORD = "correct horse battery"

PEOPLE: dict[str, tuple[str, list[Role]]] = {
    # key: (organisation slug, roles)
    "reviewer": ("host-a", [Role.REVIEWER]),
    "reviewer2": ("host-a", [Role.REVIEWER]),
    "legal": ("host-a", [Role.LEGAL]),
    "legal2": ("host-a", [Role.LEGAL]),
    "complaints": ("host-a", [Role.COMPLAINTS_OFFICER]),
    "admin": ("host-a", [Role.ORG_ADMIN]),
    "auditor": ("host-a", [Role.AUDITOR]),
    "reporter": ("host-a", [Role.REPORTER]),
    "other_reviewer": ("host-b", [Role.REVIEWER]),
    "other_admin": ("host-b", [Role.ORG_ADMIN]),
    "other_complaints": ("host-b", [Role.COMPLAINTS_OFFICER]),
    "analyst": ("iru", [Role.REFERRAL_ANALYST]),
    "analyst2": ("iru", [Role.REFERRAL_ANALYST]),
    "authority": ("authority", [Role.COMPETENT_AUTHORITY]),
    "flagger": ("flagger", [Role.TRUSTED_FLAGGER]),
    "researcher": ("research", [Role.AUDITOR]),
}
ORGS = {
    "host-a": OrgKind.HOSTING_PROVIDER,
    "host-b": OrgKind.HOSTING_PROVIDER,
    "iru": OrgKind.REFERRAL_UNIT,
    "authority": OrgKind.COMPETENT_AUTHORITY,
    "flagger": OrgKind.TRUSTED_FLAGGER,
    "research": OrgKind.RESEARCH,
}


@dataclass
class World:
    ctx: Context
    principals: dict[str, Principal] = field(default_factory=dict)
    tokens: dict[str, str] = field(default_factory=dict)
    user_ids: dict[str, int] = field(default_factory=dict)
    org_ids: dict[str, int] = field(default_factory=dict)
    provision_id: int = 0
    clause_version_id: int = 0

    def p(self, who: str) -> Principal:
        return self.principals[who]

    def auth(self, who: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[who]}"}


def build_world(ctx: Context) -> World:
    w = World(ctx)
    for slug, kind in ORGS.items():
        org = organisations.create_organisation(
            ctx,
            slug=slug,
            name=f"Org {slug}",
            kind=kind,
            webhook_url="https://platform.example.org/hook"
            if kind is OrgKind.HOSTING_PROVIDER
            else None,
        )
        w.org_ids[slug] = org.id
    for who, (org, roles) in PEOPLE.items():
        user = organisations.create_user(
            ctx,
            org_slug=org,
            email=f"{who}@{org}.example.org",
            name=who,
            password=PASSWORD,
            roles=roles,
        )
        w.user_ids[who] = user.id
        t = organisations.issue_token(ctx, org_slug=org, name=who, roles=roles, user_id=user.id)
        w.tokens[who] = t.token
        with ctx.sessions() as s:
            w.principals[who] = principal_for_user(s, user.id)
    provision = registries.add_legal_provision(
        ctx,
        None,
        jurisdiction="EU",
        instrument="Directive (EU) 2017/541",
        article="Art 5",
        title="Public provocation",
    )
    w.provision_id = provision.id
    clause = registries.publish_terms_clause(
        ctx,
        w.p("legal"),
        key="violent-extremism",
        title="Violent extremism",
        text="No content supporting violent extremist organisations.",
    )
    w.clause_version_id = clause.version_id
    return w


def notice(
    url: str = "https://host-a.example.org/v/1",
    *,
    provider: str = "host-a",
    source: SourceType = SourceType.END_USER,
    **kw: object,
) -> NoticeDraft:
    fields: dict[str, object] = {
        "provider": provider,
        "source_type": source,
        "category": Category.RISK_FOR_PUBLIC_SECURITY,
        "explanation": "It calls on people to join an invented violent group.",
        "locations": (url,),
        "jurisdiction": "DE",
        "good_faith": True,
        "notifier_name": "Pat Public",
        "notifier_email": "pat@public.example.net",
    }
    fields.update(kw)
    return NoticeDraft(**fields)  # type: ignore[arg-type]
