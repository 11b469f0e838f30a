"""Receiving notices (DSA Art 16) from every channel, and telling notifiers where they stand."""

from __future__ import annotations

import hashlib
import json
import secrets
import uuid
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, or_, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from cleanit.adapters.db.models import (
    Case,
    ContentItem,
    Decision,
    IdempotencyKey,
    Notice,
    NoticeCase,
    Organisation,
)
from cleanit.adapters.passwords import digest
from cleanit.domain.cases import CaseEvent, CaseState, next_state
from cleanit.domain.errors import Conflict, DomainError, InvalidInput, NotFound
from cleanit.domain.notices import (
    NO_NOTIFIER_SOURCES,
    NoticeDraft,
    is_art16_complete,
    priority_of,
    validate_notice,
)
from cleanit.domain.roles import OrgKind, Permission, Principal
from cleanit.services import audit
from cleanit.services.authz import require
from cleanit.services.context import Context
from cleanit.services.outbox import queue_message


@dataclass(frozen=True)
class NoticeReceipt:
    """What the notifier gets back (DSA Art 16(4) acknowledgement)."""

    notice_id: str
    tracking_code: str
    received_at: str
    case_ids: list[int]
    art16_complete: bool
    acknowledgement_sent: bool

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def request_fingerprint(draft: NoticeDraft) -> str:
    body = json.dumps(asdict(draft), sort_keys=True, default=str)
    return hashlib.sha256(body.encode()).hexdigest()


def idempotency_scope(principal: Principal) -> str:
    if principal.token_id is not None:
        return f"token:{principal.token_id}"
    if principal.user_id is not None:
        return f"user:{principal.user_id}"
    return "anonymous"


def _claim_key(s: Session, scope: str, key: str, fingerprint: str) -> dict[str, Any] | None:
    """Claim an idempotency key in this transaction, or return the stored response.

    If another transaction holds the same key uncommitted, the insert waits for it; after it
    commits we see its stored response, so a retry never creates a second notice.
    """
    if not 1 <= len(key) <= 200:
        raise InvalidInput("Idempotency-Key must be 1 to 200 characters", field="Idempotency-Key")
    claimed = s.execute(
        insert(IdempotencyKey)
        .values(scope=scope, key=key, request_hash=fingerprint)
        .on_conflict_do_nothing()
        .returning(IdempotencyKey.key)
    ).first()
    if claimed is not None:
        return None
    row = s.get(IdempotencyKey, (scope, key))
    assert row is not None
    if row.request_hash != fingerprint:
        raise Conflict(
            "this Idempotency-Key was already used for a different notice",
            field="Idempotency-Key",
        )
    assert row.response is not None
    return row.response


def _content_item(s: Session, provider_id: int, url: str) -> ContentItem:
    s.execute(
        insert(ContentItem)
        .values(provider_id=provider_id, url=url, canonical_url=url)
        .on_conflict_do_nothing(index_elements=["provider_id", "canonical_url"])
    )
    # Row lock: concurrent notices about the same content queue here, so exactly one case
    # is opened for it.
    item = s.scalar(
        select(ContentItem)
        .where(ContentItem.provider_id == provider_id, ContentItem.canonical_url == url)
        .with_for_update()
    )
    assert item is not None
    return item


def _join_case(s: Session, ctx: Context, item: ContentItem, draft: NoticeDraft) -> Case:
    case = s.scalar(
        select(Case).where(Case.content_item_id == item.id).order_by(Case.id.desc()).limit(1)
    )
    prio = priority_of(draft.source_type)
    now = ctx.now()
    if case is None:
        case = Case(
            provider_id=item.provider_id,
            content_item_id=item.id,
            state=CaseState.OPEN.value,
            priority=prio,
            category=draft.category.value,
            jurisdiction=draft.jurisdiction,
            opened_at=now,
            updated_at=now,
        )
        s.add(case)
        s.flush()
        return case
    case.state = next_state(CaseState(case.state), CaseEvent.NEW_NOTICE).value
    case.priority = min(case.priority, prio)
    case.updated_at = now
    return case


