"""Law-enforcement requests (Clean IT best practice 10): a competent authority asks a hosting
provider to preserve or to disclose data; the provider's lawyers decide (comply, partly,
refuse — with reasons for the last two) and log every disclosure, which can never go beyond
the recorded scope, nor beyond what was decided.

A preservation request that is complied with keeps the case's data: the case's active hold is
reused, or one starts (``services.preservation.create_hold``), and the authority gets standing
in it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from cleanit.adapters.db.models import (
    Case,
    InvestigationDisclosure,
    InvestigationRequest,
    Organisation,
)
from cleanit.domain.errors import Conflict, InvalidInput, NotFound, PrincipleViolation
from cleanit.domain.investigations import (
    DataCategory,
    RequestDecision,
    RequestKind,
    check_disclosure,
    decide_request,
    validate_investigation_request,
)
from cleanit.domain.roles import OrgKind, Permission, Principal
from cleanit.services import audit, preservation
from cleanit.services.authz import require, require_member
from cleanit.services.context import Context
from cleanit.services.outbox import queue_message

ENTITY = "investigation_request"
OPEN, DECIDED = "open", "decided"
MAX_NOTE = 10_000


@dataclass(frozen=True, slots=True)
class DisclosureView:
    id: int
    categories: list[str]
    note: str
    disclosed_by: str
    disclosed_at: datetime


@dataclass(frozen=True, slots=True)
class RequestView:
    id: int
    provider_id: int
    authority_organisation_id: int
    case_id: int | None
    hold_id: int | None
    requesting_authority: str
    reference: str
    kind: str
    legal_basis: str
    provision: str
    subject: str
    scope: list[str]
    deadline: datetime
    status: str
    decision: str | None
    decided_categories: list[str]
    reasons: str | None
    decided_by: str | None
    decided_at: datetime | None
    created_by: str
    created_at: datetime
    disclosures: list[DisclosureView]


def _view(s: Session, r: InvestigationRequest) -> RequestView:
    disclosures = s.scalars(
        select(InvestigationDisclosure)
        .where(InvestigationDisclosure.request_id == r.id)
        .order_by(InvestigationDisclosure.id)
    ).all()
    return RequestView(
        id=r.id,
        provider_id=r.provider_id,
        authority_organisation_id=r.authority_org_id,
        case_id=r.case_id,
        hold_id=r.hold_id,
        requesting_authority=r.requesting_authority,
        reference=r.reference,
        kind=r.kind,
        legal_basis=r.legal_basis,
        provision=r.provision,
        subject=r.subject,
        scope=list(r.scope),
        deadline=r.deadline,
        status=r.status,
        decision=r.decision,
        decided_categories=list(r.decided_categories),
        reasons=r.reasons,
        decided_by=r.decided_by,
        decided_at=r.decided_at,
        created_by=r.created_by,
        created_at=r.created_at,
        disclosures=[
            DisclosureView(d.id, list(d.categories), d.note, d.disclosed_by, d.disclosed_at)
            for d in disclosures
        ],
    )


def _tell(s: Session, org: Organisation | None, subject: str, body: str, request_id: int) -> None:
    if org is not None and org.contact_email:
        queue_message(
            s,
            kind="investigation_request",
            recipient=org.contact_email,
            subject=subject,
            body=body,
            related=(ENTITY, request_id),
        )


def submit_request(
    ctx: Context,
    principal: Principal,
    raw: Mapping[str, Any],
) -> RequestView:
    """A competent authority's request, addressed to a hosting provider (``provider``: its
    slug), optionally about one of its cases (``case_id``)."""
    require(principal, Permission.SUBMIT_INVESTIGATION)
    if principal.org_kind is not OrgKind.COMPETENT_AUTHORITY:
        raise PrincipleViolation("only a competent authority sends investigation requests")
    if not isinstance(raw, Mapping):
        raise InvalidInput("the request must be a JSON object of named fields", field="body")
    fields = dict(raw)
    slug = fields.pop("provider", None)
    case_id = fields.pop("case_id", None)
    draft = validate_investigation_request(fields, now=ctx.now())
    if not isinstance(slug, str) or not slug.strip():
        raise InvalidInput("required: the slug of the hosting provider asked", field="provider")
    if case_id is not None and (type(case_id) is not int or case_id < 1):
        raise InvalidInput("case_id is a case number", field="case_id")
    assert principal.organisation_id is not None
    with ctx.transaction() as s:
        provider = s.scalar(select(Organisation).where(Organisation.slug == slug.strip()))
        if provider is None or provider.kind != OrgKind.HOSTING_PROVIDER.value:
            raise InvalidInput(f"no hosting provider '{slug}'", field="provider")
        if case_id is not None:
            case = s.get(Case, case_id)
            if case is None or case.provider_id != provider.id:
                raise InvalidInput(f"{provider.name} has no case {case_id}", field="case_id")
        now = ctx.now()
        r = InvestigationRequest(
            provider_id=provider.id,
            authority_org_id=principal.organisation_id,
            case_id=case_id,
            requesting_authority=draft.requesting_authority,
            reference=draft.reference,
            kind=draft.kind.value,
            legal_basis=draft.legal_basis,
            provision=draft.provision,
            subject=draft.subject,
            scope=sorted(c.value for c in draft.scope),
            deadline=draft.deadline,
            status=OPEN,
            decided_categories=[],
            created_by=audit.actor_label(principal),
            created_at=now,
        )
        s.add(r)
        s.flush()
        _tell(
            s,
            provider,
            f"Law-enforcement request {draft.reference}: answer by {draft.deadline.isoformat()}",
            f"{draft.requesting_authority} asks for {draft.kind.value} of "
            f"{', '.join(r.scope)} (request {r.id}, legal basis: {draft.provision}).\n"
            f"Answer by {draft.deadline.isoformat()} at "
            f"{ctx.base_url}/api/v1/investigation-requests/{r.id}\n",
            r.id,
        )
        audit.record(
            s,
            principal,
            "investigation.received",
            ENTITY,
            r.id,
            {
                "provider_id": provider.id,
                "authority_organisation_id": principal.organisation_id,
                "reference": r.reference,
                "kind": r.kind,
                "scope": r.scope,
                "deadline": r.deadline.isoformat(),
                "case_id": case_id,
            },
            organisation_id=provider.id,
            at=now,
        )
        return _view(s, r)


def _visible(
    s: Session, principal: Principal, request_id: int, *, lock: bool = False
) -> InvestigationRequest:
    r = s.get(InvestigationRequest, request_id, with_for_update=lock)
    if r is None:
        raise NotFound("no such investigation request")
    if principal.org_kind is OrgKind.COMPETENT_AUTHORITY:
        if r.authority_org_id != principal.organisation_id:
            raise NotFound("no such investigation request")
        return r
    require_member(principal, r.provider_id)
    return r


def list_requests(
    ctx: Context, principal: Principal, *, status: str | None = None, limit: int = 100
) -> list[RequestView]:
    """Requests addressed to the provider, or sent by the authority."""
    require(principal, Permission.READ_INVESTIGATIONS)
    if status is not None and status not in (OPEN, DECIDED):
        raise InvalidInput("status is 'open' or 'decided'", field="status")
    own = (
        InvestigationRequest.authority_org_id
        if principal.org_kind is OrgKind.COMPETENT_AUTHORITY
        else InvestigationRequest.provider_id
    )
    q = select(InvestigationRequest).where(own == principal.organisation_id)
    if status is not None:
        q = q.where(InvestigationRequest.status == status)
    with ctx.sessions() as s:
        rows = s.scalars(
            q.order_by(InvestigationRequest.deadline).limit(min(max(limit, 1), 500))
        ).all()
        return [_view(s, r) for r in rows]


def get_request(ctx: Context, principal: Principal, request_id: int) -> RequestView:
    require(principal, Permission.READ_INVESTIGATIONS)
    with ctx.sessions() as s:
        return _view(s, _visible(s, principal, request_id))


def decide(
    ctx: Context,
    principal: Principal,
    request_id: int,
    decision: str,
    *,
    categories: Iterable[str] | None = None,
    reasons: str | None = None,
) -> RequestView:
    """The provider's answer: comply (the whole scope), partly (a named part, with reasons)
    or refuse (with reasons). Decided once."""
    require(principal, Permission.DECIDE_INVESTIGATION)
    try:
        chosen = RequestDecision(decision)
    except ValueError:
        raise InvalidInput(
            f"unknown decision '{decision}'; use comply, partly or refuse", field="decision"
        ) from None
    with ctx.transaction() as s:
        r = _visible(s, principal, request_id, lock=True)
        if r.status != OPEN:
            raise Conflict(f"request {r.id} was already decided ({r.decision})")
        answer = decide_request(
            r.scope,
            chosen,
            categories=None if categories is None else list(categories),
            reasons=reasons,
        )
        now = ctx.now()
        r.status = DECIDED
        r.decision = answer.decision.value
        r.decided_categories = sorted(c.value for c in answer.categories)
        r.reasons = answer.reasons
        r.decided_by = audit.actor_label(principal)
        r.decided_at = now
        hold_id = None
        if (
            r.kind == RequestKind.PRESERVATION.value
            and answer.decision is not RequestDecision.REFUSE
            and r.case_id is not None
        ):
            case = s.get(Case, r.case_id, with_for_update=True)
            assert case is not None
            hold = preservation.hold_with_standing(
                s, ctx, case, r.authority_org_id, actor=principal
            )
            r.hold_id = hold_id = hold.id
        _tell(
            s,
            s.get(Organisation, r.authority_org_id),
            f"Answer to your request {r.reference}: {r.decision}",
            f"Decision: {r.decision}\nCategories: {', '.join(r.decided_categories) or '-'}\n"
            f"Reasons: {r.reasons or '-'}\n",
            r.id,
        )
        audit.record(
            s,
            principal,
            "investigation.decided",
            ENTITY,
            r.id,
            {
                "decision": r.decision,
                "categories": r.decided_categories,
                "reasons": r.reasons,
                "hold_id": hold_id,
            },
            organisation_id=r.provider_id,
            at=now,
        )
        return _view(s, r)


def disclose(
    ctx: Context,
    principal: Principal,
    request_id: int,
    categories: Iterable[str],
    *,
    note: str,
) -> RequestView:
    """Log one hand-over of data. Refused for categories outside the request's scope or
    beyond what was decided."""
    require(principal, Permission.DECIDE_INVESTIGATION)
    what = (note or "").strip()
    if len(what) < 10:
        raise InvalidInput(
            "describe what was handed over, how and to whom (at least 10 characters)",
            field="note",
        )
    if len(what) > MAX_NOTE:
        raise InvalidInput(f"note is longer than {MAX_NOTE} characters", field="note")
    asked = list(categories)
    with ctx.transaction() as s:
        r = _visible(s, principal, request_id, lock=True)
        # The recorded scope first: that is the rule nobody may break.
        chosen = check_disclosure(r.scope, asked)
        if r.kind != RequestKind.DISCLOSURE.value:
            raise Conflict(
                "this is a preservation request: nothing is handed over under it; the "
                "authority must send a disclosure request"
            )
        if r.status != DECIDED or r.decision == RequestDecision.REFUSE.value:
            raise Conflict(
                f"request {r.id} is "
                + ("not decided yet" if r.status != DECIDED else "refused")
                + "; nothing may be disclosed"
            )
        beyond = sorted(c.value for c in chosen - {DataCategory(c) for c in r.decided_categories})
        if beyond:
            raise PrincipleViolation(
                f"{', '.join(beyond)} {'was' if len(beyond) == 1 else 'were'} not part of the "
                f"decision ({r.decision}: {', '.join(r.decided_categories)}); nothing beyond "
                "the decision is disclosed",
                field="categories",
            )
        now = ctx.now()
        d = InvestigationDisclosure(
            request_id=r.id,
            categories=sorted(c.value for c in chosen),
            note=what,
            disclosed_by=audit.actor_label(principal),
            disclosed_at=now,
        )
        s.add(d)
        s.flush()
        audit.record(
            s,
            principal,
            "investigation.disclosed",
            ENTITY,
            r.id,
            {"disclosure_id": d.id, "categories": d.categories, "note": what},
            organisation_id=r.provider_id,
            at=now,
        )
        return _view(s, r)
