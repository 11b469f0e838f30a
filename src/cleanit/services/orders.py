"""Removal orders (TCO Regulation (EU) 2021/784) against the one-hour clock.

An authority's order is received strictly (every Annex I error at once), stored with a
verifiable receipt, and put at the front of the provider's queue: a case per URL at priority
0, the authority's finding as the case's legal basis. Execution goes through the ordinary
decision path (``decisions.put_in_force``: statement of reasons, platform webhook,
preservation); the order is executed when the platform confirms (``order_followups``). The
provider may instead answer with Annex III, which stops the clock until the obstacle is gone.
Escalations remind the provider's on-call contact before the deadline; a confidentiality hold
keeps the uploader uninformed until it ends; the host Member State's scrutiny and complaints
can reinstate the content. See docs/orders.md.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import re
import uuid
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import exists, func, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from cleanit.adapters import jobs
from cleanit.adapters.db.models import (
    Assessment,
    AuditEntry,
    Case,
    Complaint,
    ContentItem,
    Decision,
    IdempotencyKey,
    LegalProvision,
    Notice,
    NoticeCase,
    Organisation,
    PreservationHold,
    RemovalOrder,
    RemovalOrderEscalation,
    RemovalOrderHold,
    RemovalOrderItem,
    RemovalOrderPreAuthorisation,
    RemovalOrderReply,
    RemovalOrderScrutiny,
    Statement,
)
from cleanit.adapters.webhooks import UnsafeTarget
from cleanit.domain.assessments import AssessmentStatus, Finding
from cleanit.domain.cases import CaseEvent, CaseState, next_state
from cleanit.domain.complaints import ComplaintStatus
from cleanit.domain.decisions import (
    WIDE_ACTIONS,
    Action,
    AutomatedDecision,
    DecisionRequest,
    DecisionStatus,
    Ground,
    check_decision,
)
from cleanit.domain.errors import (
    Conflict,
    Forbidden,
    InvalidInput,
    NotFound,
    PrincipleViolation,
)
from cleanit.domain.holds import (
    ConfidentialityHold,
    complaint_due_at,
    complaint_overdue,
    renew_hold,
)
from cleanit.domain.notices import SOURCE_PRIORITY, Category, SourceType, priority_of
from cleanit.domain.order_replies import Inability, build_inability, render_inability
from cleanit.domain.orders import (
    EU_MEMBER_STATES,
    ORDER_PRIORITY,
    PENDING_STATES,
    REASON_PROVISIONS,
    ClockEventKind,
    Escalation,
    InabilityReason,
    OrderEvent,
    OrderInvalid,
    OrderReason,
    OrderState,
    ScrutinyOutcome,
    canonical_order_json,
    escalation_schedule,
    escalations_due,
    event_after_scrutiny,
    first_order_notice_ok,
    next_order_state,
    parse_order,
    parse_transmission,
    receipt_hash,
    scrutiny_due_at,
    scrutiny_request_in_time,
    split_transmission,
)
from cleanit.domain.raw_input import is_email, to_utc
from cleanit.domain.roles import OrgKind, Permission, Principal, Role
from cleanit.services import audit, preservation
from cleanit.services.authz import require, require_member
from cleanit.services.context import Context
from cleanit.services.decisions import put_in_force
from cleanit.services.notices import idempotency_scope
from cleanit.services.order_followups import (
    ANNEX_II,
    ANNEX_III,
    ENTITY,
    add_clock_event,
    clock_of,
    first_overrun,
    mark_reinstated,
    order_link,
    parties,
    send_reply,
)
from cleanit.services.outbox import queue_message

log = logging.getLogger(__name__)

# What an order may make the provider do (Art 3(1)): remove, or disable access in all
# Member States.
ORDER_ACTIONS = frozenset({Action.DISABLE_ACCESS, Action.REMOVE})
# The legal basis every order decision cites (kept in the shared registry).
TCO_PROVISION = ("EU", "Regulation (EU) 2021/784", "Art 3")
TCO_TITLE = "Removal orders: remove terrorist content or disable access within one hour"
SCRUTINY_REQUESTERS = ("provider", "content_provider", "host_authority")
PRE_AUTHORISATION_ENTITY = "removal_order_preauthorisation"  # audit entity
WITHDRAWN_ACTION = "removal_order.withdrawn"
_DOMAIN = re.compile(r"^(?=.{4,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z0-9-]{2,63}$")


class EscalationWebhookFailed(Exception):
    """Raised inside the job so procrastinate retries it with back-off."""


# --- the provider's settings -------------------------------------------------------------------


def _domain(value: str) -> str:
    host = value.strip().lower().rstrip(".")
    with contextlib.suppress(UnicodeError):  # not IDNA-encodable: the pattern refuses it
        host = host.encode("idna").decode("ascii")
    if not _DOMAIN.match(host):
        raise InvalidInput(f"'{value}' is not a domain name such as example.org", field="domains")
    return host


def configure_provider(
    ctx: Context,
    principal: Principal | None,
    org_slug: str,
    *,
    domains: Sequence[str] | None = None,
    contact_email: str | None = None,
) -> Organisation:
    """Where a hosting provider serves content (orders may only name URLs there) and who is
    on call for its orders. ``principal`` None is the local operator; otherwise its admin."""
    if principal is not None:
        require(principal, Permission.MANAGE_ORGANISATION)
    cleaned = sorted({_domain(d) for d in domains}) if domains is not None else None
    email = contact_email.strip() if contact_email is not None else None
    if email is not None and not is_email(email):
        raise InvalidInput("not a valid e-mail address", field="contact_email")
    with ctx.transaction() as s:
        org = s.scalar(select(Organisation).where(Organisation.slug == org_slug))
        if org is None:
            raise NotFound(f"no organisation '{org_slug}'", field="organisation")
        if principal is not None:
            require_member(principal, org.id)
        if org.kind != OrgKind.HOSTING_PROVIDER.value:
            raise InvalidInput(
                "only hosting providers receive removal orders", field="organisation"
            )
        if cleaned is not None:
            org.domains = cleaned
        if email is not None:
            org.contact_email = email
        audit.record(
            s,
            principal or "operator",
            "organisation.orders_configured",
            "organisation",
            org.id,
            {"domains": org.domains, "contact_email": org.contact_email},
            organisation_id=org.id,
            at=ctx.now(),
        )
        return org


# Pre-authorising is a standing legal decision for the whole provider (every order of that
# authority is then executed without a person looking), so it belongs to the provider's
# lawyers or its administrator, not to each reviewer.
PRE_AUTHORISERS = frozenset({Role.LEGAL, Role.ORG_ADMIN})


@dataclass(frozen=True)
class PreAuthorisation:
    id: int
    provider: str
    authority: str
    action: str
    authorised_by: str
    authorised_at: str
    active: bool
    revoked_at: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _pre_authorisation(
    row: RemovalOrderPreAuthorisation, provider: str, authority: str
) -> PreAuthorisation:
    return PreAuthorisation(
        id=row.id,
        provider=provider,
        authority=authority,
        action=row.action,
        authorised_by=row.authorised_by,
        authorised_at=row.authorised_at.astimezone(UTC).isoformat(),
        active=row.revoked_at is None,
        revoked_at=_iso(row.revoked_at),
    )


def _check_order_action(action: Action) -> None:
    if action not in ORDER_ACTIONS:
        raise InvalidInput("an order is executed by 'disable_access' or 'remove'", field="action")


def _require_pre_authoriser(principal: Principal) -> None:
    """Checked before anything is looked up, so a refusal reveals nothing."""
    require(principal, Permission.READ_ORDERS)  # the anonymous: Unauthenticated
    if principal.org_kind is not OrgKind.HOSTING_PROVIDER or not (
        principal.roles & PRE_AUTHORISERS
    ):
        raise Forbidden(
            "only a hosting provider's legal staff or organisation administrator may "
            "pre-authorise the execution of removal orders"
        )


def _acting_provider(s: Session, principal: Principal | None, provider_slug: str | None) -> int:
    """The provider a pre-authorisation belongs to: the principal's own organisation, or —
    for the local operator (``principal`` None) — the one named."""
    if principal is not None:
        assert principal.organisation_id is not None
        return principal.organisation_id
    if not provider_slug:
        raise InvalidInput("name the hosting provider", field="organisation")
    org = s.scalar(
        select(Organisation).where(
            Organisation.slug == provider_slug,
            Organisation.kind == OrgKind.HOSTING_PROVIDER.value,
        )
    )
    if org is None:
        raise NotFound(f"no hosting provider '{provider_slug}'", field="organisation")
    return org.id


def pre_authorise(
    ctx: Context,
    principal: Principal | None,
    authority_slug: str,
    *,
    action: Action = Action.DISABLE_ACCESS,
    provider_slug: str | None = None,
) -> PreAuthorisation:
    """A provider's person decides that this authority's orders are executed on receipt.

    The decisions then taken are marked fully automated wherever they are reported. Only the
    provider's ``legal`` or ``org_admin`` people may, signed in as themselves (a machine token
    cannot); ``principal`` None is the local operator at the console acting for
    ``provider_slug``. Pre-authorising an authority again replaces the action (one row per
    provider and authority)."""
    if principal is not None:
        _require_pre_authoriser(principal)
        if principal.user_id is None:
            raise PrincipleViolation(
                "a person pre-authorises execution, not a machine token", field="principal"
            )
    _check_order_action(action)
    with ctx.transaction() as s:
        provider_id = _acting_provider(s, principal, provider_slug)
        provider = s.get(Organisation, provider_id)
        assert provider is not None
        authority = _authority(s, authority_slug)
        now = ctx.now()
        actor = audit.actor_label(principal) if principal is not None else "operator"
        stmt = pg_insert(RemovalOrderPreAuthorisation).values(
            provider_id=provider_id,
            authority_id=authority.id,
            action=action.value,
            authorised_by=actor,
            authorised_at=now,
            revoked_at=None,
        )
        row_id = s.execute(
            stmt.on_conflict_do_update(
                index_elements=["provider_id", "authority_id"],
                set_={
                    "action": stmt.excluded.action,
                    "authorised_by": stmt.excluded.authorised_by,
                    "authorised_at": stmt.excluded.authorised_at,
                    "revoked_at": None,
                },
            ).returning(RemovalOrderPreAuthorisation.id)
        ).scalar_one()
        row = s.get(RemovalOrderPreAuthorisation, row_id, populate_existing=True)
        assert row is not None
        audit.record(
            s,
            principal or "operator",
            "removal_order.pre_authorised",
            PRE_AUTHORISATION_ENTITY,
            row.id,
            {"authority": authority.slug, "action": action.value},
            organisation_id=provider_id,
            at=now,
        )
        return _pre_authorisation(row, provider.slug, authority.slug)


def list_pre_authorisations(ctx: Context, principal: Principal) -> list[PreAuthorisation]:
    """The provider's pre-authorisations, the active ones first (any of its staff who read
    orders may see which authorities' orders are executed without them)."""
    require(principal, Permission.READ_ORDERS)
    if principal.org_kind is not OrgKind.HOSTING_PROVIDER:
        raise Forbidden("only hosting providers pre-authorise the execution of removal orders")
    with ctx.sessions() as s:
        rows = s.execute(
            select(RemovalOrderPreAuthorisation, Organisation.slug)
            .join(Organisation, Organisation.id == RemovalOrderPreAuthorisation.authority_id)
            .where(RemovalOrderPreAuthorisation.provider_id == principal.organisation_id)
            .order_by(
                RemovalOrderPreAuthorisation.revoked_at.is_not(None),
                Organisation.slug,
            )
        ).all()
        provider = s.get(Organisation, principal.organisation_id)
        assert provider is not None
        return [_pre_authorisation(row, provider.slug, slug) for row, slug in rows]


