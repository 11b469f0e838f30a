"""Exchanges: feeds that fill a bank, synced incrementally from a checkpoint.

A sync reads the feed's records after the stored checkpoint and commits them in batches:
each batch's new entries, its reported errors and the checkpoint after its last record are
one transaction. A sync that stops (crash, error) resumes from the last committed batch:
nothing is imported twice and nothing is skipped. Records whose hash the bank already holds
are counted as duplicates; unreadable records are stored in ``exchange_errors`` and skipped.

Managing and syncing need ``banks:manage`` in the exchange's organisation (another
organisation's exchange answers 404); the background job syncs as the system.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import insert, select, tuple_
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from cleanit.adapters import jobs
from cleanit.adapters.db.models import (
    Bank,
    BankEntry,
    Exchange,
    ExchangeEntry,
    ExchangeError,
    table,
)
from cleanit.adapters.exchanges import Checkpoint, FeedClient, client_for
from cleanit.domain.errors import Conflict, InvalidInput, NotFound
from cleanit.domain.exchanges import (
    FeedError,
    FeedRecord,
    validate_config,
    validate_exchange_name,
)
from cleanit.domain.roles import Permission, Principal
from cleanit.services import audit
from cleanit.services.audit import actor_label
from cleanit.services.authz import require, require_member
from cleanit.services.context import Context

BATCH_SIZE = 500
SYSTEM_ACTOR = "system:exchange-sync"


@dataclass(frozen=True)
class ExchangeView:
    id: int
    organisation_id: int
    name: str
    kind: str
    bank_id: int
    config: dict[str, Any]
    checkpoint: dict[str, Any] | None
    last_run_at: datetime | None
    last_status: str | None
    last_message: str | None
    records_imported: int
    records_duplicate: int
    records_failed: int


@dataclass(frozen=True)
class SyncReport:
    exchange_id: int
    imported: int
    duplicates: int
    errors: list[FeedError]
    batches: int


def _view(x: Exchange) -> ExchangeView:
    return ExchangeView(
        id=x.id,
        organisation_id=x.organisation_id,
        name=x.name,
        kind=x.kind,
        bank_id=x.bank_id,
        config=dict(x.config),
        checkpoint=dict(x.checkpoint) if x.checkpoint is not None else None,
        last_run_at=x.last_run_at,
        last_status=x.last_status,
        last_message=x.last_message,
        records_imported=int(x.records_imported),
        records_duplicate=int(x.records_duplicate),
        records_failed=int(x.records_failed),
    )


def _own_exchange(
    s: Session, principal: Principal | None, exchange_id: int, *, lock: bool = False
) -> Exchange:
    query = select(Exchange).where(Exchange.id == exchange_id)
    if lock:
        query = query.with_for_update()
    x = s.scalar(query)
    if x is None:
        raise NotFound("no such exchange")
    if principal is not None:
        require_member(principal, x.organisation_id)
    return x


def create_exchange(
    ctx: Context,
    principal: Principal,
    *,
    name: str,
    bank_id: int,
    kind: str = "file",
    config: Mapping[str, Any],
) -> ExchangeView:
    """Add a feed that fills ``bank_id`` (a bank of the caller's organisation)."""
    require(principal, Permission.MANAGE_BANKS)
    assert principal.organisation_id is not None
    clean_name = validate_exchange_name(name)
    checked = validate_config(kind, config)
    now = ctx.now()
    with ctx.transaction() as s:
        bank = s.get(Bank, bank_id)
        if bank is None or bank.organisation_id != principal.organisation_id:
            raise InvalidInput("no such bank in your organisation", field="bank_id")
        x = Exchange(
            organisation_id=principal.organisation_id,
            name=clean_name,
            kind=checked.kind.value,
            bank_id=bank.id,
            config=checked.settings,
            checkpoint=None,
            records_imported=0,
            records_duplicate=0,
            records_failed=0,
            created_at=now,
        )
        s.add(x)
        try:
            s.flush()
        except IntegrityError:
            raise Conflict(
                "your organisation already has an exchange of that name", field="name"
            ) from None
        audit.record(
            s,
            principal,
            "exchange.created",
            "exchange",
            x.id,
            {"name": clean_name, "kind": x.kind, "bank": bank.id, "config": checked.settings},
            at=now,
        )
        return _view(x)


def list_exchanges(ctx: Context, principal: Principal) -> list[ExchangeView]:
    require(principal, Permission.READ_BANKS)
    with ctx.sessions() as s:
        rows = s.scalars(
            select(Exchange)
            .where(Exchange.organisation_id == principal.organisation_id)
            .order_by(Exchange.name)
        ).all()
        return [_view(x) for x in rows]


def get_exchange(ctx: Context, principal: Principal, exchange_id: int) -> ExchangeView:
    require(principal, Permission.READ_BANKS)
    with ctx.sessions() as s:
        return _view(_own_exchange(s, principal, exchange_id))


def list_errors(
    ctx: Context, principal: Principal, exchange_id: int, *, limit: int = 100
) -> list[FeedError]:
    require(principal, Permission.READ_BANKS)
    with ctx.sessions() as s:
        x = _own_exchange(s, principal, exchange_id)
        rows = s.scalars(
            select(ExchangeError)
            .where(ExchangeError.exchange_id == x.id)
            .order_by(ExchangeError.id)
            .limit(max(1, min(limit, 1000)))
        ).all()
        return [FeedError(e.position, e.message, e.excerpt) for e in rows]


def defer_sync(ctx: Context, principal: Principal, exchange_id: int) -> None:
    """Ask the worker to sync the exchange (the job is deferred in this transaction)."""
    require(principal, Permission.MANAGE_BANKS)
    with ctx.transaction() as s:
        x = _own_exchange(s, principal, exchange_id)
        jobs.defer(s, jobs.SYNC_EXCHANGE, {"exchange_id": x.id})
        audit.record(s, principal, "exchange.sync_requested", "exchange", x.id, at=ctx.now())


def _commit_batch(
    ctx: Context,
    principal: Principal | None,
    exchange_id: int,
    started_from: Checkpoint | None,
    records: list[FeedRecord],
    errors: list[FeedError],
    checkpoint: Checkpoint | None,
) -> tuple[int, int]:
    """Store one batch and the checkpoint after it, in one transaction: (added, duplicates)."""
    now = ctx.now()
    actor = actor_label(principal) if principal is not None else SYSTEM_ACTOR
    with ctx.transaction() as s:
        x = _own_exchange(s, principal, exchange_id, lock=True)
        if x.checkpoint != started_from:
            raise Conflict("another sync of this exchange ran at the same time; sync again")
        bank = s.get(Bank, x.bank_id)
        assert bank is not None
        keys = {(r.entry.signal_type.value, r.entry.value) for r in records}
        existing: set[tuple[str, str]] = set()
        if keys:
            existing = {
                (t, v)
                for t, v in s.execute(
                    select(BankEntry.signal_type, BankEntry.value).where(
                        BankEntry.bank_id == bank.id,
                        BankEntry.removed_at.is_(None),
                        tuple_(BankEntry.signal_type, BankEntry.value).in_(list(keys)),
                    )
                ).all()
            }
        fresh: list[FeedRecord] = []
        for r in records:
            key = (r.entry.signal_type.value, r.entry.value)
            if key not in existing:
                existing.add(key)
                fresh.append(r)
        source = f"exchange:{x.name}"
        ids: list[int] = []
        if fresh:
            result = s.execute(
                insert(table(BankEntry)).returning(BankEntry.id, sort_by_parameter_order=True),
                [
                    {
                        "bank_id": bank.id,
                        "signal_type": r.entry.signal_type.value,
                        "value": r.entry.value,
                        "labels": list(r.entry.labels),
                        "source": source,
                        "added_by": actor,
                        "added_at": now,
                    }
                    for r in fresh
                ],
            )
            ids = [int(i) for i in result.scalars().all()]
            s.execute(
                insert(table(ExchangeEntry)),
                [
                    {"entry_id": i, "exchange_id": x.id, "record_id": r.record_id}
                    for i, r in zip(ids, fresh, strict=True)
                ],
            )
        if errors:
            s.execute(
                insert(table(ExchangeError)),
                [
                    {
                        "exchange_id": x.id,
                        "position": e.position[:100],
                        "message": e.message,
                        "excerpt": e.excerpt,
                        "recorded_at": now,
                    }
                    for e in errors
                ],
            )
        duplicates = len(records) - len(fresh)
        x.checkpoint = checkpoint
        x.records_imported += len(ids)
        x.records_duplicate += duplicates
        x.records_failed += len(errors)
        x.last_run_at = now
        if ids and bank.enabled and not bank.negative:
            jobs.defer(
                s,
                jobs.REMATCH,
                {"bank_id": bank.id, "first_entry_id": min(ids), "last_entry_id": max(ids)},
            )
        audit.record(
            s,
            principal if principal is not None else SYSTEM_ACTOR,
            "exchange.batch_synced",
            "exchange",
            x.id,
            {"added": len(ids), "duplicates": duplicates, "errors": len(errors)},
            organisation_id=x.organisation_id,
            at=now,
        )
        return len(ids), duplicates


def _set_status(ctx: Context, exchange_id: int, status: str, message: str) -> None:
    with ctx.transaction() as s:
        x = s.get(Exchange, exchange_id)
        if x is not None:
            x.last_status = status
            x.last_message = message[:2000]
            x.last_run_at = ctx.now()


def sync_exchange(
    ctx: Context,
    principal: Principal | None,
    exchange_id: int,
    *,
    client: FeedClient | None = None,
    batch_size: int = BATCH_SIZE,
    on_batch: Callable[[int], None] | None = None,
) -> SyncReport:
    """Import the feed's records after the checkpoint, committing every ``batch_size``.

    ``principal`` None is the background job (the system). ``on_batch`` is told how many
    records each committed batch held (for progress bars).
    """
    if principal is not None:
        require(principal, Permission.MANAGE_BANKS)
    with ctx.sessions() as s:
        x = _own_exchange(s, principal, exchange_id)
        kind, config = x.kind, dict(x.config)
        checkpoint: Checkpoint | None = dict(x.checkpoint) if x.checkpoint is not None else None
    feed = client if client is not None else client_for(kind, config)
    imported = duplicates = batches = 0
    all_errors: list[FeedError] = []
    records: list[FeedRecord] = []
    errors: list[FeedError] = []

    def flush() -> None:
        nonlocal imported, duplicates, batches, checkpoint, records, errors
        after = feed.next_checkpoint
        added, dup = _commit_batch(ctx, principal, exchange_id, checkpoint, records, errors, after)
        imported, duplicates, batches = imported + added, duplicates + dup, batches + 1
        all_errors.extend(errors)
        if on_batch is not None:
            on_batch(len(records) + len(errors))
        checkpoint = after
        records, errors = [], []

    try:
        for item in _items(feed, checkpoint):
            if isinstance(item, FeedError):
                errors.append(item)
            else:
                records.append(item)
            if len(records) + len(errors) >= batch_size:
                flush()
        if records or errors or feed.next_checkpoint != checkpoint:
            flush()
    except Exception as exc:
        detail = getattr(exc, "detail", None) or str(exc) or type(exc).__name__
        _set_status(ctx, exchange_id, "failed", f"stopped after {imported} new entries: {detail}")
        raise
    _set_status(
        ctx,
        exchange_id,
        "ok",
        f"{imported} new, {duplicates} already held, {len(all_errors)} error(s)",
    )
    return SyncReport(exchange_id, imported, duplicates, all_errors, batches)


def _items(feed: FeedClient, checkpoint: Checkpoint | None) -> Iterable[FeedRecord | FeedError]:
    return feed.fetch(checkpoint)
