"""Bulk matching: a platform submits up to a thousand objects of its own storage at once.

``submit_batch`` validates every item up front (nothing is stored if one is wrong, and the
problem lists each bad item by its index), stores the batch and one job per item
(``matching.batch_item``) in one transaction. Each job (``match_batch_item``) fetches the
object and runs ``matching.match_content`` as the principal who submitted the batch, then
stores the outcome: the matches, the case opened or joined, the notes — or the error.

A job holds a row lock on its item while it works and skips an item that is no longer
queued, so a retried or duplicated job never matches an item twice. (One window remains: a
crash after ``match_content`` committed and before the item's outcome is, which makes the
retry match that object again; its matches are then recorded twice, and its case joined
again by a second automated-detection notice.)
"""

from __future__ import annotations

import csv
import json
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import func, insert, select
from sqlalchemy.orm import Session

from cleanit.adapters import jobs
from cleanit.adapters.db.models import (
    ApiToken,
    MatchingBatch,
    MatchingBatchItem,
    Organisation,
    User,
    table,
)
from cleanit.domain.errors import DomainError, InvalidInput, NotFound
from cleanit.domain.roles import OrgKind, Permission, Principal, Role
from cleanit.domain.signals import SignalType, normalise_hash
from cleanit.services import audit, matching
from cleanit.services.authz import require
from cleanit.services.context import Context
from cleanit.services.storage_urls import HOW_TO_REGISTER, organisation_domains, storage_url_problem

MAX_BATCH_ITEMS = 1000
MAX_PAGE = 500
MAX_CONTENT_TYPE = 200
ITEM_FIELDS = frozenset({"storage_url", "url", "content_type"})
# Behind message deliveries and platform actions (procrastinate runs higher values first):
# a big batch must not delay a takedown.
BATCH_PRIORITY = -1


class ItemStatus(StrEnum):
    """Where an item of a batch is. Persisted values: never change one."""

    QUEUED = "queued"
    DONE = "done"
    FAILED = "failed"


class BatchStatus(StrEnum):
    QUEUED = "queued"  # no item finished yet
    RUNNING = "running"
    DONE = "done"  # every item is done or failed


class BatchInvalid(InvalidInput):
    """Some items of a submitted batch are wrong; ``errors`` names every one (field, message)."""

    def __init__(self, errors: Sequence[tuple[str, str]]) -> None:
        if not errors:
            raise ValueError("an invalid batch has at least one error")
        shown = "; ".join(f"{f}: {m}" for f, m in errors[:20])
        more = f" (and {len(errors) - 20} more)" if len(errors) > 20 else ""
        items = len({f.split(".", 1)[0] for f, _ in errors})
        super().__init__(
            f"nothing was submitted: {items} item(s) are invalid: {shown}{more}",
            field=errors[0][0],
        )
        self.errors: list[tuple[str, str]] = list(errors)


@dataclass(frozen=True)
class BatchView:
    id: int
    organisation_id: int
    status: str
    total: int
    queued: int
    done: int
    failed: int
    submitted_by: str
    created_at: datetime
    finished_at: datetime | None  # when the last item finished (status done)


@dataclass(frozen=True)
class BatchItemView:
    position: int
    storage_url: str
    url: str | None
    content_type: str | None
    status: str
    md5: str | None = None
    sha256: str | None = None
    pdq: str | None = None
    matches: list[dict[str, Any]] = field(default_factory=list)
    case_id: int | None = None
    notes: list[str] = field(default_factory=list)
    error_code: str | None = None
    error: str | None = None
    finished_at: datetime | None = None


