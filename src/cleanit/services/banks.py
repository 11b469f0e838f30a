"""Banks (hash lists) and their entries: create, configure, add, remove, import.

Every change is authorised (``banks:manage``; reading needs ``banks:read``), limited to the
caller's own organisation (another organisation's bank answers 404) and audited.
Entries are never deleted: removing one stamps ``removed_at`` (and a new change number, so
matching indexes drop it within seconds).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from cleanit.adapters import jobs
from cleanit.adapters.db.models import BANK_ENTRY_CHANGES, Bank, BankEntry, table
from cleanit.domain.banks import (
    DEFAULT_CATEGORY,
    BankMode,
    EntryDraft,
    parse_import,
    validate_auto_action,
    validate_category,
    validate_description,
    validate_entry,
    validate_labels,
    validate_mode,
    validate_name,
    validate_thresholds,
)
from cleanit.domain.errors import Conflict, Forbidden, InvalidInput, NotFound
from cleanit.domain.roles import OrgKind, Permission, Principal
from cleanit.services import audit
from cleanit.services.audit import actor_label
from cleanit.services.authz import require, require_member
from cleanit.services.context import Context
from cleanit.services.registries import clause_reference, clause_version_in_force

MAX_PAGE = 500


@dataclass(frozen=True)
class BankView:
    id: int
    organisation_id: int
    name: str
    description: str
    labels: list[str]
    thresholds: dict[str, int]
    mode: str
    category: str
    enabled: bool
    negative: bool
    entry_count: int
    created_at: datetime
    updated_at: datetime
    auto_action: str | None = None
    auto_terms_clause_version_id: int | None = None


@dataclass(frozen=True)
class EntryView:
    id: int
    bank_id: int
    signal_type: str
    value: str
    labels: list[str]
    source: str
    added_by: str
    added_at: datetime
    review_date: datetime | None
    removed_at: datetime | None
    removed_by: str | None
    quarantined_at: datetime | None


def _bank_view(b: Bank, count: int) -> BankView:
    return BankView(
        id=b.id,
        organisation_id=b.organisation_id,
        name=b.name,
        description=b.description,
        labels=list(b.labels),
        thresholds={k: int(v) for k, v in b.thresholds.items()},
        mode=b.mode,
        category=b.category,
        enabled=b.enabled,
        negative=b.negative,
        entry_count=count,
        created_at=b.created_at,
        updated_at=b.updated_at,
        auto_action=b.auto_action,
        auto_terms_clause_version_id=b.auto_terms_clause_version_id,
    )


def entry_view(e: BankEntry) -> EntryView:
    return EntryView(
        id=e.id,
        bank_id=e.bank_id,
        signal_type=e.signal_type,
        value=e.value,
        labels=list(e.labels),
        source=e.source,
        added_by=e.added_by,
        added_at=e.added_at,
        review_date=e.review_date,
        removed_at=e.removed_at,
        removed_by=e.removed_by,
        quarantined_at=e.quarantined_at,
    )


def _live_count(s: Session, bank_id: int) -> int:
    return int(
        s.scalar(
            select(func.count())
            .select_from(BankEntry)
            .where(BankEntry.bank_id == bank_id, BankEntry.removed_at.is_(None))
        )
        or 0
    )


def _own_bank(s: Session, principal: Principal, bank_id: int, *, lock: bool = False) -> Bank:
    query = select(Bank).where(Bank.id == bank_id)
    if lock:
        query = query.with_for_update()
    bank = s.scalar(query)
    if bank is None:
        raise NotFound("no such bank")
    require_member(principal, bank.organisation_id)
    return bank


def _flush_unique_name(s: Session) -> None:
    """Write pending changes; a clash on the (organisation, name) key is the user's error."""
    try:
        s.flush()
    except IntegrityError:
        raise Conflict("your organisation already has a bank of that name", field="name") from None


def bank_named(ctx: Context, principal: Principal, name: str) -> BankView:
    """The principal's organisation's bank called ``name`` (operators name banks, not ids)."""
    for bank in list_banks(ctx, principal):
        if bank.name == name:
            return bank
    raise NotFound(f"no bank '{name}' in your organisation", field="bank")


