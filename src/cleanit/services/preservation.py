"""Preservation holds (TCO Art 6): removed content and related data, kept encrypted for six
months, opened only by entitled roles for a stated purpose, deleted at expiry.

What is preserved (see docs/preservation.md): cleanit never holds the content's bytes itself,
so a hold starts with ``record.json`` — everything cleanit knows about the content (its URL
and uploader, the case, the decision and statement, the notices, the hash matches) — and the
platform adds the removed file(s) with ``add_content``. Every item is a blob in the vault
(``ctx.vault``), sealed with AAD naming the hold and the item, so a blob cannot be passed off
as another hold's.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import and_, func, or_, select
from sqlalchemy import event as sa_event
from sqlalchemy.orm import Session

from cleanit.adapters.db.models import (
    AuditEntry,
    Case,
    ContentItem,
    Decision,
    Match,
    Notice,
    NoticeCase,
    Organisation,
    PreservationAccess,
    PreservationHold,
    Statement,
)
from cleanit.adapters.evidence import ContentFile, PackageInfo, build_package
from cleanit.adapters.vault import BlobRef, Vault
from cleanit.domain.audit import AuditRecord
from cleanit.domain.decisions import Action
from cleanit.domain.errors import Conflict, InvalidInput, NotFound
from cleanit.domain.holds import (
    PRESERVING_ACTIONS,
    PreservationExtension,
    check_access_purpose,
    extend_preservation,
    preservation_expires_at,
)
from cleanit.domain.roles import OrgKind, Permission, Principal
from cleanit.services import audit
from cleanit.services.authz import require, require_member
from cleanit.services.context import Context

HOLD = "preservation_hold"  # the audit log's entity name
RECORD = "record.json"
ACTIVE, EXPIRED = "active", "expired"
OPERATOR = "operator"  # the local operator at the command line
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")
MAX_LIST = 200


@dataclass(frozen=True, slots=True)
class ItemView:
    name: str
    media_type: str
    source: str  # "cleanit" (the record) or "platform" (uploaded content)
    sha256: str
    size: int
    preserved_at: datetime


@dataclass(frozen=True, slots=True)
class HoldView:
    id: int
    provider_id: int
    case_id: int
    decision_id: int | None
    content_item_id: int
    removal_order_id: int | None
    status: str
    preserved_at: datetime
    expires_at: datetime
    deleted_at: datetime | None
    items: list[ItemView]
    extensions: list[dict[str, Any]]


@dataclass(frozen=True, slots=True)
class AccessView:
    id: int
    actor: str
    organisation_id: int | None
    purpose: str
    items: list[str]
    accessed_at: datetime


def _view(h: PreservationHold) -> HoldView:
    return HoldView(
        id=h.id,
        provider_id=h.provider_id,
        case_id=h.case_id,
        decision_id=h.decision_id,
        content_item_id=h.content_item_id,
        removal_order_id=h.removal_order_id,
        status=h.status,
        preserved_at=h.preserved_at,
        expires_at=h.expires_at,
        deleted_at=h.deleted_at,
        items=[
            ItemView(
                name=i["name"],
                media_type=i["media_type"],
                source=i["source"],
                sha256=i["blob"]["sha256"],
                size=i["blob"]["size"],
                preserved_at=datetime.fromisoformat(i["preserved_at"]),
            )
            for i in h.items
        ],
        extensions=list(h.extensions),
    )


def _aad(hold_id: int, name: str) -> bytes:
    return f"cleanit preservation hold {hold_id} item {name}".encode()


def _ref(item: dict[str, Any]) -> BlobRef:
    return BlobRef(**item["blob"])


def _forget_on_rollback(s: Session, vault: Vault, ref: BlobRef) -> None:
    """A blob written for a transaction that rolls back would be an orphan: delete it."""
    sa_event.listen(s, "after_rollback", lambda _s: vault.delete(ref), once=True)


def _item(name: str, media_type: str, source: str, ref: BlobRef, at: datetime) -> dict[str, Any]:
    return {
        "name": name,
        "media_type": media_type,
        "source": source,
        "preserved_at": at.isoformat(),
        "blob": asdict(ref),
    }


# --- creating holds ------------------------------------------------------------------------


def case_facts(s: Session, case: Case) -> tuple[ContentItem, list[Notice], list[Match]]:
    """The case's content item, its notices and its hash matches, oldest first: what a hold's
    record and a threat-to-life referral tell about the content."""
    item = s.get(ContentItem, case.content_item_id)
    assert item is not None
    notices = s.scalars(
        select(Notice)
        .join(NoticeCase, NoticeCase.notice_id == Notice.id)
        .where(NoticeCase.case_id == case.id)
        .order_by(Notice.id)
    ).all()
    matches = s.scalars(select(Match).where(Match.case_id == case.id).order_by(Match.id)).all()
    return item, list(notices), list(matches)


def _record(
    s: Session, hold: PreservationHold, case: Case, decision: Decision | None
) -> dict[str, Any]:
    """What cleanit knows about the removed content: the related data Art 6 keeps.

    Notifiers' names and e-mail addresses are left out: they are not data about the content
    and are erased on their own schedule (data minimisation).
    """
    item, notices, matches = case_facts(s, case)
    statement = (
        s.scalar(select(Statement).where(Statement.decision_id == decision.id))
        if decision is not None
        else None
    )
    return {
        "format": "cleanit-preserved-record/1",
        "hold_id": hold.id,
        "preserved_at": hold.preserved_at,
        "removal_order_id": hold.removal_order_id,
        "content": {
            "id": item.id,
            "url": item.url,
            "canonical_url": item.canonical_url,
            "uploader_ref": item.uploader_ref,
            "uploader_email": item.uploader_email,
            "platform_state": item.platform_state,
            "registered_at": item.created_at,
        },
        "case": {
            "id": case.id,
            "category": case.category,
            "jurisdiction": case.jurisdiction,
            "opened_at": case.opened_at,
        },
        "decision": None
        if decision is None
        else {
            "id": decision.id,
            "action": decision.action,
            "ground": decision.ground,
            "facts": decision.facts,
            "justification": decision.justification,
            "territorial_scope": decision.territorial_scope,
            "automated_detection": decision.automated_detection,
            "automated_decision": decision.automated_decision,
            "in_force_at": decision.in_force_at,
            "decided_by": decision.decided_by,
            "approved_by": decision.approved_by,
        },
        "statement_of_reasons": None if statement is None else statement.body,
        "notices": [
            {
                "id": str(n.public_id),
                "source_type": n.source_type,
                "notifier_organisation_id": n.notifier_org_id,
                "category": n.category,
                "explanation": n.explanation,
                "locations": n.locations,
                "jurisdiction": n.jurisdiction,
                "received_at": n.received_at,
            }
            for n in notices
        ],
        "matches": [
            {
                "bank_id": m.bank_id,
                "entry_id": m.entry_id,
                "signal_type": m.signal_type,
                "distance": m.distance,
                "content_sha256": m.content_sha256,
                "matched_at": m.matched_at,
            }
            for m in matches
        ],
    }


def _standing(s: Session, case: Case) -> set[int]:
    """Competent authorities that notified the case have standing in its hold."""
    rows = s.scalars(
        select(Notice.notifier_org_id)
        .join(NoticeCase, NoticeCase.notice_id == Notice.id)
        .join(Organisation, Organisation.id == Notice.notifier_org_id)
        .where(
            NoticeCase.case_id == case.id,
            Organisation.kind == OrgKind.COMPETENT_AUTHORITY.value,
        )
    ).all()
    return {r for r in rows if r is not None}


def create_hold(
    s: Session,
    ctx: Context,
    *,
    case: Case,
    decision: Decision | None = None,
    removal_order_id: int | None = None,
    authority_org_ids: Iterable[int] = (),
    removed_at: datetime | None = None,
    actor: Principal | str = "system",
) -> PreservationHold:
    """Start a hold in the caller's transaction: ``record.json`` is sealed at once, the
    expiry is six months from ``removed_at`` (default: now)."""
    now = ctx.now()
    hold = PreservationHold(
        provider_id=case.provider_id,
        case_id=case.id,
        decision_id=decision.id if decision else None,
        content_item_id=case.content_item_id,
        removal_order_id=removal_order_id,
        authority_org_ids=sorted(_standing(s, case) | set(authority_org_ids)),
        status=ACTIVE,
        items=[],
        preserved_at=now,
        expires_at=preservation_expires_at(removed_at or now),
        extensions=[],
        created_by=actor if isinstance(actor, str) else audit.actor_label(actor),
    )
    s.add(hold)
    s.flush()
    text = json.dumps(
        _record(s, hold, case, decision),
        sort_keys=True,
        indent=2,
        ensure_ascii=False,
        default=lambda v: v.isoformat() if isinstance(v, datetime) else str(v),
    )
    ref = ctx.vault.put(text.encode("utf-8"), aad=_aad(hold.id, RECORD))
    _forget_on_rollback(s, ctx.vault, ref)
    hold.items = [_item(RECORD, "application/json", "cleanit", ref, now)]
    audit.record(
        s,
        actor,
        "preservation.held",
        HOLD,
        hold.id,
        {
            "case_id": case.id,
            "decision_id": hold.decision_id,
            "removal_order_id": removal_order_id,
            "expires_at": hold.expires_at.isoformat(),
            "items": [{"name": RECORD, "sha256": ref.sha256, "size": ref.size}],
        },
        organisation_id=case.provider_id,
        at=now,
    )
    return hold


def preserve_for_decision(
    s: Session, ctx: Context, decision: Decision, case: Case
) -> PreservationHold | None:
    """Called as a decision takes effect: a decision that takes content down starts a hold."""
    if Action(decision.action) not in PRESERVING_ACTIONS:
        return None
    return create_hold(s, ctx, case=case, decision=decision, removed_at=decision.in_force_at)


def active_hold_for_case(s: Session, case_id: int) -> PreservationHold | None:
    """The case's latest active hold, locked."""
    return s.scalar(
        select(PreservationHold)
        .where(PreservationHold.case_id == case_id, PreservationHold.status == ACTIVE)
        .order_by(PreservationHold.id.desc())
        .limit(1)
        .with_for_update()
    )