def _item_problems(i: int, item: object, domains: Sequence[str]) -> list[tuple[str, str]]:
    at = f"items[{i}]"
    if not isinstance(item, Mapping):
        return [(at, "must be an object with storage_url and optionally url, content_type")]
    problems: list[tuple[str, str]] = []
    unknown = sorted(str(k) for k in item if k not in ITEM_FIELDS)
    if unknown:
        problems.append((at, f"unknown field(s): {', '.join(unknown)}"))
    for name in sorted(ITEM_FIELDS):
        value = item.get(name)
        if isinstance(value, str) and "\x00" in value:  # PostgreSQL text cannot hold NUL
            return [*problems, (f"{at}.{name}", "must not contain NUL characters")]
    problem = storage_url_problem(item.get("storage_url"), domains)
    if problem is not None:
        problems.append((f"{at}.storage_url", problem))
    url = item.get("url")
    if url is not None:
        if not isinstance(url, str):
            problems.append((f"{at}.url", "must be a string"))
        else:
            try:
                normalise_hash(SignalType.URL, url, field=f"{at}.url")
            except InvalidInput as exc:
                problems.append((f"{at}.url", exc.detail))
    content_type = item.get("content_type")
    if content_type is not None and (
        not isinstance(content_type, str) or len(content_type) > MAX_CONTENT_TYPE
    ):
        problems.append(
            (f"{at}.content_type", f"must be a media type of at most {MAX_CONTENT_TYPE} chars")
        )
    return problems


def submit_batch(
    ctx: Context, principal: Principal, items: Sequence[Mapping[str, Any]]
) -> BatchView:
    """Store a batch of objects to match and defer one job per object.

    Each item: ``storage_url`` (required; on the organisation's domains), ``url`` (where
    the content is published: a match then opens or joins its case) and ``content_type``.
    """
    require(principal, Permission.MATCH_CONTENT)
    if not items:
        raise InvalidInput("give at least one item", field="items")
    if len(items) > MAX_BATCH_ITEMS:
        raise InvalidInput(
            f"at most {MAX_BATCH_ITEMS} items per batch, not {len(items)}: split the list",
            field="items",
        )
    with ctx.transaction() as s:
        assert principal.organisation_id is not None  # require() refuses anonymous callers
        domains = organisation_domains(s, principal.organisation_id)
        if not domains:
            raise InvalidInput(
                "your organisation has no registered domains, so no storage URL can be "
                f"accepted: {HOW_TO_REGISTER}",
                field="items",
            )
        errors = [p for i, item in enumerate(items) for p in _item_problems(i, item, domains)]
        if errors:
            raise BatchInvalid(errors)
        now = ctx.now()
        batch = MatchingBatch(
            organisation_id=principal.organisation_id,
            submitted_by=audit.actor_label(principal),
            roles=sorted(r.value for r in principal.roles),
            user_id=principal.user_id,
            token_id=principal.token_id,
            total=len(items),
            created_at=now,
        )
        s.add(batch)
        s.flush()
        ids = s.scalars(
            insert(table(MatchingBatchItem)).returning(
                table(MatchingBatchItem).c.id, sort_by_parameter_order=True
            ),
            [
                {
                    "batch_id": batch.id,
                    "position": i,
                    "storage_url": str(item["storage_url"]).strip(),
                    "url": item.get("url"),
                    "content_type": item.get("content_type"),
                    "status": ItemStatus.QUEUED.value,
                }
                for i, item in enumerate(items)
            ],
        ).all()
        jobs.defer_many(
            s, jobs.MATCH_BATCH_ITEM, [{"item_id": i} for i in ids], priority=BATCH_PRIORITY
        )
        audit.record(
            s,
            principal,
            "matching.batch_submitted",
            "matching_batch",
            batch.id,
            {"items": len(items)},
            at=now,
        )
        return _view(s, batch)


@dataclass(frozen=True)
class BatchFile:
    items: list[dict[str, Any]]
    lines: list[int]  # the line of the file each item came from


def parse_batch_file(text: str) -> BatchFile:
    """Items from a file: JSON lines (``{"storage_url", "url", "content_type"}`` a line) or
    CSV lines ``url,storage_url[,content_type]`` (an empty url is allowed; a first line
    naming the columns, with ``storage_url`` among them, sets their order instead).

    Blank lines and lines starting with ``#`` are skipped. Every unreadable line is named.
    """
    lines = [(n, line) for n, line in enumerate(text.splitlines(), 1)]
    lines = [(n, line) for n, line in lines if line.strip() and not line.lstrip().startswith("#")]
    if lines and lines[0][1].lstrip().startswith("{"):
        return _parse_jsonl(lines)
    return _parse_csv(lines)


