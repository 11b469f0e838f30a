"""Exchanges: feeds that fill a bank, synced incrementally from a checkpoint.

A sync reads the feed's records after the stored checkpoint and commits them in batches:
each batch's new entries, its withdrawals, its reported errors and the checkpoint after its
last record are one transaction. A sync that stops (crash, error) resumes from the last
committed batch: nothing is imported twice and nothing is skipped. Records whose hash the
bank already holds are counted as duplicates; unreadable records are stored in
``exchange_errors`` and skipped; a record the feed withdraws removes (softly) the entry it
gave, if that entry is still live.

An *opinion* (true or false positive) on an entry that came from an exchange is stored and
sent back to the exchange by the ``exchanges.send_opinion`` job, where the exchange takes
opinions (ThreatExchange).

Managing, syncing and giving opinions need ``banks:manage`` in the exchange's organisation
(another organisation's exchange or entry answers 404); the background jobs act as the
system.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from itertools import groupby
from typing import Any

from sqlalchemy import func, insert, select, tuple_, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from cleanit.adapters import jobs
from cleanit.adapters.db.models import (
    BANK_ENTRY_CHANGES,
    Bank,
    BankEntry,
    Exchange,
    ExchangeEntry,
    ExchangeError,
    ExchangeOpinion,
    table,
)
from cleanit.adapters.exchanges import (
    Checkpoint,
    FeedClient,
    client_for,
    opinion_sender_for,
)
from cleanit.domain.errors import Conflict, InvalidInput, NotFound
from cleanit.domain.exchanges import (
    KINDS_WITH_OPINIONS,
    FeedDeletion,
    FeedError,
    FeedItem,
    FeedRecord,
    Opinion,
    validate_config,
    validate_exchange_name,
    validate_opinion,
)
from cleanit.domain.roles import Permission, Principal
from cleanit.services import audit
from cleanit.services.audit import actor_label
from cleanit.services.authz import require, require_member
from cleanit.services.context import Context

BATCH_SIZE = 500
SYSTEM_ACTOR = "system:exchange-sync"
OPINION_ACTOR = "system:exchange-opinions"


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
    #: Entries removed because the feed withdrew their record.
    removed: int = 0


@dataclass(frozen=True)
class OpinionView:
    id: int
    exchange_id: int
    entry_id: int
    record_id: str
    opinion: str
    status: str  # pending | sent | failed | superseded
    requested_by: str
    requested_at: datetime
    sent_at: datetime | None
    attempts: int
    last_error: str | None
    sent_to: list[str] = field(default_factory=list)


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
    checked = validate_config(kind, config, allow_private=ctx.allow_private_targets)
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


@dataclass(frozen=True)
class _Batch:
    added: list[int]
    duplicates: int
    removed: list[int]


def _add(
    s: Session, x: Exchange, bank: Bank, records: list[FeedRecord], actor: str, now: datetime
) -> tuple[list[int], int]:
    """Insert the records whose hash the bank does not hold live: (new entry ids, duplicates)."""
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
                    "source": f"exchange:{x.name}",
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
    return ids, len(records) - len(fresh)


def _withdraw(s: Session, x: Exchange, record_ids: list[str], now: datetime) -> list[int]:
    """Remove the live entries these records of the feed gave (soft removal, with a new
    change number so matching indexes drop them). Records that gave no entry (duplicates
    of entries from elsewhere, never imported) change nothing."""
    given = select(ExchangeEntry.entry_id).where(
        ExchangeEntry.exchange_id == x.id, ExchangeEntry.record_id.in_(set(record_ids))
    )
    result = s.execute(
        update(BankEntry)
        .where(
            BankEntry.id.in_(given),
            BankEntry.bank_id == x.bank_id,
            BankEntry.removed_at.is_(None),
        )
        .values(
            removed_at=now,
            removed_by=f"exchange:{x.name}",
            changed_seq=func.nextval(BANK_ENTRY_CHANGES),
        )
        .returning(BankEntry.id)
        .execution_options(synchronize_session=False)
    )
    return sorted(int(i) for i in result.scalars().all())


def _commit_batch(
    ctx: Context,
    principal: Principal | None,
    exchange_id: int,
    started_from: Checkpoint | None,
    items: list[FeedRecord | FeedDeletion],
    errors: list[FeedError],
    checkpoint: Checkpoint | None,
) -> _Batch:
    """Store one batch and the checkpoint after it, in one transaction.

    Additions and withdrawals are applied in feed order (a record added then withdrawn in
    the same batch ends up removed, and the other way round).
    """
    now = ctx.now()
    actor = actor_label(principal) if principal is not None else SYSTEM_ACTOR
    with ctx.transaction() as s:
        x = _own_exchange(s, principal, exchange_id, lock=True)
        if x.checkpoint != started_from:
            raise Conflict("another sync of this exchange ran at the same time; sync again")
        bank = s.get(Bank, x.bank_id)
        assert bank is not None
        added: list[int] = []
        removed: list[int] = []
        duplicates = 0
        for withdrawn, group in groupby(items, key=lambda i: isinstance(i, FeedDeletion)):
            run = list(group)
            if withdrawn:
                removed += _withdraw(s, x, [i.record_id for i in run], now)
            else:
                ids, dup = _add(
                    s, x, bank, [i for i in run if isinstance(i, FeedRecord)], actor, now
                )
                added += ids
                duplicates += dup
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
        x.checkpoint = checkpoint
        x.records_imported += len(added)
        x.records_duplicate += duplicates
        x.records_failed += len(errors)
        x.last_run_at = now
        if added and bank.enabled and not bank.negative:
            jobs.defer(
                s,
                jobs.REMATCH,
                {"bank_id": bank.id, "first_entry_id": min(added), "last_entry_id": max(added)},
            )
        data: dict[str, Any] = {
            "added": len(added),
            "duplicates": duplicates,
            "errors": len(errors),
        }
        if removed:
            data["removed"] = len(removed)
            data["removed_entries"] = removed
        audit.record(
            s,
            principal if principal is not None else SYSTEM_ACTOR,
            "exchange.batch_synced",
            "exchange",
            x.id,
            data,
            organisation_id=x.organisation_id,
            at=now,
        )
        return _Batch(added, duplicates, removed)


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
    imported = duplicates = removed = batches = 0
    all_errors: list[FeedError] = []
    items: list[FeedRecord | FeedDeletion] = []
    errors: list[FeedError] = []

    try:
        # Built here, not above: a missing credential or a refused target is this sync's
        # failure, stored in the exchange's status like any other.
        feed = client if client is not None else _client(ctx, kind, config)

        def flush() -> None:
            nonlocal imported, duplicates, removed, batches, checkpoint, items, errors
            after = feed.next_checkpoint
            done = _commit_batch(ctx, principal, exchange_id, checkpoint, items, errors, after)
            imported, duplicates = imported + len(done.added), duplicates + done.duplicates
            removed, batches = removed + len(done.removed), batches + 1
            all_errors.extend(errors)
            if on_batch is not None:
                on_batch(len(items) + len(errors))
            checkpoint = after
            items, errors = [], []

        for item in _items(feed, checkpoint):
            if isinstance(item, FeedError):
                errors.append(item)
            else:
                items.append(item)
            if len(items) + len(errors) >= batch_size:
                flush()
        if items or errors or feed.next_checkpoint != checkpoint:
            flush()
    except Exception as exc:
        detail = getattr(exc, "detail", None) or str(exc) or type(exc).__name__
        _set_status(ctx, exchange_id, "failed", f"stopped after {imported} new entries: {detail}")
        raise
    withdrawn = f", {removed} withdrawn" if removed else ""
    _set_status(
        ctx,
        exchange_id,
        "ok",
        f"{imported} new, {duplicates} already held{withdrawn}, {len(all_errors)} error(s)",
    )
    return SyncReport(exchange_id, imported, duplicates, all_errors, batches, removed)


def _client(ctx: Context, kind: str, config: Mapping[str, Any]) -> FeedClient:
    return client_for(kind, config, allow_private=ctx.allow_private_targets)


def _items(feed: FeedClient, checkpoint: Checkpoint | None) -> Iterable[FeedItem]:
    return feed.fetch(checkpoint)


# ------------------------------------------------------------------------------- opinions


class OpinionNotSent(Exception):
    """Raised inside the job so procrastinate retries it with back-off."""


def _opinion_view(o: ExchangeOpinion) -> OpinionView:
    return OpinionView(
        id=o.id,
        exchange_id=o.exchange_id,
        entry_id=o.entry_id,
        record_id=o.record_id,
        opinion=o.opinion,
        status=o.status,
        requested_by=o.requested_by,
        requested_at=o.requested_at,
        sent_at=o.sent_at,
        attempts=int(o.attempts),
        last_error=o.last_error,
        sent_to=list(o.sent_to or []),
    )


def report_opinion(
    ctx: Context,
    principal: Principal,
    entry_id: int,
    opinion: str,
    *,
    bank_id: int | None = None,
) -> OpinionView:
    """Record our opinion (true or false positive) on an entry an exchange gave us and defer
    the job that sends it back (same transaction). ``bank_id``, when given, must be the
    entry's bank."""
    require(principal, Permission.MANAGE_BANKS)
    chosen = validate_opinion(opinion)
    now = ctx.now()
    with ctx.transaction() as s:
        found = s.execute(
            select(BankEntry, Bank)
            .join(Bank, Bank.id == BankEntry.bank_id)
            .where(BankEntry.id == entry_id)
            .with_for_update(of=BankEntry)
        ).first()
        if found is None or (bank_id is not None and found[1].id != bank_id):
            raise NotFound("no such entry in this bank")
        entry, bank = found
        require_member(principal, bank.organisation_id)
        link = s.get(ExchangeEntry, entry.id)
        if link is None:
            raise InvalidInput(
                "this entry did not come from an exchange: there is no one to tell",
                field="entry_id",
            )
        x = s.get(Exchange, link.exchange_id)
        assert x is not None
        if x.kind not in {k.value for k in KINDS_WITH_OPINIONS}:
            raise InvalidInput(
                f"the entry came from '{x.name}', a {x.kind} exchange, which takes no opinions",
                field="opinion",
            )
        row = ExchangeOpinion(
            exchange_id=x.id,
            entry_id=entry.id,
            record_id=link.record_id,
            opinion=chosen.value,
            status="pending",
            requested_by=actor_label(principal),
            requested_at=now,
            sent_to=[],
            attempts=0,
        )
        s.add(row)
        s.flush()
        jobs.defer(s, jobs.SEND_EXCHANGE_OPINION, {"opinion_id": row.id})
        audit.record(
            s,
            principal,
            "exchange.opinion_reported",
            "bank_entry",
            entry.id,
            {
                "exchange": x.id,
                "record_id": link.record_id,
                "opinion": chosen.value,
                "opinion_id": row.id,
            },
            at=now,
        )
        return _opinion_view(row)