def grant_standing(hold: PreservationHold, organisation_id: int) -> None:
    if organisation_id not in hold.authority_org_ids:
        hold.authority_org_ids = [*hold.authority_org_ids, organisation_id]


def hold_with_standing(
    s: Session, ctx: Context, case: Case, organisation_id: int | None, *, actor: Principal
) -> PreservationHold:
    """The case's active hold, or a new one, with standing for ``organisation_id`` (an
    authority that asked for the data to be kept or was sent it)."""
    hold = active_hold_for_case(s, case.id) or create_hold(s, ctx, case=case, actor=actor)
    if organisation_id is not None:
        grant_standing(hold, organisation_id)
    return hold


# --- who sees what ---------------------------------------------------------------------------


def _visible(
    s: Session, principal: Principal | None, hold_id: int, *, lock: bool = False
) -> PreservationHold:
    """The hold, if the principal's organisation is the provider or an authority with
    standing (``principal`` None is the local operator); otherwise as if it did not exist."""
    hold = s.get(PreservationHold, hold_id, with_for_update=lock)
    if hold is None:
        raise NotFound("no such preservation hold")
    if principal is None:
        return hold
    if principal.org_kind is OrgKind.COMPETENT_AUTHORITY:
        if principal.organisation_id in hold.authority_org_ids:
            return hold
        raise NotFound("no such preservation hold")
    require_member(principal, hold.provider_id)
    return hold