def _parse_jsonl(lines: list[tuple[int, str]]) -> BatchFile:
    out, where, errors = [], [], []
    for n, line in lines:
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            errors.append(f"line {n}: not JSON ({exc.msg})")
            continue
        if not isinstance(record, dict):
            errors.append(f"line {n}: not a JSON object")
            continue
        out.append({str(k): v for k, v in record.items() if v is not None})
        where.append(n)
    _refuse(errors)
    return BatchFile(out, where)


def _parse_csv(lines: list[tuple[int, str]]) -> BatchFile:
    rows = list(zip([n for n, _ in lines], csv.reader(line for _, line in lines), strict=True))
    columns = ["url", "storage_url", "content_type"]
    if rows and "storage_url" in [c.strip().lower() for c in rows[0][1]]:
        columns = [c.strip().lower() for c in rows[0][1]]
        rows = rows[1:]
    out, where, errors = [], [], []
    for n, cells in rows:
        if len(cells) > len(columns):
            errors.append(f"line {n}: {len(cells)} columns, expected at most {len(columns)}")
            continue
        record = {c: v.strip() for c, v in zip(columns, cells, strict=False) if v.strip()}
        out.append(record)
        where.append(n)
    _refuse(errors)
    return BatchFile(out, where)


def _refuse(errors: list[str]) -> None:
    if errors:
        more = f" (and {len(errors) - 20} more)" if len(errors) > 20 else ""
        raise InvalidInput(
            f"the file has {len(errors)} unreadable line(s): {'; '.join(errors[:20])}{more}",
            field="file",
        )


def queued_items(ctx: Context, principal: Principal, batch_id: int) -> list[int]:
    """Ids of the items still to match (to run them in this process: ``match_batch_item``)."""
    with ctx.sessions() as s:
        batch = _batch(s, principal, batch_id)
        return list(
            s.scalars(
                select(MatchingBatchItem.id)
                .where(
                    MatchingBatchItem.batch_id == batch.id,
                    MatchingBatchItem.status == ItemStatus.QUEUED.value,
                )
                .order_by(MatchingBatchItem.position)
            )
        )


def _view(s: Session, batch: MatchingBatch) -> BatchView:
    counts = dict.fromkeys(ItemStatus, 0)
    rows = s.execute(
        select(MatchingBatchItem.status, func.count(), func.max(MatchingBatchItem.finished_at))
        .where(MatchingBatchItem.batch_id == batch.id)
        .group_by(MatchingBatchItem.status)
    ).all()
    last: datetime | None = None
    for status, n, finished in rows:
        counts[ItemStatus(status)] = int(n)
        if finished is not None and (last is None or finished > last):
            last = finished
    queued = counts[ItemStatus.QUEUED]
    if queued == 0:
        status = BatchStatus.DONE
    elif queued == batch.total:
        status = BatchStatus.QUEUED
    else:
        status = BatchStatus.RUNNING
    return BatchView(
        id=batch.id,
        organisation_id=batch.organisation_id,
        status=status.value,
        total=batch.total,
        queued=queued,
        done=counts[ItemStatus.DONE],
        failed=counts[ItemStatus.FAILED],
        submitted_by=batch.submitted_by,
        created_at=batch.created_at,
        finished_at=last if status is BatchStatus.DONE else None,
    )


def _batch(s: Session, principal: Principal, batch_id: int) -> MatchingBatch:
    require(principal, Permission.MATCH_CONTENT)
    batch = s.get(MatchingBatch, batch_id)
    # Another organisation's batch answers exactly as one that does not exist.
    if batch is None or batch.organisation_id != principal.organisation_id:
        raise NotFound("no such batch")
    return batch


def get_batch(ctx: Context, principal: Principal, batch_id: int) -> BatchView:
    """The progress of a batch of the caller's organisation (404 for any other)."""
    with ctx.sessions() as s:
        return _view(s, _batch(s, principal, batch_id))