def receive_notice(
    ctx: Context,
    principal: Principal,
    draft: NoticeDraft,
    *,
    idempotency_key: str | None = None,
) -> NoticeReceipt:
    """Store a notice, join or open the case for each location, acknowledge receipt."""
    if not principal.is_anonymous:
        require(principal, Permission.SUBMIT_NOTICE)
    draft = validate_notice(draft, principal)
    with ctx.transaction() as s:
        return _receive(s, ctx, principal, draft, idempotency_key)


def _receive(
    s: Session,
    ctx: Context,
    principal: Principal,
    draft: NoticeDraft,
    idempotency_key: str | None,
) -> NoticeReceipt:
    fingerprint = request_fingerprint(draft)
    scope = idempotency_scope(principal)
    if idempotency_key is not None:
        stored = _claim_key(s, scope, idempotency_key, fingerprint)
        if stored is not None:
            return NoticeReceipt(**stored)
    provider = s.scalar(select(Organisation).where(Organisation.slug == draft.provider))
    if provider is None or provider.kind != OrgKind.HOSTING_PROVIDER.value:
        raise InvalidInput(
            f"no hosting provider '{draft.provider}' in this installation", field="provider"
        )
    if draft.source_type in NO_NOTIFIER_SOURCES and provider.id != principal.organisation_id:
        raise InvalidInput(
            "own-initiative and automated notices are only for your own platform",
            field="source_type",
        )
    now = ctx.now()
    tracking_code = "CIT-" + secrets.token_urlsafe(18)
    notice = Notice(
        public_id=uuid.uuid4(),
        tracking_secret_hash=digest(tracking_code),
        provider_id=provider.id,
        notifier_org_id=principal.organisation_id,
        notifier_user_id=principal.user_id,
        source_type=draft.source_type.value,
        category=draft.category.value,
        keywords=list(draft.keywords),
        explanation=draft.explanation,
        locations=list(draft.locations),
        jurisdiction=draft.jurisdiction,
        good_faith=draft.good_faith,
        anonymous=draft.anonymous,
        art16_complete=is_art16_complete(draft),
        notifier_name=draft.notifier_name,
        notifier_email=draft.notifier_email,
        received_at=now,
    )
    s.add(notice)
    s.flush()
    case_ids: list[int] = []
    for url in sorted(draft.locations):  # sorted: a stable lock order avoids deadlocks
        item = _content_item(s, provider.id, url)
        case = _join_case(s, ctx, item, draft)
        s.add(NoticeCase(notice_id=notice.id, case_id=case.id))
        case_ids.append(case.id)
    acknowledged = False
    if draft.notifier_email:
        queue_message(
            s,
            kind="notice.acknowledgement",
            recipient=draft.notifier_email,
            subject=f"We received your notice {notice.public_id}",
            body=(
                f"Thank you. {provider.name} received your notice on {now:%Y-%m-%d %H:%M} UTC.\n\n"
                f"Your tracking code: {tracking_code}\n"
                f"Follow it at {ctx.base_url}/api/v1/notice-status/{tracking_code}\n\n"
                "We will tell you what we decide and how you can contest the decision.\n"
            ),
            related=("notice", notice.id),
        )
        acknowledged = True
    receipt = NoticeReceipt(
        notice_id=str(notice.public_id),
        tracking_code=tracking_code,
        received_at=now.isoformat(),
        case_ids=sorted(set(case_ids)),
        art16_complete=notice.art16_complete,
        acknowledgement_sent=acknowledged,
    )
    if idempotency_key is not None:
        row = s.get(IdempotencyKey, (scope, idempotency_key))
        assert row is not None
        row.status_code, row.response = 201, receipt.as_dict()
    audit.record(
        s,
        principal,
        "notice.received",
        "notice",
        notice.public_id,
        {
            "source": draft.source_type.value,
            "category": draft.category.value,
            "cases": receipt.case_ids,
        },
        organisation_id=provider.id,
        at=now,
    )
    return receipt