def list_holds(
    ctx: Context,
    principal: Principal,
    *,
    case_id: int | None = None,
    status: str | None = None,
    limit: int = 50,
    offset: int = 0,
) -> tuple[list[HoldView], int]:
    require(principal, Permission.READ_PRESERVATION)
    if status is not None and status not in (ACTIVE, EXPIRED):
        raise InvalidInput("status is 'active' or 'expired'", field="status")
    if principal.org_kind is OrgKind.COMPETENT_AUTHORITY:
        where = [PreservationHold.authority_org_ids.contains([principal.organisation_id])]
    else:
        where = [PreservationHold.provider_id == principal.organisation_id]
    if case_id is not None:
        where.append(PreservationHold.case_id == case_id)
    if status is not None:
        where.append(PreservationHold.status == status)
    with ctx.sessions() as s:
        total = s.scalar(select(func.count()).select_from(PreservationHold).where(*where)) or 0
        rows = s.scalars(
            select(PreservationHold)
            .where(*where)
            .order_by(PreservationHold.id.desc())
            .limit(min(max(limit, 1), MAX_LIST))
            .offset(max(offset, 0))
        ).all()
        return [_view(h) for h in rows], total


def get_hold(ctx: Context, principal: Principal, hold_id: int) -> HoldView:
    require(principal, Permission.READ_PRESERVATION)
    with ctx.sessions() as s:
        return _view(_visible(s, principal, hold_id))


