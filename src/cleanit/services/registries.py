"""Registries of legal provisions (shared) and terms clauses (per organisation, versioned)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from cleanit.adapters.db.models import LegalProvision, TermsClause, TermsClauseVersion
from cleanit.domain.errors import Conflict, InvalidInput, NotFound
from cleanit.domain.notices import EU_EEA
from cleanit.domain.roles import Permission, Principal
from cleanit.services import audit
from cleanit.services.authz import require
from cleanit.services.context import Context

_KEY = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")


def add_legal_provision(
    ctx: Context,
    principal: Principal | None,
    *,
    jurisdiction: str,
    instrument: str,
    article: str,
    title: str,
    summary: str = "",
    url: str | None = None,
) -> LegalProvision:
    if principal is not None:
        require(principal, Permission.MANAGE_REGISTRY)
    if jurisdiction != "EU" and jurisdiction not in EU_EEA:
        raise InvalidInput(
            "jurisdiction must be 'EU' or an EU/EEA country code", field="jurisdiction"
        )
    if not instrument.strip() or not article.strip() or not title.strip():
        raise InvalidInput("instrument, article and title are required", field="instrument")
    with ctx.transaction() as s:
        p = LegalProvision(
            jurisdiction=jurisdiction,
            instrument=instrument.strip(),
            article=article.strip(),
            title=title.strip(),
            summary=summary,
            url=url,
        )
        s.add(p)
        try:
            s.flush()
        except IntegrityError:
            raise Conflict("this provision is already in the registry", field="article") from None
        audit.record(
            s,
            principal or "operator",
            "legal_provision.added",
            "legal_provision",
            p.id,
            {"jurisdiction": jurisdiction, "instrument": instrument, "article": article},
            at=ctx.now(),
        )
        return p


def list_legal_provisions(ctx: Context) -> list[LegalProvision]:
    with ctx.sessions() as s:
        return list(s.scalars(select(LegalProvision).order_by(LegalProvision.id)))


@dataclass(frozen=True)
class ClauseView:
    id: int
    key: str
    title: str
    version_id: int
    version: int
    text: str
    in_force_from: datetime


def publish_terms_clause(
    ctx: Context,
    principal: Principal,
    *,
    key: str,
    title: str,
    text: str,
    in_force_from: datetime | None = None,
    organisation_id: int | None = None,
) -> ClauseView:
    """Add a clause, or a new version of an existing clause. Earlier versions stay citable."""
    require(principal, Permission.MANAGE_REGISTRY)
    org_id = principal.organisation_id
    assert org_id is not None
    if not _KEY.match(key):
        raise InvalidInput("key: lower-case letters, digits, '.', '_' or '-'", field="key")
    if len(text.strip()) < 10:
        raise InvalidInput("the clause text is too short", field="text")
    with ctx.transaction() as s:
        clause = s.scalar(
            select(TermsClause)
            .where(TermsClause.organisation_id == org_id, TermsClause.key == key)
            .with_for_update()
        )
        if clause is None:
            clause = TermsClause(organisation_id=org_id, key=key, title=title.strip())
            s.add(clause)
            s.flush()
        else:
            clause.title = title.strip() or clause.title
        latest = (
            s.scalar(
                select(func.max(TermsClauseVersion.version)).where(
                    TermsClauseVersion.clause_id == clause.id
                )
            )
            or 0
        )
        v = TermsClauseVersion(
            clause_id=clause.id,
            version=latest + 1,
            text=text.strip(),
            in_force_from=in_force_from or ctx.now(),
        )
        s.add(v)
        s.flush()
        audit.record(
            s,
            principal,
            "terms_clause.published",
            "terms_clause",
            clause.id,
            {"key": key, "version": v.version},
            at=ctx.now(),
        )
        return ClauseView(
            clause.id, clause.key, clause.title, v.id, v.version, v.text, v.in_force_from
        )


def clause_version_in_force(s: Session, clause_id: int, at: datetime) -> TermsClauseVersion | None:
    return s.scalar(
        select(TermsClauseVersion)
        .where(TermsClauseVersion.clause_id == clause_id, TermsClauseVersion.in_force_from <= at)
        .order_by(TermsClauseVersion.version.desc())
        .limit(1)
    )


def list_terms_clauses(ctx: Context, organisation_id: int) -> list[ClauseView]:
    """Each clause with its version in force now (public: the rules must be visible)."""
    now = ctx.now()
    out: list[ClauseView] = []
    with ctx.sessions() as s:
        for clause in s.scalars(
            select(TermsClause)
            .where(TermsClause.organisation_id == organisation_id)
            .order_by(TermsClause.key)
        ):
            v = clause_version_in_force(s, clause.id, now)
            if v is not None:
                out.append(
                    ClauseView(
                        clause.id,
                        clause.key,
                        clause.title,
                        v.id,
                        v.version,
                        v.text,
                        v.in_force_from,
                    )
                )
    return out


def clause_reference(s: Session, version_id: int) -> tuple[TermsClause, TermsClauseVersion]:
    v = s.get(TermsClauseVersion, version_id)
    if v is None:
        raise NotFound("no such terms clause version", field="terms_clause_version_id")
    clause = s.get(TermsClause, v.clause_id)
    assert clause is not None
    return clause, v