def revoke_pre_authorisation(
    ctx: Context,
    principal: Principal | None,
    pre_authorisation_id: int,
    *,
    provider_slug: str | None = None,
) -> PreAuthorisation:
    """End a pre-authorisation: the authority's next orders wait for a person again. Orders
    already executed under it stay as they are. Another provider's id answers 404."""
    if principal is not None:
        _require_pre_authoriser(principal)
    with ctx.transaction() as s:
        provider_id = _acting_provider(s, principal, provider_slug)
        row = s.get(RemovalOrderPreAuthorisation, pre_authorisation_id, with_for_update=True)
        if row is None or row.provider_id != provider_id:
            raise NotFound(f"no pre-authorisation {pre_authorisation_id}", field="id")
        authority = s.get(Organisation, row.authority_id)
        provider = s.get(Organisation, provider_id)
        assert authority is not None and provider is not None
        if row.revoked_at is not None:
            raise Conflict(
                f"the pre-authorisation for '{authority.slug}' was already revoked on "
                f"{_utc(row.revoked_at)}",
                field="id",
            )
        now = ctx.now()
        row.revoked_at = now
        audit.record(
            s,
            principal or "operator",
            "removal_order.pre_authorisation_revoked",
            PRE_AUTHORISATION_ENTITY,
            row.id,
            {"authority": authority.slug, "action": row.action},
            organisation_id=provider_id,
            at=now,
        )
        return _pre_authorisation(row, provider.slug, authority.slug)


def _authority(s: Session, slug: str) -> Organisation:
    org = s.scalar(
        select(Organisation).where(
            Organisation.slug == slug, Organisation.kind == OrgKind.COMPETENT_AUTHORITY.value
        )
    )
    if org is None:
        raise NotFound(f"no competent authority '{slug}'", field="authority")
    return org


# --- receipt -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class OrderReceipt:
    """What the authority gets back: proof of what arrived and when, and the deadline."""

    order_id: str
    reference: str
    state: str
    received_at: str
    deadline_at: str | None
    receipt_hash: str
    case_ids: list[int]
    first_order: bool
    first_order_notice_ok: bool | None
    executed_automatically: bool

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def receive_order(
    ctx: Context,
    principal: Principal,
    raw: Mapping[str, Any],
    *,
    idempotency_key: str | None = None,
) -> OrderReceipt:
    """Receive an Annex I order from a competent authority (API token of the authority).

    Every error is reported at once (``OrderInvalid``) and nothing is stored; a reference the
    authority already used is refused (Conflict). Receipt starts the hour, opens or joins a
    case per URL at the front of the queue, and — if the provider pre-authorised this
    authority — executes it at once.
    """
    require(principal, Permission.ISSUE_ORDERS)
    if principal.org_kind is not OrgKind.COMPETENT_AUTHORITY:
        raise Forbidden("only competent authorities issue removal orders")
    if not isinstance(raw, Mapping):
        raise OrderInvalid([("body", "must be a JSON object of named fields")])
    canonical = canonical_order_json(raw)
    with ctx.transaction() as s:
        now = ctx.now()
        if idempotency_key is not None:
            stored = _claim_key(s, principal, idempotency_key, canonical)
            if stored is not None:
                return OrderReceipt(**stored)
        annex_raw, transmission_raw = split_transmission(raw)
        provider = None
        slug = transmission_raw.get("addressee")
        if isinstance(slug, str) and slug.strip():
            # Orders to one provider are received one at a time, so exactly one is its
            # first (Art 3(2)). NO KEY UPDATE: rows that merely reference it are not held up.
            provider = s.scalar(
                select(Organisation)
                .where(
                    Organisation.slug == slug.strip(),
                    Organisation.kind == OrgKind.HOSTING_PROVIDER.value,
                )
                .with_for_update(key_share=True)
            )
        draft, errors = parse_order(
            annex_raw,
            addressee_domains=provider.domains if provider is not None else None,
            now=now,
        )
        transmission, t_errors = parse_transmission(
            transmission_raw, issued_at=draft.issued_at if draft else None, now=now
        )
        # The addressee first, then Annex I in form order, then the transmission times.
        head = [e for e in t_errors if e[0] == "addressee"]
        tail = [e for e in t_errors if e[0] != "addressee"]
        if isinstance(slug, str) and slug.strip() and provider is None:
            head.append(("addressee", f"no hosting provider '{slug.strip()}' here"))
        if head or errors or tail:
            raise OrderInvalid([*head, *errors, *tail])
        assert draft is not None and transmission is not None and provider is not None
        previous = s.scalar(
            select(RemovalOrder).where(
                RemovalOrder.authority_id == principal.organisation_id,
                RemovalOrder.reference == draft.reference,
            )
        )
        if previous is not None:
            raise Conflict(
                f"your authority already sent removal order '{draft.reference}' "
                f"(received {previous.received_at.astimezone(UTC):%Y-%m-%d %H:%M:%S} UTC as "
                f"order {previous.public_id}); a new order needs a new reference",
                field="reference",
            )
        first = not s.scalar(select(exists().where(RemovalOrder.provider_id == provider.id)))
        notice_ok = (
            first_order_notice_ok(
                transmission.prior_information_at,
                draft.issued_at,
                emergency=transmission.emergency,
            )
            if first
            else None
        )
        digest = receipt_hash(canonical, now)
        order = RemovalOrder(
            public_id=uuid.uuid4(),
            authority_id=principal.organisation_id,
            provider_id=provider.id,
            reference=draft.reference,
            issuing_authority=draft.issuing_authority,
            issuing_member_state=draft.issuing_member_state,
            host_member_state=draft.host_member_state,
            cross_border=draft.cross_border,
            issued_at=draft.issued_at,
            sent_at=transmission.sent_at,
            received_at=now,
            content_urls=list(draft.content_urls),
            locating_details=draft.locating_details,
            reasons=[r.value for r in draft.reasons_in_order],
            additional_reasons=draft.additional_reasons,
            withhold_information=draft.withhold_information,
            confidentiality_days=draft.confidentiality_period.days
            if draft.confidentiality_period
            else None,
            contact_name=draft.contact_name,
            contact_email=draft.contact_email,
            contact_phone=draft.contact_phone,
            redress_information=draft.redress_information,
            received_body=canonical,
            receipt_hash=digest,
            state=OrderState.RECEIVED.value,
            deadline_at=None,
            automated=False,
            first_order=first,
            prior_info_at=transmission.prior_information_at,
            emergency=transmission.emergency,
            first_order_notice_ok=notice_ok,
            updated_at=now,
        )
        s.add(order)
        try:
            s.flush()
        except IntegrityError:
            # Sent twice at the same moment: the unique (authority, reference) decides.
            raise Conflict(
                f"your authority already sent removal order '{draft.reference}'",
                field="reference",
            ) from None
        actor = audit.actor_label(principal)
        clock = add_clock_event(s, order, ClockEventKind.RECEIVED, now, actor)
        order.deadline_at = clock.deadline
        case_ids = _open_cases(s, ctx, order, now)
        if draft.withhold_information and draft.confidentiality_period is not None:
            hold = ConfidentialityHold(draft.issued_at, draft.confidentiality_period)
            s.add(
                RemovalOrderHold(
                    order_id=order.id,
                    decided_at=hold.decided_at,
                    period_days=draft.confidentiality_period.days,
                    info_due_at=hold.info_due_at,
                )
            )
            s.flush()
        _tell_provider_received(s, ctx, order, provider)
        pre = s.scalar(
            select(RemovalOrderPreAuthorisation).where(
                RemovalOrderPreAuthorisation.provider_id == provider.id,
                RemovalOrderPreAuthorisation.authority_id == order.authority_id,
                RemovalOrderPreAuthorisation.revoked_at.is_(None),
            )
        )
        audit.record(
            s,
            principal,
            "removal_order.received",
            ENTITY,
            order.public_id,
            {
                "reference": order.reference,
                "provider_id": provider.id,
                "sent_at": order.sent_at.isoformat() if order.sent_at else None,
                "received_at": now.isoformat(),
                "receipt_hash": digest,
                "deadline": clock.deadline.isoformat() if clock.deadline else None,
                "first_order": first,
                "first_order_notice_ok": notice_ok,
                "cases": case_ids,
            },
            organisation_id=provider.id,
            at=now,
        )
        if pre is not None:
            _execute(
                s,
                ctx,
                order,
                actor=f"system:pre-authorisation:{pre.id}",
                user_id=None,
                action=Action(pre.action),
                automated=True,
                note=f"Pre-authorised by {pre.authorised_by} on "
                f"{pre.authorised_at.astimezone(UTC):%Y-%m-%d}.",
            )
        else:
            _defer_escalations(s, ctx, order)
        receipt = OrderReceipt(
            order_id=str(order.public_id),
            reference=order.reference,
            state=order.state,
            received_at=now.isoformat(),
            deadline_at=order.deadline_at.isoformat() if order.deadline_at else None,
            receipt_hash=digest,
            case_ids=case_ids,
            first_order=first,
            first_order_notice_ok=notice_ok,
            executed_automatically=pre is not None,
        )
        if idempotency_key is not None:
            key = s.get(IdempotencyKey, (idempotency_scope(principal), idempotency_key))
            assert key is not None
            key.status_code, key.response = 201, receipt.as_dict()
        return receipt