def list_accesses(ctx: Context, principal: Principal, hold_id: int) -> list[AccessView]:
    """The access log of a hold (who opened what, when, why)."""
    require(principal, Permission.READ_PRESERVATION)
    with ctx.sessions() as s:
        hold = _visible(s, principal, hold_id)
        rows = s.scalars(
            select(PreservationAccess)
            .where(PreservationAccess.hold_id == hold.id)
            .order_by(PreservationAccess.id)
        ).all()
        return [
            AccessView(a.id, a.actor, a.organisation_id, a.purpose, list(a.items), a.accessed_at)
            for a in rows
        ]


# --- content from the platform ---------------------------------------------------------------


def _content_name(hold: PreservationHold, filename: str | None) -> str:
    stem = _UNSAFE.sub("-", (filename or "").strip()).strip(".-_")[:120] or "content"
    return f"content-{len(hold.items):03d}-{stem}"


def add_content(
    ctx: Context,
    principal: Principal,
    hold_id: int,
    chunks: Iterable[bytes],
    *,
    filename: str | None = None,
    media_type: str | None = None,
) -> HoldView:
    """The platform hands over the removed file; it is encrypted as it streams in."""
    require(principal, Permission.CONFIRM_PLATFORM_ACTION)
    media = (media_type or "application/octet-stream").split(";")[0].strip()[:100]
    with ctx.transaction() as s:
        hold = _visible(s, principal, hold_id, lock=True)
        if hold.status != ACTIVE:
            raise Conflict(f"preservation hold {hold.id} has expired; nothing can be added")
        name = _content_name(hold, filename)
        # Under the row lock: two uploads to one hold get distinct names and both land.
        ref = ctx.vault.put_stream(chunks, aad=_aad(hold.id, name))
        _forget_on_rollback(s, ctx.vault, ref)
        if ref.size == 0:
            raise InvalidInput("the content is empty", field="content")
        now = ctx.now()
        hold.items = [*hold.items, _item(name, media, "platform", ref, now)]
        audit.record(
            s,
            principal,
            "preservation.content_added",
            HOLD,
            hold.id,
            {"name": name, "media_type": media, "sha256": ref.sha256, "size": ref.size},
            organisation_id=hold.provider_id,
            at=now,
        )
        return _view(hold)


# --- opening preserved data ------------------------------------------------------------------