def _auto_config(
    s: Session,
    ctx: Context,
    principal: Principal,
    mode: BankMode,
    action: str | None,
    clause_version_id: int | None,
    *,
    negative: bool,
) -> dict[str, Any]:
    """The auto_action settings, checked: only a hosting provider acts on its own content,
    citing a clause version of its own terms that is in force now."""
    config = validate_auto_action(mode, action, clause_version_id, negative=negative)
    if config.action is not None:
        if principal.org_kind is not OrgKind.HOSTING_PROVIDER:
            raise Forbidden("only a hosting provider can act automatically on content")
        assert config.terms_clause_version_id is not None
        try:
            clause, version = clause_reference(s, config.terms_clause_version_id)
        except NotFound:
            raise InvalidInput(
                "no such terms clause version", field="auto_terms_clause_version_id"
            ) from None
        if clause.organisation_id != principal.organisation_id:
            raise InvalidInput(
                "cite a clause of your own terms", field="auto_terms_clause_version_id"
            )
        current = clause_version_in_force(s, clause.id, ctx.now())
        if current is None or current.id != version.id:
            raise InvalidInput(
                f"cite the version in force of '{clause.key}'",
                field="auto_terms_clause_version_id",
            )
    return {
        "auto_action": config.action.value if config.action else None,
        "auto_terms_clause_version_id": config.terms_clause_version_id,
    }


def create_bank(
    ctx: Context,
    principal: Principal,
    *,
    name: str,
    description: str = "",
    labels: Iterable[str] = (),
    thresholds: Mapping[str, Any] | None = None,
    mode: str = BankMode.REVIEW.value,
    category: str = DEFAULT_CATEGORY.value,
    enabled: bool = True,
    negative: bool = False,
    auto_action: str | None = None,
    auto_terms_clause_version_id: int | None = None,
) -> BankView:
    """Create a bank. An ``auto_action`` bank also names its item action and the terms
    clause version its automated decisions cite (hosting providers only)."""
    require(principal, Permission.MANAGE_BANKS)
    assert principal.organisation_id is not None
    chosen_mode = validate_mode(mode)
    values: dict[str, Any] = {
        "organisation_id": principal.organisation_id,
        "name": validate_name(name),
        "description": validate_description(description),
        "labels": list(validate_labels(labels)),
        "thresholds": validate_thresholds(thresholds),
        "mode": chosen_mode.value,
        "category": validate_category(category).value,
        "enabled": bool(enabled),
        "negative": bool(negative),
    }
    now = ctx.now()
    with ctx.transaction() as s:
        values.update(
            _auto_config(
                s,
                ctx,
                principal,
                chosen_mode,
                auto_action,
                auto_terms_clause_version_id,
                negative=bool(negative),
            )
        )
        bank = Bank(**values, created_at=now, updated_at=now)
        s.add(bank)
        _flush_unique_name(s)
        audit.record(
            s,
            principal,
            "bank.created",
            "bank",
            bank.id,
            {k: v for k, v in values.items() if k != "description"},
            at=now,
        )
        return _bank_view(bank, 0)


def list_banks(ctx: Context, principal: Principal) -> list[BankView]:
    require(principal, Permission.READ_BANKS)
    with ctx.sessions() as s:
        counts = (
            select(BankEntry.bank_id, func.count().label("n"))
            .where(BankEntry.removed_at.is_(None))
            .group_by(BankEntry.bank_id)
            .subquery()
        )
        rows = s.execute(
            select(Bank, func.coalesce(counts.c.n, 0))
            .outerjoin(counts, counts.c.bank_id == Bank.id)
            .where(Bank.organisation_id == principal.organisation_id)
            .order_by(Bank.name)
        ).all()
        return [_bank_view(b, int(n)) for b, n in rows]


def get_bank(ctx: Context, principal: Principal, bank_id: int) -> BankView:
    require(principal, Permission.READ_BANKS)
    with ctx.sessions() as s:
        bank = _own_bank(s, principal, bank_id)
        return _bank_view(bank, _live_count(s, bank.id))


_UNSET: Any = object()