def _claim_key(s: Session, principal: Principal, key: str, canonical: str) -> dict[str, Any] | None:
    """Claim the Idempotency-Key in this transaction, or return the stored receipt (as
    notices do: a concurrent retry waits for the first and then gets its receipt)."""
    if not 1 <= len(key) <= 200:
        raise InvalidInput("Idempotency-Key must be 1 to 200 characters", field="Idempotency-Key")
    fingerprint = hashlib.sha256(canonical.encode()).hexdigest()
    scope = idempotency_scope(principal)
    claimed = s.execute(
        pg_insert(IdempotencyKey)
        .values(scope=scope, key=key, request_hash=fingerprint)
        .on_conflict_do_nothing()
        .returning(IdempotencyKey.key)
    ).first()
    if claimed is not None:
        return None
    row = s.get(IdempotencyKey, (scope, key))
    assert row is not None
    if row.request_hash != fingerprint or row.response is None:
        raise Conflict(
            "this Idempotency-Key was already used for a different request",
            field="Idempotency-Key",
        )
    return dict(row.response)


def _tco_provision(s: Session) -> int:
    """The registry entry every order decision cites (created on first use)."""
    jurisdiction, instrument, article = TCO_PROVISION
    s.execute(
        pg_insert(LegalProvision)
        .values(
            jurisdiction=jurisdiction,
            instrument=instrument,
            article=article,
            title=TCO_TITLE,
            summary="",
            url="https://eur-lex.europa.eu/eli/reg/2021/784/oj",
        )
        .on_conflict_do_nothing()
    )
    found = s.scalar(
        select(LegalProvision.id).where(
            LegalProvision.jurisdiction == jurisdiction,
            LegalProvision.instrument == instrument,
            LegalProvision.article == article,
        )
    )
    assert found is not None
    return found


def _finding_text(order: RemovalOrder) -> str:
    boxes = ", ".join(f"{REASON_PROVISIONS[OrderReason(r)]} ({r})" for r in order.reasons)
    text = (
        f"Removal order {order.reference} of {order.issuing_authority} "
        f"({order.issuing_member_state}), issued {order.issued_at.astimezone(UTC):%Y-%m-%d %H:%M} "
        f"UTC: terrorist content under {boxes}."
    )
    if order.additional_reasons:
        text += f" {order.additional_reasons}"
    return text


def _open_cases(s: Session, ctx: Context, order: RemovalOrder, now: datetime) -> list[int]:
    """A case per URL, at the front of the queue, with the authority's finding as its basis."""
    provision_id = _tco_provision(s)
    finding = _finding_text(order)
    case_ids: list[int] = []
    for url in sorted(order.content_urls):  # sorted: a stable lock order avoids deadlocks
        stmt = pg_insert(ContentItem).values(
            provider_id=order.provider_id,
            url=url,
            canonical_url=url,
            platform_state="available",
        )
        # DO UPDATE (unlike DO NOTHING) returns an existing row, and locks it.
        item_id = s.execute(
            stmt.on_conflict_do_update(
                index_elements=["provider_id", "canonical_url"],
                set_={"canonical_url": stmt.excluded.canonical_url},
            ).returning(ContentItem.id)
        ).scalar_one()
        case = s.scalar(
            select(Case)
            .where(Case.content_item_id == item_id)
            .order_by(Case.id.desc())
            .limit(1)
            .with_for_update()
        )
        if case is None:
            case = Case(
                provider_id=order.provider_id,
                content_item_id=item_id,
                state=CaseState.OPEN.value,
                priority=ORDER_PRIORITY,
                category=Category.RISK_FOR_PUBLIC_SECURITY.value,
                jurisdiction=order.issuing_member_state,
                opened_at=now,
                updated_at=now,
            )
            s.add(case)
            s.flush()
        else:
            # The order is new information on the content, like a notice joining the case.
            case.state = next_state(CaseState(case.state), CaseEvent.NEW_NOTICE).value
            case.priority = min(case.priority, ORDER_PRIORITY)
            case.updated_at = now
        # The authority's order is its finding of illegality: the basis the decision cites.
        assessment = Assessment(
            case_id=case.id,
            organisation_id=order.authority_id,
            author_id=None,
            finding=Finding.ILLEGAL.value,
            legal_provision_id=provision_id,
            explanation=finding,
            exemption_considered=False,
            status=AssessmentStatus.CONFIRMED.value,
            confirmed_at=now,
            automated=False,
        )
        s.add(assessment)
        s.flush()
        s.add(
            RemovalOrderItem(
                order_id=order.id,
                content_item_id=item_id,
                url=url,
                case_id=case.id,
                assessment_id=assessment.id,
            )
        )
        case_ids.append(case.id)
    s.flush()
    return sorted(set(case_ids))


def _utc(at: datetime) -> str:
    return f"{at.astimezone(UTC):%Y-%m-%d %H:%M:%S} UTC"


def _tell_provider_received(
    s: Session, ctx: Context, order: RemovalOrder, provider: Organisation
) -> None:
    if not provider.contact_email or order.deadline_at is None:
        return
    queue_message(
        s,
        kind="removal_order.received",
        recipient=provider.contact_email,
        subject=f"Removal order {order.reference}: execute by {_utc(order.deadline_at)}",
        body=(
            f"{order.issuing_authority} ({order.issuing_member_state}) sent removal order "
            f"{order.reference}, received {_utc(order.received_at)}.\n"
            f"Regulation (EU) 2021/784 Art 3(3): remove the content or disable access to it "
            f"in all Member States by {_utc(order.deadline_at)}.\n\n"
            + "\n".join(f"  {u}" for u in order.content_urls)
            + f"\n\nThe order: {order_link(ctx, order)}\n"
        ),
        related=(ENTITY, order.public_id),
    )


# --- execution ---------------------------------------------------------------------------------


def _hold_active(s: Session, order: RemovalOrder, now: datetime) -> bool:
    hold = s.get(RemovalOrderHold, order.id)
    return hold is not None and now < hold.info_due_at