def import_notices(
    ctx: Context,
    principal: Principal,
    drafts: Sequence[tuple[int, NoticeDraft, str | None]],
    on_stored: Callable[[int], None] | None = None,
) -> list[NoticeReceipt]:
    """Store many validated notices (line, draft, key) in ONE transaction: all or none.

    A failure names the line it happened on; nothing of the file is then stored.
    """
    receipts: list[NoticeReceipt] = []
    with ctx.transaction() as s:
        for line, draft, key in drafts:
            try:
                receipts.append(_receive(s, ctx, principal, draft, key))
            except DomainError as exc:
                raise InvalidInput(
                    f"line {line}: {exc.detail}; nothing was imported", field=exc.field
                ) from exc
            if on_stored:
                on_stored(line)
    return receipts


@dataclass(frozen=True)
class NoticeStatus:
    notice_id: str
    received_at: str
    status: str  # "received" | "in review" | "decided"
    outcome: str | None
    decided_at: str | None


def status_for_notifier(ctx: Context, tracking_code: str) -> NoticeStatus:
    """What a notifier may know with their tracking code: the state and the outcome."""
    with ctx.sessions() as s:
        notice = s.scalar(
            select(Notice).where(Notice.tracking_secret_hash == digest(tracking_code))
        )
        if notice is None:
            raise NotFound("unknown tracking code", field="tracking_code")
        rows = s.execute(
            select(Case.state, Decision.action, Decision.in_force_at)
            .join(NoticeCase, NoticeCase.case_id == Case.id)
            .outerjoin(Decision, (Decision.case_id == Case.id) & (Decision.status == "in_force"))
            .where(NoticeCase.notice_id == notice.id)
        ).all()
        decided = [r for r in rows if r[1] is not None or r[0] == CaseState.NO_ACTION.value]
        if rows and len(decided) == len(rows):
            actions = sorted({r[1] or "no_action" for r in decided})
            times = [r[2] for r in decided if r[2] is not None]
            return NoticeStatus(
                str(notice.public_id),
                notice.received_at.isoformat(),
                "decided",
                ", ".join(actions),
                max(times).isoformat() if times else None,
            )
        in_review = any(r[0] != CaseState.OPEN.value for r in rows)
        return NoticeStatus(
            str(notice.public_id),
            notice.received_at.isoformat(),
            "in review" if in_review else "received",
            None,
            None,
        )


def list_notices(
    ctx: Context,
    principal: Principal,
    *,
    limit: int = 50,
    offset: int = 0,
    source_type: str | None = None,
    category: str | None = None,
    received_after: datetime | None = None,
) -> tuple[list[Notice], int]:
    """Notices the principal's organisation sent or received, newest first."""
    require(principal, Permission.READ_NOTICES)
    with ctx.sessions() as s:
        org = principal.organisation_id
        # Notifiers see what they sent; a provider sees what it received.
        q = select(Notice).where(
            or_(Notice.notifier_org_id == org, Notice.provider_id == org)
            if principal.org_kind is OrgKind.HOSTING_PROVIDER
            else Notice.notifier_org_id == org
        )
        if source_type:
            q = q.where(Notice.source_type == source_type)
        if category:
            q = q.where(Notice.category == category)
        if received_after:
            q = q.where(Notice.received_at > received_after)
        total = s.scalar(select(func.count()).select_from(q.subquery())) or 0
        rows = s.scalars(
            q.order_by(Notice.received_at.desc(), Notice.id.desc()).limit(limit).offset(offset)
        )
        return list(rows), total


def get_notice(
    ctx: Context, principal: Principal, notice_id: uuid.UUID
) -> tuple[Notice, list[int]]:
    require(principal, Permission.READ_NOTICES)
    with ctx.sessions() as s:
        n = s.scalar(select(Notice).where(Notice.public_id == notice_id))
        org = principal.organisation_id
        visible = n is not None and (
            n.notifier_org_id == org
            or (n.provider_id == org and principal.org_kind is OrgKind.HOSTING_PROVIDER)
        )
        if n is None or not visible:
            raise NotFound("no such notice")
        cases = list(s.scalars(select(NoticeCase.case_id).where(NoticeCase.notice_id == n.id)))
        return n, cases
