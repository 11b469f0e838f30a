"""The one authorisation mechanism: who is acting, and may they do this here?

Entry points only *authenticate* (turn a token or session into a Principal). Every use case
then calls ``require`` / ``require_member`` before touching data.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from cleanit.adapters.db.models import ApiToken, Organisation, User
from cleanit.adapters.passwords import Passwords, digest
from cleanit.domain.errors import Forbidden, NotFound, Unauthenticated
from cleanit.domain.roles import OrgKind, Permission, Principal, Role
from cleanit.services.context import Context


def require(principal: Principal, permission: Permission) -> None:
    if principal.is_anonymous:
        raise Unauthenticated("sign in or send an API token to do this")
    if not principal.can(permission):
        raise Forbidden(f"your role does not allow '{permission.value}'")


def require_member(principal: Principal, organisation_id: int) -> None:
    """The data belongs to another organisation: answer as if it did not exist."""
    if principal.organisation_id != organisation_id:
        raise NotFound("no such resource")


def cached_principal(ctx: Context, token: str) -> Principal | None:
    """The principal if the token was seen in the last seconds (no I/O), else None."""
    return ctx.token_cache.get(digest(token))


def authenticate_token(ctx: Context, token: str) -> Principal:
    """The principal behind an API token (cached briefly; see TokenCache)."""
    key = digest(token)
    cached = ctx.token_cache.get(key)
    if cached is not None:
        return cached
    with ctx.sessions() as s:
        principal = principal_for_token(s, token)
    ctx.token_cache.put(key, principal)
    return principal


def principal_for_token(session: Session, token: str) -> Principal:
    row = session.execute(
        select(ApiToken, Organisation.kind, User.active)
        .join(Organisation, Organisation.id == ApiToken.organisation_id)
        .outerjoin(User, User.id == ApiToken.user_id)
        .where(ApiToken.token_hash == digest(token), ApiToken.revoked_at.is_(None))
    ).first()
    if row is None or row[2] is False:
        raise Unauthenticated("the API token is not valid (unknown, revoked or disabled)")
    tok, kind, _ = row
    return Principal(
        organisation_id=tok.organisation_id,
        org_kind=OrgKind(kind),
        roles=frozenset(Role(r) for r in tok.roles),
        user_id=tok.user_id,
        token_id=tok.id,
        label=f"token:{tok.id}",
    )


def principal_for_user(session: Session, user_id: int) -> Principal:
    row = session.execute(
        select(User, Organisation.kind)
        .join(Organisation, Organisation.id == User.organisation_id)
        .where(User.id == user_id)
    ).first()
    if row is None or not row[0].active:
        raise Unauthenticated("the account does not exist or is disabled")
    user, kind = row
    return Principal(
        organisation_id=user.organisation_id,
        org_kind=OrgKind(kind),
        roles=frozenset(Role(r) for r in user.roles),
        user_id=user.id,
        label=f"user:{user.id}",
    )


_DUMMY_HASH: list[str] = []


def check_password(session: Session, passwords: Passwords, email: str, password: str) -> User:
    user = session.scalar(select(User).where(User.email == email.strip().lower()))
    if user is None:
        # Spend the same time as a real check so response times do not reveal accounts.
        if not _DUMMY_HASH:
            _DUMMY_HASH.append(passwords.hash("not-a-password"))
        passwords.verify(_DUMMY_HASH[0], password)
        raise Unauthenticated("wrong e-mail or password")
    if not user.active or not passwords.verify(user.password_hash, password):
        raise Unauthenticated("wrong e-mail or password")
    return user