def send_opinion(ctx: Context, opinion_id: int) -> str:
    """Send one recorded opinion to its exchange (the ``exchanges.send_opinion`` job).

    Raises OpinionNotSent to be retried. An opinion overtaken by a newer one already sent
    is not sent (``superseded``); a newer one replaces the reaction of the one before.
    """
    with ctx.transaction() as s:
        row = s.get(ExchangeOpinion, opinion_id, with_for_update=True)
        if row is None:
            return "missing"
        if row.status != "pending":
            return row.status
        # One entry's opinions are sent one at a time, in order.
        s.execute(select(BankEntry.id).where(BankEntry.id == row.entry_id).with_for_update())
        same_entry = (
            ExchangeOpinion.entry_id == row.entry_id,
            ExchangeOpinion.exchange_id == row.exchange_id,
            ExchangeOpinion.status == "sent",
        )
        newer = s.scalar(select(ExchangeOpinion.id).where(*same_entry, ExchangeOpinion.id > row.id))
        if newer is not None:
            row.status = "superseded"
            return row.status
        previous = s.scalar(
            select(ExchangeOpinion.opinion)
            .where(*same_entry, ExchangeOpinion.id < row.id)
            .order_by(ExchangeOpinion.id.desc())
            .limit(1)
        )
        x = s.get(Exchange, row.exchange_id)
        assert x is not None
        row.attempts += 1
        try:
            sender = opinion_sender_for(
                x.kind, dict(x.config), allow_private=ctx.allow_private_targets
            )
            sent_to = sender.send(
                row.record_id, Opinion(row.opinion), Opinion(previous) if previous else None
            )
        except Exception as exc:
            detail = getattr(exc, "detail", None) or f"{type(exc).__name__}: {exc}"
            row.last_error = str(detail)[:2000]
            s.commit()
            raise OpinionNotSent(row.last_error) from exc
        now = ctx.now()
        if not sent_to:
            # Retrying cannot help: the exchange no longer lists anything to attach it to.
            row.status = "failed"
            row.last_error = "the exchange lists nothing to attach the opinion to any more"
        else:
            row.status, row.sent_at, row.sent_to, row.last_error = "sent", now, sent_to, None
        audit.record(
            s,
            OPINION_ACTOR,
            f"exchange.opinion_{row.status}",
            "bank_entry",
            row.entry_id,
            {"exchange": x.id, "opinion": row.opinion, "opinion_id": row.id, "sent_to": sent_to},
            organisation_id=x.organisation_id,
            at=now,
        )
        return row.status