def _execute(
    s: Session,
    ctx: Context,
    order: RemovalOrder,
    *,
    actor: Principal | str,
    user_id: int | None,
    action: Action,
    automated: bool,
    note: str | None,
) -> None:
    """Decide every URL of the order through the ordinary decision path; the order is
    executed when the platform confirms (order_followups.platform_confirmed)."""
    state = OrderState(order.state)
    if state is OrderState.UNABLE_TO_EXECUTE:
        raise Conflict(
            "an Annex III answer is open: record that the obstacle is gone or that the "
            "clarification arrived (POST .../clarification) before executing",
            field="state",
        )
    next_order_state(state, OrderEvent.CONFIRM_EXECUTION)  # refuses closed orders
    if order.execution_requested_at is not None:
        raise Conflict(
            f"execution was requested at {_utc(order.execution_requested_at)}; it waits for "
            "the platform's confirmation",
            field="state",
        )
    now = ctx.now()
    hold_active = _hold_active(s, order, now)
    scope = sorted(EU_MEMBER_STATES) if action is Action.DISABLE_ACCESS else []
    facts = (
        f"Removal order {order.reference} of {order.issuing_authority} "
        f"({order.issuing_member_state}), received {_utc(order.received_at)}, orders the "
        "content removed or access to it disabled in all Member States "
        "(Regulation (EU) 2021/784, Art 3)."
    )
    if automated:
        facts += " Executed on receipt under the provider's pre-authorisation for this authority."
    if note:
        facts += f" {note.strip()}"
    items = s.scalars(
        select(RemovalOrderItem)
        .where(RemovalOrderItem.order_id == order.id)
        .order_by(RemovalOrderItem.content_item_id)
    ).all()
    for item in items:
        case = s.get(Case, item.case_id, with_for_update=True)
        assert case is not None
        request = DecisionRequest(
            action=action,
            facts=facts,
            assessment_id=item.assessment_id,
            territorial_scope=tuple(scope),
            automated_decision=AutomatedDecision.FULLY
            if automated
            else AutomatedDecision.NOT_AUTOMATED,
        )
        check_decision(request, has_basis=True)
        current = s.scalar(
            select(Decision)
            .where(Decision.case_id == case.id, Decision.status == DecisionStatus.IN_FORCE.value)
            .order_by(Decision.id.desc())
            .limit(1)
            .with_for_update()
        )
        # A wider decision (an account suspension) stays in force beside the order's.
        replaces = current if current and Action(current.action) not in WIDE_ACTIONS else None
        case_state = CaseState(case.state)
        if case_state is CaseState.NO_ACTION:  # the order reopens content judged fine
            case_state = next_state(case_state, CaseEvent.NEW_NOTICE)
        if case_state is CaseState.OPEN:
            case_state = next_state(case_state, CaseEvent.ASSIGN)
            case.assignee_id = user_id
        if case_state is CaseState.IN_REVIEW:
            case_state = next_state(case_state, CaseEvent.DECIDE_RESTRICTIVE)
        case.state, case.updated_at = case_state.value, now
        d = Decision(
            case_id=case.id,
            provider_id=case.provider_id,
            action=action.value,
            ground=Ground.ILLEGAL_CONTENT.value,
            assessment_id=item.assessment_id,
            facts=facts,
            justification=None,
            territorial_scope=scope,
            duration_days=None,
            automated_detection=False,
            automated_decision=request.automated_decision.value,
            status=DecisionStatus.AWAITING_APPROVAL.value,
            decided_by=user_id,
        )
        s.add(d)
        s.flush()
        audit.record(
            s,
            actor,
            "decision.taken",
            "case",
            case.id,
            {
                "decision_id": d.id,
                "action": d.action,
                "ground": d.ground,
                "removal_order": str(order.public_id),
                "automated": automated,
            },
            organisation_id=case.provider_id,
            at=now,
        )
        put_in_force(s, ctx, d, case, replaces=replaces, inform_uploader=not hold_active)
        item.decision_id = d.id
        _link_preservation(s, order, d)
    order.execution_action = action.value
    order.execution_requested_at = now
    order.execution_requested_by = actor if isinstance(actor, str) else audit.actor_label(actor)
    order.automated = automated
    order.updated_at = now
    hold = s.get(RemovalOrderHold, order.id)
    if hold is not None and not hold_active and hold.info_sent_at is None:
        hold.info_sent_at = now  # the hold had ended: the statements went out just now
    audit.record(
        s,
        actor,
        "removal_order.execution_requested",
        ENTITY,
        order.public_id,
        {"action": action.value, "automated": automated, "uploader_informed": not hold_active},
        organisation_id=order.provider_id,
        at=now,
    )


def _link_preservation(s: Session, order: RemovalOrder, d: Decision) -> None:
    """The hold the decision started (TCO Art 6) belongs to the order; its authority may
    open it and ask for an extension."""
    hold = s.scalar(select(PreservationHold).where(PreservationHold.decision_id == d.id))
    if hold is not None:
        hold.removal_order_id = order.id
        preservation.grant_standing(hold, order.authority_id)


def execute_order(
    ctx: Context,
    principal: Principal,
    order_id: uuid.UUID,
    *,
    action: Action = Action.DISABLE_ACCESS,
    note: str | None = None,
) -> dict[str, Any]:
    """A reviewer of the addressee executes the order: disable access in all Member States
    (default) or remove. The order is executed once the platform confirms."""
    require(principal, Permission.EXECUTE_ORDERS)
    _check_order_action(action)
    if note is not None and len(note) > 2000:
        raise InvalidInput("the note is longer than 2000 characters", field="note")
    with ctx.transaction() as s:
        order = _provider_order(s, principal, order_id)
        _execute(
            s,
            ctx,
            order,
            actor=principal,
            user_id=principal.user_id,
            action=action,
            automated=False,
            note=note,
        )
        return order_view(s, ctx, principal, order)


def report_inability(
    ctx: Context,
    principal: Principal,
    order_id: uuid.UUID,
    *,
    reason: InabilityReason,
    explanation: str,
    clarification_needed: str | None = None,
) -> dict[str, Any]:
    """Annex III: the order cannot be executed (Art 3(7), 3(8)). The clock stops until the
    obstacle is gone or the clarification arrives."""
    require(principal, Permission.EXECUTE_ORDERS)
    with ctx.transaction() as s:
        order = _provider_order(s, principal, order_id)
        new_state = next_order_state(OrderState(order.state), OrderEvent.REPORT_OBSTACLE)
        if order.execution_requested_at is not None:
            raise Conflict(
                "execution was already requested; the platform's confirmation is awaited",
                field="state",
            )
        now = ctx.now()
        body = build_inability(
            Inability(parties(s, ctx, order), reason, explanation, now, clarification_needed)
        )
        actor = audit.actor_label(principal)
        clock = add_clock_event(
            s, order, ClockEventKind.OBSTACLE_REPORTED, now, actor, note=reason.value
        )
        order.state, order.deadline_at, order.updated_at = new_state.value, None, now
        order.inability_reason = reason.value
        if order.missed_at is None:
            order.missed_at = first_overrun(clock, now)
        reply = send_reply(
            s,
            ctx,
            order,
            annex=ANNEX_III,
            body=body,
            text=render_inability(body),
            subject=f"Annex III: removal order {order.reference} cannot be executed",
        )
        audit.record(
            s,
            principal,
            "removal_order.inability_reported",
            ENTITY,
            order.public_id,
            {"reason": reason.value, "annex_iii": str(reply.public_id)},
            organisation_id=order.provider_id,
            at=now,
        )
        return order_view(s, ctx, principal, order)


def clear_obstacle(
    ctx: Context, principal: Principal, order_id: uuid.UUID, *, clarification: str
) -> dict[str, Any]:
    """The clarification arrived (the authority sends it) or the obstacle is gone (the
    provider says so): a full new hour starts (Art 3(7), 3(8))."""
    _require_party(principal)
    text = clarification.strip()
    if not 10 <= len(text) <= 10_000:
        raise InvalidInput(
            "give the clarification, or say how the obstacle was removed (10 to 10000 characters)",
            field="clarification",
        )
    with ctx.transaction() as s:
        order, side = _party_order(s, principal, order_id)
        new_state = next_order_state(OrderState(order.state), OrderEvent.CLEAR_OBSTACLE)
        now = ctx.now()
        clock = add_clock_event(
            s,
            order,
            ClockEventKind.OBSTACLE_CLEARED,
            now,
            audit.actor_label(principal),
            note=text,
        )
        order.state, order.deadline_at, order.updated_at = new_state.value, clock.deadline, now
        _defer_escalations(s, ctx, order)
        provider = s.get(Organisation, order.provider_id)
        assert provider is not None and order.deadline_at is not None
        if provider.contact_email:
            queue_message(
                s,
                kind="removal_order.clock_restarted",
                recipient=provider.contact_email,
                subject=f"Removal order {order.reference}: execute by {_utc(order.deadline_at)}",
                body=(
                    f"The {'clarification arrived' if side == 'authority' else 'obstacle is gone'}"
                    f" for removal order {order.reference}; a new hour runs until "
                    f"{_utc(order.deadline_at)}.\n\n{text}\n\n{order_link(ctx, order)}\n"
                ),
                related=(ENTITY, order.public_id),
            )
        audit.record(
            s,
            principal,
            "removal_order.obstacle_cleared",
            ENTITY,
            order.public_id,
            {"by": side, "deadline": order.deadline_at.isoformat()},
            organisation_id=order.provider_id,
            at=now,
        )
        return order_view(s, ctx, principal, order)


