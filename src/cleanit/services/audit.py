"""Appending to and verifying the hash-chained audit log."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Any

from sqlalchemy import insert, select, text
from sqlalchemy.orm import Session

from cleanit.adapters.db.models import AuditEntry, table
from cleanit.domain.audit import GENESIS, AuditRecord, ChainReport, entry_hash, verify_chain
from cleanit.domain.roles import Permission, Principal
from cleanit.services.authz import require
from cleanit.services.context import Context

# Any constant works; it names the one lock that serialises appends to the chain.
_CHAIN_LOCK = 0x636C65616E6974
# Built once: every state change appends here.
_LOCK = text("SELECT pg_advisory_xact_lock(:k)")
_LAST = select(AuditEntry.seq, AuditEntry.hash).order_by(AuditEntry.seq.desc()).limit(1)
_APPEND = insert(table(AuditEntry))


def actor_label(principal: Principal) -> str:
    if principal.user_id is not None:
        return f"user:{principal.user_id}"
    if principal.token_id is not None:
        return f"token:{principal.token_id}"
    return principal.label


def record(
    session: Session,
    principal: Principal | str,
    action: str,
    entity: str,
    entity_id: object,
    data: dict[str, Any] | None = None,
    *,
    organisation_id: int | None = None,
    at: datetime,
) -> None:
    """Append one entry in the caller's transaction.

    The transaction-scoped advisory lock makes appends strictly sequential across every
    process, so sequence numbers have no gaps and each entry links to the one before it.
    Callers append last in their transaction to keep the lock short.
    """
    conn = session.connection()
    conn.execute(_LOCK, {"k": _CHAIN_LOCK})
    last = conn.execute(_LAST).first()
    seq, prev = (last[0] + 1, last[1]) if last else (1, GENESIS)
    if isinstance(principal, Principal):
        actor = actor_label(principal)
        org = organisation_id if organisation_id is not None else principal.organisation_id
    else:
        actor, org = principal, organisation_id
    payload = data or {}
    at_iso = at.isoformat()
    digest = entry_hash(
        seq=seq,
        at=at_iso,
        actor=actor,
        organisation_id=org,
        action=action,
        entity=entity,
        entity_id=str(entity_id),
        data=payload,
        prev_hash=prev,
    )
    conn.execute(
        _APPEND,
        {
            "seq": seq,
            "at": at,
            "actor": actor,
            "organisation_id": org,
            "action": action,
            "entity": entity,
            "entity_id": str(entity_id),
            "data": payload,
            "prev_hash": prev,
            "hash": digest,
        },
    )


def record_of(e: AuditEntry) -> AuditRecord:
    """A stored audit entry as the chain verifier (and evidence packages) read it."""
    return AuditRecord(
        seq=e.seq,
        at=e.at.isoformat(),
        actor=e.actor,
        organisation_id=e.organisation_id,
        action=e.action,
        entity=e.entity,
        entity_id=e.entity_id,
        data=e.data,
        prev_hash=e.prev_hash,
        hash=e.hash,
    )


def _records(session: Session) -> Iterator[AuditRecord]:
    rows = session.execute(select(AuditEntry).order_by(AuditEntry.seq)).yield_per(5000)
    for (e,) in rows:
        yield record_of(e)


def verify(
    ctx: Context, principal: Principal | None = None, anchor: tuple[int, str] | None = None
) -> ChainReport:
    """Verify the whole chain. ``principal`` None means the local operator (CLI)."""
    if principal is not None:
        require(principal, Permission.READ_AUDIT)
    with ctx.sessions() as session:
        return verify_chain(_records(session), anchor)


def list_entries(
    ctx: Context,
    principal: Principal,
    *,
    entity: str | None = None,
    entity_id: str | None = None,
    limit: int = 50,
    after_seq: int = 0,
) -> list[AuditEntry]:
    """Entries about the principal's organisation (auditors see only their own)."""
    require(principal, Permission.READ_AUDIT)
    with ctx.sessions() as session:
        q = select(AuditEntry).where(
            AuditEntry.organisation_id == principal.organisation_id, AuditEntry.seq > after_seq
        )
        if entity:
            q = q.where(AuditEntry.entity == entity)
        if entity_id:
            q = q.where(AuditEntry.entity_id == entity_id)
        return list(session.scalars(q.order_by(AuditEntry.seq).limit(limit)))
