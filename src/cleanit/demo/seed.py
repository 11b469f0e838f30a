"""Seed the invented demo data once."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func, select

from cleanit.adapters.db.models import DemoSitePost, Organisation
from cleanit.domain.notices import Category, NoticeDraft, SourceType
from cleanit.domain.roles import ROLES_BY_ORG_KIND, OrgKind, Principal, Role
from cleanit.services import banks, content, notices, organisations, registries
from cleanit.services.context import Context

PASSWORD = "demo-password-123"  # noqa: S105 - invented demo accounts, printed on start
PROVIDER = "example-video"


@dataclass(frozen=True)
class DemoLogin:
    email: str
    roles: str
    organisation: str


USERS: list[tuple[str, str, str, list[Role]]] = [
    (PROVIDER, "reviewer@video.example.org", "Rita Reviewer", [Role.REVIEWER]),
    (PROVIDER, "reviewer2@video.example.org", "Ravi Reviewer", [Role.REVIEWER]),
    (PROVIDER, "legal@video.example.org", "Lena Legal", [Role.LEGAL]),
    (PROVIDER, "complaints@video.example.org", "Chris Complaints", [Role.COMPLAINTS_OFFICER]),
    (PROVIDER, "admin@video.example.org", "Ada Admin", [Role.ORG_ADMIN]),
    (PROVIDER, "auditor@video.example.org", "Otto Auditor", [Role.AUDITOR]),
    ("example-iru", "analyst@iru.example.org", "Ana Analyst", [Role.REFERRAL_ANALYST]),
    ("example-iru", "analyst2@iru.example.org", "Bo Analyst", [Role.REFERRAL_ANALYST]),
    (
        "example-authority",
        "officer@authority.example.org",
        "Olga Officer",
        [Role.COMPETENT_AUTHORITY],
    ),
    ("example-flagger", "flagger@flagger.example.org", "Finn Flagger", [Role.TRUSTED_FLAGGER]),
]

PROVISIONS = [
    ("EU", "Directive (EU) 2017/541", "Art 3", "Terrorist offences"),
    ("EU", "Directive (EU) 2017/541", "Art 4", "Offences relating to a terrorist group"),
    ("EU", "Directive (EU) 2017/541", "Art 5", "Public provocation to commit a terrorist offence"),
    ("EU", "Directive (EU) 2017/541", "Art 6", "Recruitment for terrorism"),
    ("EU", "Directive (EU) 2017/541", "Art 7", "Providing training for terrorism"),
    ("EU", "Regulation (EU) 2021/784", "Art 2(7)", "Definition of terrorist content"),
]

POSTS = [
    (
        "sunset-timelapse",
        "Sunset timelapse",
        "A calm timelapse of clouds at sunset.",
        "mila@users.example.net",
    ),
    (
        "blue-squares",
        "Blue squares",
        "Generated shapes standing in for a flagged upload (demo stand-in; nothing real).",
        "uploader7@users.example.net",
    ),
    (
        "gradient-poster",
        "Gradient poster",
        "A gradient poster with rendered text (demo stand-in; nothing real).",
        "poster@users.example.net",
    ),
    ("cooking-tips", "Cooking tips", "Ten tips for a better risotto.", "chef@users.example.net"),
]


def is_seeded(ctx: Context) -> bool:
    with ctx.sessions() as s:
        return bool(
            s.scalar(
                select(func.count()).select_from(Organisation).where(Organisation.slug == PROVIDER)
            )
        )


def org_principal(ctx: Context, slug: str) -> Principal:
    org = organisations.org_by_slug(ctx, slug)
    kind = OrgKind(org.kind)
    return Principal(
        organisation_id=org.id, org_kind=kind, roles=ROLES_BY_ORG_KIND[kind], label="demo-seed"
    )


def seed(ctx: Context) -> list[DemoLogin]:
    """Create the demo organisations, people, registries, site posts and two notices."""
    if is_seeded(ctx):
        return logins()
    base = ctx.base_url
    organisations.create_organisation(
        ctx,
        slug=PROVIDER,
        name="Example Video (demo hosting site)",
        kind=OrgKind.HOSTING_PROVIDER,
        contact_email="trust@video.example.org",
        webhook_url=f"{base}/demo-site/webhook",
    )
    organisations.create_organisation(
        ctx, slug="example-iru", name="Example Referral Unit", kind=OrgKind.REFERRAL_UNIT
    )
    organisations.create_organisation(
        ctx,
        slug="example-authority",
        name="Example Competent Authority",
        kind=OrgKind.COMPETENT_AUTHORITY,
    )
    organisations.create_organisation(
        ctx, slug="example-flagger", name="Example Trusted Flagger", kind=OrgKind.TRUSTED_FLAGGER
    )
    for org, email, name, roles in USERS:
        organisations.create_user(
            ctx, org_slug=org, email=email, name=name, password=PASSWORD, roles=roles
        )
    for jur, instrument, article, title in PROVISIONS:
        registries.add_legal_provision(
            ctx, None, jurisdiction=jur, instrument=instrument, article=article, title=title
        )
    provider = org_principal(ctx, PROVIDER)
    registries.publish_terms_clause(
        ctx,
        provider,
        key="violent-extremism",
        title="Violent extremism",
        text="We do not allow content that praises, supports or represents violent extremist "
        "organisations or incites terrorist offences.",
    )
    registries.publish_terms_clause(
        ctx,
        provider,
        key="graphic-violence",
        title="Graphic violence",
        text="We label or restrict graphic violence that has documentary value and remove it "
        "otherwise.",
    )
    with ctx.transaction() as s:
        for slug, title, body, author in POSTS:
            s.add(
                DemoSitePost(
                    slug=slug, title=title, body=body, author_email=author, state="available"
                )
            )
    for slug, _, _, author in POSTS:
        content.register_content(
            ctx,
            provider,
            url=f"{base}/demo-site/posts/{slug}",
            uploader_ref=author.split("@")[0],
            uploader_email=author,
        )
    _seed_bank(ctx, provider)
    notices.receive_notice(
        ctx,
        org_principal(ctx, "example-iru"),
        NoticeDraft(
            provider=PROVIDER,
            source_type=SourceType.REFERRAL_UNIT,
            category=Category.RISK_FOR_PUBLIC_SECURITY,
            explanation="Referral: the post appears to glorify an invented violent group "
            "(demo data).",
            locations=(f"{base}/demo-site/posts/blue-squares",),
            jurisdiction="DE",
            good_faith=True,
            keywords=("KEYWORD_TERRORIST_CONTENT",),
        ),
    )
    notices.receive_notice(
        ctx,
        Principal(None, None, frozenset()),
        NoticeDraft(
            provider=PROVIDER,
            source_type=SourceType.END_USER,
            category=Category.RISK_FOR_PUBLIC_SECURITY,
            explanation="This poster seems to call for violence (demo report).",
            locations=(f"{base}/demo-site/posts/gradient-poster",),
            jurisdiction="NL",
            good_faith=True,
            notifier_name="Pat Public",
            notifier_email="pat@public.example.net",
        ),
    )
    return logins()


BANK = "demo-known-content"


def _seed_bank(ctx: Context, provider: Principal) -> None:
    """A review bank holding the signals of generated media standing in for known content:
    PDQ of pictures, vPDQ of a clip, the MinHash of a leaflet."""
    from cleanit.adapters.content import hash_content_bytes
    from cleanit.demo.images import KNOWN, KNOWN_TEXT, clip, jpeg, known

    bank = banks.create_bank(
        ctx,
        provider,
        name=BANK,
        labels=["entity:invented-garden-club"],
        description="Demo stand-ins: generated shapes, NOT real content. Known items are "
        "matched here so a reviewer looks at their re-uploads.",
    )
    listed = [(jpeg(known(slug)), "image/jpeg") for slug in KNOWN]
    listed += [(clip(), "video/mp4"), (KNOWN_TEXT.encode(), "text/plain")]
    for data, content_type in listed:
        for result in hash_content_bytes(data, content_type):
            if result.hash is not None:
                banks.add_entry(
                    ctx,
                    provider,
                    bank.id,
                    signal_type=result.signal_type.value,
                    value=result.hash.value,
                )


def logins() -> list[DemoLogin]:
    return [
        DemoLogin(email, ", ".join(r.value for r in roles), org) for org, email, _, roles in USERS
    ]