# --- withdrawal by the issuing authority ---------------------------------------------------------


def withdraw_order(
    ctx: Context, principal: Principal, order_id: uuid.UUID, *, reasons: str
) -> dict[str, Any]:
    """The issuing authority withdraws its order, with its reasons.

    A pending order stops: no deadline, no more reminders (the sweep and the scheduled jobs
    only act on received orders), and its cases leave the front of the queue unless another
    pending order holds them there. A deadline that had already passed stays recorded. An
    order already executed (or whose execution was requested) is recorded as withdrawn, and
    the content stays restricted: whether it comes back is the provider's own decision (it may
    still break its terms), taken through the ordinary decision path. The provider's on-call
    contact is told either way."""
    require(principal, Permission.ISSUE_ORDERS)
    why = reasons.strip()
    if not 10 <= len(why) <= 10_000:
        raise InvalidInput(
            "give the reasons for withdrawing the order (10 to 10000 characters)",
            field="reasons",
        )
    with ctx.transaction() as s:
        order = _authority_order(s, principal, order_id)
        before = OrderState(order.state)
        new_state = next_order_state(before, OrderEvent.WITHDRAW)
        now = ctx.now()
        stopped = before in PENDING_STATES and order.execution_requested_at is None
        if before in PENDING_STATES and order.missed_at is None:
            order.missed_at = first_overrun(clock_of(s, order), now)
        order.state, order.deadline_at, order.updated_at = new_state.value, None, now
        requeued = _requeue(s, order, now) if stopped else []
        provider = s.get(Organisation, order.provider_id)
        assert provider is not None
        if provider.contact_email:
            effect = (
                "Its clock has stopped; nothing needs to be done for it any more."
                if stopped
                else "The content stays restricted: reinstating it is your own decision "
                "(review the cases under your terms)."
            )
            queue_message(
                s,
                kind="removal_order.withdrawn",
                recipient=provider.contact_email,
                subject=f"Removal order {order.reference} withdrawn by the authority",
                body=(
                    f"{order.issuing_authority} ({order.issuing_member_state}) withdrew removal "
                    f"order {order.reference} on {_utc(now)}.\n{effect}\n\nReasons given:\n"
                    f"{why}\n\n{order_link(ctx, order)}\n"
                ),
                related=(ENTITY, order.public_id),
            )
        audit.record(
            s,
            principal,
            WITHDRAWN_ACTION,
            ENTITY,
            order.public_id,
            {
                "reasons": why,
                "state_before": before.value,
                "execution_requested": order.execution_requested_at is not None,
                "executed": order.executed_at is not None,
                "clock_stopped": stopped,
                "cases_requeued": requeued,
            },
            organisation_id=order.provider_id,
            at=now,
        )
        return order_view(s, ctx, principal, order)


def _requeue(s: Session, order: RemovalOrder, now: datetime) -> list[int]:
    """The withdrawn order no longer holds its cases at the front of the queue: each goes
    back to the priority of its notices (the least urgent when it has none), unless another
    pending order is on it. Returns the cases whose priority changed."""
    changed: list[int] = []
    items = s.scalars(
        select(RemovalOrderItem)
        .where(RemovalOrderItem.order_id == order.id)
        .order_by(RemovalOrderItem.case_id)
    ).all()
    for item in items:
        case = s.get(Case, item.case_id, with_for_update=True)
        assert case is not None
        if case.priority != ORDER_PRIORITY:
            continue
        other_order = s.scalar(
            select(
                exists().where(
                    RemovalOrderItem.case_id == case.id,
                    RemovalOrderItem.order_id == RemovalOrder.id,
                    RemovalOrder.id != order.id,
                    RemovalOrder.state.in_([st.value for st in PENDING_STATES]),
                )
            )
        )
        if other_order:
            continue
        sources = s.scalars(
            select(Notice.source_type)
            .join(NoticeCase, NoticeCase.notice_id == Notice.id)
            .where(NoticeCase.case_id == case.id)
        ).all()
        case.priority = min(
            (priority_of(SourceType(src)) for src in sources),
            default=max(SOURCE_PRIORITY.values()),
        )
        case.updated_at = now
        changed.append(case.id)
    return changed


def _audit_entry(s: Session, order: RemovalOrder, action: str) -> AuditEntry | None:
    """The order's audit entry for an action recorded once (its receipt, its withdrawal)."""
    return s.scalar(
        select(AuditEntry).where(
            AuditEntry.entity == ENTITY,
            AuditEntry.entity_id == str(order.public_id),
            AuditEntry.action == action,
        )
    )


def _withdrawal(s: Session, order: RemovalOrder) -> dict[str, Any] | None:
    """When and why the authority withdrew the order (kept in the audit chain)."""
    entry = _audit_entry(s, order, WITHDRAWN_ACTION)
    if entry is None:
        return None
    return {
        "at": _iso(entry.at),
        "reasons": entry.data.get("reasons"),
        "state_before": entry.data.get("state_before"),
        "clock_stopped": entry.data.get("clock_stopped"),
    }


# --- Art 4 scrutiny ------------------------------------------------------------------------------


def record_scrutiny(
    ctx: Context,
    principal: Principal,
    order_id: uuid.UUID,
    *,
    requested_by: str = "host_authority",
    requested_at: datetime | None = None,
    outcome: ScrutinyOutcome | None = None,
    reasons: str | None = None,
) -> dict[str, Any]:
    """The host Member State's scrutiny of a cross-border order (Art 4): its request and, when
    known, its outcome. An infringement found reinstates executed content (Art 4(7)) through
    the decision path, or annuls an order not yet executed."""
    _require_party(principal)
    if requested_by not in SCRUTINY_REQUESTERS:
        raise InvalidInput(
            f"requested_by is one of: {', '.join(SCRUTINY_REQUESTERS)}", field="requested_by"
        )
    why = (reasons or "").strip() or None
    if outcome is ScrutinyOutcome.INFRINGEMENT_FOUND and (why is None or len(why) < 10):
        raise InvalidInput(
            "give the host authority's reasons for the infringement (at least 10 characters)",
            field="reasons",
        )
    with ctx.transaction() as s:
        order, _side = _party_order(s, principal, order_id)
        if not order.cross_border:
            raise InvalidInput(
                f"the order was issued by {order.issuing_member_state} to a provider "
                f"established in {order.host_member_state}: it is not cross-border, so Art 4 "
                "scrutiny does not apply",
                field="order",
            )
        now = ctx.now()
        asked = to_utc(requested_at, field="requested_at") if requested_at else now
        if asked > now + timedelta(minutes=5):
            raise InvalidInput("the request cannot be in the future", field="requested_at")
        row = s.get(RemovalOrderScrutiny, order.id, with_for_update=True)
        actor = audit.actor_label(principal)
        if row is None:
            row = RemovalOrderScrutiny(
                order_id=order.id,
                requested_by=requested_by,
                requested_at=asked,
                # The host authority's own scrutiny runs from the copy it received with
                # the order; a request by a party must come within 48 h (Art 4(5)).
                request_in_time=requested_by == "host_authority"
                or scrutiny_request_in_time(order.received_at, asked),
                due_at=scrutiny_due_at(asked),
                recorded_by=actor,
            )
            s.add(row)
            s.flush()
        if outcome is not None:
            if row.outcome is not None:
                raise Conflict(
                    f"the scrutiny was already decided ({row.outcome}) on "
                    f"{_utc(row.decided_at or now)}",
                    field="outcome",
                )
            row.outcome, row.reasons, row.decided_at = outcome.value, why, now
            event = event_after_scrutiny(OrderState(order.state), outcome)
            if event is not None:
                _lose_effect(s, ctx, order, principal, event, why or "")
        audit.record(
            s,
            principal,
            "removal_order.scrutiny",
            ENTITY,
            order.public_id,
            {
                "requested_by": row.requested_by,
                "request_in_time": row.request_in_time,
                "outcome": row.outcome,
                "order_state": order.state,
            },
            organisation_id=order.provider_id,
            at=now,
        )
        return order_view(s, ctx, principal, order)