def _log_access(
    s: Session,
    ctx: Context,
    principal: Principal | None,
    hold: PreservationHold,
    names: Sequence[str],
    purpose: str | None,
    reason: str | None,
    *,
    action: str = "preservation.accessed",
) -> tuple[str, str]:
    chosen, why = check_access_purpose(purpose, reason)
    if hold.status != ACTIVE:
        raise Conflict(
            f"preservation hold {hold.id} expired and its data was deleted on "
            f"{hold.deleted_at.isoformat() if hold.deleted_at else 'expiry'}"
        )
    now = ctx.now()
    actor = OPERATOR if principal is None else audit.actor_label(principal)
    s.add(
        PreservationAccess(
            hold_id=hold.id,
            actor=actor,
            organisation_id=None if principal is None else principal.organisation_id,
            purpose=f"{chosen.value}: {why}",
            items=list(names),
            accessed_at=now,
        )
    )
    audit.record(
        s,
        principal or OPERATOR,
        action,
        HOLD,
        hold.id,
        {"purpose": chosen.value, "reason": why, "items": list(names)},
        organisation_id=hold.provider_id,
        at=now,
    )
    return chosen.value, why


def open_item(
    ctx: Context,
    principal: Principal,
    hold_id: int,
    name: str,
    *,
    purpose: str | None,
    reason: str | None,
) -> tuple[ItemView, Iterator[bytes]]:
    """One preserved item's plaintext, after the access is logged (and committed: an
    access counts even if the reader stops half-way)."""
    require(principal, Permission.ACCESS_PRESERVED)
    with ctx.transaction() as s:
        hold = _visible(s, principal, hold_id)
        found = next((i for i in hold.items if i["name"] == name), None)
        if found is None:
            raise NotFound(f"preservation hold {hold.id} has no item '{name}'", field="name")
        _log_access(s, ctx, principal, hold, [name], purpose, reason)
        view = next(i for i in _view(hold).items if i.name == name)
    return view, ctx.vault.read(_ref(found), aad=_aad(hold_id, name))


# --- extension and expiry --------------------------------------------------------------------


def extend(
    ctx: Context,
    principal: Principal,
    hold_id: int,
    *,
    reasons: str,
    months: int = 0,
    days: int = 0,
    requested_by: str | None = None,
) -> HoldView:
    """Keep the data longer on the reasoned request of a competent authority or a court.

    An authority with standing asks in its own name; the provider's lawyers record the
    request of a court or authority, which they must name.
    """
    require(principal, Permission.EXTEND_PRESERVATION)
    with ctx.transaction() as s:
        hold = _visible(s, principal, hold_id, lock=True)
        if principal.org_kind is OrgKind.COMPETENT_AUTHORITY:
            org = s.get(Organisation, principal.organisation_id)
            assert org is not None
            who = org.name
        elif requested_by is None or not requested_by.strip():
            raise InvalidInput(
                "name the court or authority that asked for the extension", field="requested_by"
            )
        else:
            who = requested_by
        if hold.status != ACTIVE:
            raise Conflict(
                f"preservation hold {hold.id} expired; its data was deleted and cannot be kept"
            )
        now = ctx.now()
        ext = PreservationExtension(who, reasons, now, months, days)
        new_expiry = extend_preservation(hold.expires_at, ext)
        entry = {
            "requested_by": who.strip(),
            "reasons": reasons.strip(),
            "requested_at": now.isoformat(),
            "months": months,
            "days": days,
            "recorded_by": audit.actor_label(principal),
            "previous_expires_at": hold.expires_at.isoformat(),
            "expires_at": new_expiry.isoformat(),
        }
        hold.extensions = [*hold.extensions, entry]
        hold.expires_at = new_expiry
        audit.record(
            s,
            principal,
            "preservation.extended",
            HOLD,
            hold.id,
            entry,
            organisation_id=hold.provider_id,
            at=now,
        )
        return _view(hold)