def update_bank(
    ctx: Context,
    principal: Principal,
    bank_id: int,
    *,
    name: str | None = None,
    description: str | None = None,
    labels: Iterable[str] | None = None,
    thresholds: Mapping[str, Any] | None = None,
    mode: str | None = None,
    category: str | None = None,
    enabled: bool | None = None,
    auto_action: str | None = None,
    auto_terms_clause_version_id: int | None = None,
) -> BankView:
    """Change a bank's settings (only what is given). ``negative`` is fixed at creation.

    Changing the mode, the action or the clause re-checks all three together; switching to
    ``review`` clears the action and the clause.
    """
    require(principal, Permission.MANAGE_BANKS)
    changes: dict[str, Any] = {}
    if name is not None:
        changes["name"] = validate_name(name)
    if description is not None:
        changes["description"] = validate_description(description)
    if labels is not None:
        changes["labels"] = list(validate_labels(labels))
    if mode is not None:
        changes["mode"] = validate_mode(mode).value
    if category is not None:
        changes["category"] = validate_category(category).value
    if enabled is not None:
        changes["enabled"] = bool(enabled)
    now = ctx.now()
    with ctx.transaction() as s:
        bank = _own_bank(s, principal, bank_id, lock=True)
        if thresholds is not None:
            changes["thresholds"] = validate_thresholds({**bank.thresholds, **thresholds})
        if mode is not None or auto_action is not None or auto_terms_clause_version_id is not None:
            new_mode = BankMode(changes.get("mode", bank.mode))
            keep = new_mode is BankMode.AUTO_ACTION
            changes.update(
                _auto_config(
                    s,
                    ctx,
                    principal,
                    new_mode,
                    auto_action
                    if auto_action is not None
                    else (bank.auto_action if keep else None),
                    auto_terms_clause_version_id
                    if auto_terms_clause_version_id is not None
                    else (bank.auto_terms_clause_version_id if keep else None),
                    negative=bank.negative,
                )
            )
        before = {k: getattr(bank, k) for k in changes}
        for key, value in changes.items():
            setattr(bank, key, value)
        bank.updated_at = now
        _flush_unique_name(s)
        audit.record(
            s,
            principal,
            "bank.updated",
            "bank",
            bank.id,
            {
                "changes": {
                    k: {"from": before[k], "to": v}
                    for k, v in changes.items()
                    if k != "description" and before[k] != v
                }
            },
            at=now,
        )
        return _bank_view(bank, _live_count(s, bank.id))


def _insert_entries(
    s: Session,
    principal: Principal,
    bank: Bank,
    drafts: list[EntryDraft],
    *,
    source: str,
    review_date: datetime | None,
    now: datetime,
) -> list[int]:
    if not drafts:
        return []
    rows = [
        {
            "bank_id": bank.id,
            "signal_type": d.signal_type.value,
            "value": d.value,
            "labels": list(d.labels),
            "source": source,
            "added_by": actor_label(principal),
            "added_at": now,
            "review_date": review_date,
        }
        for d in drafts
    ]
    result = s.execute(insert(table(BankEntry)).returning(BankEntry.id), rows)
    return [int(i) for i in result.scalars().all()]


def _defer_rematch(s: Session, bank: Bank, entry_ids: list[int]) -> None:
    """Look recently seen content up against new entries, in a job of this transaction."""
    if entry_ids and bank.enabled and not bank.negative:
        jobs.defer(
            s,
            jobs.REMATCH,
            {"bank_id": bank.id, "first_entry_id": min(entry_ids), "last_entry_id": max(entry_ids)},
        )


def _check_source(source: str) -> str:
    text = source.strip()
    if text == "local" or (
        text.startswith(("decision:", "import:", "exchange:")) and len(text.split(":", 1)[1]) > 0
    ):
        if len(text) > 300:
            raise InvalidInput("the source has at most 300 characters", field="source")
        return text
    raise InvalidInput(
        "source is 'local', 'decision:<id>', 'import:<filename>' or 'exchange:<name>'",
        field="source",
    )


def add_entry(
    ctx: Context,
    principal: Principal,
    bank_id: int,
    *,
    signal_type: str,
    value: str,
    labels: Iterable[str] = (),
    review_date: datetime | None = None,
    source: str = "local",
) -> EntryView:
    require(principal, Permission.MANAGE_BANKS)
    draft = validate_entry(signal_type, value, labels)
    source = _check_source(source)
    now = ctx.now()
    with ctx.transaction() as s:
        bank = _own_bank(s, principal, bank_id)
        live = s.scalar(
            select(BankEntry.id).where(
                BankEntry.bank_id == bank.id,
                BankEntry.signal_type == draft.signal_type.value,
                BankEntry.value == draft.value,
                BankEntry.removed_at.is_(None),
            )
        )
        if live is not None:
            raise Conflict(f"this bank already holds that hash (entry {live})", field="value")
        (entry_id,) = _insert_entries(
            s, principal, bank, [draft], source=source, review_date=review_date, now=now
        )
        audit.record(
            s,
            principal,
            "bank_entry.added",
            "bank_entry",
            entry_id,
            {"bank": bank.id, "signal_type": draft.signal_type.value, "source": source},
            at=now,
        )
        _defer_rematch(s, bank, [entry_id])
        entry = s.get(BankEntry, entry_id)
        assert entry is not None
        return entry_view(entry)