def _lose_effect(
    s: Session,
    ctx: Context,
    order: RemovalOrder,
    principal: Principal,
    event: OrderEvent,
    reasons: str,
) -> None:
    """The order ceased to have legal effect: what it restricted comes back (a no-action
    decision replaces the order's, like a reversed complaint), and the clock stops."""
    now = ctx.now()
    order.state = next_order_state(OrderState(order.state), event).value
    order.deadline_at, order.updated_at = None, now
    items = s.scalars(
        select(RemovalOrderItem)
        .where(RemovalOrderItem.order_id == order.id)
        .order_by(RemovalOrderItem.content_item_id)
        .with_for_update()
    ).all()
    hold_active = _hold_active(s, order, now)
    for item in items:
        if item.decision_id is None or item.reinstated_at is not None:
            continue
        original = s.get(Decision, item.decision_id, with_for_update=True)
        case = s.get(Case, item.case_id, with_for_update=True)
        assert original is not None and case is not None
        if original.status != DecisionStatus.IN_FORCE.value:
            continue  # already replaced (a complaint): nothing of the order's is in force
        d = Decision(
            case_id=case.id,
            provider_id=case.provider_id,
            action=Action.NO_ACTION.value,
            ground=None,
            assessment_id=None,
            facts=f"Removal order {order.reference} ceased to have legal effect after the "
            f"host Member State's scrutiny (Regulation (EU) 2021/784, Art 4): {reasons}",
            justification=None,
            territorial_scope=[],
            automated_detection=False,
            automated_decision=AutomatedDecision.NOT_AUTOMATED.value,
            status=DecisionStatus.AWAITING_APPROVAL.value,
            decided_by=principal.user_id,
        )
        s.add(d)
        s.flush()
        if CaseState(case.state) is CaseState.ACTIONED:
            case.state = next_state(CaseState.ACTIONED, CaseEvent.ORDER_LOST_EFFECT).value
        case.updated_at = now
        put_in_force(s, ctx, d, case, replaces=original, inform_uploader=not hold_active)
        if event is OrderEvent.REINSTATE:
            mark_reinstated(s, ctx, item, "scrutiny", principal)


# --- Art 11 hold ---------------------------------------------------------------------------------


def renew_confidentiality(
    ctx: Context,
    principal: Principal,
    order_id: uuid.UUID,
    *,
    days: int = 42,
    reasons: str,
) -> dict[str, Any]:
    """The issuing authority renews the hold once, by at most six weeks (Art 11(3))."""
    require(principal, Permission.ISSUE_ORDERS)
    why = reasons.strip()
    if len(why) < 10:
        raise InvalidInput(
            "give the public-security reasons for the renewal (at least 10 characters)",
            field="reasons",
        )
    with ctx.transaction() as s:
        order = _authority_order(s, principal, order_id)
        row = s.get(RemovalOrderHold, order.id, with_for_update=True)
        if row is None:
            raise InvalidInput(
                "the order did not ask to withhold the information from the uploader "
                "(Annex I, Art 11(3)): there is no hold to renew",
                field="order",
            )
        hold = ConfidentialityHold(
            row.decided_at,
            timedelta(days=row.period_days),
            timedelta(days=row.extension_days) if row.extension_days else None,
            row.renewed_at,
        )
        now = ctx.now()
        renewed = renew_hold(hold, at=now, extension=_days(days))
        row.extension_days, row.renewed_at, row.renewal_reasons = days, now, why
        row.info_due_at = renewed.info_due_at
        audit.record(
            s,
            principal,
            "removal_order.hold_renewed",
            ENTITY,
            order.public_id,
            {"days": days, "info_due_at": renewed.info_due_at.isoformat()},
            organisation_id=order.provider_id,
            at=now,
        )
        return order_view(s, ctx, principal, order)


def _days(days: int) -> timedelta:
    if not 1 <= days <= 42:
        raise InvalidInput("a renewal lasts 1 to 42 days (six weeks)", field="days")
    return timedelta(days=days)


# --- escalations and the sweep -----------------------------------------------------------------


def _defer_escalations(s: Session, ctx: Context, order: RemovalOrder) -> None:
    """Jobs at each reminder's due time (the minute sweep is the backstop if one is lost)."""
    if order.deadline_at is None:
        return
    for e in escalation_schedule(order.deadline_at, ctx.order_escalation_points):
        # "missed" is due strictly after the deadline: run it a second later.
        at = e.due_at + timedelta(seconds=1) if e.missed else e.due_at
        jobs.defer(
            s,
            jobs.ESCALATE_ORDER,
            {"order_id": order.id},
            priority=jobs.ORDER_PRIORITY,
            scheduled_at=at,
        )


def escalate_due(ctx: Context, order_id: int | None = None) -> int:
    """Send every reminder that is due now (all orders, or one); each fires once per
    deadline, whichever process gets there first. Returns how many were sent."""
    now = ctx.now()
    points = ctx.order_escalation_points
    missed_sent = exists().where(
        RemovalOrderEscalation.order_id == RemovalOrder.id,
        RemovalOrderEscalation.deadline_at == RemovalOrder.deadline_at,
        RemovalOrderEscalation.missed.is_(True),
    )
    q = select(RemovalOrder).where(
        RemovalOrder.state == OrderState.RECEIVED.value,
        RemovalOrder.deadline_at.is_not(None),
        RemovalOrder.deadline_at <= now + max(points),
        ~missed_sent,
    )
    if order_id is not None:
        q = q.where(RemovalOrder.id == order_id)
    sent = 0
    with ctx.transaction() as s:
        for order in s.scalars(
            q.order_by(RemovalOrder.deadline_at).with_for_update(skip_locked=True)
        ).all():
            assert order.deadline_at is not None
            done = set(
                s.scalars(
                    select(RemovalOrderEscalation.key).where(
                        RemovalOrderEscalation.order_id == order.id
                    )
                )
            )
            for e in escalations_due(order.deadline_at, now, points, done):
                sent += _escalate(s, ctx, order, e, now)
    return sent


def _escalate(s: Session, ctx: Context, order: RemovalOrder, e: Escalation, now: datetime) -> int:
    provider = s.get(Organisation, order.provider_id)
    assert provider is not None
    webhook = bool(provider.webhook_url and provider.webhook_secret)
    escalation_id = s.execute(
        pg_insert(RemovalOrderEscalation)
        .values(
            order_id=order.id,
            key=e.key,
            label=e.label,
            due_at=e.due_at,
            deadline_at=e.deadline,
            missed=e.missed,
            sent_at=now,
            webhook_status="pending" if webhook else None,
            webhook_attempts=0,
        )
        .on_conflict_do_nothing(index_elements=["order_id", "key"])
        .returning(RemovalOrderEscalation.id)
    ).scalar_one_or_none()
    if escalation_id is None:
        return 0  # another worker sent it
    left = e.deadline - now
    waiting = (
        f"Execution was requested {_utc(order.execution_requested_at)}; the platform has "
        "not confirmed it yet.\n"
        if order.execution_requested_at
        else ""
    )
    if e.missed:
        subject = f"MISSED: removal order {order.reference} was due {_utc(e.deadline)}"
        lead = (
            f"The one-hour deadline of removal order {order.reference} passed at "
            f"{_utc(e.deadline)} without execution. Execute it now or answer with Annex III; "
            "the delay is recorded and reported (Art 7, Art 18)."
        )
    else:
        subject = f"[{e.label}] removal order {order.reference}: execute by {_utc(e.deadline)}"
        lead = (
            f"{int(left.total_seconds() // 60)} min left: removal order {order.reference} of "
            f"{order.issuing_authority} ({order.issuing_member_state}) must be executed by "
            f"{_utc(e.deadline)}."
        )
    message_id = None
    if provider.contact_email:
        message_id = queue_message(
            s,
            kind="removal_order.escalation",
            recipient=provider.contact_email,
            subject=subject,
            body=f"{lead}\n{waiting}\n"
            + "\n".join(f"  {u}" for u in order.content_urls)
            + f"\n\n{order_link(ctx, order)}\n",
            related=(ENTITY, order.public_id),
        )
        s.execute(
            update(RemovalOrderEscalation)
            .where(RemovalOrderEscalation.id == escalation_id)
            .values(message_id=message_id)
        )
    if webhook:
        jobs.defer(
            s,
            jobs.SEND_ORDER_ESCALATION,
            {"escalation_id": escalation_id},
            priority=jobs.ORDER_PRIORITY,
        )
    if e.missed and order.missed_at is None:
        order.missed_at = e.deadline
    if not (message_id or webhook):
        log.warning("removal order %s: nobody to escalate to", order.public_id)
    audit.record(
        s,
        "system",
        "removal_order.deadline_missed" if e.missed else "removal_order.escalated",
        ENTITY,
        order.public_id,
        {
            "key": e.key,
            "label": e.label,
            "deadline": e.deadline.isoformat(),
            "e_mail": message_id is not None,
            "webhook": webhook,
        },
        organisation_id=order.provider_id,
        at=now,
    )
    return 1


def send_escalation_webhook(ctx: Context, escalation_id: int) -> str:
    """Deliver one escalation to the provider's platform webhook (retried by the job)."""
    with ctx.transaction() as s:
        esc = s.get(RemovalOrderEscalation, escalation_id, with_for_update=True)
        if esc is None:
            return "missing"
        if esc.webhook_status != "pending":
            return esc.webhook_status or "none"
        order = s.get(RemovalOrder, esc.order_id)
        assert order is not None
        org = s.get(Organisation, order.provider_id)
        assert org is not None
        if not org.webhook_url or not org.webhook_secret:
            esc.webhook_status = None
            return "none"
        esc.webhook_attempts += 1
        payload = {
            "type": "removal_order.escalation",
            "id": f"{order.public_id}/{esc.key}",
            "order_id": str(order.public_id),
            "reference": order.reference,
            "label": esc.label,
            "missed": esc.missed,
            "deadline": esc.deadline_at.isoformat(),
            "content_urls": list(order.content_urls),
            "order_url": order_link(ctx, order),
        }
        body = json.dumps(payload, sort_keys=True).encode()
        try:
            result = ctx.webhooks.send(org.webhook_url, org.webhook_secret, body)
        except UnsafeTarget as exc:
            esc.webhook_status, esc.webhook_error = "failed", str(exc)
            return esc.webhook_status  # configuration problem: retrying cannot help
        except Exception as exc:
            esc.webhook_error = f"{type(exc).__name__}: {exc}"[:2000]
            s.commit()
            raise EscalationWebhookFailed(esc.webhook_error) from exc
        if 200 <= result.status_code < 300:
            esc.webhook_status = "sent"
            return esc.webhook_status
        esc.webhook_error = f"HTTP {result.status_code}: {result.body[:500]}"
        s.commit()
        raise EscalationWebhookFailed(esc.webhook_error)


