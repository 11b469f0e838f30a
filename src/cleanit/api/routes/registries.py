"""/api/v1/legal-provisions and /api/v1/terms-clauses."""

from __future__ import annotations

from fastapi import APIRouter

from cleanit.api.schemas import LegalProvisionIn, LegalProvisionOut, TermsClauseIn, TermsClauseOut
from cleanit.api.security import Caller, Ctx
from cleanit.services import organisations, registries

router = APIRouter(tags=["registries"])


@router.get("/legal-provisions", response_model=list[LegalProvisionOut])
def list_provisions(ctx: Ctx) -> list[LegalProvisionOut]:
    return [
        LegalProvisionOut.model_validate(p, from_attributes=True)
        for p in registries.list_legal_provisions(ctx)
    ]


@router.post("/legal-provisions", status_code=201, response_model=LegalProvisionOut)
def add_provision(body: LegalProvisionIn, ctx: Ctx, caller: Caller) -> LegalProvisionOut:
    p = registries.add_legal_provision(ctx, caller, **body.model_dump())
    return LegalProvisionOut.model_validate(p, from_attributes=True)


@router.get(
    "/organisations/{slug}/terms-clauses",
    response_model=list[TermsClauseOut],
    summary="A provider's terms clauses in force (public)",
)
def list_clauses(slug: str, ctx: Ctx) -> list[TermsClauseOut]:
    org = organisations.org_by_slug(ctx, slug)
    return [TermsClauseOut(**c.__dict__) for c in registries.list_terms_clauses(ctx, org.id)]


@router.post(
    "/terms-clauses",
    status_code=201,
    response_model=TermsClauseOut,
    summary="Publish a clause, or a new version of it, in your organisation's terms",
)
def publish_clause(body: TermsClauseIn, ctx: Ctx, caller: Caller) -> TermsClauseOut:
    c = registries.publish_terms_clause(ctx, caller, **body.model_dump())
    return TermsClauseOut(**c.__dict__)
