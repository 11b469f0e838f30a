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

from sqlalchemy import Connection, bindparam, func, or_, select, update
from sqlalchemy.dialects.postgresql import JSONB, insert
from sqlalchemy.orm import Session

from cleanit.adapters.db.models import (
    Case,
    ContentItem,
    Decision,
    IdempotencyKey,
    Notice,
    NoticeCase,
    Organisation,
    table,
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

# The intake path runs for every notice, so its statements are built once and executed on the
# session's connection with parameters (building them per call cost more than running them).
_ITEMS = table(ContentItem)
_CASES = table(Case)
_CLAIM = insert(table(IdempotencyKey)).on_conflict_do_nothing().returning(IdempotencyKey.key)
_STORED = select(IdempotencyKey.request_hash, IdempotencyKey.response).where(
    IdempotencyKey.scope == bindparam("b_scope"), IdempotencyKey.key == bindparam("b_key")
)
_STORE_RESPONSE = (
    update(table(IdempotencyKey))
    .where(IdempotencyKey.scope == bindparam("b_scope"), IdempotencyKey.key == bindparam("b_key"))
    .values(status_code=bindparam("b_status"), response=bindparam("b_response", type_=JSONB))
)
_PROVIDER = select(Organisation.id, Organisation.name).where(
    Organisation.slug == bindparam("b_slug"),
    Organisation.kind == OrgKind.HOSTING_PROVIDER.value,
)
_INSERT_NOTICE = insert(table(Notice)).returning(Notice.id)
_upsert = insert(_ITEMS)
# DO UPDATE (unlike DO NOTHING) returns an existing row, and locks it.
_UPSERT_ITEM = _upsert.on_conflict_do_update(
    index_elements=["provider_id", "canonical_url"],
    set_={"canonical_url": _upsert.excluded.canonical_url},
).returning(_ITEMS.c.id)
_LAST_CASE = (
    select(_CASES.c.id, _CASES.c.state, _CASES.c.priority)
    .where(_CASES.c.content_item_id == bindparam("b_item"))
    .order_by(_CASES.c.id.desc())
    .limit(1)
)
_INSERT_CASE = insert(_CASES).returning(_CASES.c.id)
_UPDATE_CASE = (
    update(_CASES)
    .where(_CASES.c.id == bindparam("b_case"))
    .values(
        state=bindparam("b_state"),
        priority=bindparam("b_priority"),
        updated_at=bindparam("b_now"),
    )
)
_INSERT_NOTICE_CASE = insert(table(NoticeCase))


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


def _claim_key(c: Connection, scope: str, key: str, fingerprint: str) -> dict[str, Any] | None:
    """Claim an idempotency key in this transaction, or return the stored response.

    If another transaction holds the same key uncommitted, the insert waits for it; after it
    commits we see its stored response, so a retry never creates a second notice.
    """
    if not 1 <= len(key) <= 200:
        raise InvalidInput("Idempotency-Key must be 1 to 200 characters", field="Idempotency-Key")
    claimed = c.execute(_CLAIM, {"scope": scope, "key": key, "request_hash": fingerprint}).first()
    if claimed is not None:
        return None
    row = c.execute(_STORED, {"b_scope": scope, "b_key": key}).one()
    if row.request_hash != fingerprint:
        raise Conflict(
            "this Idempotency-Key was already used for a different notice",
            field="Idempotency-Key",
        )
    assert row.response is not None
    return dict(row.response)


def _content_item(c: Connection, provider_id: int, url: str) -> int:
    """Find or create the content item and lock its row, in one statement.

    The row lock makes concurrent notices about the same content queue here, so exactly one
    case is opened for it.
    """
    params = {
        "provider_id": provider_id,
        "url": url,
        "canonical_url": url,
        "platform_state": "available",
    }
    return int(c.execute(_UPSERT_ITEM, params).scalar_one())


def _join_case(
    c: Connection, ctx: Context, item_id: int, provider_id: int, draft: NoticeDraft
) -> int:
    """The case of this content (a new notice joins it), or a new one."""
    prio = priority_of(draft.source_type)
    now = ctx.now()
    row = c.execute(_LAST_CASE, {"b_item": item_id}).first()
    if row is None:
        params = {
            "provider_id": provider_id,
            "content_item_id": item_id,
            "state": CaseState.OPEN.value,
            "priority": prio,
            "category": draft.category.value,
            "jurisdiction": draft.jurisdiction,
            "opened_at": now,
            "updated_at": now,
        }
        return int(c.execute(_INSERT_CASE, params).scalar_one())
    case_id, state, priority = row
    c.execute(
        _UPDATE_CASE,
        {
            "b_case": case_id,
            "b_state": next_state(CaseState(state), CaseEvent.NEW_NOTICE).value,
            "b_priority": min(priority, prio),
            "b_now": now,
        },
    )
    return int(case_id)


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
        return receive_in(s, ctx, principal, draft, idempotency_key)


def receive_in(
    s: Session,
    ctx: Context,
    principal: Principal,
    draft: NoticeDraft,
    idempotency_key: str | None,
) -> NoticeReceipt:
    """Store a validated notice inside the caller's transaction ``s`` (bulk imports and the
    matching service join their own transaction this way); see ``receive_notice``."""
    fingerprint = request_fingerprint(draft)
    scope = idempotency_scope(principal)
    c = s.connection()
    if idempotency_key is not None:
        stored = _claim_key(c, scope, idempotency_key, fingerprint)
        if stored is not None:
            return NoticeReceipt(**stored)
    provider = c.execute(_PROVIDER, {"b_slug": draft.provider}).first()
    if provider is None:
        raise InvalidInput(
            f"no hosting provider '{draft.provider}' in this installation", field="provider"
        )
    provider_id, provider_name = provider
    if draft.source_type in NO_NOTIFIER_SOURCES and provider_id != principal.organisation_id:
        raise InvalidInput(
            "own-initiative and automated notices are only for your own platform",
            field="source_type",
        )
    now = ctx.now()
    tracking_code = "CIT-" + secrets.token_urlsafe(18)
    public_id = uuid.uuid4()
    notice_id = c.execute(
        _INSERT_NOTICE,
        {
            "public_id": public_id,
            "tracking_secret_hash": digest(tracking_code),
            "provider_id": provider_id,
            "notifier_org_id": principal.organisation_id,
            "notifier_user_id": principal.user_id,
            "source_type": draft.source_type.value,
            "category": draft.category.value,
            "keywords": list(draft.keywords),
            "explanation": draft.explanation,
            "locations": list(draft.locations),
            "jurisdiction": draft.jurisdiction,
            "good_faith": draft.good_faith,
            "anonymous": draft.anonymous,
            "art16_complete": is_art16_complete(draft),
            "notifier_name": draft.notifier_name,
            "notifier_email": draft.notifier_email,
            "received_at": now,
        },
    ).scalar_one()
    case_ids: list[int] = []
    for url in sorted(draft.locations):  # sorted: a stable lock order avoids deadlocks
        item_id = _content_item(c, provider_id, url)
        case_ids.append(_join_case(c, ctx, item_id, provider_id, draft))
    c.execute(_INSERT_NOTICE_CASE, [{"notice_id": notice_id, "case_id": i} for i in case_ids])
    acknowledged = False
    if draft.notifier_email:
        queue_message(
            s,
            kind="notice.acknowledgement",
            recipient=draft.notifier_email,
            subject=f"We received your notice {public_id}",
            body=(
                f"Thank you. {provider_name} received your notice on {now:%Y-%m-%d %H:%M} UTC.\n\n"
                f"Your tracking code: {tracking_code}\n"
                f"Follow it at {ctx.base_url}/api/v1/notice-status/{tracking_code}\n\n"
                "We will tell you what we decide and how you can contest the decision.\n"
            ),
            related=("notice", notice_id),
        )
        acknowledged = True
    receipt = NoticeReceipt(
        notice_id=str(public_id),
        tracking_code=tracking_code,
        received_at=now.isoformat(),
        case_ids=sorted(set(case_ids)),
        art16_complete=is_art16_complete(draft),
        acknowledgement_sent=acknowledged,
    )
    if idempotency_key is not None:
        c.execute(
            _STORE_RESPONSE,
            {
                "b_scope": scope,
                "b_key": idempotency_key,
                "b_status": 201,
                "b_response": receipt.as_dict(),
            },
        )
    audit.record(
        s,
        principal,
        "notice.received",
        "notice",
        public_id,
        {
            "source": draft.source_type.value,
            "category": draft.category.value,
            "cases": receipt.case_ids,
        },
        organisation_id=provider_id,
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
                receipts.append(receive_in(s, ctx, principal, draft, key))
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