def release_holds(ctx: Context) -> int:
    """Art 11(3): when a hold ends the uploader gets the statements of reasons that waited.
    Returns how many orders' information was released."""
    now = ctx.now()
    released = 0
    with ctx.transaction() as s:
        rows = s.execute(
            select(RemovalOrderHold, RemovalOrder)
            .join(RemovalOrder, RemovalOrder.id == RemovalOrderHold.order_id)
            .where(
                RemovalOrderHold.info_sent_at.is_(None),
                RemovalOrderHold.info_due_at <= now,
                RemovalOrder.execution_requested_at.is_not(None),
            )
            .with_for_update(of=RemovalOrderHold, skip_locked=True)
        ).all()
        for hold, order in rows:
            messages = _inform_uploaders(s, order)
            hold.info_sent_at = now
            released += 1
            audit.record(
                s,
                "system",
                "removal_order.information_released",
                ENTITY,
                order.public_id,
                {"info_due_at": hold.info_due_at.isoformat(), "messages": messages},
                organisation_id=order.provider_id,
                at=now,
            )
    return released


def _inform_uploaders(s: Session, order: RemovalOrder) -> int:
    provider = s.get(Organisation, order.provider_id)
    assert provider is not None
    sent = 0
    items = s.scalars(select(RemovalOrderItem).where(RemovalOrderItem.order_id == order.id))
    for item in items:
        content = s.get(ContentItem, item.content_item_id)
        if item.decision_id is None or content is None or not content.uploader_email:
            continue
        later = select(Decision.id).where(Decision.replaces_id == item.decision_id)
        statements = s.scalars(
            select(Statement)
            .where((Statement.decision_id == item.decision_id) | Statement.decision_id.in_(later))
            .order_by(Statement.id)
        )
        for st in statements:
            queue_message(
                s,
                kind="statement_of_reasons",
                recipient=content.uploader_email,
                subject=f"{provider.name}: a decision about your content",
                body=st.text,
                related=("statement", st.public_id),
            )
            sent += 1
    return sent


@dataclass(frozen=True)
class OrdersSweepReport:
    escalations: int
    holds_released: int


def sweep(ctx: Context) -> OrdersSweepReport:
    """The minute task: reminders that are due (backstop of the scheduled jobs) and holds
    that ended."""
    return OrdersSweepReport(escalate_due(ctx), release_holds(ctx))


# --- who sees what -------------------------------------------------------------------------------


def _require_party(principal: Principal) -> None:
    """Actions either side may take: refused up front to those who can do neither."""
    if principal.is_anonymous:
        require(principal, Permission.READ_ORDERS)  # raises Unauthenticated
    if not (principal.can(Permission.ISSUE_ORDERS) or principal.can(Permission.EXECUTE_ORDERS)):
        raise Forbidden("your role does not allow acting on removal orders")


def _load(s: Session, order_id: uuid.UUID) -> RemovalOrder:
    order = s.scalar(
        select(RemovalOrder).where(RemovalOrder.public_id == order_id).with_for_update()
    )
    if order is None:
        raise NotFound("no such removal order")
    return order


def _is_provider(principal: Principal, order: RemovalOrder) -> bool:
    return (
        principal.org_kind is OrgKind.HOSTING_PROVIDER
        and principal.organisation_id == order.provider_id
    )


def _provider_order(s: Session, principal: Principal, order_id: uuid.UUID) -> RemovalOrder:
    order = _load(s, order_id)
    if not _is_provider(principal, order):
        raise NotFound("no such removal order")
    return order


def _authority_order(s: Session, principal: Principal, order_id: uuid.UUID) -> RemovalOrder:
    order = _load(s, order_id)
    if principal.organisation_id != order.authority_id:
        raise NotFound("no such removal order")
    return order


def _party_order(s: Session, principal: Principal, order_id: uuid.UUID) -> tuple[RemovalOrder, str]:
    """The order and the side the principal acts for, with that side's permission."""
    order = _load(s, order_id)
    if principal.organisation_id == order.authority_id:
        require(principal, Permission.ISSUE_ORDERS)
        return order, "authority"
    if _is_provider(principal, order):
        require(principal, Permission.EXECUTE_ORDERS)
        return order, "provider"
    raise NotFound("no such removal order")


def _visible(principal: Principal) -> Any:
    """SQL: the orders the principal's organisation sent or received."""
    if principal.org_kind is OrgKind.HOSTING_PROVIDER:
        return RemovalOrder.provider_id == principal.organisation_id
    return RemovalOrder.authority_id == principal.organisation_id


# --- reading -------------------------------------------------------------------------------------


def _iso(at: datetime | None) -> str | None:
    return at.astimezone(UTC).isoformat() if at is not None else None


def order_view(
    s: Session, ctx: Context, principal: Principal, order: RemovalOrder
) -> dict[str, Any]:
    """Everything one side may know about an order, with the countdown at ``ctx.now()``."""
    now = ctx.now()
    clock = clock_of(s, order)
    remaining = clock.remaining(now) if OrderState(order.state) is OrderState.RECEIVED else None
    provider_side = _is_provider(principal, order)
    orgs = {
        o.id: o.slug
        for o in s.scalars(
            select(Organisation).where(Organisation.id.in_([order.provider_id, order.authority_id]))
        )
    }
    items = s.scalars(
        select(RemovalOrderItem)
        .where(RemovalOrderItem.order_id == order.id)
        .order_by(RemovalOrderItem.url)
    ).all()
    escalations = s.scalars(
        select(RemovalOrderEscalation)
        .where(RemovalOrderEscalation.order_id == order.id)
        .order_by(RemovalOrderEscalation.id)
    ).all()
    replies = s.scalars(
        select(RemovalOrderReply)
        .where(RemovalOrderReply.order_id == order.id)
        .order_by(RemovalOrderReply.id)
    ).all()
    hold = s.get(RemovalOrderHold, order.id)
    scrutiny = s.get(RemovalOrderScrutiny, order.id)
    view: dict[str, Any] = {
        "id": str(order.public_id),
        "reference": order.reference,
        "state": order.state,
        "addressee": orgs.get(order.provider_id),
        "authority": orgs.get(order.authority_id),
        "issuing_authority": order.issuing_authority,
        "issuing_member_state": order.issuing_member_state,
        "host_member_state": order.host_member_state,
        "cross_border": order.cross_border,
        "issued_at": _iso(order.issued_at),
        "sent_at": _iso(order.sent_at),
        "received_at": _iso(order.received_at),
        "deadline_at": _iso(order.deadline_at),
        "remaining_seconds": int(remaining.total_seconds()) if remaining is not None else None,
        "overdue": remaining is not None and remaining.total_seconds() < 0,
        "paused": clock.paused and OrderState(order.state) in PENDING_STATES,
        "missed_at": _iso(order.missed_at),
        "execution_requested_at": _iso(order.execution_requested_at),
        "executed_at": _iso(order.executed_at),
        "executed_in_time": order.executed_in_time,
        "action": order.execution_action,
        "automated": order.automated,
        "content_urls": list(order.content_urls),
        "locating_details": order.locating_details,
        "reasons": list(order.reasons),
        "additional_reasons": order.additional_reasons,
        "withhold_information": order.withhold_information,
        "confidentiality_days": order.confidentiality_days,
        "contact": {
            "name": order.contact_name,
            "email": order.contact_email,
            "phone": order.contact_phone,
        },
        "redress_information": order.redress_information,
        "inability_reason": order.inability_reason,
        "first_order": {
            "first": order.first_order,
            "prior_information_at": _iso(order.prior_info_at),
            "emergency": order.emergency,
            "notice_ok": order.first_order_notice_ok,
        },
        "receipt": _receipt(s, order),
        "clock": [{"kind": e.kind.value, "at": _iso(e.at)} for e in clock.events],
        "items": [
            {
                "url": i.url,
                "case_id": i.case_id if provider_side else None,
                "decision_id": i.decision_id if provider_side else None,
                "confirmed_at": _iso(i.confirmed_at),
                "reinstated_at": _iso(i.reinstated_at),
                "reinstated_after": i.reinstated_after,
            }
            for i in items
        ],
        "escalations": [
            {
                "key": e.key,
                "label": e.label,
                "due_at": _iso(e.due_at),
                "sent_at": _iso(e.sent_at),
                "missed": e.missed,
                "webhook": e.webhook_status,
            }
            for e in escalations
        ]
        if provider_side
        else [],
        "replies": [
            {"id": str(r.public_id), "annex": r.annex, "created_at": _iso(r.created_at)}
            for r in replies
        ],
        "hold": {
            "info_due_at": _iso(hold.info_due_at),
            "renewed_at": _iso(hold.renewed_at),
            "active": now < hold.info_due_at,
            "info_sent_at": _iso(hold.info_sent_at),
        }
        if hold is not None
        else None,
        "scrutiny": {
            "requested_by": scrutiny.requested_by,
            "requested_at": _iso(scrutiny.requested_at),
            "request_in_time": scrutiny.request_in_time,
            "due_at": _iso(scrutiny.due_at),
            "outcome": scrutiny.outcome,
            "decided_at": _iso(scrutiny.decided_at),
            "reasons": scrutiny.reasons,
        }
        if scrutiny is not None
        else None,
        "complaints": _complaints(s, items, now) if provider_side else [],
        "withdrawal": _withdrawal(s, order)
        if OrderState(order.state) is OrderState.WITHDRAWN
        else None,
    }
    return view