def expire_due(s: Session, ctx: Context, *, limit: int = 500) -> int:
    """Delete the blobs of holds past their expiry and record it (in the caller's
    transaction; run by the maintenance sweep). Blobs go first: if the transaction then
    fails, the next sweep finds the hold still active and deleting again is harmless."""
    now = ctx.now()
    due = s.scalars(
        select(PreservationHold)
        .where(PreservationHold.status == ACTIVE, PreservationHold.expires_at <= now)
        .order_by(PreservationHold.expires_at)
        .limit(limit)
        .with_for_update(skip_locked=True)
    ).all()
    for hold in due:
        for item in hold.items:
            ctx.vault.delete(_ref(item))
        hold.status = EXPIRED
        hold.deleted_at = now
        audit.record(
            s,
            "system",
            "preservation.expired",
            HOLD,
            hold.id,
            {
                "case_id": hold.case_id,
                "expires_at": hold.expires_at.isoformat(),
                "deleted": [
                    {"name": i["name"], "sha256": i["blob"]["sha256"], "size": i["blob"]["size"]}
                    for i in hold.items
                ],
            },
            organisation_id=hold.provider_id,
            at=now,
        )
    return len(due)


# --- evidence packages -----------------------------------------------------------------------


def _excerpt(s: Session, case_id: int, hold_id: int) -> list[AuditRecord]:
    """From the first to the last audit entry about the case or the hold, with everything
    in between (the chain can only be checked over a contiguous run)."""
    about = or_(
        and_(AuditEntry.entity == "case", AuditEntry.entity_id == str(case_id)),
        and_(AuditEntry.entity == HOLD, AuditEntry.entity_id == str(hold_id)),
    )
    first, last = s.execute(
        select(func.min(AuditEntry.seq), func.max(AuditEntry.seq)).where(about)
    ).one()
    if first is None:
        return []
    rows = s.scalars(
        select(AuditEntry).where(AuditEntry.seq.between(first, last)).order_by(AuditEntry.seq)
    )
    return [audit.record_of(e) for e in rows]


def export_evidence(
    ctx: Context,
    principal: Principal | None,
    hold_id: int,
    output: Path,
    *,
    purpose: str | None,
    reason: str | None,
) -> PackageInfo:
    """Write the hold's evidence package to ``output`` (``principal`` None: the local
    operator). The access is logged first; the export, with the package id and the
    manifest's SHA-256, once the package is complete."""
    if principal is not None:
        require(principal, Permission.ACCESS_PRESERVED)
    with ctx.transaction() as s:
        hold = _visible(s, principal, hold_id)
        names = [i["name"] for i in hold.items]
        chosen, why = _log_access(s, ctx, principal, hold, names, purpose, reason)
        items = list(hold.items)
        view = _view(hold)
    with ctx.sessions() as s:
        excerpt = _excerpt(s, view.case_id, view.id)
    now = ctx.now()
    creator = OPERATOR if principal is None else audit.actor_label(principal)
    metadata = {
        "preservation_hold": asdict(view),
        "export": {"purpose": chosen, "reason": why, "by": creator, "at": now},
    }
    info = build_package(
        output,
        contents=[
            ContentFile(
                name=i["name"],
                chunks=ctx.vault.read(_ref(i), aad=_aad(hold_id, i["name"])),
                preserved_at=datetime.fromisoformat(i["preserved_at"]),
                media_type=i["media_type"],
            )
            for i in items
        ],
        metadata=metadata,
        audit=excerpt,
        creator=creator,
        created_at=now,
    )
    with ctx.transaction() as s:
        audit.record(
            s,
            principal or OPERATOR,
            "evidence.exported",
            HOLD,
            hold_id,
            {
                "package_id": info.package_id,
                "manifest_sha256": info.manifest_sha256,
                "purpose": chosen,
                "audit_last_seq": excerpt[-1].seq if excerpt else None,
            },
            organisation_id=view.provider_id,
            at=now,
        )
    return info