def list_items(
    ctx: Context,
    principal: Principal,
    batch_id: int,
    *,
    limit: int = 100,
    offset: int = 0,
    status: str | None = None,
) -> tuple[list[BatchItemView], int]:
    """The items of a batch in submission order, with their outcomes; and how many."""
    if not 1 <= limit <= MAX_PAGE:
        raise InvalidInput(f"limit: 1 to {MAX_PAGE}", field="limit")
    if offset < 0:
        raise InvalidInput("offset: 0 or more", field="offset")
    wanted = []
    if status is not None:
        try:
            wanted.append(MatchingBatchItem.status == ItemStatus(status).value)
        except ValueError:
            raise InvalidInput("status: queued, done or failed", field="status") from None
    with ctx.sessions() as s:
        batch = _batch(s, principal, batch_id)
        where = [MatchingBatchItem.batch_id == batch.id, *wanted]
        total = int(
            s.scalar(select(func.count()).select_from(MatchingBatchItem).where(*where)) or 0
        )
        rows = s.scalars(
            select(MatchingBatchItem)
            .where(*where)
            .order_by(MatchingBatchItem.position)
            .limit(limit)
            .offset(offset)
        ).all()
        return [_item_view(r) for r in rows], total


def _item_view(r: MatchingBatchItem) -> BatchItemView:
    return BatchItemView(
        position=r.position,
        storage_url=r.storage_url,
        url=r.url,
        content_type=r.content_type,
        status=r.status,
        md5=r.md5,
        sha256=r.sha256,
        pdq=r.pdq,
        matches=list(r.matches or []),
        case_id=r.case_id,
        notes=list(r.notes or []),
        error_code=r.error_code,
        error=r.error,
        finished_at=r.finished_at,
    )


class SubmitterRevoked(DomainError):
    code = "submitter-revoked"
    status = 403


def _submitter(s: Session, batch: MatchingBatch) -> Principal:
    """The principal who submitted the batch, as long as their access still stands."""
    if batch.token_id is not None:
        revoked = s.scalar(select(ApiToken.revoked_at).where(ApiToken.id == batch.token_id))
        if revoked is not None:
            raise SubmitterRevoked(
                f"the API token that submitted the batch ({batch.submitted_by}) was revoked; "
                "the object was not matched"
            )
    if batch.user_id is not None and not s.scalar(
        select(User.active).where(User.id == batch.user_id)
    ):
        raise SubmitterRevoked(
            f"the account that submitted the batch ({batch.submitted_by}) is disabled; "
            "the object was not matched"
        )
    kind = s.scalar(select(Organisation.kind).where(Organisation.id == batch.organisation_id))
    assert kind is not None
    return Principal(
        organisation_id=batch.organisation_id,
        org_kind=OrgKind(kind),
        roles=frozenset(Role(r) for r in batch.roles),
        user_id=batch.user_id,
        token_id=batch.token_id,
        label=batch.submitted_by,
    )


def match_batch_item(ctx: Context, item_id: int) -> str:
    """Fetch and match one item of a batch (the ``matching.batch_item`` job).

    Returns what happened: ``done``, ``failed`` or ``skipped`` (already finished, or gone).
    A domain error (the storage refused, the content cannot be hashed...) is the item's
    outcome; any other error, or a 503 (the matcher is over its memory budget), propagates,
    so the job is retried with the item still queued.
    """
    with ctx.transaction() as s:
        # Held until the outcome is stored: a concurrent run of the same job waits here,
        # then finds the item finished and skips it.
        row = s.execute(
            select(MatchingBatchItem, MatchingBatch)
            .join(MatchingBatch, MatchingBatch.id == MatchingBatchItem.batch_id)
            .where(MatchingBatchItem.id == item_id)
            .with_for_update(of=MatchingBatchItem)
        ).first()
        if row is None or row[0].status != ItemStatus.QUEUED.value:
            return "skipped"
        item, batch = row
        try:
            result = matching.match_content(
                ctx,
                _submitter(s, batch),
                storage_url=item.storage_url,
                url=item.url,
                content_type=item.content_type,
                max_bytes=ctx.max_content_bytes,
            )
        except DomainError as exc:
            if exc.status == 503:  # this process cannot match now (memory budget): retry
                raise
            item.status = ItemStatus.FAILED.value
            item.error_code, item.error = exc.code, exc.detail
        else:
            item.status = ItemStatus.DONE.value
            item.md5, item.sha256, item.pdq = result.md5, result.sha256, result.pdq
            item.matches = [asdict(m) for m in result.matches]
            item.case_id = result.case_id
            item.notes = list(result.notes)
        item.finished_at = ctx.now()
        return item.status