def list_entries(
    ctx: Context,
    principal: Principal,
    bank_id: int,
    *,
    include_removed: bool = False,
    limit: int = 100,
    offset: int = 0,
) -> tuple[list[EntryView], int]:
    require(principal, Permission.READ_BANKS)
    limit = max(1, min(limit, MAX_PAGE))
    with ctx.sessions() as s:
        bank = _own_bank(s, principal, bank_id)
        where = [BankEntry.bank_id == bank.id]
        if not include_removed:
            where.append(BankEntry.removed_at.is_(None))
        total = int(s.scalar(select(func.count()).select_from(BankEntry).where(*where)) or 0)
        rows = s.scalars(
            select(BankEntry).where(*where).order_by(BankEntry.id).limit(limit).offset(offset)
        ).all()
        return [entry_view(e) for e in rows], total


def remove_entry(
    ctx: Context, principal: Principal, bank_id: int, entry_id: int, *, reason: str = ""
) -> EntryView:
    require(principal, Permission.MANAGE_BANKS)
    now = ctx.now()
    with ctx.transaction() as s:
        bank = _own_bank(s, principal, bank_id)
        entry = s.scalar(
            select(BankEntry)
            .where(BankEntry.id == entry_id, BankEntry.bank_id == bank.id)
            .with_for_update()
        )
        if entry is None:
            raise NotFound("no such entry in this bank")
        if entry.removed_at is not None:
            raise Conflict("the entry was already removed")
        s.execute(
            update(BankEntry)
            .where(BankEntry.id == entry.id)
            .values(
                removed_at=now,
                removed_by=actor_label(principal),
                changed_seq=func.nextval(BANK_ENTRY_CHANGES),
            )
        )
        audit.record(
            s,
            principal,
            "bank_entry.removed",
            "bank_entry",
            entry.id,
            {"bank": bank.id, "reason": reason.strip()[:500]},
            at=now,
        )
        s.refresh(entry)
        return entry_view(entry)


@dataclass(frozen=True)
class ImportReport:
    bank_id: int
    added: int
    skipped_duplicates: int


MAX_FILENAME = 200


def import_entries(
    ctx: Context,
    principal: Principal,
    bank_id: int,
    *,
    filename: str,
    text: str,
    review_date: datetime | None = None,
) -> ImportReport:
    """Add every ``signal_type,value,labels`` line of ``text``, or none of them.

    Any invalid line refuses the whole import with a report naming each bad line. Hashes
    the bank already holds (or that repeat in the file) are skipped, not errors.
    """
    require(principal, Permission.MANAGE_BANKS)
    name = filename.strip().replace("\n", " ")
    if not name or len(name) > MAX_FILENAME:
        raise InvalidInput(
            f"give the file's name (1 to {MAX_FILENAME} characters)", field="filename"
        )
    drafts, errors = parse_import(text)
    if errors:
        report = "; ".join(
            f"line {e.line}" + (f" ({e.field})" if e.field else "") + f": {e.message}"
            for e in errors[:50]
        )
        more = f"; and {len(errors) - 50} more" if len(errors) > 50 else ""
        raise InvalidInput(
            f"nothing was imported: {len(errors)} invalid line(s): {report}{more}", field="csv"
        )
    if not drafts:
        raise InvalidInput("the file holds no entries", field="csv")
    now = ctx.now()
    with ctx.transaction() as s:
        bank = _own_bank(s, principal, bank_id, lock=True)
        existing = {
            (t, v)
            for t, v in s.execute(
                select(BankEntry.signal_type, BankEntry.value).where(
                    BankEntry.bank_id == bank.id, BankEntry.removed_at.is_(None)
                )
            ).all()
        }
        fresh: list[EntryDraft] = []
        for d in drafts:
            key = (d.signal_type.value, d.value)
            if key not in existing:
                existing.add(key)
                fresh.append(d)
        ids = _insert_entries(
            s,
            principal,
            bank,
            fresh,
            source=f"import:{name}",
            review_date=review_date,
            now=now,
        )
        audit.record(
            s,
            principal,
            "bank.imported",
            "bank",
            bank.id,
            {"file": name, "added": len(ids), "skipped": len(drafts) - len(fresh)},
            at=now,
        )
        _defer_rematch(s, bank, ids)
        return ImportReport(bank.id, len(ids), len(drafts) - len(fresh))