def _receipt(s: Session, order: RemovalOrder) -> dict[str, Any]:
    """The receipt, re-checked: the stored order still hashes to the recorded value."""
    entry = _audit_entry(s, order, "removal_order.received")
    recomputed = receipt_hash(order.received_body, order.received_at)
    return {
        "hash": order.receipt_hash,
        "received_at": _iso(order.received_at),
        "sent_at": _iso(order.sent_at),
        "audit_seq": entry.seq if entry else None,
        "verified": recomputed == order.receipt_hash
        and entry is not None
        and entry.data.get("receipt_hash") == order.receipt_hash,
    }


def _complaints(
    s: Session, items: Sequence[RemovalOrderItem], now: datetime
) -> list[dict[str, Any]]:
    """Complaints against the order's decisions, with the Art 10(2) two-week deadline."""
    decision_ids = [i.decision_id for i in items if i.decision_id is not None]
    if not decision_ids:
        return []
    rows = s.scalars(
        select(Complaint).where(Complaint.decision_id.in_(decision_ids)).order_by(Complaint.id)
    )
    return [
        {
            "id": str(c.public_id),
            "status": c.status,
            "outcome": c.outcome,
            "lodged_at": _iso(c.lodged_at),
            "due_at": _iso(complaint_due_at(c.lodged_at)),
            "decided_at": _iso(c.decided_at),
            "overdue": complaint_overdue(c.lodged_at, now, c.decided_at),
        }
        for c in rows
    ]


def _readable_order(s: Session, principal: Principal, order_id: uuid.UUID) -> RemovalOrder:
    """The order, unlocked, if the principal's organisation sent or received it."""
    order = s.scalar(select(RemovalOrder).where(RemovalOrder.public_id == order_id))
    if order is None or not (
        _is_provider(principal, order) or principal.organisation_id == order.authority_id
    ):
        raise NotFound("no such removal order")
    return order


def get_order(ctx: Context, principal: Principal, order_id: uuid.UUID) -> dict[str, Any]:
    require(principal, Permission.READ_ORDERS)
    with ctx.sessions() as s:
        order = _readable_order(s, principal, order_id)
        return order_view(s, ctx, principal, order)


def list_orders(
    ctx: Context,
    principal: Principal,
    *,
    state: str | None = None,
    limit: int = 50,
    offset: int = 0,
) -> tuple[list[dict[str, Any]], int]:
    """The orders the organisation sent (authority) or received (provider); the ones whose
    hour runs out first come first."""
    require(principal, Permission.READ_ORDERS)
    if state is not None and state not in {st.value for st in OrderState}:
        raise InvalidInput(
            f"unknown state '{state}'; one of: {', '.join(st.value for st in OrderState)}",
            field="state",
        )
    with ctx.sessions() as s:
        q = select(RemovalOrder).where(_visible(principal))
        if state:
            q = q.where(RemovalOrder.state == state)
        total = s.scalar(select(func.count()).select_from(q.subquery())) or 0
        rows = s.scalars(
            q.order_by(
                RemovalOrder.deadline_at.asc().nulls_last(),
                RemovalOrder.received_at.desc(),
                RemovalOrder.id.desc(),
            )
            .limit(limit)
            .offset(offset)
        ).all()
        return [order_view(s, ctx, principal, o) for o in rows], total


def get_reply(
    ctx: Context, principal: Principal, order_id: uuid.UUID, annex: str
) -> RemovalOrderReply:
    """The latest Annex II or III answer of an order, as sent to the authority."""
    require(principal, Permission.READ_ORDERS)
    with ctx.sessions() as s:
        order = _readable_order(s, principal, order_id)
        reply = s.scalar(
            select(RemovalOrderReply)
            .where(RemovalOrderReply.order_id == order.id, RemovalOrderReply.annex == annex)
            .order_by(RemovalOrderReply.id.desc())
            .limit(1)
        )
        if reply is None:
            raise NotFound(
                "the order is not executed yet: Annex II is sent when the platform confirms"
                if annex == ANNEX_II
                else "no Annex III answer was given for this order",
                field="annex",
            )
        return reply


# --- the Art 7 numbers ---------------------------------------------------------------------------


def order_statistics(ctx: Context, principal: Principal, year: int) -> dict[str, Any]:
    """What the Art 7 transparency report needs for one calendar year (orders received that
    year, UTC): executed in time or late, not executed and why, complaints and their outcome,
    reinstatements, scrutiny. A provider counts the orders it received; an authority, those
    it sent."""
    require(principal, Permission.READ_ORDERS)
    if not 2000 <= year <= 2999:
        raise InvalidInput("year must be between 2000 and 2999", field="year")
    start, end = datetime(year, 1, 1, tzinfo=UTC), datetime(year + 1, 1, 1, tzinfo=UTC)
    now = ctx.now()
    with ctx.sessions() as s:
        orders = s.scalars(
            select(RemovalOrder).where(
                _visible(principal),
                RemovalOrder.received_at >= start,
                RemovalOrder.received_at < end,
            )
        ).all()
        ids = [o.id for o in orders]
        items = (
            s.scalars(select(RemovalOrderItem).where(RemovalOrderItem.order_id.in_(ids))).all()
            if ids
            else []
        )
        answers = Counter(
            s.scalars(
                select(RemovalOrderReply.body["inability"]["reason"].astext).where(
                    RemovalOrderReply.order_id.in_(ids), RemovalOrderReply.annex == ANNEX_III
                )
            ).all()
            if ids
            else []
        )
        decision_ids = [i.decision_id for i in items if i.decision_id is not None]
        complaints = (
            s.scalars(select(Complaint).where(Complaint.decision_id.in_(decision_ids))).all()
            if decision_ids
            else []
        )
        scrutinies = (
            s.scalars(
                select(RemovalOrderScrutiny).where(RemovalOrderScrutiny.order_id.in_(ids))
            ).all()
            if ids
            else []
        )
    not_executed: Counter[str] = Counter()
    for o in orders:
        if o.executed_at is None:
            state = OrderState(o.state)
            key = (
                f"unable_to_execute:{o.inability_reason}"
                if state is OrderState.UNABLE_TO_EXECUTE
                else "pending"
                if state in PENDING_STATES
                else state.value
            )
            not_executed[key] += 1
    decided = [c for c in complaints if c.status == ComplaintStatus.DECIDED.value]
    return {
        "year": year,
        "orders": {
            "received": len(orders),
            "executed": sum(o.executed_at is not None for o in orders),
            "executed_in_time": sum(o.executed_in_time is True for o in orders),
            "executed_late": sum(o.executed_in_time is False for o in orders),
            "executed_automatically": sum(
                o.automated and o.executed_at is not None for o in orders
            ),
            "deadlines_missed": sum(o.missed_at is not None for o in orders),
            "not_executed": dict(sorted(not_executed.items())),
            "first_orders_without_prior_information": sum(
                o.first_order_notice_ok is False for o in orders
            ),
            "urls": len(items),
        },
        "annex_iii_answers": dict(sorted(answers.items())),
        "complaints": {
            "received": len(complaints),
            "open": len(complaints) - len(decided),
            "outcomes": dict(sorted(Counter(c.outcome or "" for c in decided).items())),
            "answered_late": sum(
                complaint_overdue(c.lodged_at, now, c.decided_at) for c in complaints
            ),
        },
        "reinstatements": dict(
            sorted(
                Counter(
                    f"after_{i.reinstated_after}" for i in items if i.reinstated_at is not None
                ).items()
            )
        ),
        "scrutiny": {
            "requested": len(scrutinies),
            "pending": sum(x.outcome is None for x in scrutinies),
            "upheld": sum(x.outcome == ScrutinyOutcome.UPHELD.value for x in scrutinies),
            "infringement_found": sum(
                x.outcome == ScrutinyOutcome.INFRINGEMENT_FOUND.value for x in scrutinies
            ),
        },
    }
