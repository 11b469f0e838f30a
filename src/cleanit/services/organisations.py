"""Organisations, people and API tokens."""

from __future__ import annotations

import re
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from cleanit.adapters.db.models import ApiToken, Organisation, User
from cleanit.adapters.passwords import digest, new_secret
from cleanit.adapters.webhooks import UnsafeTarget, check_target
from cleanit.domain.errors import Conflict, InvalidInput, NotFound
from cleanit.domain.notices import EU_EEA
from cleanit.domain.roles import OrgKind, Permission, Principal, Role, check_roles_fit
from cleanit.services import audit
from cleanit.services.authz import check_password, require, require_member
from cleanit.services.context import Context

_SLUG = re.compile(r"^[a-z0-9][a-z0-9-]{1,62}$")
OPERATOR = "operator"  # the local operator at the command line


def create_organisation(
    ctx: Context,
    *,
    slug: str,
    name: str,
    kind: OrgKind,
    contact_email: str | None = None,
    webhook_url: str | None = None,
    country: str | None = None,
) -> Organisation:
    """Operator use case (CLI, demo seed): there is no API to create organisations.

    ``country``: the EU/EEA Member State of a competent authority (threat-to-life referrals
    for that Member State go to it)."""
    if not _SLUG.match(slug):
        raise InvalidInput("slug: 2-63 lower-case letters, digits or dashes", field="slug")
    if country is not None and country.strip().upper() not in EU_EEA:
        raise InvalidInput("country: an EU/EEA country code such as 'DE'", field="country")
    with ctx.transaction() as s:
        if s.scalar(select(Organisation.id).where(Organisation.slug == slug)):
            raise Conflict(f"an organisation '{slug}' already exists", field="slug")
        org = Organisation(
            slug=slug,
            name=name.strip(),
            kind=kind.value,
            contact_email=contact_email,
            webhook_url=webhook_url,
            webhook_secret=new_secret() if webhook_url else None,
            country=country.strip().upper() if country else None,
        )
        s.add(org)
        s.flush()
        audit.record(
            s,
            OPERATOR,
            "organisation.created",
            "organisation",
            org.id,
            {"slug": slug, "kind": kind.value},
            organisation_id=org.id,
            at=ctx.now(),
        )
        return org


def org_by_slug(ctx: Context, slug: str) -> Organisation:
    with ctx.sessions() as s:
        org = s.scalar(select(Organisation).where(Organisation.slug == slug))
        if org is None:
            raise NotFound(f"no organisation '{slug}'", field="organisation")
        return org


def list_organisations(ctx: Context) -> list[Organisation]:
    with ctx.sessions() as s:
        return list(s.scalars(select(Organisation).order_by(Organisation.id)))


def _org_to_staff(
    s: Session, org_slug: str, roles: list[Role], principal: Principal | None
) -> Organisation:
    """The organisation that gets a person or token with ``roles``, if the caller may do it
    (``principal`` None is the local operator) and the roles fit its kind."""
    org = s.scalar(select(Organisation).where(Organisation.slug == org_slug))
    if org is None:
        raise NotFound(f"no organisation '{org_slug}'", field="organisation")
    if principal is not None:
        require(principal, Permission.MANAGE_ORGANISATION)
        require_member(principal, org.id)
    check_roles_fit(OrgKind(org.kind), frozenset(roles))
    return org


def create_user(
    ctx: Context,
    *,
    org_slug: str,
    email: str,
    name: str,
    password: str,
    roles: list[Role],
    principal: Principal | None = None,
) -> User:
    """Create a person. ``principal`` None is the local operator; otherwise an org admin."""
    email = email.strip().lower()
    if "@" not in email:
        raise InvalidInput("not a valid e-mail address", field="email")
    if len(password) < 12:
        raise InvalidInput("passwords need at least 12 characters", field="password")
    if not roles:
        raise InvalidInput("give at least one role", field="roles")
    with ctx.transaction() as s:
        org = _org_to_staff(s, org_slug, roles, principal)
        user = User(
            organisation_id=org.id,
            email=email,
            name=name.strip(),
            password_hash=ctx.passwords.hash(password),
            roles=[r.value for r in roles],
            active=True,
        )
        s.add(user)
        try:
            s.flush()
        except IntegrityError:
            raise Conflict(f"a user with e-mail {email} already exists", field="email") from None
        audit.record(
            s,
            principal or OPERATOR,
            "user.created",
            "user",
            user.id,
            {"roles": user.roles},
            organisation_id=org.id,
            at=ctx.now(),
        )
        return user


@dataclass(frozen=True)
class IssuedToken:
    id: int
    token: str  # shown once
    roles: list[str]


def issue_token(
    ctx: Context,
    *,
    org_slug: str,
    name: str,
    roles: list[Role],
    user_id: int | None = None,
    principal: Principal | None = None,
) -> IssuedToken:
    with ctx.transaction() as s:
        org = _org_to_staff(s, org_slug, roles, principal)
        secret = new_secret()
        tok = ApiToken(
            organisation_id=org.id,
            user_id=user_id,
            name=name,
            token_hash=digest(secret),
            roles=[r.value for r in roles],
        )
        s.add(tok)
        s.flush()
        audit.record(
            s,
            principal or OPERATOR,
            "token.issued",
            "token",
            tok.id,
            {"roles": tok.roles, "name": name},
            organisation_id=org.id,
            at=ctx.now(),
        )
        return IssuedToken(tok.id, secret, tok.roles)


def login(ctx: Context, email: str, password: str) -> IssuedToken:
    """Exchange a person's e-mail and password for a personal API token with their roles."""
    with ctx.transaction() as s:
        user = check_password(s, ctx.passwords, email, password)
        org = s.get(Organisation, user.organisation_id)
        assert org is not None
        secret = new_secret()
        tok = ApiToken(
            organisation_id=org.id,
            user_id=user.id,
            name=f"login {user.email}",
            token_hash=digest(secret),
            roles=list(user.roles),
        )
        s.add(tok)
        s.flush()
        audit.record(
            s,
            f"user:{user.id}",
            "user.login",
            "user",
            user.id,
            {},
            organisation_id=org.id,
            at=ctx.now(),
        )
        return IssuedToken(tok.id, secret, tok.roles)


def set_webhook(
    ctx: Context, principal: Principal, url: str, *, allow_private: bool
) -> tuple[str, str]:
    """Point the platform webhooks of the principal's organisation to ``url``.

    Returns (url, secret): the secret signs every webhook body and is shown only here.
    """
    require(principal, Permission.MANAGE_ORGANISATION)
    try:
        check_target(url, allow_private=allow_private)
    except UnsafeTarget as exc:
        raise InvalidInput(str(exc), field="webhook_url") from exc
    with ctx.transaction() as s:
        org = s.get(Organisation, principal.organisation_id)
        if org is None or org.kind != OrgKind.HOSTING_PROVIDER.value:
            raise InvalidInput(
                "only hosting providers receive platform webhooks", field="webhook_url"
            )
        org.webhook_url = url
        org.webhook_secret = new_secret()
        audit.record(
            s,
            principal,
            "organisation.webhook_set",
            "organisation",
            org.id,
            {"url": url},
            at=ctx.now(),
        )
        return url, org.webhook_secret
